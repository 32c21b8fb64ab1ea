package inventory

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "inventory.yml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"",
		"batteries:\n",
		"batteries:\n  - ups: a\n    chemistry: NiCd\n    installed: 2014-02-30\n",
		"batteries:\n  - &e {ups: a, string: 07}\n  - *e\n  - {<<: *e, string: \"1\"}\n",
		"batteries:\n  - {ups: a, design_life_years: .inf, manufactured: 2020-01-01, installed: 2019-01-01}\n",
		"- ups: a\n",
		"batteries: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data, "fuzz.yaml")
		if (inv == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of them", inv, err)
		}
		if err != nil {
			return
		}
		for i := range inv.Batteries {
			b := &inv.Batteries[i]
			if got, ok := inv.Lookup(b.UPS, b.String); !ok || got != b {
				t.Errorf("Lookup(%q, %q) = %v, %v, want entry %d", b.UPS, b.String, got, ok, i)
			}
		}
	})
}
