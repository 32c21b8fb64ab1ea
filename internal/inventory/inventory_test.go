package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

func mustDate(t testing.TB, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatalf("ParseDate(%q): %v", s, err)
	}
	return d
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []Battery
	}{
		{name: "empty file", doc: "", want: nil},
		{name: "comments only", doc: "# nothing yet\n", want: nil},
		{name: "null batteries", doc: "batteries:\n", want: nil},
		{name: "empty list", doc: "batteries: []\n", want: []Battery{}},
		{
			name: "spec sample",
			doc: `batteries:
  - ups: ups-a
    string: "1"
    vendor: LG Energy Solution
    model: M48126P3B
    serial: LGX-2014-00871
    chemistry: NMC
    manufactured: 2014-06-01
    installed: 2014-09-15
    design_life_years: 10
    warranty_until: 2024-09-15
    replace_by: 2024-06-30
`,
			want: []Battery{{
				UPS: "ups-a", String: "1", Vendor: "LG Energy Solution", Model: "M48126P3B",
				Serial: "LGX-2014-00871", Chemistry: NMC,
				Manufactured: mustDate(t, "2014-06-01"), Installed: mustDate(t, "2014-09-15"),
				DesignLifeYears: 10, WarrantyUntil: mustDate(t, "2024-09-15"),
				ReplaceBy: mustDate(t, "2024-06-30"), Line: 2,
			}},
		},
		{
			name: "minimal entries, opaque identifiers, lower-case chemistry",
			doc: "batteries:\n" +
				"  - ups: ups-a\n" +
				"  - {ups: ups-a, string: 07, chemistry: lfp, design_life_years: 12.5}\n" +
				"  - {ups: ups-a, string: 7, installed: '2020-01-01', warranty_until: 2020-01-01}\n" +
				"  - {ups: \"b:1.x_y\", serial: 0012}\n",
			want: []Battery{
				{UPS: "ups-a", Line: 2},
				{UPS: "ups-a", String: "07", Chemistry: LFP, DesignLifeYears: 12.5, Line: 3},
				{UPS: "ups-a", String: "7", Installed: mustDate(t, "2020-01-01"), WarrantyUntil: mustDate(t, "2020-01-01"), Line: 4},
				{UPS: "b:1.x_y", Serial: "0012", Line: 5},
			},
		},
		{
			name: "same string on two UPSes",
			doc:  "batteries:\n  - {ups: a, string: \"1\"}\n  - {ups: b, string: \"1\"}\n  - {ups: a}\n  - {ups: b}\n",
			want: []Battery{
				{UPS: "a", String: "1", Line: 2},
				{UPS: "b", String: "1", Line: 3},
				{UPS: "a", Line: 4},
				{UPS: "b", Line: 5},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Parse([]byte(tt.doc), "inv.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(inv.Batteries, tt.want) {
				t.Errorf("Batteries =\n%+v\nwant\n%+v", inv.Batteries, tt.want)
			}
			if inv.Source != "inv.yaml" {
				t.Errorf("Source = %q", inv.Source)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "bad chemistry",
			doc:  "batteries:\n  - ups: a\n    chemistry: NiCd\n",
			want: `inv.yaml: batteries[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 3)`,
		},
		{
			name: "mixed-case chemistry",
			doc:  "batteries:\n  - {ups: a, chemistry: Nmc}\n",
			want: `inv.yaml: batteries[0].chemistry: "Nmc" must be one of NMC, LFP, LTO, NCA (line 2)`,
		},
		{
			name: "chemistry list",
			doc:  "batteries:\n  - {ups: a, chemistry: [NMC]}\n",
			want: `inv.yaml: batteries[0].chemistry: must be one of NMC, LFP, LTO, NCA (line 2)`,
		},
		{
			name: "missing ups",
			doc:  "batteries:\n  - string: \"1\"\n    vendor: x\n",
			want: `inv.yaml: batteries[0].ups: is required (line 2)`,
		},
		{
			name: "invalid ups",
			doc:  "batteries:\n  - ups: ups a\n",
			want: `inv.yaml: batteries[0].ups: "ups a" must match [A-Za-z0-9_.:-]+ (line 2)`,
		},
		{
			name: "ups of the wrong type is reported once",
			doc:  "batteries:\n  - ups: [a]\n",
			want: `inv.yaml: batteries[0].ups: is not a string (line 2)`,
		},
		{
			name: "empty string",
			doc:  "batteries:\n  - ups: a\n    string: \"\"\n",
			want: `inv.yaml: batteries[0].string: must not be empty (leave it out to describe every string of the UPS) (line 3)`,
		},
		{
			name: "impossible date",
			doc:  "batteries:\n  - {ups: a, installed: 2014-02-30}\n",
			want: `inv.yaml: batteries[0].installed: "2014-02-30" is not a date (YYYY-MM-DD) (line 2)`,
		},
		{
			name: "date without leading zeros",
			doc:  "batteries:\n  - {ups: a, manufactured: 2014-6-1}\n",
			want: `inv.yaml: batteries[0].manufactured: "2014-6-1" is not a date (YYYY-MM-DD) (line 2)`,
		},
		{
			name: "date with a time",
			doc:  "batteries:\n  - {ups: a, replace_by: 2014-06-01T00:00:00Z}\n",
			want: `inv.yaml: batteries[0].replace_by: "2014-06-01T00:00:00Z" is not a date (YYYY-MM-DD) (line 2)`,
		},
		{
			name: "installed before manufactured",
			doc:  "batteries:\n  - ups: a\n    manufactured: 2014-06-01\n    installed: 2014-05-01\n",
			want: `inv.yaml: batteries[0].installed: "2014-05-01" is before manufactured (2014-06-01) (line 4)`,
		},
		{
			name: "warranty ends before installation",
			doc:  "batteries:\n  - ups: a\n    installed: 2014-09-15\n    warranty_until: 2014-09-14\n",
			want: `inv.yaml: batteries[0].warranty_until: "2014-09-14" is before installed (2014-09-15) (line 4)`,
		},
		{
			name: "zero design life",
			doc:  "batteries:\n  - {ups: a, design_life_years: 0}\n",
			want: `inv.yaml: batteries[0].design_life_years: "0" must be more than 0 and at most 50 (line 2)`,
		},
		{
			name: "design life too long",
			doc:  "batteries:\n  - {ups: a, design_life_years: 50.5}\n",
			want: `inv.yaml: batteries[0].design_life_years: "50.5" must be more than 0 and at most 50 (line 2)`,
		},
		{
			name: "design life not a number",
			doc:  "batteries:\n  - {ups: a, design_life_years: .nan}\n",
			want: `inv.yaml: batteries[0].design_life_years: "NaN" must be more than 0 and at most 50 (line 2)`,
		},
		{
			name: "design life text",
			doc:  "batteries:\n  - {ups: a, design_life_years: ten}\n",
			want: `inv.yaml: batteries[0].design_life_years: "ten" is not a number (line 2)`,
		},
		{
			name: "duplicate string",
			doc:  "batteries:\n  - ups: a\n    string: \"1\"\n  - ups: b\n  - ups: a\n    string: \"1\"\n",
			want: `inv.yaml: batteries[2]: repeats the entry at line 2 for ups "a" string "1" (line 5)`,
		},
		{
			name: "duplicate UPS-wide entry",
			doc:  "batteries:\n  - ups: a\n  - ups: a\n    string: \"1\"\n  - ups: a\n",
			want: `inv.yaml: batteries[2]: repeats the entry at line 2 for all strings of ups "a" (line 5)`,
		},
		{
			name: "unknown key",
			doc:  "batteries:\n  - ups: a\n    chemestry: NMC\n",
			want: `inv.yaml: batteries[0].chemestry: unknown field (line 3)`,
		},
		{
			name: "unknown top-level key",
			doc:  "battery:\n  - ups: a\n",
			want: `inv.yaml: battery: unknown field (line 1)`,
		},
		{
			name: "duplicate key in an entry",
			doc:  "batteries:\n  - ups: a\n    ups: b\n",
			want: `inv.yaml: batteries[0].ups: duplicate key (first defined at line 2) (line 3)`,
		},
		{
			name: "entry is not a mapping",
			doc:  "batteries:\n  - ups-a\n",
			want: `inv.yaml: batteries[0]: "ups-a" must be a mapping (line 2)` + "\n" +
				`inv.yaml: batteries[0].ups: is required (line 2)`,
		},
		{
			name: "batteries is not a list",
			doc:  "batteries:\n  ups: a\n",
			want: `inv.yaml: batteries: must be a list (line 1)`,
		},
		{
			name: "document is a list",
			doc:  "- ups: a\n",
			want: `inv.yaml: line 1: the document must be a mapping`,
		},
		{
			name: "syntax error",
			doc:  "batteries:\n  - ups: a\n    string: 1: 2\n",
			want: `inv.yaml: line 3: invalid YAML: mapping values are not allowed in this context`,
		},
		{
			name: "all problems at once, in line order",
			doc: "batteries:\n" +
				"  - ups: ups-a\n" +
				"    string: \"1\"\n" +
				"    chemistry: NiCd\n" +
				"    installed: 2014-13-01\n" +
				"    colour: blue\n" +
				"  - string: \"2\"\n" +
				"    design_life_years: 60\n" +
				"  - ups: ups-a\n" +
				"    string: \"1\"\n",
			want: `inv.yaml: batteries[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 4)` + "\n" +
				`inv.yaml: batteries[0].installed: "2014-13-01" is not a date (YYYY-MM-DD) (line 5)` + "\n" +
				`inv.yaml: batteries[0].colour: unknown field (line 6)` + "\n" +
				`inv.yaml: batteries[1].ups: is required (line 7)` + "\n" +
				`inv.yaml: batteries[1].design_life_years: "60" must be more than 0 and at most 50 (line 8)` + "\n" +
				`inv.yaml: batteries[2]: repeats the entry at line 2 for ups "ups-a" string "1" (line 9)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Parse([]byte(tt.doc), "inv.yaml")
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", inv)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", got, tt.want)
			}
			var errs yamlstrict.Errors
			if !errors.As(err, &errs) || len(errs) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("errors.As(yamlstrict.Errors) = %v", errs)
			}
		})
	}
}

func TestParseWithoutSource(t *testing.T) {
	_, err := Parse([]byte("batteries:\n  - ups: a\n    chemistry: NiCd\n"), "")
	if want := `batteries[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 3)`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestLoadExample(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "examples", "inventory.yml")
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Battery{
		UPS: "ups-a", String: "1", Vendor: "LG Energy Solution", Model: "M48126P3B",
		Serial: "LGX-2014-00871", Chemistry: NMC,
		Manufactured: mustDate(t, "2014-06-01"), Installed: mustDate(t, "2014-09-15"),
		DesignLifeYears: 10, WarrantyUntil: mustDate(t, "2024-09-15"),
		ReplaceBy: mustDate(t, "2024-06-30"), Line: 5,
	}
	if got, ok := inv.Lookup("ups-a", "1"); !ok || *got != want {
		t.Errorf("Lookup(ups-a, 1) = %+v, %v, want %+v", got, ok, want)
	}
	if got, ok := inv.Lookup("ups-b", "3"); !ok || got.Chemistry != LFP || got.String != "" {
		t.Errorf("Lookup(ups-b, 3) = %+v, %v, want the LFP UPS-wide entry", got, ok)
	}
	if len(inv.Batteries) != 3 || inv.Source != path {
		t.Errorf("Load = %d batteries from %q", len(inv.Batteries), inv.Source)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("batteries:\n  - ups: a\n    chemistry: NiCd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "missing file", path: missing, want: "read inventory: open " + missing + ": no such file or directory"},
		{name: "bad file", path: bad, want: bad + `: batteries[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	inv := &Inventory{Batteries: []Battery{
		{UPS: "a", String: "1"},
		{UPS: "a"},
		{UPS: "a", String: "07"},
		{UPS: "b", String: "1"},
		{UPS: "a", String: "1"}, // never returned: Parse rejects repeats
	}}
	tests := []struct {
		name     string
		inv      *Inventory
		ups, str string
		want     *Battery
	}{
		{name: "exact string", inv: inv, ups: "a", str: "1", want: &inv.Batteries[0]},
		{name: "exact string after the UPS-wide entry", inv: inv, ups: "a", str: "07", want: &inv.Batteries[2]},
		{name: "opaque identifiers", inv: inv, ups: "a", str: "7", want: &inv.Batteries[1]},
		{name: "UPS-wide entry", inv: inv, ups: "a", str: "2", want: &inv.Batteries[1]},
		{name: "UPS itself", inv: inv, ups: "a", str: "", want: &inv.Batteries[1]},
		{name: "no UPS-wide entry", inv: inv, ups: "b", str: "2", want: nil},
		{name: "unknown UPS", inv: inv, ups: "c", str: "1", want: nil},
		{name: "nil inventory", inv: nil, ups: "a", str: "1", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.inv.Lookup(tt.ups, tt.str)
			if got != tt.want || ok != (tt.want != nil) {
				t.Errorf("Lookup(%q, %q) = %p, %v, want %p", tt.ups, tt.str, got, ok, tt.want)
			}
		})
	}
}

func TestChemistry(t *testing.T) {
	tests := []struct {
		in     string
		want   Chemistry
		wantOK bool
		str    string
	}{
		{in: "NMC", want: NMC, wantOK: true, str: "NMC"},
		{in: "LFP", want: LFP, wantOK: true, str: "LFP"},
		{in: "LTO", want: LTO, wantOK: true, str: "LTO"},
		{in: "NCA", want: NCA, wantOK: true, str: "NCA"},
		{in: "nca", want: NCA, wantOK: true, str: "NCA"},
		{in: "Lfp", str: ""},
		{in: "", str: ""},
		{in: "NiCd", str: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseChemistry(tt.in)
			if got != tt.want || ok != tt.wantOK || got.String() != tt.str {
				t.Errorf("ParseChemistry(%q) = %v (%q), %v", tt.in, got, got.String(), ok)
			}
		})
	}
	if got := Chemistry(9).String(); got != "Chemistry(9)" {
		t.Errorf("Chemistry(9).String() = %q", got)
	}
}

func TestDate(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "2014-06-01", want: "2014-06-01"},
		{in: "2024-02-29", want: "2024-02-29"},
		{in: "0001-01-01", want: "0001-01-01"},
		{in: "2023-02-29", wantErr: true},
		{in: "2014-02-30", wantErr: true},
		{in: "2014-6-1", wantErr: true},
		{in: "2014-06-01 ", wantErr: true},
		{in: "2014-13-01", wantErr: true},
		{in: "0000-01-01", wantErr: true},
		{in: "14-06-2014", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDate(tt.in)
			if d.String() != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseDate(%q) = %q, %v", tt.in, d, err)
			}
		})
	}
}

func TestDateMethods(t *testing.T) {
	a, b := mustDate(t, "2014-06-01"), mustDate(t, "2014-09-15")
	var zero Date
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "Time", got: a.Time(), want: time.Date(2014, 6, 1, 0, 0, 0, 0, time.UTC)},
		{name: "zero Time", got: zero.Time(), want: time.Time{}},
		{name: "zero String", got: zero.String(), want: ""},
		{name: "IsZero", got: []bool{zero.IsZero(), a.IsZero()}, want: []bool{true, false}},
		{name: "Before", got: []bool{a.Before(b), b.Before(a), a.Before(a), zero.Before(a)}, want: []bool{true, false, false, true}},
		{name: "After", got: []bool{a.After(b), b.After(a), a.After(a)}, want: []bool{false, true, false}},
		{name: "Compare", got: []int{a.Compare(b), b.Compare(a), a.Compare(a)}, want: []int{-1, 1, 0}},
		{name: "DateOf", got: DateOf(time.Date(2014, 6, 1, 23, 0, 0, 0, time.FixedZone("x", -5*3600))), want: a},
		{name: "equal", got: a == mustDate(t, "2014-06-01"), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestEffectiveInheritsFromUPSWideEntry(t *testing.T) {
	inv, err := Parse([]byte(`batteries:
  - ups: ups-a
    vendor: CATL
    chemistry: LFP
    installed: 2022-04-20
    design_life_years: 15
  - ups: ups-a
    string: "2"
    serial: S-2
    installed: 2023-01-10
  - ups: ups-b
    string: "1"
    chemistry: NMC
`), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ups, str string
		ok       bool
		want     string
	}{
		{"ups-a", "2", true, "CATL S-2 LFP 2023-01-10 15"}, // own serial and date, the rest inherited
		{"ups-a", "7", true, "CATL  LFP 2022-04-20 15"},    // no own entry: the UPS-wide one
		{"ups-b", "1", true, "  NMC  0"},                   // no UPS-wide entry to inherit from
		{"ups-b", "2", false, "  -  0"},                    // nothing at all
	}
	for _, tt := range tests {
		t.Run(tt.ups+"/"+tt.str, func(t *testing.T) {
			b, ok := inv.Effective(tt.ups, tt.str)
			chem := b.Chemistry.String()
			if chem == "" {
				chem = "-"
			}
			got := fmt.Sprintf("%s %s %s %s %g", b.Vendor, b.Serial, chem, b.Installed, b.DesignLifeYears)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Effective = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
