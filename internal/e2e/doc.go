// Package e2e holds the integration suite: tests that build the real
// cellwarden binary and run it the way a user does. They carry the
// "integration" build tag and run from .ci/run:
//
//	go test -tags integration ./internal/e2e/...
package e2e
