package fleet

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/modbustest"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// unitConfig is a Soltaro-layout unit with one module polled every 100 ms.
func unitConfig(t *testing.T, name, addr string, unit int, ups string) modbus.CollectorConfig {
	t.Helper()
	m, err := modbus.Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	m.SetModules(1)
	c := modbus.DefaultCollector()
	c.Name, c.Address, c.Unit, c.UPS, c.String, c.Map = name, addr, unit, ups, "1", m
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(80*time.Millisecond)
	return c
}

// The units of one gateway share its link; a unit the gateway does not
// answer for, and a BMS on an address where nothing listens, are down
// without holding up the unit that answers, whose cells are emitted with
// the poll's time from the fleet's clock.
func TestFleetPollsEachUnitAndKeepsItsHealth(t *testing.T) {
	bank := modbus.NewBank(false)
	good := unitConfig(t, "good", "", 1, "ups-a")
	bank.Fill(1, good.Map)
	addr, words, _ := good.Map.Encode(telemetry.CellTemperatureCelsius, "1", "4", 31.5)
	bank.Set(1, addr, words)
	good.Address = serveBank(t, bank)
	absent := unitConfig(t, "absent", good.Address, 7, "ups-b")
	dead := unitConfig(t, "dead", mosquittotest.FreeAddr(t), 1, "ups-c")

	stamp := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	f := New([]modbus.CollectorConfig{good, absent, dead}, zap.NewNop(), func() time.Time { return stamp })
	if f.Len() != 3 || len(f.links) != 2 {
		t.Fatalf("%d units on %d links, want 3 on 2", f.Len(), len(f.links))
	}
	reg := telemetry.NewRegistry()
	var mu sync.Mutex
	byUPS := map[string]int{}
	var hot []telemetry.Sample
	stop := runFleetInto(t, f, reg, func(b []telemetry.Sample) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range b {
			e := reg.Info(s.Entity).Entity
			byUPS[e.UPS]++
			if e.Cell == "4" && s.Metric == telemetry.CellTemperatureCelsius {
				hot = append(hot, s)
			}
		}
	}, func(string, int) { t.Error("readings refused") })
	health := func() map[string]Unit {
		out := map[string]Unit{}
		for _, u := range f.Health() {
			out[u.Name] = u
		}
		return out
	}
	deadline := time.Now().Add(time.Minute)
	for {
		h := health()
		if h["good"].Polls >= 5 && h["absent"].Polls >= 2 && h["dead"].Polls >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for polls: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	h := health()
	if !h["good"].Up || h["absent"].Up || h["dead"].Up {
		t.Errorf("up: good %v, absent %v, dead %v; want true, false, false", h["good"].Up, h["absent"].Up, h["dead"].Up)
	}
	if len(h["absent"].Errors) == 0 || len(h["dead"].Errors) == 0 {
		t.Errorf("errors: absent %v, dead %v; want some for both", h["absent"].Errors, h["dead"].Errors)
	}
	mu.Lock()
	defer mu.Unlock()
	if byUPS["ups-a"] == 0 || byUPS["ups-b"] != 0 || byUPS["ups-c"] != 0 {
		t.Errorf("samples by UPS: %v, want only ups-a", byUPS)
	}
	if len(hot) == 0 || hot[0].Value != 31.5 || !hot[0].Timestamp().Equal(stamp) {
		t.Errorf("cell 4's temperature: %+v, want 31.5 °C at %s", hot, stamp)
	}
}

// A SunSpec BMS's model 802 says when its batteries' warranty ends: the
// fleet hands that date on for the battery-age rules.
func TestFleetReportsTheSunSpecWarranty(t *testing.T) {
	addr := sunspecBank(t,
		sunspecModel{sunspec.ModelCommon, sunspec.Instance{Strings: map[string]string{"Mn": "cellwarden", "Md": "SIM", "SN": "1"}, Values: map[string]float64{"DA": 1}}},
		sunspecModel{sunspec.ModelBattery, sunspec.Instance{Values: map[string]float64{"AHRtg_SF": 0, "WHRtg_SF": 0, "WChaDisChaMax_SF": 0,
			"SoC_SF": 0, "SoH_SF": 0, "V_SF": 0, "CellV_SF": 0, "A_SF": 0, "AMax_SF": 0, "W_SF": 0,
			"WarrDt": 12676}}}) // 2034-09-15
	c := modbus.DefaultCollector()
	c.Name, c.Address, c.Unit, c.UPS, c.Profile = "bank-1", addr, 1, "ups-s", "sunspec"
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(80*time.Millisecond)
	f := New([]modbus.CollectorConfig{c}, zap.NewNop(), nil)
	runFleet(t, f)
	want := time.Date(2034, 9, 15, 0, 0, 0, 0, time.UTC)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		ds := f.Dates()
		if len(ds) == 1 && ds[0].Date.Equal(want) && ds[0].UPS == "ups-s" && ds[0].Unit == "bank-1" &&
			ds[0].Field == "warranty_until" && ds[0].String == "" && ds[0].Point == "SunSpec 802 WarrDt" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device dates %+v, want the warranty to %s of ups-s from bank-1 (health %+v)", ds, want, f.Health())
		}
	}
}

// A register map's date points (here the installation day as YYYYMMDD
// and the warranty as days since 2000) are handed on with the unit, its
// UPS and string and the register they came from; a point reading 0 is
// "not set" and left out.
func TestFleetReportsMappedDatePoints(t *testing.T) {
	m, err := modbus.ParseMap([]byte(`name: dated
points:
  - {name: voltage, address: 100, type: uint16, scale: 0.1, metric: string_voltage_volts}
  - {name: installed, address: 200, type: uint32, date: installed, date_format: yyyymmdd}
  - {name: warranty, address: 202, type: uint16, date: warranty_until, date_format: days_since_2000}
  - {name: made, address: 203, type: uint16, date: manufactured, date_format: yymmdd, sentinels: [65535]}
`), "dated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bank := modbus.NewBank(false)
	bank.Fill(1, m)
	bank.Set(1, 100, []uint16{7680})
	bank.Set(1, 200, []uint16{20140915 >> 16, 20140915 & 0xFFFF, 12676, 0})
	addr := serveBank(t, bank)
	c := modbus.DefaultCollector()
	c.Name, c.Address, c.Unit, c.UPS, c.String, c.Map = "rack-1", addr, 1, "ups-m", "2", m
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(80*time.Millisecond)
	f := New([]modbus.CollectorConfig{c}, zap.NewNop(), nil)
	runFleet(t, f)
	want := []DeviceDate{
		{Unit: "rack-1", UPS: "ups-m", String: "2", Field: "installed", Date: time.Date(2014, 9, 15, 0, 0, 0, 0, time.UTC), Point: "register 200"},
		{Unit: "rack-1", UPS: "ups-m", String: "2", Field: "warranty_until", Date: time.Date(2034, 9, 15, 0, 0, 0, 0, time.UTC), Point: "register 202"},
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		ds := f.Dates()
		if reflect.DeepEqual(ds, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device dates %+v\nwant %+v (health %+v)", ds, want, f.Health())
		}
	}
}

// serveBank serves bank over Modbus TCP until the test ends.
func serveBank(t *testing.T, bank *modbus.Bank) string { return modbustest.Serve(t, bank) }

// sunspecModel is one model of a SunSpec device image.
type sunspecModel struct {
	id uint16
	in sunspec.Instance
}

// sunspecBank lays out a SunSpec device of the given models as unit 1 at
// 40000 and serves it until the test ends; it returns the address.
func sunspecBank(t *testing.T, models ...sunspecModel) string {
	t.Helper()
	img := []uint16{0x5375, 0x6E53} // "SunS"
	for _, m := range models {
		regs, err := sunspec.Encode(m.id, m.in)
		if err != nil {
			t.Fatal(err)
		}
		img = append(img, regs...)
	}
	bank := modbus.NewBank(false)
	bank.Set(1, 40000, append(img, 0xFFFF, 0))
	return serveBank(t, bank)
}

// runFleet polls f, discarding the samples, until the test ends.
func runFleet(t *testing.T, f *Fleet) {
	runFleetInto(t, f, telemetry.NewRegistry(), func([]telemetry.Sample) {}, func(string, int) {})
}

// runFleetInto polls f into emit and reject until stop is called or the
// test ends.
func runFleetInto(t *testing.T, f *Fleet, reg *telemetry.Registry, emit func([]telemetry.Sample), reject func(string, int)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, reg, emit, reject)
		f.Close()
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}
