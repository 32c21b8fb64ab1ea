package detector

import (
	"fmt"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Severity of an alert. The zero value is invalid.
type Severity uint8

// Severities, lowest first.
const (
	SeverityInfo Severity = iota + 1
	SeverityWarning
	SeverityCritical
)

// String returns "info", "warning" or "critical".
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	case SeverityCritical:
		return "critical"
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// Status is what a Change does to an alert. The zero value is invalid.
type Status uint8

// Statuses of a Change.
const (
	StatusFiring Status = iota + 1
	StatusResolved
)

// String returns "firing" or "resolved".
func (s Status) String() string {
	switch s {
	case StatusFiring:
		return "firing"
	case StatusResolved:
		return "resolved"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Alert names of the catalogue (interfaces.md §3) that this package
// raises, plus ModuleOverTemperature, the module-sensor twin of
// CellOverTemperature for BMSs that report module temperatures only.
const (
	AlertCellOverTemperature   = "CellOverTemperature"
	AlertModuleOverTemperature = "ModuleOverTemperature"
	AlertCellVoltageOutOfRange = "CellVoltageOutOfRange"
	AlertTelemetryStale        = "TelemetryStale"

	AlertCellTemperatureDeviation   = "CellTemperatureDeviation"
	AlertModuleTemperatureDeviation = "ModuleTemperatureDeviation"
	AlertCellVoltageDeviation       = "CellVoltageDeviation"
	AlertCellTemperatureRising      = "CellTemperatureRising"
	AlertModuleTemperatureRising    = "ModuleTemperatureRising"
	AlertThermalRunawayRisk         = "ThermalRunawayRisk"
	AlertCoolingFailure             = "CoolingFailure"
	AlertSensorFault                = "SensorFault"
	AlertChargeVoltageHigh          = "ChargeVoltageHigh"
)

// Change is one alert state change: an alert started firing or resolved.
// Changes are produced in event-time order.
type Change struct {
	// Time is the event time that caused the change, Unix nanoseconds.
	Time     int64
	Status   Status
	Name     string // alertname
	Severity Severity
	// Entity is the most specific entity the alert concerns.
	Entity telemetry.EntityID
	// Value is the measured value behind the change (for people).
	Value float64
	// Summary is a one-line explanation (for people).
	Summary string
}

// phase is the state of one alert instance.
type phase uint8

const (
	phaseInactive phase = iota
	phasePending
	phaseFiring
)

// alertState is the state machine of one alert instance (one rule, one
// severity, one entity): inactive → pending → firing → resolved (back to
// inactive), computed only from the event times given to step, like
// Prometheus' alerting rules.
type alertState struct {
	// since (the halves of it: 12 bytes for the state, not 16, and a
	// fleet has nine a cell) is when the condition started holding
	// (pending, firing) or, while firing with clearing set, when it
	// stopped holding.
	sinceLo, sinceHi uint32
	phase            phase
	clearing         bool
}

func (a *alertState) since() int64 { return int64(uint64(a.sinceHi)<<32 | uint64(a.sinceLo)) }

func (a *alertState) setSince(t int64) { a.sinceLo, a.sinceHi = uint32(t), uint32(uint64(t)>>32) }

// step feeds one evaluation at event time now. active says whether the
// condition holds. It returns StatusFiring or StatusResolved on a
// transition that must be reported, else 0.
func (a *alertState) step(now int64, active bool, h *Hold) Status {
	switch a.phase {
	case phaseInactive:
		if !active {
			return 0
		}
		a.phase = phasePending
		a.setSince(now)
		if h.For <= 0 {
			a.phase = phaseFiring
			return StatusFiring
		}
	case phasePending:
		if !active {
			a.phase = phaseInactive
			return 0
		}
		if now-a.since() >= h.For.Nanos() {
			a.phase = phaseFiring
			return StatusFiring
		}
	case phaseFiring:
		if active {
			a.clearing = false
			return 0
		}
		if !a.clearing {
			a.clearing = true
			a.setSince(now)
		}
		if now-a.since() >= h.ClearFor.Nanos() {
			*a = alertState{}
			return StatusResolved
		}
	}
	return 0
}

// firing reports whether the alert is firing.
func (a *alertState) firing() bool { return a.phase == phaseFiring }
