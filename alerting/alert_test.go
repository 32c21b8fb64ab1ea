package alerting_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

var t0 = time.Date(2026, 3, 1, 4, 5, 0, 0, time.UTC)

// change is a detector.Change about entity e, to be interned by render.
type change struct {
	e telemetry.Entity
	c detector.Change
}

// render interns the entities of cs in one registry, turns each change
// into an alert with FromChange and writes them all as NDJSON.
func render(t *testing.T, cs ...change) string {
	t.Helper()
	reg := telemetry.NewRegistry()
	var buf bytes.Buffer
	w := alerting.NewNDJSONWriter(&buf)
	for _, x := range cs {
		id, err := reg.Intern(x.e)
		if err != nil {
			t.Fatalf("Intern(%s): %v", x.e.Path(), err)
		}
		x.c.Entity = id
		a := alerting.FromChange(x.c, reg)
		if err := w.Write(&a); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return buf.String()
}

var (
	cell7   = telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "7"}
	module3 = telemetry.Entity{UPS: "ups-a", String: "1", Module: "3"}
	string1 = telemetry.Entity{UPS: "ups-a", String: "1"}
	upsA    = telemetry.Entity{UPS: "ups-a"}
)

func TestNDJSONBytes(t *testing.T) {
	tests := []struct {
		name string
		in   change
		want string
	}{
		{
			name: "firing cell alert as in the spec",
			in: change{cell7, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusFiring,
				Name: "CellTemperatureDeviation", Severity: detector.SeverityWarning,
				Value: 4.1, Summary: "cell 7 is 4.1 °C hotter than its peers and rising",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"firing",` +
				`"labels":{"alertname":"CellTemperatureDeviation","severity":"warning","ups":"ups-a","string":"1","module":"3","cell":"7"},` +
				`"annotations":{"summary":"cell 7 is 4.1 °C hotter than its peers and rising"},"value":4.1}` + "\n",
		},
		{
			name: "string-level alert omits module and cell",
			in: change{string1, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusResolved,
				Name: "CoolingFailure", Severity: detector.SeverityCritical,
				Value: 31.5, Summary: "string 1 warming as a whole",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"resolved",` +
				`"labels":{"alertname":"CoolingFailure","severity":"critical","ups":"ups-a","string":"1"},` +
				`"annotations":{"summary":"string 1 warming as a whole"},"value":31.5}` + "\n",
		},
		{
			name: "module-level alert omits cell",
			in: change{module3, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusFiring,
				Name: "TelemetryStale", Severity: detector.SeverityInfo,
				Value: 600, Summary: "no readings for 10m0s",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"firing",` +
				`"labels":{"alertname":"TelemetryStale","severity":"info","ups":"ups-a","string":"1","module":"3"},` +
				`"annotations":{"summary":"no readings for 10m0s"},"value":600}` + "\n",
		},
		{
			name: "ups-level alert has only ups",
			in: change{upsA, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusFiring,
				Name: "CoolingFailure", Severity: detector.SeverityWarning,
				Value: 0, Summary: "room warming",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"firing",` +
				`"labels":{"alertname":"CoolingFailure","severity":"warning","ups":"ups-a"},` +
				`"annotations":{"summary":"room warming"},"value":0}` + "\n",
		},
		{
			name: "fractional seconds are written when non-zero",
			in: change{cell7, detector.Change{
				Time: t0.Add(250 * time.Millisecond).UnixNano(), Status: detector.StatusFiring,
				Name: "CellOverTemperature", Severity: detector.SeverityCritical,
				Value: 61.25, Summary: "hot",
			}},
			want: `{"time":"2026-03-01T04:05:00.25Z","status":"firing",` +
				`"labels":{"alertname":"CellOverTemperature","severity":"critical","ups":"ups-a","string":"1","module":"3","cell":"7"},` +
				`"annotations":{"summary":"hot"},"value":61.25}` + "\n",
		},
		{
			name: "nanosecond time",
			in: change{cell7, detector.Change{
				Time: t0.Add(1).UnixNano(), Status: detector.StatusFiring,
				Name: "CellOverTemperature", Severity: detector.SeverityCritical,
				Value: -1.5, Summary: "hot",
			}},
			want: `{"time":"2026-03-01T04:05:00.000000001Z","status":"firing",` +
				`"labels":{"alertname":"CellOverTemperature","severity":"critical","ups":"ups-a","string":"1","module":"3","cell":"7"},` +
				`"annotations":{"summary":"hot"},"value":-1.5}` + "\n",
		},
		{
			name: "NaN value omits the value key",
			in: change{module3, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusResolved,
				Name: "TelemetryStale", Severity: detector.SeverityWarning,
				Value: math.NaN(), Summary: "readings resumed",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"resolved",` +
				`"labels":{"alertname":"TelemetryStale","severity":"warning","ups":"ups-a","string":"1","module":"3"},` +
				`"annotations":{"summary":"readings resumed"}}` + "\n",
		},
		{
			name: "non-ASCII and HTML characters are not escaped",
			in: change{
				telemetry.Entity{UPS: "ups-a", String: "Strang-Ü", Module: "<3>", Cell: "7"},
				detector.Change{
					Time: t0.UnixNano(), Status: detector.StatusFiring,
					Name: "CellVoltageOutOfRange", Severity: detector.SeverityWarning,
					Value: 2.5, Summary: `cell 7 < 2.8 V & "low" at 12 °C`,
				},
			},
			want: `{"time":"2026-03-01T04:05:00Z","status":"firing",` +
				`"labels":{"alertname":"CellVoltageOutOfRange","severity":"warning","ups":"ups-a","string":"Strang-Ü","module":"<3>","cell":"7"},` +
				`"annotations":{"summary":"cell 7 < 2.8 V & \"low\" at 12 °C"},"value":2.5}` + "\n",
		},
		{
			name: "a newline in the summary stays on one line",
			in: change{string1, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusFiring,
				Name: "BatteryEndOfLife", Severity: detector.SeverityWarning,
				Value: 0.71, Summary: "past design life\nreplace soon",
			}},
			want: `{"time":"2026-03-01T04:05:00Z","status":"firing",` +
				`"labels":{"alertname":"BatteryEndOfLife","severity":"warning","ups":"ups-a","string":"1"},` +
				`"annotations":{"summary":"past design life\nreplace soon"},"value":0.71}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render(t, tt.in); got != tt.want {
				t.Errorf("NDJSON:\n got  %s\n want %s", got, tt.want)
			}
		})
	}
}

func TestNDJSONInfiniteValueOmitted(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    float64
	}{{"+Inf", math.Inf(1)}, {"-Inf", math.Inf(-1)}} {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, change{cell7, detector.Change{
				Time: t0.UnixNano(), Status: detector.StatusFiring,
				Name: "SensorFault", Severity: detector.SeverityWarning,
				Value: tt.v, Summary: "impossible reading",
			}})
			if !json.Valid([]byte(got)) || strings.Contains(got, `"value"`) {
				t.Errorf("got %s, want valid JSON without a value key", got)
			}
		})
	}
}

// alertLine is the §3 schema, decoded strictly.
type alertLine struct {
	Time        string            `json:"time"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       *float64          `json:"value"`
}

// TestNDJSONMatchesSpec writes a stream of alerts and reads it back as a
// consumer of §3 would: one JSON object per line, with the required keys
// and labels down to exactly the level of the entity.
func TestNDJSONMatchesSpec(t *testing.T) {
	in := []change{
		{cell7, detector.Change{Time: t0.UnixNano(), Status: detector.StatusFiring, Name: "CellOverTemperature", Severity: detector.SeverityCritical, Value: 60, Summary: "hot"}},
		{module3, detector.Change{Time: t0.Add(time.Second).UnixNano(), Status: detector.StatusFiring, Name: "ModuleTemperatureDeviation", Severity: detector.SeverityWarning, Value: 3, Summary: "warm module"}},
		{string1, detector.Change{Time: t0.Add(1500 * time.Millisecond).UnixNano(), Status: detector.StatusFiring, Name: "CoolingFailure", Severity: detector.SeverityWarning, Value: math.NaN(), Summary: "string\nwarming"}},
		{upsA, detector.Change{Time: t0.Add(2 * time.Second).UnixNano(), Status: detector.StatusFiring, Name: "BatteryEndOfLifeSoon", Severity: detector.SeverityInfo, Value: 0.8, Summary: "replace by 2026-06-30"}},
		{cell7, detector.Change{Time: t0.Add(time.Minute).UnixNano(), Status: detector.StatusResolved, Name: "CellOverTemperature", Severity: detector.SeverityCritical, Value: 40, Summary: "cooled <down>"}},
	}
	wantLabels := []map[string]string{
		{"alertname": "CellOverTemperature", "severity": "critical", "ups": "ups-a", "string": "1", "module": "3", "cell": "7"},
		{"alertname": "ModuleTemperatureDeviation", "severity": "warning", "ups": "ups-a", "string": "1", "module": "3"},
		{"alertname": "CoolingFailure", "severity": "warning", "ups": "ups-a", "string": "1"},
		{"alertname": "BatteryEndOfLifeSoon", "severity": "info", "ups": "ups-a"},
		{"alertname": "CellOverTemperature", "severity": "critical", "ups": "ups-a", "string": "1", "module": "3", "cell": "7"},
	}
	out := render(t, in...)
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end in a newline: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(in) {
		t.Fatalf("got %d lines for %d alerts:\n%s", len(lines), len(in), out)
	}
	for i, line := range lines {
		t.Run(in[i].c.Name+"/"+in[i].e.Path(), func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			var a alertLine
			if err := dec.Decode(&a); err != nil {
				t.Fatalf("line %d is not a §3 alert: %v\n%s", i+1, err, line)
			}
			if dec.More() {
				t.Errorf("line %d holds more than one JSON value: %s", i+1, line)
			}
			when, err := time.Parse(time.RFC3339Nano, a.Time)
			if err != nil || !when.Equal(time.Unix(0, in[i].c.Time)) {
				t.Errorf("time %q (%v), want RFC 3339 for %v", a.Time, err, time.Unix(0, in[i].c.Time).UTC())
			}
			if a.Status != in[i].c.Status.String() || !slices.Contains([]string{"firing", "resolved"}, a.Status) {
				t.Errorf("status %q, want %q", a.Status, in[i].c.Status)
			}
			if !maps.Equal(a.Labels, wantLabels[i]) {
				t.Errorf("labels %v, want %v", a.Labels, wantLabels[i])
			}
			if a.Annotations["summary"] != in[i].c.Summary {
				t.Errorf("summary %q, want %q", a.Annotations["summary"], in[i].c.Summary)
			}
			if got, want := valueOf(a.Value), in[i].c.Value; !same(got, want) {
				t.Errorf("value %v, want %v", got, want)
			}
		})
	}
}

// valueOf returns the decoded value, NaN when the key was absent.
func valueOf(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// same reports whether a and b are equal or both NaN.
func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// TestNDJSONWriterUTC checks that an alert built with a local time is
// written in UTC.
func TestNDJSONWriterUTC(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	a := alerting.Alert{
		Time:        time.Date(2026, 3, 1, 5, 5, 0, 0, zone),
		Status:      "firing",
		Labels:      alerting.Labels{Alertname: "CoolingFailure", Severity: "warning", UPS: "ups-a"},
		Annotations: alerting.Annotations{Summary: "room warming"},
		Value:       1,
	}
	var buf bytes.Buffer
	w := alerting.NewNDJSONWriter(&buf)
	if err := w.Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-03-01T04:05:00Z","status":"firing","labels":{"alertname":"CoolingFailure","severity":"warning","ups":"ups-a"},"annotations":{"summary":"room warming"},"value":1}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
