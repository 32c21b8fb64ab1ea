package sim

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Physics changes the simulator's physics for a robustness study: the
// standard suite regenerated with other sensors, thermal behaviour, loads
// and fault shapes (docs/robustness.md). The zero value is the standard
// physics, and a Scenario with a zero Physics gives the same bytes as before
// Physics existed: at their defaults the knobs change no value and add or
// reorder no draw of the main random stream (the per-cell draws of
// TauSpread come from a stream of their own).
//
// Scale factors of 0 mean 1 (unchanged); ParsePhysics only accepts
// positive ones.
type Physics struct {
	// TempQuantum, when set, is the resolution of every UPS's temperature
	// sensors (°C), in place of each UPS's own (0.1 or 1).
	TempQuantum float64
	// VoltQuantum, when set, is the resolution of every UPS's cell
	// voltage sensors (V), in place of 1 mV.
	VoltQuantum float64
	// NoiseScale multiplies the noise of the temperature sensors (cells
	// 0.08 °C, modules 0.08 °C, room 0.05 °C) and of the cell voltage
	// sensors (0.8 mV).
	NoiseScale float64
	// PollInterval, when set, replaces every scenario's poll interval.
	PollInterval time.Duration
	// TauScale multiplies the cells' thermal time constant (45 min); the
	// 10 min of a cell whose runaway heats it from inside is unchanged.
	TauScale float64
	// TauSpread gives each cell its own time constant, uniform within
	// ±TauSpread of it (0.3: ±30 %).
	TauSpread float64
	// JouleScale multiplies Joule heating under load.
	JouleScale float64
	// DischargeC, when set, is the current (C-rate) of every discharge
	// test. A test draws the charge it drew before, so it lasts its old
	// C-rate / DischargeC as long (0.5C for 30 min at 2C: 7.5 min).
	// Utility blips keep theirs.
	DischargeC float64
	// NeighbourHeat is the share (0-1) of a fault's heat that the
	// neighbours receive: a runaway cell's self-heating warms the other
	// cells of its module, a hot module warms the modules next to it in
	// its string (a module hot spot already heats all of its own cells).
	NeighbourHeat float64
	// StepFaults makes hot spots and weak cells steps instead of ramps: a
	// hot spot has its full heat at onset (not after 20 min), a weak cell
	// drops at onset to where its self-discharge would have taken it by the
	// fault's end (3 mV/h for 22 h: 66 mV) and stays there.
	StepFaults bool
	// MissingScale multiplies the share of values reported empty.
	MissingScale float64
	// HVACStep, when set, adds an HVAC setpoint change of that many °C to
	// every UPS at HVACStepAt (default: half-way through the scenario), as
	// a labelled hvac_setpoint event. A scenario shorter than HVACStepAt
	// gets none.
	HVACStep   float64
	HVACStepAt time.Duration
	// PrecursorSpeed multiplies the speed of runaway precursors: the same
	// heat and sag in 1/PrecursorSpeed of the time, then the same
	// acceleration.
	PrecursorSpeed float64
	// NoSag makes runaways heat without any voltage sag.
	NoSag bool
	// WanderScale multiplies the balancing wander of cell voltages (an
	// Ornstein-Uhlenbeck drift of 2 mV standard deviation over about six
	// hours).
	WanderScale float64
	// OffsetScale multiplies the cells' fixed offsets: temperature from
	// their module's air (0.35 °C) and voltage (3 mV).
	OffsetScale float64
	// DailySwing, when set, is the amplitude of the room's daily cycle, °C
	// (1.2).
	DailySwing float64
	// HVACCycle, when set, is the amplitude of the room's HVAC on-off cycle,
	// °C (0.4, a 17-minute period).
	HVACCycle float64
	// ResistScale multiplies the spread of the cells' internal resistance
	// (σ 8 %): how far each cell's voltage steps, and how much more or less
	// it heats, under load.
	ResistScale float64
	// RoomTauScale multiplies the time constants with which a room heats
	// when its cooling fails (30 min) and cools when it is back (20 min).
	RoomTauScale float64
	// SentinelCelsius, when set, is what a temperature sensor with a
	// sentinel fault reports instead of 6553.5: an error code within the
	// plausible range (85, 127, 150 °C).
	SentinelCelsius float64
	// Cells and Modules, when set, are every UPS's cells per module and
	// modules per string. A fault on a cell or module beyond the new count
	// moves to the one its number wraps to (cell 10 of 8 becomes cell 2).
	Cells, Modules int
}

// physicsKey is one key of ParsePhysics.
type physicsKey struct {
	name string
	doc  string
	set  func(p *Physics, v string) error
}

func physicsKeys() []physicsKey {
	return []physicsKey{
		{"temp_quantum", "temperature sensor resolution of every UPS, °C (0.1, 0.5, 1)", floatIn(0.001, 10, func(p *Physics) *float64 { return &p.TempQuantum })},
		{"volt_quantum", "cell voltage sensor resolution of every UPS, V (0.001, 0.005, 0.01)", floatIn(0.001, 0.1, func(p *Physics) *float64 { return &p.VoltQuantum })},
		{"noise_scale", "multiplies temperature (0.08 °C) and voltage (0.8 mV) sensor noise", floatIn(0.001, 100, func(p *Physics) *float64 { return &p.NoiseScale })},
		{"poll_seconds", "poll interval of every scenario, whole seconds 1-60", func(p *Physics, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 60 {
				return errors.New("must be a whole number of seconds from 1 to 60")
			}
			p.PollInterval = time.Duration(n) * time.Second
			return nil
		}},
		{"tau_scale", "multiplies the cells' thermal time constant (45 min)", floatIn(0.01, 100, func(p *Physics) *float64 { return &p.TauScale })},
		{"tau_spread", "per-cell spread of the time constant, uniform ±share (0.3: ±30 %)", floatIn(0, 0.95, func(p *Physics) *float64 { return &p.TauSpread })},
		{"joule_scale", "multiplies Joule heating under load", floatIn(0.001, 100, func(p *Physics) *float64 { return &p.JouleScale })},
		{"discharge_c", "current of every discharge test, C (the same charge drawn: a shorter test)", floatIn(0.01, 5, func(p *Physics) *float64 { return &p.DischargeC })},
		{"neighbour_heat", "share (0-1) of a fault's heat its neighbours receive", floatIn(0, 1, func(p *Physics) *float64 { return &p.NeighbourHeat })},
		{"step_faults", "hot spots and weak cells as steps instead of ramps (true, false)", boolKey(func(p *Physics) *bool { return &p.StepFaults })},
		{"missing_scale", "multiplies the share of missing values", floatIn(0.001, 1000, func(p *Physics) *float64 { return &p.MissingScale })},
		{"hvac_step", "an extra HVAC setpoint change on every UPS, °C (e.g. 6 or -4)", floatIn(-20, 20, func(p *Physics) *float64 { return &p.HVACStep })},
		{"hvac_step_hour", "when the extra setpoint change happens, hours from the start (default: half-way)", func(p *Physics, v string) error {
			h, err := strconv.ParseFloat(v, 64)
			if err != nil || !(h >= 0 && h <= 1000) {
				return errors.New("must be a number of hours from 0 to 1000")
			}
			p.HVACStepAt = time.Duration(h * float64(time.Hour))
			return nil
		}},
		{"precursor_speed", "multiplies the speed of runaway precursors", floatIn(0.01, 100, func(p *Physics) *float64 { return &p.PrecursorSpeed })},
		{"no_sag", "runaways without voltage sag (true, false)", boolKey(func(p *Physics) *bool { return &p.NoSag })},
		{"wander_scale", "multiplies the balancing wander of cell voltages (2 mV over about six hours)", floatIn(0.001, 100, func(p *Physics) *float64 { return &p.WanderScale })},
		{"offset_scale", "multiplies the cells' fixed temperature (0.35 °C) and voltage (3 mV) offsets", floatIn(0.001, 100, func(p *Physics) *float64 { return &p.OffsetScale })},
		{"daily_swing", "amplitude of the room's daily cycle, °C (1.2)", floatIn(0.001, 20, func(p *Physics) *float64 { return &p.DailySwing })},
		{"hvac_cycle", "amplitude of the room's 17-minute HVAC cycle, °C (0.4)", floatIn(0.001, 10, func(p *Physics) *float64 { return &p.HVACCycle })},
		{"resist_scale", "multiplies the spread of the cells' internal resistance (8 %)", floatIn(0.001, 10, func(p *Physics) *float64 { return &p.ResistScale })},
		{"room_tau_scale", "multiplies how slowly a room heats when its cooling fails (30 min) and cools after (20 min)", floatIn(0.01, 100, func(p *Physics) *float64 { return &p.RoomTauScale })},
		{"sentinel_celsius", "what a temperature sensor with a sentinel fault reports instead of 6553.5, °C (e.g. 127 or 85)", floatIn(-1000, 10000, func(p *Physics) *float64 { return &p.SentinelCelsius })},
		{"cells_per_module", "cells in every module, 2-64 (faults on cells beyond wrap round)", intIn(2, 64, func(p *Physics) *int { return &p.Cells })},
		{"modules_per_string", "modules in every string, 1-32 (faults on modules beyond wrap round)", intIn(1, 32, func(p *Physics) *int { return &p.Modules })},
	}
}

func floatIn(lo, hi float64, field func(*Physics) *float64) func(*Physics, string) error {
	return func(p *Physics, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !(x >= lo && x <= hi) {
			return fmt.Errorf("must be a number from %g to %g", lo, hi)
		}
		*field(p) = x
		return nil
	}
}

func intIn(lo, hi int, field func(*Physics) *int) func(*Physics, string) error {
	return func(p *Physics, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		*field(p) = n
		return nil
	}
}

func boolKey(field func(*Physics) *bool) func(*Physics, string) error {
	return func(p *Physics, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*field(p) = b
		return nil
	}
}

// PhysicsKeys describes the keys ParsePhysics accepts, one "key: meaning"
// a line.
func PhysicsKeys() []string {
	var out []string
	for _, k := range physicsKeys() {
		out = append(out, k.name+": "+k.doc)
	}
	return out
}

// ParsePhysics reads key=value settings, each argument one or several
// separated by commas ("temp_quantum=1,noise_scale=2"). Unknown keys, bad
// values and keys given twice are errors naming the key. No arguments give
// the standard physics.
func ParsePhysics(args []string) (Physics, error) {
	var p Physics
	keys := physicsKeys()
	seen := map[string]bool{}
	var errs []error
	for _, arg := range args {
		for _, kv := range strings.Split(arg, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			name, val, ok := strings.Cut(kv, "=")
			name, val = strings.TrimSpace(name), strings.TrimSpace(val)
			i := slices.IndexFunc(keys, func(k physicsKey) bool { return k.name == name })
			switch {
			case i < 0:
				errs = append(errs, fmt.Errorf("physics: unknown key %q (known: %s)", name, strings.Join(physicsKeyNames(keys), ", ")))
			case !ok:
				errs = append(errs, fmt.Errorf("physics: %s: no value (want %s=VALUE)", name, name))
			case seen[name]:
				errs = append(errs, fmt.Errorf("physics: %s: given twice", name))
			default:
				seen[name] = true
				if err := keys[i].set(&p, val); err != nil {
					errs = append(errs, fmt.Errorf("physics: %s: %q %w", name, val, err))
				}
			}
		}
	}
	if seen["hvac_step_hour"] && !seen["hvac_step"] {
		errs = append(errs, errors.New("physics: hvac_step_hour: needs hvac_step"))
	}
	if err := errors.Join(errs...); err != nil {
		return Physics{}, err
	}
	return p, nil
}

func physicsKeyNames(keys []physicsKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.name)
	}
	return out
}

// String gives p as ParsePhysics reads it, only the keys that differ from
// the standard physics, in a fixed order; "" for the standard physics.
func (p Physics) String() string {
	var parts []string
	f := func(name string, v, def float64) {
		if v != def && v != 0 {
			parts = append(parts, name+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	f("temp_quantum", p.TempQuantum, 0)
	f("volt_quantum", p.VoltQuantum, 0)
	f("noise_scale", p.NoiseScale, 1)
	f("poll_seconds", p.PollInterval.Seconds(), 0)
	f("tau_scale", p.TauScale, 1)
	f("tau_spread", p.TauSpread, 0)
	f("joule_scale", p.JouleScale, 1)
	f("discharge_c", p.DischargeC, 0)
	f("neighbour_heat", p.NeighbourHeat, 0)
	if p.StepFaults {
		parts = append(parts, "step_faults=true")
	}
	f("missing_scale", p.MissingScale, 1)
	f("hvac_step", p.HVACStep, 0)
	if p.HVACStep != 0 {
		f("hvac_step_hour", p.HVACStepAt.Hours(), 0)
	}
	f("precursor_speed", p.PrecursorSpeed, 1)
	if p.NoSag {
		parts = append(parts, "no_sag=true")
	}
	f("wander_scale", p.WanderScale, 1)
	f("offset_scale", p.OffsetScale, 1)
	f("daily_swing", p.DailySwing, 0)
	f("hvac_cycle", p.HVACCycle, 0)
	f("resist_scale", p.ResistScale, 1)
	f("room_tau_scale", p.RoomTauScale, 1)
	f("sentinel_celsius", p.SentinelCelsius, 0)
	f("cells_per_module", float64(p.Cells), 0)
	f("modules_per_string", float64(p.Modules), 0)
	return strings.Join(parts, ",")
}

// validate checks what ParsePhysics checks, for a Physics built in code.
func (p Physics) validate() error {
	switch {
	case p.TempQuantum < 0, p.VoltQuantum < 0, p.NoiseScale < 0, p.TauScale < 0, p.JouleScale < 0, p.DischargeC < 0,
		p.MissingScale < 0, p.PrecursorSpeed < 0, p.PollInterval < 0, p.HVACStepAt < 0,
		p.WanderScale < 0, p.OffsetScale < 0, p.DailySwing < 0, p.HVACCycle < 0, p.ResistScale < 0, p.RoomTauScale < 0:
		return errors.New("physics: negative setting")
	case p.Cells < 0 || p.Cells == 1 || p.Modules < 0:
		return fmt.Errorf("physics: %d cells per module, %d modules per string", p.Cells, p.Modules)
	case p.TauSpread < 0 || p.TauSpread >= 1:
		return fmt.Errorf("physics: tau_spread %v outside [0, 1)", p.TauSpread)
	case p.NeighbourHeat < 0 || p.NeighbourHeat > 1:
		return fmt.Errorf("physics: neighbour_heat %v outside [0, 1]", p.NeighbourHeat)
	}
	return nil
}

// wrapIndex wraps a 1-based module or cell number ("10") onto n of them
// ("2" of 8); "" and an n of 0 leave it as it is.
func wrapIndex(idx string, n int) string {
	k, err := strconv.Atoi(idx)
	if n == 0 || err != nil || k <= n {
		return idx
	}
	return strconv.Itoa((k-1)%n + 1)
}

// apply returns sc with the knobs that change its specification applied:
// sensor resolution, poll interval, discharge current, missing values, the
// extra setpoint change, the runaways' precursors and the modules and
// cells of every UPS. Run applies the others as it simulates. sc itself is
// not changed.
func (p Physics) apply(sc *Scenario) *Scenario {
	if p == (Physics{}) {
		return sc
	}
	c := *sc
	c.Fleet = slices.Clone(sc.Fleet)
	if p.TempQuantum > 0 {
		for i := range c.Fleet {
			c.Fleet[i].TempQuantum = p.TempQuantum
		}
	}
	if p.VoltQuantum > 0 {
		for i := range c.Fleet {
			c.Fleet[i].VoltQuantum = p.VoltQuantum
		}
	}
	if p.PollInterval > 0 {
		c.Interval = p.PollInterval
	}
	c.MissingRate = math.Min(1, sc.MissingRate*cmp.Or(p.MissingScale, 1))
	c.Events = slices.Clone(sc.Events)
	if p.DischargeC > 0 {
		for i := range c.Events {
			if e := &c.Events[i]; e.Kind == EventDischargeTest {
				e.Duration = time.Duration(float64(e.Duration) * e.CRate / p.DischargeC).Round(time.Second)
				e.CRate = p.DischargeC
			}
		}
	}
	if p.HVACStep != 0 {
		at := p.HVACStepAt
		if at == 0 {
			at = sc.Duration / 2
		}
		if at < sc.Duration {
			for _, u := range sc.Fleet {
				c.Events = append(c.Events, EventSpec{Kind: EventHVACSetpoint, UPS: u.Name, At: at, Delta: p.HVACStep})
			}
		}
	}
	for i := range c.Fleet {
		c.Fleet[i].Cells = cmp.Or(p.Cells, c.Fleet[i].Cells)
		c.Fleet[i].Modules = cmp.Or(p.Modules, c.Fleet[i].Modules)
	}
	c.Faults = slices.Clone(sc.Faults)
	for i := range c.Faults {
		f := &c.Faults[i]
		f.Module, f.Cell = wrapIndex(f.Module, p.Modules), wrapIndex(f.Cell, p.Cells)
		if f.Class == ClassSensorSentinel && !f.Volts && p.SentinelCelsius != 0 {
			f.Magnitude = p.SentinelCelsius
		}
		if f.Class != ClassThermalRunaway {
			continue
		}
		if p.PrecursorSpeed > 0 {
			f.Duration = time.Duration(float64(f.Duration) / p.PrecursorSpeed).Round(time.Second)
		}
		if p.NoSag {
			f.SagVolts = 0
		}
	}
	return &c
}
