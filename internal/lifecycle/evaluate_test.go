package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

func parseInventory(t testing.TB, doc string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse([]byte("batteries:\n"+doc), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// verdict renders what a user reads first: state, end-of-life date and
// reasons.
func verdict(f Finding) string {
	s := fmt.Sprintf("%s %s", f.State, f.EndOfLife)
	for _, r := range f.Reasons {
		s += "; " + r
	}
	return s
}

func TestEvaluateStates(t *testing.T) {
	const asOf = "2026-03-04"
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{"past design life, warranty and replace-by (NIRS)",
			"{ups: u, string: '1', chemistry: NMC, installed: 2014-09-15, design_life_years: 10, warranty_until: 2024-09-15, replace_by: 2024-06-30}",
			"end_of_life 2024-06-30; vendor replace-by 2024-06-30 passed; past design life on 2024-09-15 (10 y from installed 2014-09-15); warranty ended 2024-09-15"},
		{"past design life only",
			"{ups: u, string: '1', chemistry: NMC, installed: 2015-01-20, design_life_years: 10, warranty_until: 2027-01-20}",
			"end_of_life 2025-01-20; past design life on 2025-01-20 (10 y from installed 2015-01-20)"},
		{"past warranty only",
			"{ups: u, string: '1', chemistry: LFP, installed: 2019-05-01, warranty_until: 2025-05-01}",
			"end_of_life 2025-05-01; warranty ended 2025-05-01"},
		{"past replace-by only",
			"{ups: u, string: '1', chemistry: LFP, installed: 2018-03-01, replace_by: 2026-01-31}",
			"end_of_life 2026-01-31; vendor replace-by 2026-01-31 passed"},
		{"end of life on the day itself",
			"{ups: u, string: '1', chemistry: LFP, installed: 2020-01-01, warranty_until: 2026-03-04}",
			"end_of_life 2026-03-04; warranty ended 2026-03-04"},
		{"one day before is soon",
			"{ups: u, string: '1', chemistry: LFP, installed: 2020-01-01, warranty_until: 2026-03-05}",
			"soon 2026-03-05; warranty ends 2026-03-05"},
		{"180 days ahead is soon",
			"{ups: u, string: '1', chemistry: LFP, installed: 2020-01-01, warranty_until: 2026-08-31}",
			"soon 2026-08-31; warranty ends 2026-08-31"},
		{"181 days ahead is ok",
			"{ups: u, string: '1', chemistry: LFP, installed: 2020-01-01, warranty_until: 2026-09-01}",
			"ok 2026-09-01"},
		{"design life within the horizon",
			"{ups: u, string: '1', chemistry: NMC, installed: 2016-06-01, design_life_years: 10}",
			"soon 2026-06-01; design life ends 2026-06-01 (10 y from installed 2016-06-01)"},
		{"default design life by chemistry: NMC 10 y",
			"{ups: u, string: '1', chemistry: NMC, installed: 2016-01-10}",
			"end_of_life 2026-01-10; past design life on 2026-01-10 (10 y from installed 2016-01-10)"},
		{"default design life by chemistry: LFP 15 y",
			"{ups: u, string: '1', chemistry: LFP, installed: 2016-01-10}",
			"ok 2031-01-10"},
		{"installed on a leap day",
			"{ups: u, string: '1', chemistry: NMC, installed: 2016-02-29, design_life_years: 10}",
			"end_of_life 2026-02-28; past design life on 2026-02-28 (10 y from installed 2016-02-29)"},
		{"fractional design life",
			"{ups: u, string: '1', chemistry: NMC, installed: 2015-09-15, design_life_years: 10.5}",
			"soon 2026-03-16; design life ends 2026-03-16 (10.5 y from installed 2015-09-15)"},
		{"design life from manufacture when installation is unknown",
			"{ups: u, string: '1', chemistry: NMC, manufactured: 2016-01-10}",
			"end_of_life 2026-01-10; past design life on 2026-01-10 (10 y from manufactured 2016-01-10)"},
		{"no dates at all",
			"{ups: u, string: '1', chemistry: NMC}",
			"unknown "},
		{"a placeholder installation is not used",
			"{ups: u, string: '1', chemistry: NMC, installed: 1970-01-01}",
			"unknown "},
		{"a warranty alone still judges",
			"{ups: u, string: '1', warranty_until: 2024-01-01}",
			"end_of_life 2024-01-01; warranty ended 2024-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator(DefaultConfig())
			e.SetInventory(parseInventory(t, "  - "+tt.entry+"\n"))
			got := e.EvaluateDay(mustDate(t, asOf))
			if len(got) != 1 || verdict(got[0]) != tt.want {
				t.Fatalf("got %d findings: %q\nwant %q", len(got), verdict(got[0]), tt.want)
			}
		})
	}
}

// problems renders a finding's data problems.
func problems(f Finding) []string {
	var out []string
	for _, p := range f.Problems {
		out = append(out, p.Kind.String()+": "+p.Message)
	}
	return out
}

func TestEvaluateDataProblems(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		assets  string
		devices []DateObservation
		want    []string
		source  string // the source of the installed date used
	}{
		{name: "placeholder installation", entry: "{ups: u, string: '1', installed: 2001-09-25}",
			want: []string{"placeholder: installed 2001-09-25 (inv.yaml:2) is a placeholder (the factory default battery date of APC units (2001/09/25)); not used",
				"unknown_age: age unknown: no usable installed or manufactured date"}},
		{name: "installation in the future", entry: "{ups: u, string: '1', installed: 2027-01-01}",
			want: []string{"future: installed 2027-01-01 (inv.yaml:2) is after the as-of day 2026-03-04; not used",
				"unknown_age: age unknown: no usable installed or manufactured date"}},
		{name: "sources disagree: the earliest is used", entry: "{ups: u, string: '1', installed: 2020-02-10}",
			assets: "u,1,,,,,,11/04/2019,,,\n",
			want:   []string{"conflict: installed 2020-02-10 (inv.yaml:2) and 2019-11-04 (assets.csv:2) disagree; using the earliest, 2019-11-04"},
			source: "assets.csv:2"},
		{name: "sources agree", entry: "{ups: u, string: '1', installed: 2020-02-10}",
			assets: "u,1,,,,,,20200210,,,\n", source: "inv.yaml:2, assets.csv:2"},
		{name: "manufactured after installed", entry: "{ups: u, string: '1', installed: 2020-02-10}",
			assets: "u,1,,,,,2020-03-01,,,,\n",
			want:   []string{"order: manufactured 2020-03-01 (assets.csv:2) is after installed 2020-02-10 (inv.yaml:2)"},
			source: "inv.yaml:2"},
		{name: "SunSpec WarrDt 0 is a placeholder", entry: "{ups: u, string: '1', installed: 2020-02-10}",
			devices: []DateObservation{{UPS: "u", String: "1", Field: FieldWarrantyUntil, Date: Date(mustDate(t, "2000-01-01")), Source: "modbus rack-1 SunSpec 802 WarrDt"}},
			want:    []string{"placeholder: warranty_until 2000-01-01 (modbus rack-1 SunSpec 802 WarrDt) is a placeholder (day 0 of SunSpec 802 WarrDt and of many firmware clocks); not used"},
			source:  "inv.yaml:2"},
		{name: "a device's warranty disagrees", entry: "{ups: u, string: '1', installed: 2020-02-10, warranty_until: 2030-02-10}",
			devices: []DateObservation{{UPS: "u", Field: FieldWarrantyUntil, Date: mustDate(t, "2029-02-10"), Source: "modbus rack-1 SunSpec 802 WarrDt"}},
			source:  "inv.yaml:2"},
		{name: "chemistry and design life disagree", entry: "{ups: u, string: '1', chemistry: NMC, installed: 2020-02-10, design_life_years: 12}",
			assets: "u,1,,,,LFP,,,10,,\n",
			want: []string{"conflict: chemistry NMC (inv.yaml:2) and LFP (assets.csv:2) disagree; using NMC",
				"conflict: design_life_years 12 y (inv.yaml:2) and 10 y (assets.csv:2) disagree; using the shortest, 10 y"},
			source: "inv.yaml:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator(DefaultConfig())
			e.SetInventory(parseInventory(t, "  - "+tt.entry+"\n"))
			if tt.assets != "" {
				assets, err := ParseAssets([]byte(AssetHeader+"\n"+tt.assets), "assets.csv")
				if err != nil {
					t.Fatal(err)
				}
				e.SetAssets(assets)
			}
			for _, o := range tt.devices {
				e.ObserveDate(o)
			}
			got := e.EvaluateDay(mustDate(t, "2026-03-04"))
			if len(got) != 1 {
				t.Fatalf("got %d findings, want 1", len(got))
			}
			if p := problems(got[0]); !slices.Equal(p, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(p, "\n"), strings.Join(tt.want, "\n"))
			}
			if got[0].Installed.Source != tt.source {
				t.Errorf("installed source = %q, want %q", got[0].Installed.Source, tt.source)
			}
		})
	}
}

func TestDeviceWarrantyDisagreesUsesEarliest(t *testing.T) {
	e := NewEvaluator(DefaultConfig())
	e.SetInventory(parseInventory(t, "  - {ups: u, string: '1', installed: 2020-02-10, warranty_until: 2030-02-10}\n"))
	e.ObserveDate(DateObservation{UPS: "u", String: "1", Field: FieldWarrantyUntil, Date: mustDate(t, "2026-05-01"), Source: "modbus rack-1 SunSpec 802 WarrDt"})
	f := e.EvaluateDay(mustDate(t, "2026-03-04"))[0]
	if verdict(f) != "soon 2026-05-01; warranty ends 2026-05-01" || f.Warranty.Source != "modbus rack-1 SunSpec 802 WarrDt" {
		t.Errorf("got %q from %q", verdict(f), f.Warranty.Source)
	}
	// The device stops reporting it: the inventory's date applies again.
	e.ObserveDate(DateObservation{UPS: "u", String: "1", Field: FieldWarrantyUntil, Source: "modbus rack-1 SunSpec 802 WarrDt"})
	if f := e.EvaluateDay(mustDate(t, "2026-03-04"))[0]; verdict(f) != "ok 2030-02-10" {
		t.Errorf("after removal got %q", verdict(f))
	}
}

func TestEvaluateTimeZone(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago") // embedded: tzdata.go
	if err != nil {
		t.Fatal(err)
	}
	inv := parseInventory(t, "  - {ups: u, string: '1', chemistry: LFP, installed: 2014-09-15, warranty_until: 2024-09-15}\n")
	// 23:30 in Chicago on the 14th is already the 15th in UTC.
	at := time.Date(2024, 9, 14, 23, 30, 0, 0, chicago)
	tests := []struct {
		zone string
		want string
	}{
		{"UTC", "end_of_life 2024-09-15; warranty ended 2024-09-15"},
		{"America/Chicago", "soon 2024-09-15; warranty ends 2024-09-15"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		cfg.TimeZone = tt.zone
		mustValidate(t, &cfg)
		e := NewEvaluator(cfg)
		e.SetInventory(inv)
		if got := verdict(e.Evaluate(at)[0]); got != tt.want {
			t.Errorf("time zone %s: got %q, want %q", tt.zone, got, tt.want)
		}
	}
}

func TestPoliciesAndPrecedence(t *testing.T) {
	cfg, _, err := ParseConfig([]byte(`
lifecycle:
  design_life_years: {NMC: 12}
  policies:
    - {vendor: samsung sdi, design_life_years: 9, warranty_years: 8}
    - {vendor: Samsung SDI, model: U8A1, design_life_years: 11}
    - {chemistry: LFP, replace_after_years: 12, soh_limit: 0.7}
`), "cellwarden.yml")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEvaluator(cfg)
	e.SetInventory(parseInventory(t, `  - {ups: a, string: '1', vendor: Samsung SDI, model: U8A1, chemistry: NMC, installed: 2016-01-01}
  - {ups: a, string: '2', vendor: Samsung SDI, model: U9, chemistry: NMC, installed: 2016-01-01}
  - {ups: a, string: '3', vendor: Samsung SDI, model: U8A1, chemistry: NMC, installed: 2016-01-01, design_life_years: 15, warranty_until: 2030-01-01}
  - {ups: a, string: '4', vendor: Other, chemistry: NMC, installed: 2016-01-01}
  - {ups: a, string: '5', vendor: Other, chemistry: LFP, installed: 2016-01-01}
`))
	got := map[string]string{}
	for _, f := range e.EvaluateDay(mustDate(t, "2026-03-04")) {
		got[f.String] = fmt.Sprintf("life %s y (%s); warranty %s (%s); replace-by %s (%s)", num(f.DesignLife.Years), f.DesignLife.Source,
			f.Warranty.Date, f.Warranty.Source, f.ReplaceBy.Date, f.ReplaceBy.Source)
	}
	want := map[string]string{
		"1": "life 11 y (lifecycle.policies[1]); warranty 2024-01-01 (lifecycle.policies[0]: 8 y from installed 2016-01-01); replace-by  ()",
		"2": "life 9 y (lifecycle.policies[0]); warranty 2024-01-01 (lifecycle.policies[0]: 8 y from installed 2016-01-01); replace-by  ()",
		"3": "life 15 y (inv.yaml:4); warranty 2030-01-01 (inv.yaml:4); replace-by  ()",
		"4": "life 12 y (default for NMC); warranty  (); replace-by  ()",
		"5": "life 15 y (default for LFP); warranty  (); replace-by 2028-01-01 (lifecycle.policies[2]: 12 y from installed 2016-01-01)",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("string %s:\n got %s\nwant %s", k, got[k], w)
		}
	}
}

func TestFindingsAttachToKnownStrings(t *testing.T) {
	inv := parseInventory(t, "  - {ups: u, chemistry: NMC, installed: 2014-09-15}\n  - {ups: v, chemistry: NMC, installed: 2020-01-01}\n")
	e := NewEvaluator(DefaultConfig())
	e.SetInventory(inv)
	names := func() []string {
		var out []string
		for _, f := range e.EvaluateDay(mustDate(t, "2026-03-04")) {
			out = append(out, f.UPS+"/"+f.String+" "+f.State.String())
		}
		return out
	}
	if got, want := names(), []string{"u/ end_of_life", "v/ ok"}; !slices.Equal(got, want) {
		t.Errorf("strings unknown: got %q, want %q", got, want)
	}
	e.DeclareString("u", "1")
	e.DeclareString("u", "2")
	if got, want := names(), []string{"u/1 end_of_life", "u/2 end_of_life", "v/ ok"}; !slices.Equal(got, want) {
		t.Errorf("strings declared: got %q, want %q", got, want)
	}
}

func TestUrgencyOrder(t *testing.T) {
	e := NewEvaluator(DefaultConfig())
	e.SetInventory(parseInventory(t, `  - {ups: ok-late, string: '1', chemistry: LFP, installed: 2025-01-01}
  - {ups: ok-early, string: '1', chemistry: LFP, installed: 2020-01-01}
  - {ups: data, string: '1', chemistry: LFP, installed: 1970-01-01}
  - {ups: data-ok, string: '1', chemistry: LFP, installed: 2024-01-01, manufactured: 1900-01-01}
  - {ups: soon-late, string: '1', warranty_until: 2026-08-01}
  - {ups: soon-early, string: '1', warranty_until: 2026-04-01}
  - {ups: eol-late, string: '1', warranty_until: 2026-01-01}
  - {ups: eol-early, string: '1', warranty_until: 2020-01-01}
`))
	var got []string
	for _, f := range e.EvaluateDay(mustDate(t, "2026-03-04")) {
		got = append(got, f.UPS)
	}
	want := []string{"eol-early", "eol-late", "soon-early", "soon-late", "data-ok", "data", "ok-early", "ok-late"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

// TestSimulatorLabels checks the evaluator against the ground truth of the
// battery_ages scenario: every string's verdict as of the scenario's end.
func TestSimulatorLabels(t *testing.T) {
	var sc *sim.Scenario
	for _, s := range sim.Suite(1) {
		if s.Name == "battery_ages" {
			sc = s
		}
	}
	if sc == nil {
		t.Fatal("no battery_ages scenario")
	}
	// Fewer cells and polls: the verdicts depend on dates and SoH only.
	sc.Interval = time.Minute
	for i := range sc.Fleet {
		sc.Fleet[i].Modules, sc.Fleet[i].Cells = 1, 2
	}
	var csv bytes.Buffer
	labels, inv, err := sim.Run(sc, &csv)
	if err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	r, err := csvfile.NewReader(&csv, "telemetry.csv", reg)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEvaluator(DefaultConfig())
	e.SetInventory(inv)
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ent := reg.Info(s.Entity).Entity
		e.DeclareString(ent.UPS, ent.String)
		if s.Metric == telemetry.StringSOHRatio && !s.NoReading() {
			e.ObserveSOH(ent.UPS, ent.String, s.Timestamp(), s.Value)
		}
	}
	var got, want []string
	for _, f := range e.Evaluate(labels.End) {
		var reasons []string
		for _, d := range f.LifeDates {
			if (f.State == StateEndOfLife && (d.Reason == ReasonSOH || !d.Date.After(DateIn(labels.End, time.UTC)))) ||
				(f.State == StateSoon && d.Reason != ReasonSOHTrend && !d.Date.After(AddDays(DateIn(labels.End, time.UTC), 180))) {
				reasons = append(reasons, d.Reason.String())
			}
		}
		slices.Sort(reasons)
		got = append(got, fmt.Sprintf("%s/%s %s %v", f.UPS, f.String, f.State, reasons))
	}
	for _, l := range labels.Batteries {
		reasons := slices.Clone(l.Reasons)
		slices.Sort(reasons)
		want = append(want, fmt.Sprintf("%s/%s %s %v", l.UPS, l.String, l.State, reasons))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("verdicts:\n%s\nlabels:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
