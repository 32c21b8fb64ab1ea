package detector

import (
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// During maintenance on string 1 its modules go silent and a sensor reads
// a sentinel: no TelemetryStale, no SensorFault for it; string 2's silence
// and a real over-temperature on string 1 still page.
func TestMaintenanceMutesCommunicationNotSafety(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	for sec := 0; sec <= 600; sec += 10 {
		for _, s := range []string{"1", "2"} {
			h.observe(sec, "ups-m/"+s+"/1/1", telemetry.CellVoltageVolts, 3.9)
		}
		h.tick(sec + 5)
	}
	h.eng.SetMaintenance([]telemetry.Entity{{UPS: "ups-m", String: "1"}})
	for sec := 610; sec <= 1200; sec += 10 {
		switch {
		case sec < 900:
			// string 1: nothing (unplugged); string 2: silent as well.
		default:
			h.observe(sec, "ups-m/1/1/1", telemetry.CellVoltageVolts, 65.535) // a sentinel while wiring
			h.observe(sec, "ups-m/1/1/1", telemetry.CellTemperatureCelsius, 65)
		}
		h.tick(sec + 5)
	}
	var stale1, stale2, sensor1, hot1 bool
	for _, g := range h.got {
		switch {
		case contains(g, "firing TelemetryStale") && contains(g, "ups-m/1"):
			stale1 = true
		case contains(g, "firing TelemetryStale") && (contains(g, "ups-m/2") || hasSuffix(g, " ups-m")):
			stale2 = true
		case contains(g, "firing SensorFault") && contains(g, "ups-m/1/"):
			sensor1 = true
		case contains(g, "firing CellOverTemperature critical ups-m/1/1/1"):
			hot1 = true
		}
	}
	if stale1 || sensor1 {
		t.Errorf("maintenance on ups-m/1 did not mute its communication alerts: %q", h.got)
	}
	if !stale2 {
		t.Errorf("the silent string 2, not under maintenance, was not reported stale: %q", h.got)
	}
	if !hot1 {
		t.Errorf("a cell at 65 °C under maintenance did not page: %q", h.got)
	}
	// Maintenance over: the silence is reported again (here by the UPS's
	// alert, which covers both of its silent strings).
	h.eng.SetMaintenance(nil)
	h.got = nil
	h.tick(1300)
	found := false
	for _, g := range h.got {
		if contains(g, "firing TelemetryStale") && (contains(g, "ups-m/1") || hasSuffix(g, " ups-m")) {
			found = true
		}
	}
	if !found {
		t.Errorf("after maintenance the silent module of string 1 is not reported: %q", h.got)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func hasSuffix(s, suf string) bool { return strings.HasSuffix(s, suf) }
