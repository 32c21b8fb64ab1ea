package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/fleet"
	"github.com/cellwarden/cellwarden/collector/modbus/modbustest"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// A BMS's own alarm bits reach /metrics as cellwarden_bms_alarm, 1 while
// set and 0 once cleared (or never set), labelled with the collector, UPS and string of
// its entry and the alarm's name in the register map.
func TestServeExportsBMSAlarms(t *testing.T) {
	bms := startBMS(t, 1, 1)
	bms.bank.Set(1, 0x2140, []uint16{1 << 0}) // Soltaro level-2 word: level2_cell_voltage_high
	dir := t.TempDir()
	cfg := testConfig{bmsAddr: bms.addr, modules: 1, units: []modbusUnit{{name: "rack-1", ups: "ups-a", unit: 1}}}
	d := start(t, cfg.write(t, dir), filepath.Join(dir, "state"), Shard{})
	alarm := func(name string) map[string]string {
		return map[string]string{"collector": "rack-1", "ups": "ups-a", "string": "1", "alarm": name}
	}
	// The series come from the last poll, which may have missed a block:
	// wait for a scrape of a whole poll's alarms.
	waitFor(t, "rack-1's 19 alarm series in /metrics, level2_cell_voltage_high at 1, level1_cell_voltage_high at 0", func() bool {
		m := d.scrape()
		high2, ok2 := m.Value("cellwarden_bms_alarm", alarm("level2_cell_voltage_high"))
		high1, ok1 := m.Value("cellwarden_bms_alarm", alarm("level1_cell_voltage_high"))
		n := len(m.Find("cellwarden_bms_alarm", map[string]string{"collector": "rack-1"}))
		return ok2 && high2 == 1 && ok1 && high1 == 0 && n == 19
	})
	bms.bank.Set(1, 0x2140, []uint16{0})
	bms.bank.Set(1, 0x2141, []uint16{1 << 3}) // level1_cell_voltage_low
	waitFor(t, "level2_cell_voltage_high back at 0, level1_cell_voltage_low at 1", func() bool {
		m := d.scrape()
		high, ok1 := m.Value("cellwarden_bms_alarm", alarm("level2_cell_voltage_high"))
		low, ok2 := m.Value("cellwarden_bms_alarm", alarm("level1_cell_voltage_low"))
		return ok1 && ok2 && high == 0 && low == 1
	})
	if err := d.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}

// The alarm series pass the exposition linter.
func TestBMSAlarmMetricLints(t *testing.T) {
	bms := startBMS(t, 1, 1)
	bms.bank.Set(1, 0x2140, []uint16{1 << 0})
	c := modbus.DefaultCollector()
	m, err := modbus.Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	m.SetModules(1)
	c.Name, c.Address, c.Unit, c.UPS, c.String, c.Map = "rack-1", bms.addr, 1, "ups-a", "1", m
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(80*time.Millisecond)
	f := fleet.New([]modbus.CollectorConfig{c}, zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, telemetry.NewRegistry(), func([]telemetry.Sample) {}, func(string, int) {})
		f.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	d := &daemon{}
	d.running.Store(&collectors{fleet: f})
	// The series come from the last poll, which may have missed a block:
	// gather until one gathering holds the map's 19, and lint that one.
	var got prometheus.Gatherer
	waitFor(t, "a gathering of the map's 19 alarm series", func() bool {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(&modbusMetrics{d: d})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		got = prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil })
		n, err := testutil.GatherAndCount(got, "cellwarden_bms_alarm")
		return err == nil && n == 19
	})
	problems, err := testutil.GatherAndLint(got, "cellwarden_bms_alarm")
	if err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// sunspecImage lays out a SunSpec device: models 1, 802 with WarrDt (days
// since 2000) and Evt1 as given, 804 for string 1 and 805 with module 1's
// 12 cells, healthy.
func sunspecImage(t *testing.T, warrDt, evt1 float64) []uint16 {
	t.Helper()
	cells := make([]sunspec.Instance, cellsPerModule)
	for c := range cells {
		cells[c] = sunspec.Instance{Values: map[string]float64{"CellV": 3.300 + 0.001*float64(c%4), "CellTmp": 25 + 0.1*float64(c%3)}}
	}
	img := []uint16{0x5375, 0x6E53} // "SunS"
	for _, m := range []struct {
		id uint16
		in sunspec.Instance
	}{
		{sunspec.ModelCommon, sunspec.Instance{Strings: map[string]string{"Mn": "cellwarden", "Md": "TEST", "SN": "1"}}},
		{sunspec.ModelBattery, sunspec.Instance{Values: map[string]float64{"WarrDt": warrDt, "Evt1": evt1}}},
		{sunspec.ModelLithiumIonString, sunspec.Instance{Values: map[string]float64{"Idx": 1, "V": 39.6, "V_SF": -1, "A": 0, "A_SF": -1,
			"SoC": 90, "SoC_SF": 0, "SoH": 95, "SoH_SF": 0}}},
		{sunspec.ModelLithiumIonModule, sunspec.Instance{
			Values: map[string]float64{"StrIdx": 1, "ModIdx": 1, "NCell": cellsPerModule, "CellV_SF": -3, "Tmp_SF": -1},
			Groups: map[string][]sunspec.Instance{"lithium-ion-module-cell": cells}}},
	} {
		regs, err := sunspec.Encode(m.id, m.in)
		if err != nil {
			t.Fatal(err)
		}
		img = append(img, regs...)
	}
	return append(img, 0xFFFF, 0)
}

// serveSunSpec serves img as unit 1 at 40000 over Modbus TCP until the
// test ends and returns the address.
func serveSunSpec(t *testing.T, img []uint16) string {
	t.Helper()
	bank := modbus.NewBank(false)
	bank.Set(1, 40000, img)
	return modbustest.Serve(t, bank)
}

// The warranty date a SunSpec BMS holds in model 802 (WarrDt) reaches the
// battery-age rules in serve: its string's warranty end is in /metrics
// and, the date being past, the string is at its end of life. The
// device's 802 event bits are exported for the battery as a whole.
func TestServeTakesTheWarrantyFromSunSpec(t *testing.T) {
	warranty := time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)
	days := warranty.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Hours() / 24
	addr := serveSunSpec(t, sunspecImage(t, days, 1<<1)) // Evt1: OVER_TEMP_ALARM
	dir := t.TempDir()
	cfg := fmt.Sprintf(`collectors:
  modbus:
    - {name: bank-1, address: %q, unit: 1, profile: sunspec, ups: ups-s, interval: 200ms, timeout: 150ms}
`, addr)
	path := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, path, filepath.Join(dir, "state"), Shard{})
	str := map[string]string{"ups": "ups-s", "string": "1"}
	waitFor(t, "ups-s/1's warranty end from SunSpec 802 WarrDt in /metrics", func() bool {
		v, ok := d.scrape().Value("cellwarden_battery_warranty_until_timestamp_seconds", str)
		return ok && v == float64(warranty.Unix())
	})
	eol := map[string]string{"ups": "ups-s", "string": "1", "state": "end_of_life"}
	waitFor(t, "ups-s/1 at its end of life", func() bool {
		v, ok := d.scrape().Value("cellwarden_battery_lifecycle_state", eol)
		return ok && v == 1
	})
	// The alarm series come from the last poll, which may have missed a
	// block: wait for a scrape of one that read model 802.
	alarm := map[string]string{"collector": "bank-1", "ups": "ups-s", "string": "", "alarm": "802.Evt1.OVER_TEMP_ALARM"}
	waitFor(t, "802.Evt1.OVER_TEMP_ALARM at 1 in /metrics", func() bool {
		v, ok := d.scrape().Value("cellwarden_bms_alarm", alarm)
		return ok && v == 1
	})
	if err := d.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}
