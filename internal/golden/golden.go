// Package golden compares test output with expected files under testdata/
// and rewrites them when the tests run with -update:
//
//	go test ./... -update
//
// The -update flag is defined here, so every package with tests imports
// this package (TestEveryTestPackageImportsGolden checks it); otherwise
// that package's test binary would reject the flag.
package golden

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/ with the current output")

// Updating reports whether the tests run with -update.
func Updating() bool { return *update }

// Compare fails t unless got equals the contents of the file at path. With
// -update it writes got to path instead.
func Compare(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./... -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./... -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
