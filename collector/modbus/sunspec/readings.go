package sunspec

import (
	"math"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Reading is one telemetry value decoded from a SunSpec model: a
// modbus.Reading plus the string it belongs to.
type Reading struct {
	modbus.Reading
	// String is the index of the battery string as the device numbers it
	// (804 Idx, 805 StrIdx; one-based), as a decimal string; empty when
	// the device does not implement the index.
	String string
}

// cellGroup is the name of model 805's repeating cell group.
const cellGroup = "lithium-ion-module-cell"

// warrantyEpoch is day 0 of 802 WarrDt ("Number of days since 1/1/2000"),
// in Unix seconds.
const warrantyEpoch = 946684800 // 2000-01-01T00:00:00Z

// Readings maps decoded models to cellwarden's telemetry:
//
//   - 804 (string) V → string_voltage_volts, A → string_current_amperes,
//     SoC and SoH (percent) → string_soc_ratio and string_soh_ratio
//     (divided by 100), all with String set from Idx;
//   - 805 (module) each cell's CellV → cell_voltage_volts and CellTmp →
//     cell_temperature_celsius, with String from StrIdx, Module from
//     ModIdx and Cell the cell's one-based position in the cell group;
//   - 802 (battery) WarrDt → warranty, the day the warranty expires at
//     00:00 UTC; hasWarranty is false when no 802 implements it. The
//     first 802 that does wins.
//
// The current's sign is flipped: cellwarden counts charging positive,
// while SunSpec (whose model text only says "String current measurement")
// follows the DER generator convention, positive out of the battery.
//
// Values the device does not implement become NaN readings; an index it
// does not implement becomes an empty identifier. Other models and points
// are ignored. Readings come out in model order, for 805 cell by cell
// (voltage, then temperature). Addr is the model's Addr plus the point's
// offset. Readings does not keep or modify models.
func Readings(models []Model) (readings []Reading, warranty time.Time, hasWarranty bool) {
	for i := range models {
		m := &models[i]
		switch m.ID {
		case ModelBattery:
			if v := m.Points["WarrDt"]; !hasWarranty && v.Present {
				warranty = time.Unix(warrantyEpoch+int64(v.Raw)*86400, 0).UTC()
				hasWarranty = true
			}
		case ModelLithiumIonString:
			str := index(m.Points["Idx"])
			add := func(metric telemetry.Metric, point, name string, conv func(float64) float64) {
				v := m.Points[point]
				readings = append(readings, Reading{
					Reading: modbus.Reading{Metric: metric, Value: conv(num(v)), Point: name, Addr: m.Addr + v.Offset},
					String:  str,
				})
			}
			add(telemetry.StringVoltageVolts, "V", "804.V", same)
			add(telemetry.StringCurrentAmperes, "A", "804.A", negate)
			add(telemetry.StringSOCRatio, "SoC", "804.SoC", percent)
			add(telemetry.StringSOHRatio, "SoH", "804.SoH", percent)
		case ModelLithiumIonModule:
			str, mod := index(m.Points["StrIdx"]), index(m.Points["ModIdx"])
			cells := m.Groups[cellGroup]
			if readings == nil {
				readings = make([]Reading, 0, 2*len(cells))
			}
			for n, c := range cells {
				cell := strconv.Itoa(n + 1)
				v, t := c.Points["CellV"], c.Points["CellTmp"]
				readings = append(readings,
					Reading{
						Reading: modbus.Reading{Metric: telemetry.CellVoltageVolts, Module: mod, Cell: cell, Value: num(v), Point: "805.CellV", Addr: m.Addr + v.Offset},
						String:  str,
					},
					Reading{
						Reading: modbus.Reading{Metric: telemetry.CellTemperatureCelsius, Module: mod, Cell: cell, Value: num(t), Point: "805.CellTmp", Addr: m.Addr + t.Offset},
						String:  str,
					})
			}
		}
	}
	return readings, warranty, hasWarranty
}

// num returns v's value, NaN when absent (or missing from the map).
func num(v Value) float64 {
	if !v.Present {
		return math.NaN()
	}
	return v.Num
}

// index formats an index point, "" when absent.
func index(v Value) string {
	if !v.Present {
		return ""
	}
	return strconv.FormatUint(v.Raw, 10)
}

func same(x float64) float64    { return x }
func negate(x float64) float64  { return 0 - x } // 0 - 0 is +0, unlike -0
func percent(x float64) float64 { return x / 100 }
