package detector

import (
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Maintenance: while people work on a UPS or a string, its sensors are
// unplugged and its BMS restarted; the alerts that would tell of that
// (TelemetryStale, SensorFault) are held inactive for what is under
// maintenance, while every safety alert (temperatures, voltages, thermal
// runaway, cooling, battery age) stays live. Alerts already firing when
// maintenance starts resolve as usual when their condition clears.

// SetMaintenance replaces the set of UPSs and strings under maintenance
// (an entity with an empty String is a whole UPS).
func (e *Engine) SetMaintenance(under []telemetry.Entity) {
	clear(e.maint)
	for _, u := range under {
		id, err := e.reg.Intern(telemetry.Entity{UPS: u.UPS, String: u.String})
		if err != nil {
			continue
		}
		if e.maint == nil {
			e.maint = map[telemetry.EntityID]bool{}
		}
		e.maint[id] = true
	}
	e.stale.next = 0 // judge staleness again at the next tick
}

// inMaintenance reports whether an entity is, or is under, a UPS or string
// under maintenance.
func (e *Engine) inMaintenance(st *entityState) bool {
	if len(e.maint) == 0 {
		return false
	}
	for st != nil {
		if e.maint[st.self] {
			return true
		}
		if st.parent == 0 {
			return false
		}
		st = &e.ents[st.parent-1]
	}
	return false
}
