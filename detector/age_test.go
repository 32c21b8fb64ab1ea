package detector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The inventory of the acceptance: on 2026-03-01 (the harness's base) one
// string past design life, one past its warranty, one past the vendor's
// replace-by date, one due within 180 days, one fine, and one whose state
// of health falls below 0.80 on the second day.
const ageInventory = `batteries:
  - {ups: life, chemistry: NMC, installed: 2015-02-01, design_life_years: 10}
  - {ups: warranty, chemistry: LFP, installed: 2022-01-10, design_life_years: 15, warranty_until: 2025-12-31}
  - {ups: vendor, chemistry: NMC, installed: 2021-05-01, design_life_years: 10, replace_by: 2026-01-15}
  - {ups: soon, chemistry: NMC, installed: 2016-06-01, design_life_years: 10}
  - {ups: fine, chemistry: LFP, installed: 2024-04-01, design_life_years: 15}
  - {ups: worn, chemistry: LFP, installed: 2023-04-03, design_life_years: 15}
`

func TestBatteryAgeAlerts(t *testing.T) {
	inv, err := inventory.Parse([]byte(ageInventory), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultConfig(), inv)
	h.eng.SetLifecycle(lifecycle.DefaultConfig())
	// Three days of hourly string readings; the worn string's state of
	// health slides from 0.82 to 0.79.
	for hr := 0; hr < 72; hr++ {
		for _, u := range []string{"life", "warranty", "vendor", "soon", "fine", "worn"} {
			h.observe(hr*3600, u+"/1", telemetry.StringVoltageVolts, 800)
		}
		h.observe(hr*3600, "worn/1", telemetry.StringSOHRatio, 0.82-0.03*float64(hr)/71)
		h.tick(hr*3600 + 60)
	}
	// The worn string's readings pass below 0.80 at hour 48; state of
	// health is judged on six-hour averages (one reading never decides), so
	// the alert comes once that average is below, within the next 13 hours.
	want := []string{
		"+60s firing BatteryEndOfLife warning life/1",
		"+60s firing BatteryEndOfLifeSoon info soon/1",
		"+60s firing BatteryEndOfLife warning vendor/1",
		"+60s firing BatteryEndOfLife warning warranty/1",
	}
	if len(h.got) != 5 || !slices.Equal(h.got[:4], want) {
		t.Fatalf("changes:\n got  %q\n want %q and the worn string's", h.got, want)
	}
	var sec int
	if _, err := fmt.Sscanf(h.got[4], "+%ds firing BatteryEndOfLife warning worn/1", &sec); err != nil || sec < 48*3600 || sec > 61*3600 {
		t.Errorf("the worn string's alert: %q, want between hour 48 and 61", h.got[4])
	}
}

// An acknowledgement (owner, planned date) resolves the alert; when it
// expires the alert fires again.
func TestBatteryAgeAcknowledgement(t *testing.T) {
	inv, err := inventory.Parse([]byte("batteries:\n  - {ups: old, chemistry: NMC, installed: 2014-09-15, design_life_years: 10}\n"), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultConfig(), inv)
	h.eng.SetLifecycle(lifecycle.DefaultConfig())
	h.observe(0, "old/1", telemetry.StringVoltageVolts, 800)
	h.tick(60)
	planned, _ := lifecycle.ParseDate("2026-04-15")
	expires, _ := lifecycle.ParseDate("2026-03-02")
	h.eng.Lifecycle().SetAcknowledgements([]lifecycle.Ack{{UPS: "old", String: "1", State: lifecycle.StateEndOfLife,
		Owner: "facilities-east", Planned: planned, Expires: expires}})
	h.eng.RecheckAges()
	var summaries []string
	for _, sec := range []int{120, 24 * 3600, 2*24*3600 + 60} {
		cs := h.eng.Tick(base+int64(sec)*int64(time.Second), nil)
		h.record(cs)
		for _, c := range cs {
			summaries = append(summaries, c.Summary)
		}
	}
	h.check([]string{
		"+60s firing BatteryEndOfLife warning old/1",
		"+120s resolved BatteryEndOfLife warning old/1",
		"+172860s firing BatteryEndOfLife warning old/1",
	})
	if len(summaries) < 1 || !strings.Contains(summaries[0], "acknowledged by facilities-east") || !strings.Contains(summaries[0], "2026-04-15") {
		t.Errorf("the resolution does not say who acknowledged it and when the replacement is planned: %q", summaries)
	}
}

// The static baseline (replay --baseline) has no age rules.
func TestNoAgeAlertsWithoutLifecycle(t *testing.T) {
	inv, err := inventory.Parse([]byte(ageInventory), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultConfig(), inv)
	h.observe(0, "life/1", telemetry.StringVoltageVolts, 800)
	h.tick(60)
	h.check(nil)
}
