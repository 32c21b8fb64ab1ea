package detector

import (
	"math"
	"sort"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// Config tunes the rules. The zero value is not useful: start from
// DefaultConfig, which is what a user without a configuration file gets.
type Config struct {
	CellOverTemperature   OverTemperatureConfig `yaml:"cell_over_temperature"`
	ModuleOverTemperature OverTemperatureConfig `yaml:"module_over_temperature"`
	CellVoltageOutOfRange VoltageRangeConfig    `yaml:"cell_voltage_out_of_range"`
	TelemetryStale        StaleConfig           `yaml:"telemetry_stale"`
	Plausible             PlausibleConfig       `yaml:"plausible"`

	Peers                      PeersConfig     `yaml:"peers"`
	CellTemperatureDeviation   DeviationConfig `yaml:"cell_temperature_deviation"`
	ModuleTemperatureDeviation DeviationConfig `yaml:"module_temperature_deviation"`
	CellVoltageDeviation       DeviationConfig `yaml:"cell_voltage_deviation"`
	CellTemperatureRising      RisingConfig    `yaml:"cell_temperature_rising"`
	ModuleTemperatureRising    RisingConfig    `yaml:"module_temperature_rising"`
	ThermalRunawayRisk         RunawayConfig   `yaml:"thermal_runaway_risk"`
	CoolingFailure             CoolingConfig   `yaml:"cooling_failure"`
	ChargeVoltageHigh          ChargeConfig    `yaml:"charge_voltage_high"`
	SensorFault                SensorConfig    `yaml:"sensor_fault"`
}

// Hold is the part every alerting rule shares: how long a condition must
// hold before the alert fires, and how long it must stay clear before the
// alert resolves. Both are measured in event time.
type Hold struct {
	// For is how long the condition must hold continuously before the
	// alert fires (pending until then). 0 fires on the first sample.
	For yamlstrict.Duration `yaml:"for"`
	// ClearFor is how long the condition must stay clear before a firing
	// alert resolves. 0 resolves on the first clear sample.
	ClearFor yamlstrict.Duration `yaml:"clear_for"`
}

// OverTemperatureConfig configures CellOverTemperature and
// ModuleOverTemperature: absolute limits, one warning and one critical
// alert per sensor.
type OverTemperatureConfig struct {
	Enabled         bool    `yaml:"enabled"`
	WarningCelsius  float64 `yaml:"warning_celsius"`
	CriticalCelsius float64 `yaml:"critical_celsius"`
	// HysteresisCelsius: a firing alert clears only below limit - hysteresis.
	HysteresisCelsius float64 `yaml:"hysteresis_celsius"`
	Hold              `yaml:",inline"`
}

// VoltageLimits are cell voltage bounds for one chemistry. A cell outside
// [WarningLow, WarningHigh] raises a warning, outside [CriticalLow,
// CriticalHigh] a critical alert.
type VoltageLimits struct {
	CriticalLow  float64 `yaml:"critical_low_volts"`
	WarningLow   float64 `yaml:"warning_low_volts"`
	WarningHigh  float64 `yaml:"warning_high_volts"`
	CriticalHigh float64 `yaml:"critical_high_volts"`
}

// DefaultChemistryKey is the key of Limits used for cells whose chemistry
// the inventory does not give.
const DefaultChemistryKey = "default"

// VoltageRangeConfig configures CellVoltageOutOfRange.
type VoltageRangeConfig struct {
	Enabled bool `yaml:"enabled"`
	// HysteresisVolts: a firing alert clears only once the voltage is this
	// far back inside the limit.
	HysteresisVolts float64 `yaml:"hysteresis_volts"`
	// Limits by chemistry (NMC, LFP, LTO, NCA) and "default" for cells of
	// unknown chemistry. Entries given in a file replace the built-in entry
	// of that key; other keys keep their built-in limits.
	Limits map[string]VoltageLimits `yaml:"limits"`
	Hold   `yaml:",inline"`
}

// StaleConfig configures TelemetryStale. The expected interval of every
// source (UPS, string, module) is learned from the spacing of its readings;
// the alert fires when nothing arrived for Multiple times that interval, and
// never sooner than MinAge.
type StaleConfig struct {
	Enabled  bool                `yaml:"enabled"`
	Multiple float64             `yaml:"multiple"`
	MinAge   yamlstrict.Duration `yaml:"min_age"`
}

// PlausibleConfig bounds what a sensor can physically report. Readings
// outside (a sentinel such as 6553.5 °C or 65.535 V, a wrapped register)
// are not evaluated by the threshold rules; they are counted as
// implausible. A cell voltage of exactly 0 V, what BMSs report for an
// absent sensor, is counted the same way; a negative one (a reversed cell)
// is evaluated.
type PlausibleConfig struct {
	MinCelsius float64 `yaml:"min_celsius"`
	MaxCelsius float64 `yaml:"max_celsius"`
	// Cell voltages must lie strictly between these bounds.
	MinCellVolts float64 `yaml:"min_cell_volts"`
	MaxCellVolts float64 `yaml:"max_cell_volts"`
}

// BuiltinVoltageLimits returns the voltage limits cellwarden ships, by
// chemistry key. The "default" entry is the envelope of all chemistries,
// so that a fleet without an inventory never pages on a healthy cell.
func BuiltinVoltageLimits() map[string]VoltageLimits {
	return map[string]VoltageLimits{
		inventory.NMC.String(): {CriticalLow: 2.5, WarningLow: 3.0, WarningHigh: 4.22, CriticalHigh: 4.30},
		inventory.NCA.String(): {CriticalLow: 2.5, WarningLow: 2.9, WarningHigh: 4.22, CriticalHigh: 4.30},
		inventory.LFP.String(): {CriticalLow: 2.0, WarningLow: 2.5, WarningHigh: 3.65, CriticalHigh: 3.80},
		inventory.LTO.String(): {CriticalLow: 1.5, WarningLow: 1.8, WarningHigh: 2.80, CriticalHigh: 2.90},
		DefaultChemistryKey:    {CriticalLow: 1.5, WarningLow: 1.8, WarningHigh: 4.22, CriticalHigh: 4.30},
	}
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	overTemp := OverTemperatureConfig{
		Enabled:           true,
		WarningCelsius:    50,
		CriticalCelsius:   60,
		HysteresisCelsius: 2,
		Hold:              Hold{For: yamlstrict.Duration(20 * time.Second), ClearFor: yamlstrict.Duration(2 * time.Minute)},
	}
	peers, cellDev, modDev, voltDev, rising, runaway, cooling, sensor := defaultPeerRules()
	// A module's temperature is the median of its cells, far less noisy
	// than one cell's: a shorter window and a smaller rise tell a module
	// warming against its string sooner (docs/detection.md).
	modRising := RisingConfig{Enabled: true, Window: minutes(10), CelsiusPerHour: 2, MinRiseCelsius: 0.4,
		Hold: Hold{For: minutes(2), ClearFor: minutes(15)}}
	charge := ChargeConfig{Enabled: true, RiseVolts: 0.03, Learning: yamlstrict.Duration(12 * time.Hour),
		Hold: Hold{For: minutes(3), ClearFor: minutes(15)}}
	return Config{
		Peers: peers, CellTemperatureDeviation: cellDev, ModuleTemperatureDeviation: modDev, CellVoltageDeviation: voltDev,
		CellTemperatureRising: rising, ModuleTemperatureRising: modRising, ThermalRunawayRisk: runaway, CoolingFailure: cooling, SensorFault: sensor,
		ChargeVoltageHigh:     charge,
		CellOverTemperature:   overTemp,
		ModuleOverTemperature: overTemp,
		CellVoltageOutOfRange: VoltageRangeConfig{
			Enabled:         true,
			HysteresisVolts: 0.02,
			Limits:          BuiltinVoltageLimits(),
			Hold:            Hold{For: yamlstrict.Duration(20 * time.Second), ClearFor: yamlstrict.Duration(2 * time.Minute)},
		},
		TelemetryStale: StaleConfig{
			Enabled:  true,
			Multiple: 3,
			MinAge:   yamlstrict.Duration(30 * time.Second),
		},
		Plausible: PlausibleConfig{
			MinCelsius:   -50,
			MaxCelsius:   1000,
			MinCellVolts: -1,
			MaxCellVolts: 6.5,
		},
	}
}

// FillDefaults completes a configuration decoded from a file: chemistries
// the file's limits leave out keep their built-in limits.
func (c *Config) FillDefaults() {
	if c.CellVoltageOutOfRange.Limits == nil {
		c.CellVoltageOutOfRange.Limits = map[string]VoltageLimits{}
	}
	for k, v := range BuiltinVoltageLimits() {
		if _, ok := c.CellVoltageOutOfRange.Limits[k]; !ok {
			c.CellVoltageOutOfRange.Limits[k] = v
		}
	}
}

// StaticBaselineConfig is what a plain BMS alarm does, for comparison: fixed
// temperature limits (50 °C warning, 60 °C critical) and the chemistry's
// voltage limits, each on a single reading, no hold, no hysteresis, no
// stale-telemetry or peer-relative rules. Rules added later must be
// disabled here.
func StaticBaselineConfig() Config {
	c := DefaultConfig()
	for _, t := range []*OverTemperatureConfig{&c.CellOverTemperature, &c.ModuleOverTemperature} {
		t.WarningCelsius, t.CriticalCelsius, t.HysteresisCelsius, t.Hold = 50, 60, 0, Hold{}
	}
	c.CellVoltageOutOfRange.HysteresisVolts, c.CellVoltageOutOfRange.Hold = 0, Hold{}
	c.TelemetryStale.Enabled = false
	c.CellTemperatureDeviation.Enabled, c.ModuleTemperatureDeviation.Enabled, c.CellVoltageDeviation.Enabled = false, false, false
	c.ModuleTemperatureRising.Enabled = false
	c.CellTemperatureRising.Enabled, c.ThermalRunawayRisk.Enabled, c.CoolingFailure.Enabled, c.SensorFault.Enabled = false, false, false, false
	c.ChargeVoltageHigh.Enabled = false
	return c
}

// Validate reports every problem of c to p, with paths below prefix
// (e.g. "detector").
func (c *Config) Validate(p *yamlstrict.Problems, prefix string) {
	c.CellOverTemperature.validate(p, prefix+".cell_over_temperature", &c.Plausible)
	c.ModuleOverTemperature.validate(p, prefix+".module_over_temperature", &c.Plausible)
	c.CellVoltageOutOfRange.validate(p, prefix+".cell_voltage_out_of_range")
	c.TelemetryStale.validate(p, prefix+".telemetry_stale")
	c.Plausible.validate(p, prefix+".plausible")
	c.Peers.validate(p, prefix+".peers")
	c.CellTemperatureDeviation.validate(p, prefix+".cell_temperature_deviation")
	c.ModuleTemperatureDeviation.validate(p, prefix+".module_temperature_deviation")
	c.CellVoltageDeviation.validate(p, prefix+".cell_voltage_deviation")
	c.CellTemperatureRising.validate(p, prefix+".cell_temperature_rising")
	c.ModuleTemperatureRising.validate(p, prefix+".module_temperature_rising")
	c.ThermalRunawayRisk.validate(p, prefix+".thermal_runaway_risk")
	c.CoolingFailure.validate(p, prefix+".cooling_failure")
	c.ChargeVoltageHigh.validate(p, prefix+".charge_voltage_high")
	c.SensorFault.validate(p, prefix+".sensor_fault")
}

// finite reports v when it is NaN or infinite and says whether it was fine.
func finite(p *yamlstrict.Problems, path string, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		p.Add(path, v, "must be a finite number")
		return false
	}
	return true
}

func (c *OverTemperatureConfig) validate(p *yamlstrict.Problems, path string, pl *PlausibleConfig) {
	ok := finite(p, path+".warning_celsius", c.WarningCelsius)
	ok = finite(p, path+".critical_celsius", c.CriticalCelsius) && ok
	ok = finite(p, path+".hysteresis_celsius", c.HysteresisCelsius) && ok
	if !ok {
		return
	}
	if c.CriticalCelsius <= c.WarningCelsius {
		p.Add(path+".critical_celsius", c.CriticalCelsius, "must be above warning_celsius (%g)", c.WarningCelsius)
	}
	switch {
	case c.HysteresisCelsius < 0:
		p.Add(path+".hysteresis_celsius", c.HysteresisCelsius, "must be >= 0")
	case c.WarningCelsius-c.HysteresisCelsius <= pl.MinCelsius:
		p.Add(path+".hysteresis_celsius", c.HysteresisCelsius,
			"is too large: a warning would only clear below %g °C, under plausible.min_celsius (%g)",
			c.WarningCelsius-c.HysteresisCelsius, pl.MinCelsius)
	}
}

func (c *VoltageRangeConfig) validate(p *yamlstrict.Problems, path string) {
	if !finite(p, path+".hysteresis_volts", c.HysteresisVolts) {
		return
	}
	if c.HysteresisVolts < 0 {
		p.Add(path+".hysteresis_volts", c.HysteresisVolts, "must be >= 0")
	}
	for _, key := range sortedKeys(c.Limits) {
		l := c.Limits[key]
		kp := path + ".limits." + key
		if chem, ok := inventory.ParseChemistry(key); key != DefaultChemistryKey && (!ok || chem.String() != key) {
			if ok {
				p.Add(kp, nil, "write the chemistry as %q", chem.String())
			} else {
				p.Add(kp, nil, "unknown chemistry: must be one of NMC, LFP, LTO, NCA, default")
			}
			continue
		}
		if !(finite(p, kp+".critical_low_volts", l.CriticalLow) && finite(p, kp+".warning_low_volts", l.WarningLow) &&
			finite(p, kp+".warning_high_volts", l.WarningHigh) && finite(p, kp+".critical_high_volts", l.CriticalHigh)) {
			continue
		}
		if !(l.CriticalLow < l.WarningLow && l.WarningLow < l.WarningHigh && l.WarningHigh < l.CriticalHigh) {
			p.Add(kp, nil, "limits must satisfy critical_low_volts < warning_low_volts < warning_high_volts < critical_high_volts (got %g < %g < %g < %g)",
				l.CriticalLow, l.WarningLow, l.WarningHigh, l.CriticalHigh)
			continue
		}
		if c.HysteresisVolts > 0 && 2*c.HysteresisVolts >= l.WarningHigh-l.WarningLow {
			p.Add(path+".hysteresis_volts", c.HysteresisVolts,
				"is too large for the %s limits: a warning could never clear (needs less than half of %g..%g V)",
				key, l.WarningLow, l.WarningHigh)
		}
	}
}

func (c *StaleConfig) validate(p *yamlstrict.Problems, path string) {
	if !finite(p, path+".multiple", c.Multiple) {
		return
	}
	if c.Multiple < 1.5 || c.Multiple > 1000 {
		p.Add(path+".multiple", c.Multiple, "must be between 1.5 (a reading one interval late is not stale) and 1000")
	}
}

func (c *PlausibleConfig) validate(p *yamlstrict.Problems, path string) {
	ok := finite(p, path+".min_celsius", c.MinCelsius)
	ok = finite(p, path+".max_celsius", c.MaxCelsius) && ok
	ok = finite(p, path+".min_cell_volts", c.MinCellVolts) && ok
	ok = finite(p, path+".max_cell_volts", c.MaxCellVolts) && ok
	if !ok {
		return
	}
	if c.MaxCelsius <= c.MinCelsius {
		p.Add(path+".max_celsius", c.MaxCelsius, "must be above min_celsius (%g)", c.MinCelsius)
	}
	if c.MaxCellVolts <= c.MinCellVolts {
		p.Add(path+".max_cell_volts", c.MaxCellVolts, "must be above min_cell_volts (%g)", c.MinCellVolts)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
