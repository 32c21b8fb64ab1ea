// Package telemetry holds the one type that flows through cellwarden: a
// Sample is a single reading in base units, stamped with its event time,
// attached to an entity of the battery hierarchy (UPS > string > module >
// cell) and named by a metric of the catalogue in
// shared/spec/interfaces.md §1.
//
// Collectors produce Samples, the detector consumes them in arrival order,
// and the alerting side turns the detector's state changes into
// notifications. Entities are interned in a Registry so that a Sample is a
// small fixed-size value that carries no strings and costs no allocation.
package telemetry

import (
	"math"
	"time"
)

// Level is the place of an entity in the battery hierarchy.
type Level uint8

// Levels of the hierarchy, coarsest first. The zero value is invalid.
const (
	LevelUPS Level = iota + 1
	LevelString
	LevelModule
	LevelCell
)

// String returns the level's lower-case name as used in labels and messages.
func (l Level) String() string {
	switch l {
	case LevelUPS:
		return "ups"
	case LevelString:
		return "string"
	case LevelModule:
		return "module"
	case LevelCell:
		return "cell"
	}
	return "invalid"
}

// Metric names one quantity of the metric catalogue. The zero value is
// invalid.
type Metric uint8

// The metric catalogue of interfaces.md §1, in base units.
const (
	CellVoltageVolts Metric = iota + 1
	CellTemperatureCelsius
	ModuleTemperatureCelsius
	StringVoltageVolts
	StringCurrentAmperes
	StringSOCRatio
	StringSOHRatio
	AmbientTemperatureCelsius

	// NumMetrics is one more than the largest Metric; use it to size
	// per-metric tables indexed by Metric.
	NumMetrics
)

var metricNames = [NumMetrics]string{
	CellVoltageVolts:          "cell_voltage_volts",
	CellTemperatureCelsius:    "cell_temperature_celsius",
	ModuleTemperatureCelsius:  "module_temperature_celsius",
	StringVoltageVolts:        "string_voltage_volts",
	StringCurrentAmperes:      "string_current_amperes",
	StringSOCRatio:            "string_soc_ratio",
	StringSOHRatio:            "string_soh_ratio",
	AmbientTemperatureCelsius: "ambient_temperature_celsius",
}

var metricLevels = [NumMetrics]Level{
	CellVoltageVolts:          LevelCell,
	CellTemperatureCelsius:    LevelCell,
	ModuleTemperatureCelsius:  LevelModule,
	StringVoltageVolts:        LevelString,
	StringCurrentAmperes:      LevelString,
	StringSOCRatio:            LevelString,
	StringSOHRatio:            LevelString,
	AmbientTemperatureCelsius: LevelUPS,
}

var metricUnits = [NumMetrics]string{
	CellVoltageVolts:          "V",
	CellTemperatureCelsius:    "°C",
	ModuleTemperatureCelsius:  "°C",
	StringVoltageVolts:        "V",
	StringCurrentAmperes:      "A",
	StringSOCRatio:            "",
	StringSOHRatio:            "",
	AmbientTemperatureCelsius: "°C",
}

// Metrics returns every metric of the catalogue in catalogue order.
func Metrics() []Metric {
	ms := make([]Metric, 0, NumMetrics-1)
	for m := Metric(1); m < NumMetrics; m++ {
		ms = append(ms, m)
	}
	return ms
}

// Valid reports whether m is a metric of the catalogue.
func (m Metric) Valid() bool { return m >= 1 && m < NumMetrics }

// String returns the catalogue name, e.g. "cell_voltage_volts".
func (m Metric) String() string {
	if !m.Valid() {
		return "invalid"
	}
	return metricNames[m]
}

// Level returns the hierarchy level the metric belongs to.
func (m Metric) Level() Level {
	if !m.Valid() {
		return 0
	}
	return metricLevels[m]
}

// Unit returns the display unit of the metric ("V", "°C", "A", or "" for
// ratios).
func (m Metric) Unit() string {
	if !m.Valid() {
		return ""
	}
	return metricUnits[m]
}

// ParseMetric looks a catalogue name up. It does not allocate, so callers
// may pass string(b) for a byte slice b.
func ParseMetric(name string) (Metric, bool) {
	switch name {
	case "cell_voltage_volts":
		return CellVoltageVolts, true
	case "cell_temperature_celsius":
		return CellTemperatureCelsius, true
	case "module_temperature_celsius":
		return ModuleTemperatureCelsius, true
	case "string_voltage_volts":
		return StringVoltageVolts, true
	case "string_current_amperes":
		return StringCurrentAmperes, true
	case "string_soc_ratio":
		return StringSOCRatio, true
	case "string_soh_ratio":
		return StringSOHRatio, true
	case "ambient_temperature_celsius":
		return AmbientTemperatureCelsius, true
	}
	return 0, false
}

// Sample is one reading. It is a plain value: copying it is cheap and it
// holds no references, so receivers may keep it.
type Sample struct {
	// Time is the event time in Unix nanoseconds: when the device measured
	// the value (or, for sources without their own clock, when it was
	// received).
	Time int64
	// Value is the reading in the metric's base unit. NaN means the device
	// reported "no reading".
	Value float64
	// Entity identifies the UPS, string, module or cell in a Registry.
	Entity EntityID
	// Metric names the quantity. Its Level equals the entity's level.
	Metric Metric
}

// NoReading reports whether the device said it had no value.
func (s Sample) NoReading() bool { return math.IsNaN(s.Value) }

// Timestamp returns the event time as a time.Time in UTC.
func (s Sample) Timestamp() time.Time { return time.Unix(0, s.Time).UTC() }
