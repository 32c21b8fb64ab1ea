package golden

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// go test ./... -update passes -update to every test binary, so every
// package with tests must import this package, which defines the flag.
func TestEveryTestPackageImportsGolden(t *testing.T) {
	root := filepath.Join("..", "..")
	importers := map[string]bool{}
	hasTests := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		hasTests[dir] = true
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), `"github.com/cellwarden/cellwarden/internal/golden"`) {
			importers[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range hasTests {
		if !importers[dir] && dir != "." {
			t.Errorf("%s has tests but does not import internal/golden: go test ./... -update would fail there", dir)
		}
	}
	if len(hasTests) < 5 {
		t.Fatalf("found only %d test packages: is the walk rooted right?", len(hasTests))
	}
}
