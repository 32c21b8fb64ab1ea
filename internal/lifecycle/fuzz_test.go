package lifecycle

import (
	"testing"
)

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2014-09-15", "2014/09/15", "09/15/2014", "09/15/14", "15.09.2014", "20140915", "Sep 15, 2014",
		"15 Sep 2014", "2016-02-29", "2100-02-29", "2014-09-15T23:30:00-05:00", "", "//", "..", "9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if (err == nil) == d.IsZero() {
			t.Fatalf("ParseDate(%q) = %v, %v: want a date or an error", s, d, err)
		}
		if err == nil {
			// What the inventory writes reads back as the same day.
			if e, err := ParseDate(d.String()); err != nil || e != d {
				t.Fatalf("ParseDate(%q) = %v, but %q reads as %v, %v", s, d, d.String(), e, err)
			}
		}
	})
}

func FuzzParseAssets(f *testing.F) {
	f.Add([]byte(AssetHeader + "\nu,1,LG,M,S,NMC,2014-06-01,09/15/2014,10,41897,\n"))
	f.Add([]byte(AssetHeader + "\nu,1,\"a\"b,\n,,,\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseAssets(data, "f.csv")
		if err != nil && rows != nil {
			t.Fatalf("rows and an error")
		}
		for _, r := range rows {
			if r.UPS == "" || r.Source == "" {
				t.Fatalf("row without ups or source: %+v", r)
			}
		}
	})
}
