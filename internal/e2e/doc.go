// Package e2e holds the end-to-end tests: they build the real cellwarden
// binary and run it the way a user does. Tests that need only Go run with
// every `go test ./...`; tests that need external peers (mosquitto,
// pymodbus, Prometheus, Alertmanager) carry the "integration" build tag
// and run from .ci/run, which installs those peers:
//
//	go test -tags integration ./internal/e2e/...
package e2e
