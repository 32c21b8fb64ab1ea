package fleet

import (
	"slices"
	"strings"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/modbustest"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// waitAlarms polls f.Alarms until cond holds, for up to a minute.
func waitAlarms(t *testing.T, f *Fleet, what string, cond func(map[string]Alarm) bool) map[string]Alarm {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		byName := map[string]Alarm{}
		for _, a := range f.Alarms() {
			byName[a.String+"/"+a.Name] = a
		}
		if cond(byName) {
			return byName
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: alarms %+v (health %+v)", what, byName, f.Health())
		}
	}
}

// logged returns "message device alarm" for every alarm transition logged.
func logged(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		if e.Level == zapcore.InfoLevel && (e.Message == "BMS alarm raised" || e.Message == "BMS alarm cleared") {
			f := e.ContextMap()
			out = append(out, e.Message+" "+f["device"].(string)+" "+f["alarm"].(string))
		}
	}
	return out
}

// A register map's alarm bits leave the fleet with the unit, its UPS and
// string, set or clear as the last poll read them; raising and clearing
// one is logged once each, naming the device and the alarm.
func TestFleetReportsMapAlarms(t *testing.T) {
	c := unitConfig(t, "rack-1", "", 1, "ups-a")
	bank := modbus.NewBank(false)
	bank.Fill(1, c.Map)
	bank.Set(1, 0x2140, []uint16{1<<0 | 1<<6}) // level2_cell_voltage_high, level2_charge_temperature_high
	c.Address = serveBank(t, bank)
	core, logs := observer.New(zapcore.InfoLevel)
	f := New([]modbus.CollectorConfig{c}, zap.New(core), nil)
	runFleet(t, f)
	// Alarms come from the last poll, which may have missed a block: wait
	// for one that read all of the map's 19 (12 + 4 + 3 alarm bits).
	got := waitAlarms(t, f, "the map's 19 alarms, level2_cell_voltage_high raised", func(m map[string]Alarm) bool {
		return len(m) == 19 && m["1/level2_cell_voltage_high"].Active
	})
	if a := got["1/level2_charge_temperature_high"]; !a.Active || a.Unit != "rack-1" || a.UPS != "ups-a" || a.Point != "register 8512 bit 6" {
		t.Errorf("level2_charge_temperature_high: %+v", a)
	}
	if a, ok := got["1/level1_cell_voltage_high"]; !ok || a.Active {
		t.Errorf("level1_cell_voltage_high: %+v, %v: want it listed, clear", a, ok)
	}
	bank.Set(1, 0x2140, []uint16{1 << 6})
	waitAlarms(t, f, "level2_cell_voltage_high to clear", func(m map[string]Alarm) bool {
		a, ok := m["1/level2_cell_voltage_high"]
		return ok && !a.Active
	})
	want := []string{"BMS alarm raised rack-1 level2_cell_voltage_high", "BMS alarm raised rack-1 level2_charge_temperature_high",
		"BMS alarm cleared rack-1 level2_cell_voltage_high"}
	if got := logged(logs); !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

// A SunSpec BMS's event bits leave the fleet: 802's for the battery as a
// whole (no string), 804's for its string.
func TestFleetReportsSunSpecEventBits(t *testing.T) {
	addr := sunspecBank(t,
		sunspecModel{sunspec.ModelCommon, sunspec.Instance{Strings: map[string]string{"Mn": "cellwarden", "Md": "SIM", "SN": "1"}}},
		sunspecModel{sunspec.ModelBattery, sunspec.Instance{Values: map[string]float64{"Evt1": 1 << 1}}},                     // OVER_TEMP_ALARM
		sunspecModel{sunspec.ModelLithiumIonString, sunspec.Instance{Values: map[string]float64{"Idx": 2, "Evt1": 1 << 20}}}) // CONTACTOR_ERROR
	c := modbus.DefaultCollector()
	c.Name, c.Address, c.Unit, c.UPS, c.Profile = "bank-1", addr, 1, "ups-s", "sunspec"
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(80*time.Millisecond)
	f := New([]modbus.CollectorConfig{c}, zap.NewNop(), nil)
	runFleet(t, f)
	// Alarms come from the last poll, which may have missed a block: wait
	// for one that read both 802 and 804.
	got := waitAlarms(t, f, "the SunSpec event bits of 802 and 804", func(m map[string]Alarm) bool {
		var has802, has804 bool
		for k := range m {
			has802 = has802 || strings.HasPrefix(k, "/802.")
			has804 = has804 || strings.HasPrefix(k, "2/804.")
		}
		return has802 && has804
	})
	var on []string
	for k, a := range got {
		if a.Active {
			on = append(on, k)
		}
		if a.Unit != "bank-1" || a.UPS != "ups-s" {
			t.Errorf("alarm %+v of another device", a)
		}
	}
	slices.Sort(on)
	if want := []string{"/802.Evt1.OVER_TEMP_ALARM", "2/804.Evt1.CONTACTOR_ERROR"}; !slices.Equal(on, want) {
		t.Errorf("active alarms %q, want %q", on, want)
	}
	if a := got["/802.Evt1.OVER_TEMP_ALARM"]; a.Point != "SunSpec 802 Evt1 bit 1" {
		t.Errorf("OVER_TEMP_ALARM's point %q", a.Point)
	}
}

// slowUnits serves a bank with units that answer only after a delay.
type slowUnits struct {
	*modbus.Bank
	delay map[uint8]time.Duration
}

func (s slowUnits) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	time.Sleep(s.delay[r.UnitId])
	return s.Bank.HandleHoldingRegisters(r)
}

// Units behind one gateway share a link but each keeps its timeout: the
// first entry's 50 ms does not cut short the second's 1 s for a unit that
// answers in 150 ms.
func TestFleetKeepsEachUnitsTimeout(t *testing.T) {
	fast := unitConfig(t, "fast", "", 1, "ups-a")
	slow := unitConfig(t, "slow", "", 2, "ups-a")
	fast.Timeout = yamlstrict.Duration(50 * time.Millisecond)
	slow.Interval, slow.Timeout = yamlstrict.Duration(2*time.Second), yamlstrict.Duration(time.Second)
	bank := modbus.NewBank(false)
	bank.Fill(1, fast.Map)
	bank.Fill(2, slow.Map)
	fast.Address = modbustest.Serve(t, slowUnits{bank, map[uint8]time.Duration{2: 150 * time.Millisecond}})
	slow.Address = fast.Address
	f := New([]modbus.CollectorConfig{fast, slow}, zap.NewNop(), nil)
	if len(f.links) != 1 {
		t.Fatalf("%d links for one endpoint", len(f.links))
	}
	runFleet(t, f)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		h := map[string]Unit{}
		for _, u := range f.Health() {
			h[u.Name] = u
		}
		if h["slow"].Polls >= 2 && h["fast"].Polls >= 2 {
			if !h["slow"].Up || h["slow"].Errors["timeout"] != 0 || !h["fast"].Up {
				t.Errorf("health %+v: want both up, the slow unit without timeouts", h)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for polls: %+v", h)
		}
	}
}
