package metrics_test

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/golden"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var t0 = time.Date(2026, 3, 1, 4, 5, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fleet is a store with one of everything: two cells of a module, the
// module's sensor, a string, a UPS, scores, an alert, an inventory and a
// collector's health.
type fleet struct {
	reg   *telemetry.Registry
	store *metrics.Store
	clock *clock
	ids   map[string]telemetry.EntityID
}

const inventoryYAML = `
batteries:
  - ups: ups-a
    vendor: LG Energy Solution
    model: M48126P3B
    chemistry: NMC
    manufactured: 2014-06-01
    installed: 2014-09-15
    design_life_years: 10
    warranty_until: 2024-09-15
  - ups: ups-a
    string: "2"
    serial: LGX-2
    replace_by: 2023-01-31
`

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{reg: telemetry.NewRegistry(), clock: &clock{t: t0}, ids: map[string]telemetry.EntityID{}}
	f.store = metrics.NewStore(f.reg, metrics.StoreOptions{Now: f.clock.now, StaleAfter: time.Minute})
	for _, p := range []string{"ups-a", "ups-a/1", "ups-a/1/1", "ups-a/1/1/1", "ups-a/1/1/2", "ups-a/2/1/1"} {
		s := strings.Split(p+"///", "/")
		id, err := f.reg.Intern(telemetry.Entity{UPS: s[0], String: s[1], Module: s[2], Cell: s[3]})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[p] = id
	}
	f.observe(0)
	f.store.SetScores(func(yield func(detector.CellScore)) {
		yield(detector.CellScore{Entity: f.ids["ups-a/1/1/1"], Warm: true, TemperatureResidual: 1.5, TemperatureThreshold: 3,
			VoltageResidual: -0.006, VoltageThreshold: 0.015, TemperatureOffset: 0.2, VoltageOffset: 0.001, RisingSlope: 3.6})
		yield(detector.CellScore{Entity: f.ids["ups-a/1/1/2"], TemperatureResidual: math.NaN(), TemperatureThreshold: math.NaN(),
			VoltageResidual: math.NaN(), VoltageThreshold: math.NaN(), RisingSlope: math.NaN(), TemperatureSensorFault: true})
	})
	f.store.Alert(
		alerting.Alert{Time: t0, Status: "firing", Labels: alerting.Labels{Alertname: "CellTemperatureDeviation", Severity: "warning", UPS: "ups-a", String: "1", Module: "1", Cell: "1"}},
		alerting.Alert{Time: t0.Add(time.Second), Status: "firing", Labels: alerting.Labels{Alertname: "BatteryEndOfLife", Severity: "warning", UPS: "ups-a", String: "2"}},
	)
	inv, err := inventory.Parse([]byte(inventoryYAML), "inventory.yml")
	if err != nil {
		t.Fatal(err)
	}
	f.store.SetInventory(inv)
	f.store.AddHealth(func() []metrics.CollectorHealth {
		return []metrics.CollectorHealth{{Name: "bms-1", Source: "modbus", Up: true, LastSuccess: t0, LastDuration: 40 * time.Millisecond,
			Polls: 12, Skipped: 1, Errors: map[string]uint64{"timeout": 2}}}
	})
	return f
}

// observe sends one poll of readings, offset by d from the usual values.
func (f *fleet) observe(d float64) {
	s := func(p string, m telemetry.Metric, v float64) telemetry.Sample {
		return telemetry.Sample{Time: t0.UnixNano(), Entity: f.ids[p], Metric: m, Value: v + d}
	}
	f.store.Observe(
		s("ups-a", telemetry.AmbientTemperatureCelsius, 22.5),
		s("ups-a/1", telemetry.StringVoltageVolts, 540),
		s("ups-a/1", telemetry.StringCurrentAmperes, -12.5),
		s("ups-a/1", telemetry.StringSOCRatio, 0.97),
		s("ups-a/1/1", telemetry.ModuleTemperatureCelsius, 25),
		s("ups-a/1/1/1", telemetry.CellTemperatureCelsius, 26.5),
		s("ups-a/1/1/1", telemetry.CellVoltageVolts, 4.05),
		s("ups-a/1/1/2", telemetry.CellTemperatureCelsius, 25),
		s("ups-a/1/1/2", telemetry.CellVoltageVolts, math.NaN()), // no reading: not exported
		s("ups-a/2/1/1", telemetry.CellVoltageVolts, 4.04),
	)
}

// exposition returns what a scrape of c shows, in the text format.
func exposition(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// The exposition of a small fleet, pinned: names, labels, units, help.
func TestExposition(t *testing.T) {
	f := newFleet(t)
	golden.Compare(t, "testdata/fleet.prom", []byte(exposition(t, metrics.NewCollector(f.store))))
}

func TestLint(t *testing.T) {
	f := newFleet(t)
	reg := prometheus.NewPedanticRegistry()
	self := metrics.NewSelf(reg, map[string][]string{"modbus": {"timeout"}})
	self.Samples("modbus", 10)
	self.ConfigLoaded(true, t0)
	reg.MustRegister(metrics.NewCollector(f.store))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if problems, err := testutil.CollectAndLint(metrics.NewCollector(f.store)); err != nil || len(problems) > 0 {
		t.Errorf("CollectAndLint: %v %v", problems, err)
	}
}

// A cell that stops reporting disappears after StaleAfter, with its
// scores; Forget removes a whole string at once; a resolved alert leaves
// cellwarden_alerts.
func TestVanishedDevicesVanish(t *testing.T) {
	f := newFleet(t)
	c := metrics.NewCollector(f.store)
	has := func(series string) bool { return strings.Contains(exposition(t, c), series) }
	cell11 := `cellwarden_cell_temperature_celsius{cell="1",module="1",string="1",ups="ups-a"}`
	cell21 := `cellwarden_cell_voltage_volts{cell="1",module="1",string="2",ups="ups-a"}`
	residual := `cellwarden_cell_temperature_residual_celsius{cell="1",module="1",string="1",ups="ups-a"}`
	if !has(cell11) || !has(cell21) || !has(residual) {
		t.Fatalf("fleet not exported:\n%s", exposition(t, c))
	}
	f.clock.add(50 * time.Second)
	f.store.Observe(telemetry.Sample{Time: t0.UnixNano(), Entity: f.ids["ups-a/2/1/1"], Metric: telemetry.CellVoltageVolts, Value: 4.04})
	f.clock.add(20 * time.Second)
	if has(cell11) || has(residual) {
		t.Errorf("string 1 still exported 70 s after its last reading")
	}
	if !has(cell21) {
		t.Errorf("string 2, renewed 20 s ago, is gone")
	}
	f.store.Forget(telemetry.Entity{UPS: "ups-a", String: "2"})
	if has(cell21) || has(`alertname="BatteryEndOfLife"`) {
		t.Errorf("string 2 still exported after Forget")
	}
	f.store.Alert(alerting.Alert{Status: "resolved", Labels: alerting.Labels{Alertname: "CellTemperatureDeviation", Severity: "warning", UPS: "ups-a", String: "1", Module: "1", Cell: "1"}})
	if has("cellwarden_alerts{") {
		t.Errorf("resolved alert still exported:\n%s", exposition(t, c))
	}
}

// Scrapes run while the detector goroutine updates the store (run with
// -race).
func TestScrapeWhileUpdating(t *testing.T) {
	f := newFleet(t)
	reg := metrics.NewRegistry(f.store)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			f.observe(float64(i) / 100)
			f.store.Alert(alerting.Alert{Time: t0, Status: []string{"firing", "resolved"}[i%2], Labels: alerting.Labels{Alertname: "X", Severity: "info", UPS: "ups-a"}})
		}
	})
	for range 20 {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
