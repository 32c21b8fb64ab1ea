package fleet

import (
	"sync"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/modbustest"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// failingFrom answers every read that reaches from on with an exception
// (a SunSpec device whose module model has gone bad).
type failingFrom struct {
	*modbus.Bank
	from uint16
}

func (f failingFrom) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	if r.Addr+r.Quantity > f.from {
		return nil, sv.ErrServerDeviceFailure
	}
	return f.Bank.HandleHoldingRegisters(r)
}

// A SunSpec device whose module model (805) cannot be read still delivers
// its string model's readings: one bad model costs only itself, as one bad
// block of a register map does. The unit stays up and the failed reads are
// counted by kind.
func TestSunSpecModelThatFailsCostsOnlyItself(t *testing.T) {
	str := sunspec.Instance{Values: map[string]float64{"Idx": 1, "NMod": 1, "SoC": 87.5, "SoC_SF": -1, "A": -12.5, "A_SF": -1, "V": 51.2, "V_SF": -1},
		Groups: map[string][]sunspec.Instance{"lithium_ion_string_module": {{Values: map[string]float64{"ModNCell": 2}}}}}
	mod := sunspec.Instance{Values: map[string]float64{"StrIdx": 1, "ModIdx": 1, "NCell": 2, "CellV_SF": -3, "Tmp_SF": -1},
		Groups: map[string][]sunspec.Instance{"lithium_ion_module_cell": {
			{Values: map[string]float64{"CellV": 3.301, "CellTmp": 24.5}}, {Values: map[string]float64{"CellV": 3.302, "CellTmp": 25}}}}}
	img := []uint16{0x5375, 0x6E53} // "SunS"
	var modAt uint16
	for _, m := range []sunspecModel{
		{sunspec.ModelCommon, sunspec.Instance{Strings: map[string]string{"Mn": "cellwarden", "Md": "SIM", "SN": "1"}}},
		{sunspec.ModelLithiumIonString, str},
		{sunspec.ModelLithiumIonModule, mod},
	} {
		regs, err := sunspec.Encode(m.id, m.in)
		if err != nil {
			t.Fatal(err)
		}
		if m.id == sunspec.ModelLithiumIonModule {
			modAt = 40000 + uint16(len(img))
		}
		img = append(img, regs...)
	}
	bank := modbus.NewBank(false)
	bank.Set(1, 40000, append(img, 0xFFFF, 0))
	addr := modbustest.Serve(t, failingFrom{bank, modAt + 2}) // discovery reads the header, polls fail
	c := modbus.DefaultCollector()
	c.Name, c.Address, c.Unit, c.UPS, c.String, c.Profile = "bank-1", addr, 1, "ups-s", "1", "sunspec"
	c.Interval, c.Timeout = yamlstrict.Duration(100*time.Millisecond), yamlstrict.Duration(500*time.Millisecond)
	f := New([]modbus.CollectorConfig{c}, zap.NewNop(), nil)

	reg := telemetry.NewRegistry()
	var mu sync.Mutex
	byMetric := map[telemetry.Metric]int{}
	runFleetInto(t, f, reg, func(b []telemetry.Sample) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range b {
			byMetric[s.Metric]++
		}
	}, func(string, int) {})

	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		volts, cells := byMetric[telemetry.StringVoltageVolts], byMetric[telemetry.CellVoltageVolts]+byMetric[telemetry.CellTemperatureCelsius]
		mu.Unlock()
		h := f.Health()[0].Health
		if volts >= 3 && h.Up && h.Errors["exception"] >= 3 {
			if cells != 0 {
				t.Errorf("%d cell samples from a model that cannot be read", cells)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d string voltage samples, health %+v; want the string model's readings with the unit up and the module model's failures counted", volts, h)
		}
	}
}
