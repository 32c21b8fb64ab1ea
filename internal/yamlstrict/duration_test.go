package yamlstrict_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

func TestParseDurationGood(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"90s", 90 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"2d", 2 * day},
		{"1w", week},
		{"1w2d3h", week + 2*day + 3*time.Hour},
		{"1w2d", week + 2*day},
		{"2d12h", 2*day + 12*time.Hour},
		{"1w30m", week + 30*time.Minute},
		{"0s", 0},
		{"0d", 0},
		{"2540w", 2540 * week},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := yamlstrict.ParseDuration(tt.in)
			if err != nil || time.Duration(got) != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, nil", tt.in, time.Duration(got), err, tt.want)
			}
		})
	}
}

func TestParseDurationBad(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "is empty"},
		{"-5s", "is not a valid duration"},
		{"+5s", "is not a valid duration"},
		{"5", "is not a valid duration"},
		{"1.5d", "is not a valid duration"},
		{"3h2d", "is not a valid duration"},
		{"2d1w", "is not a valid duration"},
		{"1d1d", "is not a valid duration"},
		{"five minutes", "is not a valid duration"},
		{"5 minutes", "is not a valid duration"},
		{"-1d", "is not a valid duration"},
		{"+1d", "is not a valid duration"},
		{"1d-5s", "is not a valid duration"},
		{"1d+5s", "is not a valid duration"},
		{"d", "is not a valid duration"},
		{"w", "is not a valid duration"},
		{" 5s", "is not a valid duration"},
		{"5s ", "is not a valid duration"},
		{"1D", "is not a valid duration"},
		{"1_000d", "is not a valid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := yamlstrict.ParseDuration(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, time.Duration(got), err, tt.want)
			}
		})
	}
}

// TestDurationString checks the form a Duration marshals back to.
func TestDurationString(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"0s", "0s"},
		{"90s", "1m30s"},
		{"2d", "48h0m0s"},
		{"1w2d3h", "219h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := yamlstrict.ParseDuration(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := d.Nanos(); got != int64(time.Duration(d)) {
				t.Errorf("Nanos() = %d, want %d", got, int64(time.Duration(d)))
			}
		})
	}
}

type durationRule struct {
	For yamlstrict.Duration `yaml:"for"`
}

type durationConfig struct {
	Interval yamlstrict.Duration            `yaml:"interval"`
	Rule     durationRule                   `yaml:"rule"`
	Windows  []yamlstrict.Duration          `yaml:"windows"`
	Per      map[string]yamlstrict.Duration `yaml:"per"`
}

func TestDurationDecodeBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"top level", "interval: five minutes\n", `interval: "five minutes" is not a valid duration (line 1)`},
		{"nested", "interval: 1m\nrule:\n  for: 3h2d\n", `rule.for: "3h2d" is not a valid duration (line 3)`},
		{"negative", "rule:\n  for: -5s\n", `rule.for: "-5s" is not a valid duration (line 2)`},
		{"no unit", "rule:\n  for: 5\n", `rule.for: "5" is not a valid duration (line 2)`},
		{"fraction of a day", "rule: {for: 1.5d}\n", `rule.for: "1.5d" is not a valid duration (line 1)`},
		{"list item", "windows:\n  - 1h\n  - 2x\n", `windows[1]: "2x" is not a valid duration (line 3)`},
		{"map value", "per:\n  a.b: 1w\n  c: +5s\n", `per.c: "+5s" is not a valid duration (line 3)`},
		{"empty string", "rule:\n  for: \"\"\n", `rule.for: is empty (line 2)`},
		{"mapping", "rule:\n  for:\n    minutes: 5\n", `rule.for: is not a valid duration (line 2)`},
		{"list", "interval: [1s]\n", `interval: is not a valid duration (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c durationConfig
			_, errs := yamlstrict.Decode([]byte(tt.doc), &c)
			if got := errs.Error(); got != tt.want {
				t.Errorf("Decode errors:\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestDurationDecodeGood(t *testing.T) {
	doc := "interval: 30s\nrule:\n  for: 1w2d3h\nwindows: [0s, 2d]\nper:\n  a: 1h30m\n"
	c := durationConfig{Interval: yamlstrict.Duration(time.Minute)}
	if _, errs := yamlstrict.Decode([]byte(doc), &c); errs != nil {
		t.Fatalf("Decode: %v", errs)
	}
	want := []time.Duration{30 * time.Second, week + 2*day + 3*time.Hour, 0, 2 * day, 90 * time.Minute}
	got := []time.Duration{
		time.Duration(c.Interval), time.Duration(c.Rule.For),
		time.Duration(c.Windows[0]), time.Duration(c.Windows[1]), time.Duration(c.Per["a"]),
	}
	if !slices.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
}

// TestDurationDecodeKeepsDefault checks that a bad value leaves the field
// at its default, as Decode documents.
func TestDurationDecodeKeepsDefault(t *testing.T) {
	c := durationConfig{Interval: yamlstrict.Duration(time.Minute)}
	if _, errs := yamlstrict.Decode([]byte("interval: soon\n"), &c); len(errs) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(errs), errs)
	}
	if got := time.Duration(c.Interval); got != time.Minute {
		t.Errorf("Interval = %v after a bad value, want the default 1m0s", got)
	}
}

func TestParseDurationRejectsOverflow(t *testing.T) {
	for _, s := range []string{"106752d", "106751d24h", "30501w", "15250w2d", "-0s", "2d-1h"} {
		t.Run(s, func(t *testing.T) {
			if d, err := yamlstrict.ParseDuration(s); err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", s, d)
			}
		})
	}
}
