package detector

import (
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// PeersConfig tunes the peer-relative baselines: each string's cells are
// compared with each other at every poll.
type PeersConfig struct {
	// MinPeers is the fewest cells with a valid reading a poll needs for
	// peer comparison.
	MinPeers int `yaml:"min_peers"`
	// MinModules is the fewest modules with a temperature a poll needs
	// for the module rules (a median of three still outvotes one hot
	// module).
	MinModules int `yaml:"min_modules"`
	// OffsetLearning is the time constant with which each cell learns its
	// normal offset from its peers (position, sensor offset).
	OffsetLearning yamlstrict.Duration `yaml:"offset_learning"`
	// WarmupPolls is how many polls a cell needs before its offset is
	// trusted; until then the peer rules stay silent for it.
	WarmupPolls int `yaml:"warmup_polls"`
	// OffsetBoundZ bounds a learned offset: at most this many robust
	// standard deviations of the peers' offsets from their median, and no
	// less than the deviation rule's threshold. A cell (or module) already
	// hot or low when monitoring began does not learn that as its normal.
	OffsetBoundZ float64 `yaml:"offset_bound_z"`
	// ActiveCurrentAmperes: a string carrying more current than this is
	// charging or discharging; offsets and the cooling baseline do not
	// learn then, nor for LoadCooldown after.
	ActiveCurrentAmperes float64             `yaml:"active_current_amperes"`
	LoadCooldown         yamlstrict.Duration `yaml:"load_cooldown"`
	// LoadStepVolts: a string that reports no current counts as under
	// load when its cells' median voltage drops this much from one poll
	// to the next (a discharge starting, a recharge ending), and while it
	// then stays ChargeVoltageHigh's rise below its normal (for up to 3 h).
	// 0: never.
	LoadStepVolts float64 `yaml:"load_step_volts"`
}

// DeviationConfig configures a peer-deviation rule: the residual (the
// reading's distance from its peers beyond its learned offset) must exceed
// both Threshold and Z times its noise for For.
type DeviationConfig struct {
	Enabled   bool    `yaml:"enabled"`
	Threshold float64 `yaml:"threshold"`
	Z         float64 `yaml:"z"`
	Hold      `yaml:",inline"`
}

// RisingConfig configures CellTemperatureRising: the Theil-Sen slope of a
// cell's temperature relative to its string's over Window.
type RisingConfig struct {
	Enabled        bool                `yaml:"enabled"`
	Window         yamlstrict.Duration `yaml:"window"`
	CelsiusPerHour float64             `yaml:"celsius_per_hour"`
	MinRiseCelsius float64             `yaml:"min_rise_celsius"`
	Hold           `yaml:",inline"`
}

// RunawayConfig configures ThermalRunawayRisk: a cell (or module) hotter
// than its peers (its deviation rule's condition) together with voltage sag,
// an accelerating rise, or a temperature above CriticalCelsius.
type RunawayConfig struct {
	Enabled             bool    `yaml:"enabled"`
	SagVolts            float64 `yaml:"sag_volts"`
	AcceleratingPerHour float64 `yaml:"accelerating_celsius_per_hour"`
	CriticalCelsius     float64 `yaml:"critical_celsius"`
	Hold                `yaml:",inline"`
}

// CoolingConfig configures CoolingFailure: a UPS room (ambient) or a string
// (median cell temperature) warmer than its learned normal.
type CoolingConfig struct {
	Enabled      bool                `yaml:"enabled"`
	WarningRise  float64             `yaml:"warning_rise_celsius"`
	CriticalRise float64             `yaml:"critical_rise_celsius"`
	Learning     yamlstrict.Duration `yaml:"learning"`
	// A room whose ambient climbs steadily (Theil-Sen slope over
	// FastWindow of at least FastCelsiusPerHour) raises the warning once it
	// is FastRise above normal, instead of WarningRise, provided its
	// strings' cells follow (at least half rose by FastFollow within the
	// window). FastRise 0 turns this off.
	FastRise           float64             `yaml:"fast_rise_celsius"`
	FastWindow         yamlstrict.Duration `yaml:"fast_window"`
	FastCelsiusPerHour float64             `yaml:"fast_celsius_per_hour"`
	FastFollow         float64             `yaml:"fast_follow_celsius"`
	// Without an ambient sensor: at least half the UPS's strings (two or
	// more) climbing by FastStringsRise within FastStringsWindow, faster
	// and faster. 0 turns this off.
	FastStringsRise   float64             `yaml:"fast_strings_rise_celsius"`
	FastStringsWindow yamlstrict.Duration `yaml:"fast_strings_window"`
	// SpreadFactor: a room or string whose ordinary variation about its
	// normal (learned over Learning) is wide must rise SpreadFactor times
	// its standard deviation, when that is more than the configured rise.
	// 0 turns this off.
	SpreadFactor float64 `yaml:"spread_factor"`
	// A warning reached by the level (warning_rise_celsius) also needs the
	// warming to go on: the ambient (without one, the strings' cells)
	// climbed by LevelClimb within FastStringsWindow, as a failed
	// cooling's room keeps heating, unless the rise is LevelSettled times
	// the limit. A setpoint change levels off. 0 turns this off.
	LevelClimb   float64 `yaml:"level_climb_celsius"`
	LevelSettled float64 `yaml:"level_settled_factor"`
	Hold         `yaml:",inline"`
}

// ChargeConfig configures ChargeVoltageHigh: a string's cells held above
// their learned normal (float) voltage together while idle.
type ChargeConfig struct {
	Enabled   bool                `yaml:"enabled"`
	RiseVolts float64             `yaml:"rise_volts"`
	Learning  yamlstrict.Duration `yaml:"learning"`
	Hold      `yaml:",inline"`
}

func (c *ChargeConfig) validate(p *yamlstrict.Problems, path string) {
	if finite(p, path+".rise_volts", c.RiseVolts) && c.RiseVolts <= 0 {
		p.Add(path+".rise_volts", c.RiseVolts, "must be > 0")
	}
	if c.Learning.Nanos() < int64(time.Hour) {
		p.Add(path+".learning", c.Learning, "must be at least 1h")
	}
}

// SensorConfig configures SensorFault.
type SensorConfig struct {
	Enabled bool `yaml:"enabled"`
	// A reading further than this from the sensor's previous one is held
	// back; if the next reading returns, it was a spike. A temperature
	// held so whose next readings repeat it exactly stays held, and the
	// sensor is at fault once that lasted FrozenFor (an error code).
	MaxJumpCelsius float64             `yaml:"max_jump_celsius"`
	MaxJumpVolts   float64             `yaml:"max_jump_volts"`
	FrozenFor      yamlstrict.Duration `yaml:"frozen_for"`
	// Spikes within SpikeWindow that make a fault.
	Spikes      int                 `yaml:"spikes"`
	SpikeWindow yamlstrict.Duration `yaml:"spike_window"`
	// A sensor repeating one value for at least MinStuckPolls polls while
	// its peers' and its module-mates' common movement swept a range of
	// StuckMoveCelsius (or StuckMoveVolts; at least 1.5 quanta, 1.5 × that
	// while the string discharges) is stuck.
	MinStuckPolls    int     `yaml:"min_stuck_polls"`
	StuckMoveCelsius float64 `yaml:"stuck_move_celsius"`
	StuckMoveVolts   float64 `yaml:"stuck_move_volts"`
	// A sensor is noisy when its short-term noise exceeds NoisyFactor
	// times its peers' typical noise and NoisyMinCelsius (NoisyMinVolts for
	// a voltage sensor).
	NoisyFactor     float64 `yaml:"noisy_factor"`
	NoisyMinCelsius float64 `yaml:"noisy_min_celsius"`
	NoisyMinVolts   float64 `yaml:"noisy_min_volts"`
	Hold            `yaml:",inline"`
}

func minutes(n int) yamlstrict.Duration { return yamlstrict.Duration(time.Duration(n) * time.Minute) }

func defaultPeerRules() (PeersConfig, DeviationConfig, DeviationConfig, DeviationConfig, RisingConfig, RunawayConfig, CoolingConfig, SensorConfig) {
	return PeersConfig{MinPeers: 4, MinModules: 3, OffsetLearning: yamlstrict.Duration(24 * time.Hour), WarmupPolls: 20, OffsetBoundZ: 6,
			ActiveCurrentAmperes: 5, LoadCooldown: minutes(90), LoadStepVolts: 0.005},
		DeviationConfig{Enabled: true, Threshold: 3, Z: 6, Hold: Hold{For: minutes(5), ClearFor: minutes(15)}},
		DeviationConfig{Enabled: true, Threshold: 3, Z: 6, Hold: Hold{For: minutes(5), ClearFor: minutes(15)}},
		DeviationConfig{Enabled: true, Threshold: 0.015, Z: 6, Hold: Hold{For: minutes(10), ClearFor: minutes(15)}},
		RisingConfig{Enabled: true, Window: minutes(30), CelsiusPerHour: 3, MinRiseCelsius: 1.5, Hold: Hold{For: minutes(5), ClearFor: minutes(15)}},
		RunawayConfig{Enabled: true, SagVolts: 0.005, AcceleratingPerHour: 6, CriticalCelsius: 60, Hold: Hold{For: minutes(2), ClearFor: minutes(30)}},
		CoolingConfig{Enabled: true, WarningRise: 5, CriticalRise: 10, Learning: yamlstrict.Duration(12 * time.Hour),
			FastRise: 4, FastWindow: minutes(15), FastCelsiusPerHour: 10, FastFollow: 0.2,
			FastStringsRise: 2.5, FastStringsWindow: minutes(30), SpreadFactor: 2.5, LevelClimb: 1, LevelSettled: 1.5,
			Hold: Hold{For: minutes(3), ClearFor: minutes(20)}},
		SensorConfig{Enabled: true, MaxJumpCelsius: 10, MaxJumpVolts: 0.5, FrozenFor: minutes(2), Spikes: 1, SpikeWindow: minutes(60),
			MinStuckPolls: 10, StuckMoveCelsius: 0.5, StuckMoveVolts: 0.005, NoisyFactor: 4, NoisyMinCelsius: 0.8, NoisyMinVolts: 0.008, Hold: Hold{For: minutes(1), ClearFor: minutes(15)}}
}

func (c *PeersConfig) validate(p *yamlstrict.Problems, path string) {
	if c.MinPeers < 3 {
		p.Add(path+".min_peers", c.MinPeers, "must be >= 3 (a median of two is no peer group)")
	}
	if c.MinModules < 3 {
		p.Add(path+".min_modules", c.MinModules, "must be >= 3 (a median of two is no peer group)")
	}
	if c.OffsetLearning.Nanos() < int64(time.Minute) {
		p.Add(path+".offset_learning", c.OffsetLearning, "must be at least 1m")
	}
	if c.WarmupPolls < 1 {
		p.Add(path+".warmup_polls", c.WarmupPolls, "must be >= 1")
	}
	if finite(p, path+".offset_bound_z", c.OffsetBoundZ) && c.OffsetBoundZ < 1 {
		p.Add(path+".offset_bound_z", c.OffsetBoundZ, "must be >= 1")
	}
	if finite(p, path+".active_current_amperes", c.ActiveCurrentAmperes) && c.ActiveCurrentAmperes <= 0 {
		p.Add(path+".active_current_amperes", c.ActiveCurrentAmperes, "must be > 0")
	}
	if finite(p, path+".load_step_volts", c.LoadStepVolts) && c.LoadStepVolts < 0 {
		p.Add(path+".load_step_volts", c.LoadStepVolts, "must be >= 0 (0: never inferred)")
	}
}

func (c *DeviationConfig) validate(p *yamlstrict.Problems, path string) {
	if finite(p, path+".threshold", c.Threshold) && c.Threshold <= 0 {
		p.Add(path+".threshold", c.Threshold, "must be > 0")
	}
	if finite(p, path+".z", c.Z) && c.Z < 1 {
		p.Add(path+".z", c.Z, "must be >= 1")
	}
}

func (c *RisingConfig) validate(p *yamlstrict.Problems, path string) {
	if c.Window.Nanos() < int64(2*time.Minute) {
		p.Add(path+".window", c.Window, "must be at least 2m")
	}
	if finite(p, path+".celsius_per_hour", c.CelsiusPerHour) && c.CelsiusPerHour <= 0 {
		p.Add(path+".celsius_per_hour", c.CelsiusPerHour, "must be > 0")
	}
	finite(p, path+".min_rise_celsius", c.MinRiseCelsius)
}

func (c *RunawayConfig) validate(p *yamlstrict.Problems, path string) {
	if finite(p, path+".sag_volts", c.SagVolts) && c.SagVolts <= 0 {
		p.Add(path+".sag_volts", c.SagVolts, "must be > 0")
	}
	if finite(p, path+".accelerating_celsius_per_hour", c.AcceleratingPerHour) && c.AcceleratingPerHour <= 0 {
		p.Add(path+".accelerating_celsius_per_hour", c.AcceleratingPerHour, "must be > 0")
	}
	finite(p, path+".critical_celsius", c.CriticalCelsius)
}

func (c *CoolingConfig) validate(p *yamlstrict.Problems, path string) {
	if finite(p, path+".warning_rise_celsius", c.WarningRise) && finite(p, path+".critical_rise_celsius", c.CriticalRise) &&
		(c.WarningRise <= 0 || c.CriticalRise <= c.WarningRise) {
		p.Add(path+".critical_rise_celsius", c.CriticalRise, "must be above warning_rise_celsius (%g), which must be > 0", c.WarningRise)
	}
	if c.Learning.Nanos() < int64(time.Hour) {
		p.Add(path+".learning", c.Learning, "must be at least 1h")
	}
	if finite(p, path+".fast_rise_celsius", c.FastRise) && finite(p, path+".warning_rise_celsius", c.WarningRise) &&
		(c.FastRise < 0 || c.FastRise > c.WarningRise) {
		p.Add(path+".fast_rise_celsius", c.FastRise, "must be between 0 (off) and warning_rise_celsius (%g)", c.WarningRise)
	}
	if c.FastWindow.Nanos() < int64(2*time.Minute) {
		p.Add(path+".fast_window", c.FastWindow, "must be at least 2m")
	}
	if finite(p, path+".fast_celsius_per_hour", c.FastCelsiusPerHour) && c.FastCelsiusPerHour <= 0 {
		p.Add(path+".fast_celsius_per_hour", c.FastCelsiusPerHour, "must be > 0")
	}
	if finite(p, path+".fast_follow_celsius", c.FastFollow) && c.FastFollow < 0 {
		p.Add(path+".fast_follow_celsius", c.FastFollow, "must be >= 0")
	}
	if finite(p, path+".fast_strings_rise_celsius", c.FastStringsRise) && finite(p, path+".warning_rise_celsius", c.WarningRise) &&
		(c.FastStringsRise < 0 || c.FastStringsRise > c.WarningRise) {
		p.Add(path+".fast_strings_rise_celsius", c.FastStringsRise, "must be between 0 (off) and warning_rise_celsius (%g)", c.WarningRise)
	}
	if c.FastStringsWindow.Nanos() < int64(2*time.Minute) {
		p.Add(path+".fast_strings_window", c.FastStringsWindow, "must be at least 2m")
	}
	if finite(p, path+".spread_factor", c.SpreadFactor) && c.SpreadFactor < 0 {
		p.Add(path+".spread_factor", c.SpreadFactor, "must be >= 0 (0: off)")
	}
	if finite(p, path+".level_climb_celsius", c.LevelClimb) && c.LevelClimb < 0 {
		p.Add(path+".level_climb_celsius", c.LevelClimb, "must be >= 0 (0: off)")
	}
	if finite(p, path+".level_settled_factor", c.LevelSettled) && c.LevelSettled < 1 {
		p.Add(path+".level_settled_factor", c.LevelSettled, "must be >= 1")
	}
}

func (c *SensorConfig) validate(p *yamlstrict.Problems, path string) {
	if finite(p, path+".max_jump_celsius", c.MaxJumpCelsius) && c.MaxJumpCelsius <= 0 {
		p.Add(path+".max_jump_celsius", c.MaxJumpCelsius, "must be > 0")
	}
	if finite(p, path+".max_jump_volts", c.MaxJumpVolts) && c.MaxJumpVolts <= 0 {
		p.Add(path+".max_jump_volts", c.MaxJumpVolts, "must be > 0")
	}
	if c.FrozenFor.Nanos() <= 0 {
		p.Add(path+".frozen_for", c.FrozenFor, "must be > 0")
	}
	if c.Spikes < 1 || c.Spikes > 4 {
		p.Add(path+".spikes", c.Spikes, "must be 1..4 (spikes remembered per sensor)")
	}
	if finite(p, path+".stuck_move_celsius", c.StuckMoveCelsius) && c.StuckMoveCelsius <= 0 {
		p.Add(path+".stuck_move_celsius", c.StuckMoveCelsius, "must be > 0")
	}
	if finite(p, path+".stuck_move_volts", c.StuckMoveVolts) && c.StuckMoveVolts <= 0 {
		p.Add(path+".stuck_move_volts", c.StuckMoveVolts, "must be > 0")
	}
	if c.MinStuckPolls < 2 {
		p.Add(path+".min_stuck_polls", c.MinStuckPolls, "must be >= 2")
	}
	if finite(p, path+".noisy_factor", c.NoisyFactor) && c.NoisyFactor <= 1 {
		p.Add(path+".noisy_factor", c.NoisyFactor, "must be > 1")
	}
	finite(p, path+".noisy_min_celsius", c.NoisyMinCelsius)
	if finite(p, path+".noisy_min_volts", c.NoisyMinVolts) && c.NoisyMinVolts <= 0 {
		p.Add(path+".noisy_min_volts", c.NoisyMinVolts, "must be > 0")
	}
}
