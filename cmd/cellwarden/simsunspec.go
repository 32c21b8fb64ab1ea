package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// sunspecBase is where the simulator puts its SunSpec marker.
const sunspecBase = 40000

// sunspecFleet keeps the latest readings of a scenario's fleet and lays
// them out as SunSpec devices: one unit per UPS with models 1 (common), 802
// (battery, with its warranty date), 804 per string and 805 per module.
type sunspecFleet struct {
	ups     []sim.UPSSpec
	strings map[[2]string]map[telemetry.Metric]float64 // (ups, string) → metric → value
	cells   map[[4]string]map[telemetry.Metric]float64 // (ups, string, module, cell) → metric → value
}

func newSunSpecFleet(sc *sim.Scenario) *sunspecFleet {
	return &sunspecFleet{ups: sc.Fleet, strings: map[[2]string]map[telemetry.Metric]float64{},
		cells: map[[4]string]map[telemetry.Metric]float64{}}
}

// observe records a reading.
func (f *sunspecFleet) observe(e telemetry.Entity, m telemetry.Metric, v float64) {
	switch m.Level() {
	case telemetry.LevelString:
		k := [2]string{e.UPS, e.String}
		if f.strings[k] == nil {
			f.strings[k] = map[telemetry.Metric]float64{}
		}
		f.strings[k][m] = v
	case telemetry.LevelCell:
		k := [4]string{e.UPS, e.String, e.Module, e.Cell}
		if f.cells[k] == nil {
			f.cells[k] = map[telemetry.Metric]float64{}
		}
		f.cells[k][m] = v
	}
}

// publish lays every UPS out and stores it in the bank.
func (f *sunspecFleet) publish(bank *modbus.Bank) error {
	for ui, u := range f.ups {
		img := []uint16{0x5375, 0x6E53} // "SunS"
		add := func(id uint16, in sunspec.Instance) error {
			regs, err := sunspec.Encode(id, in)
			img = append(img, regs...)
			return err
		}
		if err := add(sunspec.ModelCommon, sunspec.Instance{Strings: map[string]string{
			"Mn": u.Vendor, "Md": u.Model, "SN": "SIM-" + u.Name, "Vr": "cellwarden-sim"}}); err != nil {
			return err
		}
		battery := sunspec.Instance{Values: map[string]float64{}}
		if !u.WarrantyUntil.IsZero() {
			epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			battery.Values["WarrDt"] = math.Floor(u.WarrantyUntil.Sub(epoch).Hours() / 24)
		}
		if err := add(sunspec.ModelBattery, battery); err != nil {
			return err
		}
		for s := 1; s <= u.Strings; s++ {
			sid := strconv.Itoa(s)
			vals := map[string]float64{"Idx": float64(s), "A_SF": -1, "V_SF": -1, "SoC_SF": 0, "SoH_SF": 0}
			if r := f.strings[[2]string{u.Name, sid}]; r != nil {
				setIf(vals, "V", r, telemetry.StringVoltageVolts, 1)
				setIf(vals, "A", r, telemetry.StringCurrentAmperes, -1) // SunSpec: positive = discharging
				setIf(vals, "SoC", r, telemetry.StringSOCRatio, 100)
				setIf(vals, "SoH", r, telemetry.StringSOHRatio, 100)
			}
			if err := add(sunspec.ModelLithiumIonString, sunspec.Instance{Values: vals}); err != nil {
				return err
			}
			for m := 1; m <= u.Modules; m++ {
				mid := strconv.Itoa(m)
				var cells []sunspec.Instance
				for c := 1; c <= u.Cells; c++ {
					cv := map[string]float64{}
					if r := f.cells[[4]string{u.Name, sid, mid, strconv.Itoa(c)}]; r != nil {
						setIf(cv, "CellV", r, telemetry.CellVoltageVolts, 1)
						setIf(cv, "CellTmp", r, telemetry.CellTemperatureCelsius, 1)
					}
					cells = append(cells, sunspec.Instance{Values: cv})
				}
				mod := sunspec.Instance{
					Values: map[string]float64{"StrIdx": float64(s), "ModIdx": float64(m), "NCell": float64(u.Cells),
						"CellV_SF": -3, "Tmp_SF": -1},
					Groups: map[string][]sunspec.Instance{"lithium-ion-module-cell": cells},
				}
				if err := add(sunspec.ModelLithiumIonModule, mod); err != nil {
					return err
				}
			}
		}
		img = append(img, 0xFFFF, 0) // end of the model chain
		if sunspecBase+len(img) > 65536 {
			return fmt.Errorf("ups %s needs %d SunSpec registers from %d, past the last register 65535: simulate fewer strings, modules or cells per UPS",
				u.Name, len(img), sunspecBase)
		}
		bank.Set(uint8(ui+1), sunspecBase, img)
	}
	return nil
}

// setIf copies a reading into a SunSpec point, times factor, unless it is
// missing (the point is then reported as not implemented).
func setIf(vals map[string]float64, point string, r map[telemetry.Metric]float64, m telemetry.Metric, factor float64) {
	if v, ok := r[m]; ok && !math.IsNaN(v) {
		vals[point] = v * factor
	}
}

// sunspecUnits lists unit → UPS for the start banner.
func sunspecUnits(sc *sim.Scenario) []string {
	var out []string
	for i, u := range sc.Fleet {
		out = append(out, "unit "+strconv.Itoa(i+1)+": ups "+u.Name+" (SunSpec at 40000)")
	}
	sort.Strings(out)
	return out
}
