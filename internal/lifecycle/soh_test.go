package lifecycle

import (
	"strings"
	"testing"
	"time"
)

var sohStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// feed gives e hourly readings of string u/1 over days, from a to b
// linearly; spike, when set, replaces every 50th reading.
func feed(e *Evaluator, days int, a, b float64, spike float64) {
	n := days * 24
	for i := 0; i <= n; i++ {
		v := a + (b-a)*float64(i)/float64(n)
		if spike != 0 && i%50 == 25 {
			v = spike
		}
		e.ObserveSOH("u", "1", sohStart.Add(time.Duration(i)*time.Hour), v)
	}
}

func TestSOHTrend(t *testing.T) {
	tests := []struct {
		name        string
		days        int
		from, to    float64
		spike       float64
		state       string
		crossing    string
		noteContain string
	}{
		// 0.86 → 0.82 over 40 days: 0.001 a day, 0.80 twenty days later.
		{name: "falling toward the limit", days: 40, from: 0.86, to: 0.82, state: "soon", crossing: "2026-03-02"},
		{name: "robust to glitches", days: 40, from: 0.86, to: 0.82, spike: 0.05, state: "soon", crossing: "2026-03-02"},
		{name: "below the limit", days: 40, from: 0.83, to: 0.79, state: "end_of_life", crossing: "2026-01-31"},
		{name: "flat", days: 40, from: 0.95, to: 0.95, state: "ok", noteContain: "not falling"},
		{name: "slowly falling: beyond the horizon", days: 40, from: 0.95, to: 0.94, state: "ok", crossing: "2027-08-23"},
		{name: "too short a history to project", days: 2, from: 0.81, to: 0.805, state: "ok",
			noteContain: "too few points for a trend: 9 six-hour buckets over 2.0 days; a projection needs 7 over 14 days"},
		{name: "too short, but below the limit", days: 2, from: 0.81, to: 0.79, state: "end_of_life", noteContain: "too few points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvaluator(DefaultConfig())
			e.SetInventory(parseInventory(t, "  - {ups: u, string: '1', chemistry: LFP, installed: 2024-01-01}\n"))
			feed(e, tt.days, tt.from, tt.to, tt.spike)
			asOf := sohStart.AddDate(0, 0, tt.days)
			f := e.Evaluate(asOf)[0]
			if f.SOH == nil {
				t.Fatal("no state of health")
			}
			if f.State.String() != tt.state || f.SOH.Crossing.String() != tt.crossing || !strings.Contains(f.SOH.Note, tt.noteContain) {
				t.Errorf("state %s, crossing %q, note %q, current %v, slope %v; want %s, %q, %q",
					f.State, f.SOH.Crossing, f.SOH.Note, f.SOH.Current, f.SOH.SlopePerYear, tt.state, tt.crossing, tt.noteContain)
			}
		})
	}
}

func TestSOHWindowBoundsMemory(t *testing.T) {
	e := NewEvaluator(DefaultConfig())
	feed(e, 400, 0.99, 0.90, 0)
	s := e.soh[key{"u", "1"}]
	if max := int(DefaultSOHWindow/SOHBucket) + 1; len(s.buckets) > max {
		t.Errorf("%d buckets kept, want at most %d", len(s.buckets), max)
	}
	// Out-of-order and impossible readings are ignored.
	before := len(s.buckets)
	e.ObserveSOH("u", "1", sohStart, 0.5)
	e.ObserveSOH("u", "1", sohStart.AddDate(0, 0, 400), 80)
	if s.ignored != 2 || len(s.buckets) != before {
		t.Errorf("ignored %d, buckets %d → %d", s.ignored, before, len(s.buckets))
	}
}

func BenchmarkObserveSOH(b *testing.B) {
	e := NewEvaluator(DefaultConfig())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.ObserveSOH("u", "1", sohStart.Add(time.Duration(i)*10*time.Second), 0.9)
	}
}

// BenchmarkEvaluate evaluates 200 strings with 90 days of SoH history
// each, the trend cached.
func BenchmarkEvaluate(b *testing.B) {
	e := NewEvaluator(DefaultConfig())
	var inv strings.Builder
	for u := range 50 {
		inv.WriteString("  - {ups: u" + string(rune('a'+u%26)) + string(rune('a'+u/26)) + ", chemistry: NMC, installed: 2018-01-01, warranty_until: 2028-01-01}\n")
	}
	e.SetInventory(parseInventory(b, inv.String()))
	for _, f := range e.EvaluateDay(mustDate(b, "2026-03-04")) {
		for s := range 4 {
			for h := 0; h < 90*24; h += 2 {
				e.ObserveSOH(f.UPS, string(rune('1'+s)), sohStart.Add(time.Duration(h)*time.Hour), 0.95-float64(h)/1e5)
			}
		}
	}
	asOf := sohStart.AddDate(0, 0, 90)
	e.Evaluate(asOf)
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(asOf)
	}
}
