package lifecycle

import (
	"testing"
)

func TestParseAssets(t *testing.T) {
	data := "\ufeff" + AssetHeader + "\n" +
		"# a comment\n" +
		"dc1-ups-a,1,Samsung SDI,U8A1,S-1,NMC,2014-06-01,09/15/2014,10,Sep 15 2024,20240630\n" +
		"\n" +
		"dc1-ups-a,,\"CATL, Ltd.\",,,lfp,,15.09.2014,,41897,\n"
	got, err := ParseAssets([]byte(data), "assets.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d rows, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.Source != "assets.csv:3" || a.Installed.String() != "2014-09-15" || a.WarrantyUntil.String() != "2024-09-15" ||
		a.ReplaceBy.String() != "2024-06-30" || a.DesignLifeYears != 10 || a.Chemistry.String() != "NMC" {
		t.Errorf("row 1: %+v", a)
	}
	if b.Source != "assets.csv:5" || b.String != "" || b.Vendor != "CATL, Ltd." || b.Chemistry.String() != "LFP" || b.WarrantyUntil.String() != "2014-09-15" {
		t.Errorf("row 2: %+v", b)
	}
}

func TestParseAssetsErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "assets.csv:1: empty file: the first line must be the header " + AssetHeader},
		{"wrong header", "ups;string\n", "assets.csv:1: the first line must be exactly the header " + AssetHeader},
		{"every problem, with its line", AssetHeader + "\n" +
			",1,,,,,,,,,\n" +
			"ups a,1,,,,NiCd,,,,,\n" +
			"u,1,,,,,31/12/2014,2014-02-30,0,,\n" +
			"u,2,,,\n" +
			"u,3,,,,,,,,,\n" +
			"u,3,,,,,,,,,\n",
			"assets.csv:2: ups is required\n" +
				`assets.csv:3: ups "ups a" must match [A-Za-z0-9_.:-]+` + "\n" +
				`assets.csv:3: chemistry "NiCd" must be one of NMC, LFP, LTO, NCA` + "\n" +
				`assets.csv:4: manufactured "31/12/2014" is not a day of the calendar (2014-31-12)` + "\n" +
				`assets.csv:4: installed "2014-02-30" is not a day of the calendar (2014-02-30)` + "\n" +
				`assets.csv:4: design_life_years "0" must be a number more than 0 and at most 50` + "\n" +
				"assets.csv:5: has 5 fields, want 11 (" + AssetHeader + ")\n" +
				`assets.csv:7: repeats line 6 for ups "u" string "3"`},
		{"bad quoting", AssetHeader + "\n" + "u,1,\"LG\"x,,,,,,,,\nu,2,,,,,,,,,\n",
			`assets.csv:2: extraneous or missing " in quoted-field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAssets([]byte(tt.data), "assets.csv")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
