// Package detector turns a stream of Samples into alert state changes. It
// is pure and deterministic: no I/O, no wall clock. Every hold time, rate
// and stale check is computed from the samples' event times (stale checks
// from the time the caller passes to Tick), so replaying a file drives
// exactly the code the daemon runs and gives the same alerts every time.
package detector

import (
	"math"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Stats counts what the engine has seen.
type Stats struct {
	Samples     int64 // samples observed, including those below
	NoReading   int64 // samples whose value was NaN ("no reading")
	Implausible int64 // values outside the plausible range, not evaluated
	OutOfOrder  int64 // samples older than the entity's previous one, dropped
}

// entityState is everything the engine keeps per entity. One struct serves
// every level; fields a level does not use stay zero.
type entityState struct {
	known bool
	level telemetry.Level
	info  telemetry.Info
	// lastTime per metric, to drop samples that go back in time.
	lastTime [telemetry.NumMetrics]int64
	seen     [telemetry.NumMetrics]bool

	overTemp [2]alertState // [0] warning, [1] critical
	voltage  [2]alertState
	limits   *VoltageLimits // cell voltage limits, resolved on first sight

	stale staleState // UPS, string and module only
}

// Engine runs the rules over samples. It is not safe for concurrent use:
// one goroutine feeds it (the daemon serialises collectors into one
// stream).
type Engine struct {
	cfg  Config
	reg  *telemetry.Registry
	inv  *inventory.Inventory
	ents []entityState // index EntityID-1

	stale staleTracker
	stats Stats
}

// New returns an engine using reg to resolve entities and inv (may be nil)
// for each string's chemistry. cfg must have been validated.
func New(cfg Config, reg *telemetry.Registry, inv *inventory.Inventory) *Engine {
	e := &Engine{cfg: cfg, reg: reg, inv: inv}
	e.stale.init(&e.cfg.TelemetryStale)
	return e
}

// Stats returns the counts so far.
func (e *Engine) Stats() Stats { return e.stats }

// state returns the state of id, creating it on first sight.
func (e *Engine) state(id telemetry.EntityID) *entityState {
	if int(id) > len(e.ents) {
		n := int(id)
		if n < 2*len(e.ents) {
			n = 2 * len(e.ents)
		}
		grown := make([]entityState, n)
		copy(grown, e.ents)
		e.ents = grown
	}
	st := &e.ents[id-1]
	if !st.known {
		st.known = true
		st.info = e.reg.Info(id)
		st.level = st.info.Level
		if st.level <= telemetry.LevelModule {
			e.stale.add(id)
		}
	}
	return st
}

// Observe feeds one sample and appends the alert changes it causes to out.
// Samples must come in non-decreasing event time per entity and metric; an
// older one is dropped and counted.
func (e *Engine) Observe(s telemetry.Sample, out []Change) []Change {
	e.stats.Samples++
	st := e.state(s.Entity)
	if st.seen[s.Metric] && s.Time < st.lastTime[s.Metric] {
		e.stats.OutOfOrder++
		return out
	}
	st.seen[s.Metric], st.lastTime[s.Metric] = true, s.Time
	if math.IsNaN(s.Value) {
		e.stats.NoReading++
		return out
	}
	out = e.touchSources(st, s.Entity, s.Time, out)

	switch s.Metric {
	case telemetry.CellTemperatureCelsius:
		if e.plausibleCelsius(s.Value) {
			out = e.overTemperature(st, s, &e.cfg.CellOverTemperature, AlertCellOverTemperature, out)
		}
	case telemetry.ModuleTemperatureCelsius:
		if e.plausibleCelsius(s.Value) {
			out = e.overTemperature(st, s, &e.cfg.ModuleOverTemperature, AlertModuleOverTemperature, out)
		}
	case telemetry.CellVoltageVolts:
		p := &e.cfg.Plausible
		if s.Value > p.MinCellVolts && s.Value < p.MaxCellVolts {
			out = e.voltageRange(st, s, out)
		} else {
			e.stats.Implausible++
		}
	}
	return out
}

func (e *Engine) plausibleCelsius(v float64) bool {
	if v < e.cfg.Plausible.MinCelsius || v > e.cfg.Plausible.MaxCelsius {
		e.stats.Implausible++
		return false
	}
	return true
}

// touchSources records a reading for the sources above (and at) the
// sample's entity and resolves their stale alerts.
func (e *Engine) touchSources(st *entityState, id telemetry.EntityID, t int64, out []Change) []Change {
	for _, src := range [...]telemetry.EntityID{st.info.UPS, st.info.String, st.info.Module} {
		if src == 0 {
			continue
		}
		sst := st
		if src != id {
			sst = e.state(src)
		}
		out = e.stale.touch(sst, src, t, out)
	}
	return out
}

// Tick evaluates the checks that depend on the passage of time (stale
// telemetry) at event time now, and appends the changes to out. The replay
// driver ticks with the latest event time once every sample up to it has
// been observed; the daemon ticks with its clock.
func (e *Engine) Tick(now int64, out []Change) []Change {
	return e.stale.tick(e, now, out)
}
