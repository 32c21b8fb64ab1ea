package metrics_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/golden"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fastExposition returns what NewHandler writes of store alone.
func fastExposition(t *testing.T, store *metrics.Store) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.NewHandler(prometheus.NewRegistry(), store, zap.NewNop()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// The handler writes the small fleet's exposition byte for byte as
// client_golang did from the Collector (the golden file TestExposition
// pins).
func TestHandlerExposition(t *testing.T) {
	f := newFleet(t)
	golden.Compare(t, "testdata/fleet.prom", []byte(fastExposition(t, f.store)))
}

// sample is one parsed series, its value as text so that NaN equals NaN.
type sample struct{ family, typ, help, labels, value string }

func samples(t *testing.T, mfs map[string]*dto.MetricFamily) []sample {
	t.Helper()
	var out []sample
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			slices.Sort(l)
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			if v == 0 {
				v = 0 // the text has no -0
			}
			out = append(out, sample{name, mf.GetType().String(), mf.GetHelp(), strings.Join(l, "\x00"), fmt.Sprint(v)})
		}
	}
	slices.SortFunc(out, func(a, b sample) int { return strings.Compare(a.family+"\xff"+a.labels, b.family+"\xff"+b.labels) })
	return out
}

// A store with what the text format must escape and the values it must
// spell as Prometheus does, the battery-age verdicts, several cells with
// the same cell and module identifiers, and entities added after a scrape.
func awkwardStore(t *testing.T) (*metrics.Store, func(telemetry.Entity) telemetry.EntityID) {
	t.Helper()
	reg := telemetry.NewRegistry()
	store := metrics.NewStore(reg, metrics.StoreOptions{Now: func() time.Time { return t0 }})
	intern := func(e telemetry.Entity) telemetry.EntityID {
		id, err := reg.Intern(e)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	store.SetFindings([]lifecycle.Finding{
		{UPS: "ups-b", String: `str "b"`, State: lifecycle.StateSoon, EndOfLife: inventory.DateOf(t0.AddDate(0, 3, 0)),
			Installed: lifecycle.Dated{Date: inventory.DateOf(t0.AddDate(-9, 0, 0))}, Ack: &lifecycle.Ack{Owner: "facilities"},
			SOH: &lifecycle.SOHStatus{HasTrend: true, SlopePerYear: -0.021, Crossing: inventory.DateOf(t0.AddDate(1, 0, 0))}},
		{UPS: "ups-a", String: "1", State: lifecycle.StateOK},
	})
	store.AddHealth(func() []metrics.CollectorHealth {
		return []metrics.CollectorHealth{{Name: "mqtt-b", Source: "mqtt", Errors: map[string]uint64{"bad_payload": 3, "connect": 1}},
			{Name: "bms-a", Source: "modbus", Up: true, LastSuccess: t0, Polls: 1 << 60}}
	})
	return store, intern
}

func fillAwkward(store *metrics.Store, intern func(telemetry.Entity) telemetry.EntityID, ups string) {
	var ss []telemetry.Sample
	var scores []detector.CellScore
	values := []float64{math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1, -1, 0, 1e-300, 123456789.125, 3.3}
	i := 0
	for _, str := range []string{`str "b"`, `back\slash`, "1", "line\nfeed"} {
		for _, mod := range []string{"1", "10", "é", " sp"} {
			for _, cell := range []string{"1", "2", `q"`, "10"} {
				id := intern(telemetry.Entity{UPS: ups, String: str, Module: mod, Cell: cell})
				v := values[i%len(values)]
				ss = append(ss, telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: v},
					telemetry.Sample{Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: -v})
				scores = append(scores, detector.CellScore{Entity: id, Warm: i%3 != 0, TemperatureResidual: []float64{math.NaN(), 1.5, math.Inf(1)}[i%3],
					TemperatureThreshold: []float64{3, 0, 2}[i%4%3], VoltageResidual: v, VoltageThreshold: 0.015, TemperatureOffset: math.NaN(),
					VoltageOffset: v, RisingSlope: []float64{math.NaN(), 7.2, math.Inf(-1)}[i%3], TemperatureSensorFault: i%5 == 0, VoltageSensorFault: i%7 == 0})
				i++
			}
			ss = append(ss, telemetry.Sample{Entity: intern(telemetry.Entity{UPS: ups, String: str, Module: mod}), Metric: telemetry.ModuleTemperatureCelsius, Value: float64(i)})
		}
		ss = append(ss, telemetry.Sample{Entity: intern(telemetry.Entity{UPS: ups, String: str}), Metric: telemetry.StringSOCRatio, Value: 0.5})
	}
	ss = append(ss, telemetry.Sample{Entity: intern(telemetry.Entity{UPS: ups}), Metric: telemetry.AmbientTemperatureCelsius, Value: math.NaN()},
		telemetry.Sample{Entity: intern(telemetry.Entity{UPS: ups}), Metric: telemetry.StringSOCRatio, Value: 1}) // wrong level: dropped
	store.Observe(ss...)
	store.SetScores(func(yield func(detector.CellScore)) {
		for _, s := range scores {
			yield(s)
		}
	})
	store.Alert(alerting.Alert{Time: t0, Status: "firing", Labels: alerting.Labels{Alertname: "CellOverTemperature", Severity: "critical", UPS: ups, String: "line\nfeed", Module: `back\slash`, Cell: `q"`}},
		alerting.Alert{Time: t0.Add(time.Millisecond), Status: "firing", Labels: alerting.Labels{Alertname: "BatteryEndOfLife", Severity: "warning", UPS: ups, String: `str "b"`}})
}

// The handler's text is the Collector's, byte for byte and once parsed
// back, for every family, label and value: escaped label values, NaN,
// ±Inf, -0, counters, the battery-age verdicts, entities added between
// scrapes.
func TestHandlerMatchesCollector(t *testing.T) {
	store, intern := awkwardStore(t)
	for _, ups := range []string{"ups-m", "ups-z", "ups-a"} {
		fillAwkward(store, intern, ups)
		fast, want := fastExposition(t, store), exposition(t, metrics.NewCollector(store))
		if fast != want {
			t.Fatalf("after %s: the handler's text differs from the Collector's:\n--- handler\n%s\n--- collector\n%s", ups, fast, want)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := parser.TextToMetricFamilies(strings.NewReader(fast))
		if err != nil {
			t.Fatalf("the handler's text does not parse: %v", err)
		}
		gathered, err := store.Gather()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*dto.MetricFamily{}
		for _, mf := range gathered {
			byName[mf.GetName()] = mf
		}
		if got, want := samples(t, parsed), samples(t, byName); !slices.Equal(got, want) {
			t.Errorf("after %s: parsed %d samples, the Collector has %d; first difference: %v", ups, len(got), len(want), firstDiff(got, want))
		}
	}
	for _, want := range []string{`string="line\nfeed"`, `module="back\\slash"`, `cell="q\""`, " NaN\n", " +Inf\n", " -Inf\n", " 1.152921504606847e+18\n",
		`cellwarden_cell_sensor_fault{cell="1",module=" sp",sensor="temperature",string="1",ups="ups-a"} `} {
		if !strings.Contains(fastExposition(t, store), want) {
			t.Errorf("the exposition lacks %q", want)
		}
	}
}

func firstDiff(a, b []sample) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%q vs %q", a[i], b[i])
		}
	}
	return "one is longer"
}

// gatherer is a Gatherer of fixed families, with an error.
type gatherer struct {
	reg *prometheus.Registry
	err error
}

func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.reg.Gather()
	return mfs, errors.Join(err, g.err)
}

// The whole response of the handler served over HTTP: the registry's
// families, then the Store's; plain and gzipped as the scraper asks, text
// whatever format it prefers; ?name[]= filters; an error of the registry
// is logged and the rest served.
func TestHandlerResponse(t *testing.T) {
	f := newFleet(t)
	reg := prometheus.NewPedanticRegistry()
	self := metrics.NewSelf(reg, map[string][]string{"modbus": {"timeout"}})
	self.Samples("modbus", 10)
	self.ConfigLoaded(true, t0)
	core, logs := observer.New(zap.InfoLevel)
	srv := httptest.NewServer(metrics.NewHandler(reg, f.store, zap.New(core)))
	defer srv.Close()
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	const text = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	for _, tc := range []struct {
		name, accept, acceptEncoding, encoding string
	}{
		{"plain", "", "", ""},
		{"gzip", "", "gzip", "gzip"},
		{"as Prometheus asks", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "gzip", "gzip"},
		{"OpenMetrics only", "application/openmetrics-text;version=1.0.0", "gzip;q=0.5, identity", ""},
		{"identity refused", "", "gzip;q=0.1, identity;q=0", "gzip"},
		{"anything", "", "*", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get("/metrics", "Accept", tc.accept, "Accept-Encoding", tc.acceptEncoding)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != text || resp.Header.Get("Content-Encoding") != tc.encoding ||
				!slices.Equal(resp.Header.Values("Vary"), []string{"Accept", "Accept-Encoding"}) {
				t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
			}
			golden.Compare(t, "testdata/handler.prom", []byte(body))
		})
	}
	_, body := get("/metrics?name[]=cellwarden_samples_total&name[]=cellwarden_string_soc_ratio")
	want := `# HELP cellwarden_samples_total Samples received, by source.
# TYPE cellwarden_samples_total counter
cellwarden_samples_total{source="modbus"} 10
# HELP cellwarden_string_soc_ratio Latest reading of string_soc_ratio (interfaces.md §1).
# TYPE cellwarden_string_soc_ratio gauge
cellwarden_string_soc_ratio{string="1",ups="ups-a"} 0.97
`
	if body != want {
		t.Errorf("name[] filter:\n%s\nwant\n%s", body, want)
	}

	srv.Config.Handler = metrics.NewHandler(gatherer{reg, errors.New("a collector failed")}, f.store, zap.New(core))
	if resp, body := get("/metrics"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "cellwarden_samples_total{") || !strings.Contains(body, "cellwarden_cell_voltage_volts{") {
		t.Errorf("with a failing collector: %d\n%s", resp.StatusCode, body)
	}
	srv.Config.Handler = metrics.NewHandler(gatherer{prometheus.NewRegistry(), errors.New("a collector failed")}, nil, zap.New(core))
	if resp, body := get("/metrics"); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "a collector failed") {
		t.Errorf("nothing gathered: %d %q, want 500", resp.StatusCode, body)
	}
	if n := logs.FilterMessage("error gathering metrics").Len(); n != 2 {
		t.Errorf("%d gathering errors logged, want 2", n)
	}
}

// Scrapes through the handler run while the detector goroutine updates
// the store and new cells appear (run with -race).
func TestHandlerWhileUpdating(t *testing.T) {
	f := newFleet(t)
	h := metrics.NewHandler(metrics.NewRegistry(nil), f.store, zap.NewNop())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			f.observe(float64(i) / 100)
			id, _ := f.reg.Intern(telemetry.Entity{UPS: "ups-b", String: "1", Module: "1", Cell: fmt.Sprint(i)})
			f.store.Observe(telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: 4})
			f.store.SetScores(func(yield func(detector.CellScore)) { yield(detector.CellScore{Entity: id}) })
		}
	})
	for range 20 {
		for _, enc := range []string{"", "gzip"} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", enc)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body io.Reader = rec.Body
			if enc == "gzip" {
				var err error
				if body, err = gzip.NewReader(rec.Body); err != nil {
					t.Fatal(err)
				}
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			if _, err := parser.TextToMetricFamilies(body); err != nil {
				t.Fatalf("scrape does not parse: %v", err)
			}
		}
	}
	wg.Wait()
}

// A large exposition goes out in many writes and gzips to what it says.
func TestHandlerLargeExposition(t *testing.T) {
	reg := telemetry.NewRegistry()
	store := metrics.NewStore(reg, metrics.StoreOptions{})
	var ss []telemetry.Sample
	for i := range 5000 {
		id, _ := reg.Intern(telemetry.Entity{UPS: "u", String: fmt.Sprint(i / 256), Module: fmt.Sprint(i / 16 % 16), Cell: fmt.Sprint(i % 16)})
		ss = append(ss, telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: 3 + float64(i)/1e4})
	}
	store.Observe(ss...)
	h := metrics.NewHandler(prometheus.NewRegistry(), store, zap.NewNop())
	plain := httptest.NewRecorder()
	h.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	gz := httptest.NewRecorder()
	h.ServeHTTP(gz, req)
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false) // one gzip member, as every gunzip reads it
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain.Body.Bytes()) || gz.Body.Len() > 0 || strings.Count(plain.Body.String(), "\n") != 5002 || plain.Body.Len() < 200_000 {
		t.Errorf("gzipped %d bytes (%d left after the member), plain %d bytes, %d lines", len(unzipped), gz.Body.Len(), plain.Body.Len(), strings.Count(plain.Body.String(), "\n"))
	}
}
