package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
)

// fuzzAt is the check's clock in the fuzz targets.
var fuzzAt = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

// fuzzOptions are the check's defaults.
var fuzzOptions = preMaintOptions{ups: "ups-a", maxCelsius: 45, maxSOC: 0.5, transportSOC: 0.3, maxDataAge: time.Minute, lookback: 24 * time.Hour}

// report runs the check on an exposition as read from /metrics and
// returns its report and verdict.
func report(t *testing.T, body []byte) (string, int, bool) {
	fams, err := parseExposition(bytes.NewReader(body))
	if err != nil {
		return "", 0, false
	}
	c := &preCheck{ups: fuzzOptions.ups, url: "http://serve/metrics", at: fuzzAt}
	c.gather(fams, nil, map[string]bool{"rack-a": true})
	c.judge(&fuzzOptions)
	var out bytes.Buffer
	c.write(&out, &fuzzOptions)
	v := c.verdict()
	if v < verdictGo || v > verdictNoGo || !strings.Contains(out.String(), "VERDICT: "+verdictNames[v]+"\n") {
		t.Fatalf("verdict %d, report:\n%s", v, out.String())
	}
	return out.String(), v, true
}

// The pre-maintenance check reads the /metrics of a serve it is pointed
// at. Whatever that holds, the check must not panic; an exposition it
// accepts gives a verdict, and the same families written out again
// (expfmt) give the same report: the check reads what the exposition
// says, not how it is written.
func FuzzPreMaintenanceMetrics(f *testing.F) {
	now := float64(fuzzAt.Unix())
	f.Add(fmt.Appendf(nil, `# TYPE cellwarden_cell_temperature_celsius gauge
cellwarden_cell_temperature_celsius{ups="ups-a",string="1",module="1",cell="1"} 24.5
cellwarden_cell_temperature_celsius{ups="ups-a",string="1",module="1",cell="2"} 46
cellwarden_cell_temperature_celsius{ups="ups-a",string="2",module="1",cell="1"} NaN
# TYPE cellwarden_string_soc_ratio gauge
cellwarden_string_soc_ratio{ups="ups-a",string="1"} 0.9
# TYPE cellwarden_collector_up gauge
cellwarden_collector_up{collector="rack-a",source="modbus"} 1
# TYPE cellwarden_collector_last_success_timestamp_seconds gauge
cellwarden_collector_last_success_timestamp_seconds{collector="rack-a",source="modbus"} %g
`, now))
	f.Add(fmt.Appendf(nil, alertLines, "ThermalRunawayRisk", "critical"))
	f.Add(fmt.Appendf(nil, alertLines, "TelemetryStale", "warning"))
	f.Add([]byte(`# TYPE cellwarden_battery_lifecycle_state gauge
cellwarden_battery_lifecycle_state{ups="ups-a",string="1",state="end_of_life"} 1
# TYPE cellwarden_battery_end_of_life_timestamp_seconds gauge
cellwarden_battery_end_of_life_timestamp_seconds{ups="ups-a",string="1"} 1.6e9
# TYPE cellwarden_battery_installed_timestamp_seconds gauge
cellwarden_battery_installed_timestamp_seconds{ups="ups-a",string="1"} -1e300
cellwarden_cell_temperature_celsius{ups="ups-a",string="",module="",cell=""} +Inf
`))
	f.Add([]byte("cellwarden_alerts{ups=\"ups-a\"} 1 1700000000000\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		first, _, ok := report(t, body)
		if !ok {
			return
		}
		fams, _ := parseExposition(bytes.NewReader(body))
		var again bytes.Buffer
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			if _, err := expfmt.MetricFamilyToText(&again, fams[name]); err != nil {
				return // not expfmt's to write: nothing to compare
			}
		}
		second, _, ok := report(t, again.Bytes())
		if !ok {
			t.Fatalf("the exposition written out again is refused:\n%s", again.String())
		}
		if first != second {
			t.Fatalf("the same families give another report:\n%s\nthen\n%s\nwritten out again:\n%s", first, second, again.String())
		}
	})
}

// The check reads the serve's /api/v1/alerts answer for the recent
// anomalies. Whatever that holds, it must not panic; what it accepts are
// resolved alerts of the UPS asked about, resolved within the lookback,
// the most recent first, and they read back the same from an answer
// written from them.
func FuzzPreMaintenanceAlerts(f *testing.F) {
	fired, resolved := fuzzAt.Add(-2*time.Hour), fuzzAt.Add(-time.Hour)
	f.Add([]byte(`{"status":"success","data":{"alerts":[` +
		recentAlert("resolved", "ThermalRunawayRisk", "critical", "1", "7", fired, resolved) + "," +
		recentAlert("firing", "CellTemperatureDeviation", "warning", "2", "1", fired, time.Time{}) + "," +
		recentAlert("resolved", "TelemetryStale", "warning", "2", "", fired.Add(-48*time.Hour), resolved.Add(-48*time.Hour)) + `]}}`))
	f.Add([]byte(`{"status":"success","data":{"alerts":[]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"query: since \"x\""}`))
	f.Add([]byte(`{"status":"success","data":{"alerts":[{"labels":null,"state":"resolved","endsAt":"9999-12-31T23:59:59-23:59"}]}}`))
	f.Add([]byte(`null`))
	since := fuzzAt.Add(-fuzzOptions.lookback)
	f.Fuzz(func(t *testing.T, body []byte) {
		recent, err := parseRecentAlerts(bytes.NewReader(body), "ups-a", since)
		if err != nil {
			return
		}
		for i, a := range recent {
			if a.resolved.Before(since) || !strings.HasPrefix(a.entity, "ups-a") || (i > 0 && a.resolved.After(recent[i-1].resolved)) {
				t.Fatalf("accepted %+v (%d of %d)", a, i, len(recent))
			}
		}
		// Written back as the serve writes them, they read the same.
		var a apiAlerts
		if err := json.Unmarshal(body, &a); err != nil {
			// Decode reads the first value only; trailing data is its
			// business, not a round trip's.
			return
		}
		a.Status = "success"
		data, err := json.Marshal(a)
		if err != nil {
			return // a time beyond the year 9999 cannot be written: not one the serve sends
		}
		again, err := parseRecentAlerts(bytes.NewReader(data), "ups-a", since)
		if err != nil || len(again) != len(recent) {
			t.Fatalf("written back, %d alerts read (%v), %d before:\n%s", len(again), err, len(recent), data)
		}
		for i := range again {
			x, y := recent[i], again[i]
			if x.name != y.name || x.severity != y.severity || x.entity != y.entity || x.summary != y.summary || !x.fired.Equal(y.fired) || !x.resolved.Equal(y.resolved) {
				t.Fatalf("alert %d reads back as %+v, was %+v", i, y, x)
			}
		}
	})
}
