package cputime

// Imported for its -update flag, so that go test ./... -update works in
// every package.
import _ "github.com/cellwarden/cellwarden/internal/golden"
