package detector

import (
	"fmt"
	"strconv"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// overTemperature evaluates an absolute temperature limit, warning and
// critical, with hysteresis on clearing.
// Under a CoolingFailure (inhibit) the warning stays silent: the room's
// alert says it; the critical limit always pages, unless the cell is folded
// into a neighbour's thermal runaway (its ThermalRunawayRisk pages).
func (e *Engine) overTemperature(st *entityState, s telemetry.Sample, c *OverTemperatureConfig, name string, out []Change, inhibit, fold bool) []Change {
	if !c.Enabled {
		return out
	}
	limits := [2]float64{c.WarningCelsius, c.CriticalCelsius}
	for i, limit := range limits {
		a := &st.overTemp[i]
		active := s.Value > limit && (i == 1 || !inhibit) && !fold
		if a.firing() {
			active = s.Value > limit-c.HysteresisCelsius
		}
		switch a.step(s.Time, active, &c.Hold) {
		case StatusFiring:
			out = append(out, Change{
				Time: s.Time, Status: StatusFiring, Name: name, Severity: SeverityWarning + Severity(i),
				Entity: s.Entity, Value: s.Value,
				Summary: fmt.Sprintf("%s %s temperature %s °C is above the %s limit of %s °C",
					st.level, e.path(s.Entity), fmtNum(s.Value), (SeverityWarning + Severity(i)), fmtNum(limit)),
			})
		case StatusResolved:
			out = append(out, Change{
				Time: s.Time, Status: StatusResolved, Name: name, Severity: SeverityWarning + Severity(i),
				Entity: s.Entity, Value: s.Value,
				Summary: fmt.Sprintf("%s %s temperature %s °C is back below %s °C (%s limit %s °C)",
					st.level, e.path(s.Entity), fmtNum(s.Value), fmtNum(limit-c.HysteresisCelsius),
					(SeverityWarning + Severity(i)), fmtNum(limit)),
			})
		}
	}
	return out
}

// cellLimits resolves the voltage limits of a cell from the inventory's
// chemistry for its string (inherited from the UPS-wide entry when the
// string's entry gives none), falling back to the default entry.
func (e *Engine) cellLimits(st *entityState) *VoltageLimits {
	if st.limits == 0 {
		key := DefaultChemistryKey
		ent := e.reg.Info(st.self).Entity
		if b, ok := e.inv.Effective(ent.UPS, ent.String); ok && b.Chemistry != 0 {
			key = b.Chemistry.String()
		}
		idx, ok := e.limKey[key]
		if !ok {
			key, idx = DefaultChemistryKey, e.limKey[DefaultChemistryKey]
		}
		if key == DefaultChemistryKey {
			e.stats.EnvelopeCells++
		}
		st.limits = idx
	}
	return &e.limits[st.limits-1]
}

// voltageRange evaluates CellVoltageOutOfRange: warning outside the
// warning band, critical outside the critical band, hysteresis on clearing.
func (e *Engine) voltageRange(st *entityState, s telemetry.Sample, out []Change) []Change {
	c := &e.cfg.CellVoltageOutOfRange
	if !c.Enabled {
		return out
	}
	l := e.cellLimits(st)
	bands := [2][2]float64{{l.WarningLow, l.WarningHigh}, {l.CriticalLow, l.CriticalHigh}}
	for i, band := range bands {
		a := &st.voltage[i]
		lo, hi := band[0], band[1]
		if a.firing() {
			lo, hi = lo+c.HysteresisVolts, hi-c.HysteresisVolts
		}
		active := s.Value < lo || s.Value > hi
		sev := SeverityWarning + Severity(i)
		switch a.step(s.Time, active, &c.Hold) {
		case StatusFiring:
			dir, limit := "above", band[1]
			if s.Value < band[0] {
				dir, limit = "below", band[0]
			}
			out = append(out, Change{
				Time: s.Time, Status: StatusFiring, Name: AlertCellVoltageOutOfRange, Severity: sev,
				Entity: s.Entity, Value: s.Value,
				Summary: fmt.Sprintf("cell %s voltage %s V is %s the %s limit of %s V",
					e.path(s.Entity), fmtNum(s.Value), dir, sev, fmtNum(limit)),
			})
		case StatusResolved:
			out = append(out, Change{
				Time: s.Time, Status: StatusResolved, Name: AlertCellVoltageOutOfRange, Severity: sev,
				Entity: s.Entity, Value: s.Value,
				Summary: fmt.Sprintf("cell %s voltage %s V is back within %s–%s V",
					e.path(s.Entity), fmtNum(s.Value), fmtNum(lo), fmtNum(hi)),
			})
		}
	}
	return out
}
