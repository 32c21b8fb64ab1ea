package score

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/sim"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// entity builds an entity from its identifiers, coarsest first.
func entity(ids ...string) sim.Entity {
	ids = append(ids, "", "", "", "")
	return sim.Entity{UPS: ids[0], String: ids[1], Module: ids[2], Cell: ids[3]}
}

func fault(class string, e sim.Entity, onset, end time.Duration) sim.FaultLabel {
	return sim.FaultLabel{ID: class, Class: class, Entity: e, Onset: at(onset), End: at(end)}
}

// firing returns a firing alert at t0+d on the entity given by ids.
func firing(d time.Duration, name, severity string, ids ...string) Alert {
	labels := map[string]string{"alertname": name, "severity": severity}
	for i, key := range []string{"ups", "string", "module", "cell"}[:len(ids)] {
		labels[key] = ids[i]
	}
	return Alert{Time: at(d), Status: StatusFiring, Labels: labels}
}

func resolved(d time.Duration, name, severity string, ids ...string) Alert {
	a := firing(d, name, severity, ids...)
	a.Status = StatusResolved
	return a
}

// repeat returns n firing alerts, one a minute from t0+d, on cells 1..n
// of module 1 of string 1 of ups.
func repeat(n int, d time.Duration, name, ups string) []Alert {
	var out []Alert
	for i := range n {
		out = append(out, firing(d+time.Duration(i)*time.Minute, name, "warning", ups, "1", "1", string(rune('a'+i%26))))
	}
	return out
}

func TestAttribution(t *testing.T) {
	type outcome struct {
		Attributed, False, Firing int
	}
	cellFault := fault(sim.ClassThermalRunaway, entity("ups-a", "1", "3", "7"), time.Hour, 2*time.Hour)
	moduleFault := fault(sim.ClassModuleHotspot, entity("ups-a", "1", "3"), time.Hour, 2*time.Hour)
	end := 2 * time.Hour
	tests := []struct {
		name  string
		fault sim.FaultLabel
		alert Alert
		want  outcome
	}{
		{"same cell", cellFault, firing(90*time.Minute, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{1, 0, 1}},
		{"ancestor module", cellFault, firing(90*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "3"), outcome{1, 0, 1}},
		{"ancestor string", cellFault, firing(90*time.Minute, "CoolingFailure", "warning", "ups-a", "1"), outcome{1, 0, 1}},
		{"ancestor ups", cellFault, firing(90*time.Minute, "CoolingFailure", "warning", "ups-a"), outcome{1, 0, 1}},
		{"descendant cell", moduleFault, firing(90*time.Minute, "CellOverTemperature", "critical", "ups-a", "1", "3", "9"), outcome{1, 0, 1}},
		{"sibling cell", cellFault, firing(90*time.Minute, "CellOverTemperature", "warning", "ups-a", "1", "3", "8"), outcome{0, 1, 1}},
		{"same module id in another string", moduleFault, firing(90*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "2", "3"), outcome{0, 1, 1}},
		{"another ups", cellFault, firing(90*time.Minute, "CoolingFailure", "warning", "ups-b"), outcome{0, 1, 1}},
		{"identifiers compared byte for byte", cellFault, firing(90*time.Minute, "CellOverTemperature", "warning", "UPS-A", "1", "3", "7"), outcome{0, 1, 1}},
		{"exactly at onset", cellFault, firing(time.Hour, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{1, 0, 1}},
		{"a second before onset", cellFault, firing(time.Hour-time.Second, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{0, 1, 1}},
		{"exactly at end + 15m", cellFault, firing(end+15*time.Minute, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{1, 0, 1}},
		{"a second after end + 15m", cellFault, firing(end+15*time.Minute+time.Second, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{0, 1, 1}},
		{"resolved line ignored", cellFault, resolved(90*time.Minute, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7"), outcome{0, 0, 0}},
		{"end of life never attributed", cellFault, firing(90*time.Minute, AlertEndOfLife, "warning", "ups-a", "1"), outcome{0, 0, 1}},
		{"end of life soon never attributed", cellFault, firing(90*time.Minute, AlertEndOfLifeSoon, "info", "ups-a"), outcome{0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := Score([]Run{{Labels: &sim.Labels{CellDays: 1, Faults: []sim.FaultLabel{tc.fault}}, Alerts: []Alert{tc.alert}}})
			got := outcome{rep.Classes[0].Notifications.Total, rep.FalseAlerts.Total, rep.Alerts}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClassStats(t *testing.T) {
	hotspot := func(module string, onset time.Duration) sim.FaultLabel {
		return fault(sim.ClassModuleHotspot, entity("ups-a", "1", module), onset, onset+3*time.Hour)
	}
	tests := []struct {
		name string
		runs []Run
		want []ClassReport
	}{
		{
			name: "no runs",
			runs: nil,
			want: nil,
		},
		{
			name: "delays 1m 2m 3m 10m and one undetected",
			runs: []Run{{
				Labels: &sim.Labels{Faults: []sim.FaultLabel{
					hotspot("1", time.Hour), hotspot("2", time.Hour), hotspot("3", time.Hour), hotspot("4", time.Hour), hotspot("5", time.Hour),
				}},
				Alerts: []Alert{
					// Out of order on purpose; the first alert decides.
					firing(time.Hour+5*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "1"),
					firing(time.Hour+time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "1"),
					firing(time.Hour+2*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "2"),
					firing(time.Hour+3*time.Minute, "CellTemperatureDeviation", "warning", "ups-a", "1", "3", "4"),
					firing(time.Hour+10*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "4"),
				},
			}},
			want: []ClassReport{{
				Class: sim.ClassModuleHotspot, Faults: 5, Recall: Ratio{4, 5},
				Delay:         DurationStats{N: 4, Min: time.Minute, Median: 150 * time.Second, P90: 10 * time.Minute, Max: 10 * time.Minute},
				Notifications: CountStats{N: 5, Median: 1, Max: 2, Total: 5},
			}},
		},
		{
			name: "an alert attributable to two faults counts for each; classes in sim order",
			runs: []Run{{
				Labels: &sim.Labels{Faults: []sim.FaultLabel{
					hotspot("3", time.Hour),
					fault(sim.ClassThermalRunaway, entity("ups-a", "1", "3", "7"), 2*time.Hour, 5*time.Hour),
				}},
				Alerts: []Alert{firing(3*time.Hour, "CellTemperatureRising", "warning", "ups-a", "1", "3", "7")},
			}},
			want: []ClassReport{
				{
					Class: sim.ClassThermalRunaway, Faults: 1, Recall: Ratio{1, 1},
					Delay:         DurationStats{N: 1, Min: time.Hour, Median: time.Hour, P90: time.Hour, Max: time.Hour},
					Notifications: CountStats{N: 1, Median: 1, Max: 1, Total: 1},
				},
				{
					Class: sim.ClassModuleHotspot, Faults: 1, Recall: Ratio{1, 1},
					Delay:         DurationStats{N: 1, Min: 2 * time.Hour, Median: 2 * time.Hour, P90: 2 * time.Hour, Max: 2 * time.Hour},
					Notifications: CountStats{N: 1, Median: 1, Max: 1, Total: 1},
				},
			},
		},
		{
			name: "cooling failure paging 40 times, a quiet one and one paging 5 times",
			runs: []Run{
				{
					Labels: &sim.Labels{Faults: []sim.FaultLabel{fault(sim.ClassCoolingFailure, entity("ups-a"), time.Hour, 6*time.Hour)}},
					Alerts: append(repeat(40, 2*time.Hour, "CellOverTemperature", "ups-a"),
						// After end + 15m: not this incident's.
						firing(6*time.Hour+16*time.Minute, "CellOverTemperature", "warning", "ups-a", "1", "1", "1")),
				},
				{
					Labels: &sim.Labels{Faults: []sim.FaultLabel{fault(sim.ClassCoolingFailure, entity("ups-b"), time.Hour, 6*time.Hour)}},
					Alerts: []Alert{firing(2*time.Hour, "CellOverTemperature", "warning", "ups-a", "1", "1", "1")},
				},
				{
					Labels: &sim.Labels{Faults: []sim.FaultLabel{fault(sim.ClassCoolingFailure, entity("ups-c"), time.Hour, 6*time.Hour)}},
					Alerts: append(repeat(4, 90*time.Minute, "CellOverTemperature", "ups-c"),
						firing(time.Hour+30*time.Minute, "CoolingFailure", "critical", "ups-c")),
				},
			},
			want: []ClassReport{{
				Class: sim.ClassCoolingFailure, Faults: 3, Recall: Ratio{2, 3},
				Delay:         DurationStats{N: 2, Min: 30 * time.Minute, Median: 45 * time.Minute, P90: time.Hour, Max: time.Hour},
				Notifications: CountStats{N: 3, Median: 5, Max: 40, Total: 45},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(tc.runs).Classes
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestDurationStats(t *testing.T) {
	m := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, v := range ms {
			out = append(out, time.Duration(v)*time.Minute)
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want DurationStats
	}{
		{"empty", nil, DurationStats{}},
		{"one", m(7), DurationStats{N: 1, Min: 7 * time.Minute, Median: 7 * time.Minute, P90: 7 * time.Minute, Max: 7 * time.Minute}},
		{"two: median is the mean, p90 the larger", m(4, 1), DurationStats{N: 2, Min: time.Minute, Median: 150 * time.Second, P90: 4 * time.Minute, Max: 4 * time.Minute}},
		{"three", m(3, 1, 2), DurationStats{N: 3, Min: time.Minute, Median: 2 * time.Minute, P90: 3 * time.Minute, Max: 3 * time.Minute}},
		{"ten: p90 is the 9th", m(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), DurationStats{N: 10, Min: time.Minute, Median: 330 * time.Second, P90: 9 * time.Minute, Max: 10 * time.Minute}},
		{"eleven: p90 is the 10th", m(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), DurationStats{N: 11, Min: time.Minute, Median: 6 * time.Minute, P90: 10 * time.Minute, Max: 11 * time.Minute}},
		{"negative", m(-10, 30, 120), DurationStats{N: 3, Min: -10 * time.Minute, Median: 30 * time.Minute, P90: 120 * time.Minute, Max: 120 * time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := durationStats(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRunaway(t *testing.T) {
	runaway := func(cell string, onset, critical time.Duration) sim.FaultLabel {
		f := fault(sim.ClassThermalRunaway, entity("ups-a", "1", "1", cell), onset, critical+10*time.Minute)
		f.CriticalTime = ptr(at(critical))
		return f
	}
	noCritical := fault(sim.ClassThermalRunaway, entity("ups-a", "1", "1", "9"), time.Hour, 8*time.Hour)
	rising := func(d time.Duration, cell string) Alert {
		return firing(d, "CellTemperatureRising", "warning", "ups-a", "1", "1", cell)
	}
	tests := []struct {
		name string
		runs []Run
		want RunawayReport
	}{
		{"none", []Run{{Labels: &sim.Labels{}}}, RunawayReport{}},
		{
			name: "lead 2h, exactly 30m, -10m (after critical), one missed, one without critical time",
			runs: []Run{{
				Labels: &sim.Labels{Faults: []sim.FaultLabel{
					runaway("1", time.Hour, 5*time.Hour),
					runaway("2", time.Hour, 4*time.Hour),
					runaway("3", time.Hour, 2*time.Hour),
					runaway("4", time.Hour, 3*time.Hour),
					noCritical,
				}},
				Alerts: []Alert{
					rising(3*time.Hour, "1"), rising(4*time.Hour, "1"),
					rising(4*time.Hour+10*time.Minute, "2"),
					rising(90*time.Minute, "3"),
					rising(2*time.Hour, "9"),
				},
			}},
			want: RunawayReport{
				Faults: 4, WithoutCriticalTime: 1, Detected: 3,
				Lead:  DurationStats{N: 3, Min: -10 * time.Minute, Median: 30 * time.Minute, P90: 2 * time.Hour, Max: 2 * time.Hour},
				Early: Ratio{2, 4},
			},
		},
		{
			name: "29m59s is not early",
			runs: []Run{{
				Labels: &sim.Labels{Faults: []sim.FaultLabel{runaway("1", time.Hour, 2*time.Hour)}},
				Alerts: []Alert{rising(90*time.Minute+time.Second, "1")},
			}},
			want: RunawayReport{
				Faults: 1, Detected: 1,
				Lead:  DurationStats{N: 1, Min: 29*time.Minute + 59*time.Second, Median: 29*time.Minute + 59*time.Second, P90: 29*time.Minute + 59*time.Second, Max: 29*time.Minute + 59*time.Second},
				Early: Ratio{0, 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Score(tc.runs).Runaway; got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFalseAlerts(t *testing.T) {
	hot := fault(sim.ClassModuleHotspot, entity("ups-a", "1", "2"), time.Hour, 2*time.Hour)
	type rates struct {
		Warning, Critical string
	}
	tests := []struct {
		name      string
		runs      []Run
		want      FalseAlertReport
		wantRates rates
	}{
		{
			name:      "nothing",
			runs:      nil,
			want:      FalseAlertReport{BySeverity: []Count{{"warning", 0}, {"critical", 0}}},
			wantRates: rates{"n/a", "n/a"},
		},
		{
			name: "per 1000 cell-days by severity over two runs",
			runs: []Run{
				{
					Labels: &sim.Labels{CellDays: 1500, Faults: []sim.FaultLabel{hot}},
					Alerts: []Alert{
						firing(90*time.Minute, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "2"), // attributable
						firing(90*time.Minute, "CellVoltageDeviation", "warning", "ups-a", "1", "3", "1"),
						firing(5*time.Hour, "ModuleTemperatureDeviation", "warning", "ups-a", "1", "2"),
						firing(5*time.Hour, "CellOverTemperature", "critical", "ups-a", "1", "3", "1"),
						resolved(5*time.Hour, "CellOverTemperature", "critical", "ups-a", "1", "3", "1"),
						firing(5*time.Hour, AlertEndOfLife, "warning", "ups-a", "1"),
					},
				},
				{
					Labels: &sim.Labels{CellDays: 500},
					Alerts: []Alert{
						firing(time.Hour, "CellVoltageDeviation", "warning", "ups-b", "1", "3", "1"),
						firing(time.Hour, "TelemetryStale", "info", "ups-b"),
					},
				},
			},
			want: FalseAlertReport{
				CellDays:    2000,
				Total:       5,
				BySeverity:  []Count{{"warning", 3}, {"critical", 1}, {"info", 1}},
				ByAlertname: []Count{{"CellOverTemperature", 1}, {"CellVoltageDeviation", 2}, {"ModuleTemperatureDeviation", 1}, {"TelemetryStale", 1}},
			},
			wantRates: rates{"1.50", "0.50"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(tc.runs).FalseAlerts
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			gotRates := rates{fmtRate(got, countOf(got.BySeverity, "warning")), fmtRate(got, countOf(got.BySeverity, "critical"))}
			if gotRates != tc.wantRates {
				t.Errorf("rates %+v, want %+v", gotRates, tc.wantRates)
			}
		})
	}
}

func TestEndOfLife(t *testing.T) {
	batteries := []sim.BatteryLabel{
		{UPS: "ups-a", String: "1", State: sim.StateEndOfLife, Reasons: []string{"design_life"}},
		{UPS: "ups-a", String: "2", State: sim.StateEndOfLife, Reasons: []string{"soh"}},
		{UPS: "ups-b", String: "1", State: sim.StateSoon},
		{UPS: "ups-b", String: "2", State: sim.StateOK},
		{UPS: "ups-c", String: "1", State: sim.StateOK},
	}
	eol := func(name string, ids ...string) Alert { return firing(time.Hour, name, "warning", ids...) }
	tests := []struct {
		name          string
		runs          []Run
		want          EndOfLifeReport
		wantPrecision string
	}{
		{"no labels, no alerts", nil, EndOfLifeReport{}, "n/a"},
		{"no end-of-life alerts: precision n/a", []Run{{Labels: &sim.Labels{Batteries: batteries}}},
			EndOfLifeReport{Recall: Ratio{0, 3}, RecallEndOfLife: Ratio{0, 2}, RecallSoon: Ratio{0, 1}}, "n/a"},
		{"resolved lines do not count", []Run{{Labels: &sim.Labels{Batteries: batteries}, Alerts: []Alert{resolved(time.Hour, AlertEndOfLife, "warning", "ups-a", "1")}}},
			EndOfLifeReport{Recall: Ratio{0, 3}, RecallEndOfLife: Ratio{0, 2}, RecallSoon: Ratio{0, 1}}, "n/a"},
		{"string-level alerts, repeats counted once", []Run{{Labels: &sim.Labels{Batteries: batteries}, Alerts: []Alert{
			eol(AlertEndOfLife, "ups-a", "1"), eol(AlertEndOfLife, "ups-a", "1"), eol(AlertEndOfLifeSoon, "ups-b", "1"),
		}}}, EndOfLifeReport{Recall: Ratio{2, 3}, RecallEndOfLife: Ratio{1, 2}, RecallSoon: Ratio{1, 1}, Precision: Ratio{2, 2}}, "100.0% (2/2)"},
		{"a UPS-level alert covers every string of the UPS", []Run{{Labels: &sim.Labels{Batteries: batteries}, Alerts: []Alert{eol(AlertEndOfLife, "ups-a")}}},
			EndOfLifeReport{Recall: Ratio{2, 3}, RecallEndOfLife: Ratio{2, 2}, RecallSoon: Ratio{0, 1}, Precision: Ratio{1, 1}}, "100.0% (1/1)"},
		{"wrong state and a fine string are imprecise", []Run{{Labels: &sim.Labels{Batteries: batteries}, Alerts: []Alert{
			eol(AlertEndOfLifeSoon, "ups-a", "1"), eol(AlertEndOfLife, "ups-b", "1"), eol(AlertEndOfLife, "ups-c"), eol(AlertEndOfLife, "ups-a", "2"),
		}}}, EndOfLifeReport{Recall: Ratio{1, 3}, RecallEndOfLife: Ratio{1, 2}, RecallSoon: Ratio{0, 1}, Precision: Ratio{1, 4}}, "25.0% (1/4)"},
		{"alerts of one run do not match labels of another", []Run{
			{Labels: &sim.Labels{Batteries: batteries}},
			{Labels: &sim.Labels{}, Alerts: []Alert{eol(AlertEndOfLife, "ups-a", "1")}},
		}, EndOfLifeReport{Recall: Ratio{0, 3}, RecallEndOfLife: Ratio{0, 2}, RecallSoon: Ratio{0, 1}, Precision: Ratio{0, 1}}, "0.0% (0/1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Score(tc.runs).EndOfLife
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Precision.String() != tc.wantPrecision {
				t.Errorf("precision %q, want %q", got.Precision, tc.wantPrecision)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestReadAlerts(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []Alert
		wantErr string
	}{
		{
			name: "valid, blank lines skipped",
			content: `{"time":"2026-03-01T04:05:00Z","status":"firing","labels":{"alertname":"CellTemperatureDeviation","severity":"warning","ups":"ups-a","string":"1","module":"3","cell":"7"},"annotations":{"summary":"hot"},"value":4.1}

{"time":"2026-03-01T04:15:00Z","status":"resolved","labels":{"alertname":"CoolingFailure","severity":"critical","ups":"ups-a"},"value":null}
`,
			want: []Alert{
				{Time: time.Date(2026, 3, 1, 4, 5, 0, 0, time.UTC), Status: StatusFiring, Value: ptr(4.1),
					Labels: map[string]string{"alertname": "CellTemperatureDeviation", "severity": "warning", "ups": "ups-a", "string": "1", "module": "3", "cell": "7"}},
				{Time: time.Date(2026, 3, 1, 4, 15, 0, 0, time.UTC), Status: StatusResolved,
					Labels: map[string]string{"alertname": "CoolingFailure", "severity": "critical", "ups": "ups-a"}},
			},
		},
		{name: "empty file", content: ""},
		{name: "last line without newline", content: `{"time":"2026-03-01T04:05:00Z","status":"firing","labels":{"alertname":"X"}}`,
			want: []Alert{{Time: time.Date(2026, 3, 1, 4, 5, 0, 0, time.UTC), Status: StatusFiring, Labels: map[string]string{"alertname": "X"}}}},
		{name: "bad json", content: "{\"time\":\"2026-03-01T04:05:00Z\",\"status\":\"firing\",\"labels\":{\"alertname\":\"X\"}}\n{oops\n",
			wantErr: "FILE:2: invalid character 'o' looking for beginning of object key string"},
		{name: "missing time", content: "\n\n{\"status\":\"firing\",\"labels\":{\"alertname\":\"X\"}}\n",
			wantErr: "FILE:3: missing time"},
		{name: "bad time", content: `{"time":"yesterday","status":"firing","labels":{"alertname":"X"}}`,
			wantErr: `FILE:1: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{name: "bad status", content: `{"time":"2026-03-01T04:05:00Z","status":"pending","labels":{"alertname":"X"}}`,
			wantErr: `FILE:1: status "pending" is neither "firing" nor "resolved"`},
		{name: "missing alertname", content: `{"time":"2026-03-01T04:05:00Z","status":"firing","labels":{"severity":"warning"}}`,
			wantErr: "FILE:1: missing labels.alertname"},
		{name: "not an object", content: `[1,2]`,
			wantErr: "FILE:1: json: cannot unmarshal array into Go value of type score.alertLine"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, string(rune('a'+i))+".ndjson")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadAlerts(path)
			if gotErr := strings.ReplaceAll(errString(err), path, "FILE"); gotErr != tc.wantErr {
				t.Errorf("error %q, want %q", gotErr, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadAlertsMissingFile(t *testing.T) {
	if _, err := ReadAlerts(filepath.Join(t.TempDir(), "nope.ndjson")); !os.IsNotExist(err) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{400 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{4*time.Minute + 30*time.Second, "4m30s"},
		{4 * time.Minute, "4m"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{time.Hour, "1h"},
		{time.Hour + 12*time.Minute + 20*time.Second, "1h12m"},
		{time.Hour + 59*time.Minute + 40*time.Second, "2h"},
		{26*time.Hour + 5*time.Minute, "26h5m"},
		{-10 * time.Minute, "-10m"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := fmtDuration(tc.in); got != tc.want {
				t.Errorf("fmtDuration(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// comparisonRuns is one scenario with a runaway, a cooling failure, false
// alerts and end-of-life strings, and what two detectors made of it.
func comparisonRuns() (ours, baseline []Run) {
	runaway := fault(sim.ClassThermalRunaway, entity("ups-a", "1", "2", "5"), time.Hour, 7*time.Hour)
	runaway.CriticalTime = ptr(at(6 * time.Hour))
	cooling := fault(sim.ClassCoolingFailure, entity("ups-b"), 2*time.Hour, 4*time.Hour)
	labels := &sim.Labels{
		Scenario: "mixed", CellDays: 2000,
		Faults:    []sim.FaultLabel{runaway, cooling},
		Batteries: []sim.BatteryLabel{{UPS: "ups-a", String: "1", State: sim.StateEndOfLife}, {UPS: "ups-a", String: "2", State: sim.StateOK}},
	}
	ours = []Run{{Labels: labels, Alerts: []Alert{
		firing(4*time.Hour, "CellTemperatureRising", "warning", "ups-a", "1", "2", "5"),
		firing(4*time.Hour+30*time.Minute, "ThermalRunawayRisk", "critical", "ups-a", "1", "2", "5"),
		firing(2*time.Hour+4*time.Minute+30*time.Second, "CoolingFailure", "warning", "ups-b"),
		firing(10*time.Hour, "CellVoltageDeviation", "warning", "ups-c", "1", "1", "1"),
		firing(11*time.Hour, "CellVoltageDeviation", "warning", "ups-c", "1", "1", "2"),
		firing(12*time.Hour, "CellOverTemperature", "critical", "ups-c", "1", "1", "2"),
		firing(time.Hour, AlertEndOfLife, "warning", "ups-a", "1"),
	}}}
	baseline = []Run{{Labels: labels, Alerts: append(repeat(12, 3*time.Hour+12*time.Minute, "CellOverTemperature", "ups-b"),
		firing(6*time.Hour+10*time.Minute, "CellOverTemperature", "critical", "ups-a", "1", "2", "5"),
		firing(12*time.Hour, "CellOverTemperature", "warning", "ups-c", "1", "1", "2"),
	)}}
	return ours, baseline
}

func TestWriteMarkdown(t *testing.T) {
	oursRuns, baseRuns := comparisonRuns()
	ours, base := Score(oursRuns), Score(baseRuns)
	var withBase, alone, empty bytes.Buffer
	if err := WriteMarkdown(&withBase, ours, base); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&alone, ours, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&empty, Score(nil), Score(nil)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  *bytes.Buffer
		want string
	}{
		{"header", &withBase, "| class | metric | cellwarden | static BMS baseline |\n|---|---|---:|---:|\n"},
		{"runaway recall", &withBase, "| thermal_runaway | recall | 100.0% (1/1) | 100.0% (1/1) |\n"},
		{"runaway delay", &withBase, "| thermal_runaway | median delay | 3h | 5h10m |\n"},
		{"cooling delay", &withBase, "| cooling_failure | p90 delay | 4m30s | 1h12m |\n"},
		{"lead median", &withBase, "| median lead | 2h | -10m |\n"},
		{"lead share", &withBase, "| detected >= 30m before critical | 100.0% (1/1) | 0.0% (0/1) |\n"},
		{"false warning rate", &withBase, "| warning per 1000 cell-days | 1.00 | 0.50 |\n"},
		{"false critical rate", &withBase, "| critical per 1000 cell-days | 0.50 | 0.00 |\n"},
		{"false by name", &withBase, "| CellVoltageDeviation (count) | 2 | 0 |\n"},
		{"notifications max", &withBase, "| cooling_failure | max | 1 | 12 |\n"},
		{"runaway notifications", &withBase, "| thermal_runaway | median | 2 | 1 |\n"},
		{"eol recall", &withBase, "| recall end_of_life | 100.0% (1/1) | 0.0% (0/1) |\n"},
		{"eol precision n/a for baseline", &withBase, "| precision | 100.0% (1/1) | n/a |\n"},
		{"sections in order", &withBase, "## Detection by fault class\n"},
		{"alone has one value column", &alone, "| class | metric | cellwarden |\n|---|---|---:|\n"},
		{"alone rows", &alone, "| median lead | 2h |\n"},
		{"empty: no faults", &empty, "## Detection by fault class\n\nNo faults in the scenarios.\n"},
		{"empty: no runaway", &empty, "No thermal-runaway faults in the scenarios.\n"},
		{"empty: rates n/a", &empty, "| warning per 1000 cell-days | n/a | n/a |\n"},
		{"empty: eol n/a", &empty, "| recall | n/a | n/a |\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.out.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, tc.out)
			}
		})
	}
	if strings.Contains(alone.String(), BaselineTitle) {
		t.Errorf("baseline column without a baseline:\n%s", alone.String())
	}
}

func TestWriteTable(t *testing.T) {
	oursRuns, _ := comparisonRuns()
	var full, empty bytes.Buffer
	if err := Score(oursRuns).WriteTable(&full); err != nil {
		t.Fatal(err)
	}
	if err := Score(nil).WriteTable(&empty); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  *bytes.Buffer
		want string
	}{
		{"summary", &full, "runs 1, cell-days 2000.0, firing alerts 7\n"},
		{"runaway row", &full, "thermal_runaway  1       100.0% (1/1)  3h            3h         2                     2"},
		{"lead", &full, "1       0                      1         2h           2h        100.0% (1/1)"},
		{"false warning", &full, "warning   2      1.00"},
		{"eol", &full, "100.0% (1/1)  100.0% (1/1)        n/a          100.0% (1/1)"},
		{"empty faults", &empty, "DETECTION BY FAULT CLASS\nno faults\n"},
		{"empty rates", &empty, "critical  0      n/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.out.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, tc.out)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	oursRuns, baseRuns := comparisonRuns()
	reversed := []Run{{Labels: oursRuns[0].Labels, Alerts: append([]Alert(nil), oursRuns[0].Alerts...)}}
	for i, j := 0, len(reversed[0].Alerts)-1; i < j; i, j = i+1, j-1 {
		reversed[0].Alerts[i], reversed[0].Alerts[j] = reversed[0].Alerts[j], reversed[0].Alerts[i]
	}
	var a, b bytes.Buffer
	if err := WriteMarkdown(&a, Score(oursRuns), Score(baseRuns)); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&b, Score(reversed), Score(baseRuns)); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("alert order changed the output:\n%s\n---\n%s", a.String(), b.String())
	}
}
