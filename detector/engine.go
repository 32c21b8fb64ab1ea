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
	// EnvelopeCells counts cells judged with the "default" voltage limits
	// because the inventory gives no chemistry for their string.
	EnvelopeCells int64
	// Spikes counts readings held back and confirmed as spikes.
	Spikes int64
}

// entityState is everything the engine keeps per entity. One struct serves
// every level; fields a level does not use stay zero. It holds no pointers,
// so a large fleet costs the garbage collector nothing to scan.
type entityState struct {
	known  bool
	level  telemetry.Level
	limits uint8  // 1 + index into Engine.limits; 0 until resolved
	seen   uint16 // bit per metric: its lastTime is meaningful
	src    uint32 // UPS, string, module: 1 + index of its staleState
	// aux is 1 + the index of the entity's peer state: Engine.cells for a
	// cell, mods for a module, groups for a string, upss for a UPS.
	aux uint32
	// self and the ancestors at each level (0 above the entity's level).
	self, parent, str, module telemetry.EntityID
	// lastTime is the time of the latest sample of each metric of the
	// entity's level, at the metric's timeSlot.
	lastTime [maxLevelMetrics]int64

	overTemp [2]alertState // [0] warning, [1] critical
	voltage  [2]alertState
}

// maxLevelMetrics is the most metrics one level of the hierarchy has (a
// string's voltage, current, state of charge and of health).
const maxLevelMetrics = 4

// timeSlot gives each metric a place among those of its level (in
// entityState.lastTime). A sample's metric is of its entity's level.
var timeSlot = func() (s [telemetry.NumMetrics]uint8) {
	var n [telemetry.LevelCell + 1]uint8
	for _, m := range telemetry.Metrics() {
		s[m] = n[m.Level()]
		n[m.Level()]++
		if n[m.Level()] > maxLevelMetrics {
			panic("detector: maxLevelMetrics is too small for the metric catalogue")
		}
	}
	return s
}()

// Engine runs the rules over samples. It is not safe for concurrent use:
// one goroutine feeds it (the daemon serialises collectors into one
// stream).
type Engine struct {
	cfg    Config
	reg    *telemetry.Registry
	inv    *inventory.Inventory
	ents   []entityState // index EntityID-1
	limits []VoltageLimits
	limKey map[string]uint8 // chemistry key -> 1 + index into limits

	// Peer-relative state, indexed by entityState.aux - 1.
	cells  chunkTable[cellPeer]
	tracks chunkTable[track] // the cells' sensor tracks (cellPeer.temp, volt)
	jumps  jumpPool          // the tracks' jump-filter states (track.jump)
	mods   []modPeer
	groups []group
	upss   []upsState
	bufs   [5][]float64 // scratch buffers, reused
	polled []*cellPeer  // scratch: the cells of the string whose poll closes
	sides  []cellSide   // scratch: those of them with a track of one quantity

	stale staleTracker
	stats Stats
	age   *ageState                   // battery-age rules (nil: off)
	maint map[telemetry.EntityID]bool // UPSs and strings under maintenance
}

// New returns an engine using reg to resolve entities and inv (may be nil)
// for each string's chemistry. cfg must have been validated.
func New(cfg Config, reg *telemetry.Registry, inv *inventory.Inventory) *Engine {
	e := &Engine{reg: reg}
	e.setConfig(cfg, inv)
	e.stale.init(&e.cfg.TelemetryStale)
	return e
}

func (e *Engine) setConfig(cfg Config, inv *inventory.Inventory) {
	e.cfg, e.inv, e.limits, e.limKey = cfg, inv, nil, map[string]uint8{}
	for _, k := range sortedKeys(cfg.CellVoltageOutOfRange.Limits) {
		e.limits = append(e.limits, cfg.CellVoltageOutOfRange.Limits[k])
		e.limKey[k] = uint8(len(e.limits))
	}
	for i := range e.ents {
		e.ents[i].limits = 0 // resolved again from the new limits and inventory
	}
}

// Reconfigure applies a new (validated) configuration and inventory
// without losing what the engine learned: offsets, noise, baselines,
// learned intervals and alert states carry over; new thresholds and holds
// apply from the next sample. The daemon calls it on a configuration
// reload.
func (e *Engine) Reconfigure(cfg Config, inv *inventory.Inventory) {
	e.setConfig(cfg, inv)
	e.forgetOffsetBounds()
	e.stale.cfg = &e.cfg.TelemetryStale
	if e.age != nil {
		e.age.ev.SetInventory(inv)
		e.age.dirty = true
	}
}

// Stats returns the counts so far.
func (e *Engine) Stats() Stats { return e.stats }

// path renders an entity for messages.
func (e *Engine) path(id telemetry.EntityID) string { return e.reg.Info(id).Entity.Path() }

// state returns the state of id, creating it (and its ancestors') on first
// sight. Ancestors have smaller IDs, so creating a child's state never
// moves a parent's.
func (e *Engine) state(id telemetry.EntityID) *entityState {
	if int(id) > len(e.ents) {
		// The registry mostly knows the whole fleet already: grow to it,
		// or by a quarter, not by double.
		n := max(int(id), e.reg.Len(), len(e.ents)+len(e.ents)/4, 64)
		grown := make([]entityState, n)
		copy(grown, e.ents)
		e.ents = grown
	}
	st := &e.ents[id-1]
	if !st.known {
		info := e.reg.Info(id)
		if info.Parent != 0 {
			e.state(info.Parent)
		}
		st.known, st.level, st.self, st.parent, st.str, st.module = true, info.Level, id, info.Parent, info.String, info.Module
		if st.level <= telemetry.LevelModule {
			st.src = e.stale.add(id)
		}
		if st.level == telemetry.LevelString {
			e.declareString(id)
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
	bit := uint16(1) << s.Metric
	slot := &st.lastTime[timeSlot[s.Metric]%maxLevelMetrics]
	if st.seen&bit != 0 && s.Time < *slot {
		e.stats.OutOfOrder++
		return out
	}
	st.seen |= bit
	*slot = s.Time
	if math.IsNaN(s.Value) {
		e.stats.NoReading++
		return out
	}
	out = e.stale.touch(e, st, s.Time, out)

	switch s.Metric {
	case telemetry.CellTemperatureCelsius, telemetry.CellVoltageVolts:
		out = e.observeCell(st, s, out)
	case telemetry.ModuleTemperatureCelsius:
		out = e.observeModule(st, s, out)
	case telemetry.AmbientTemperatureCelsius:
		out = e.observeAmbient(s, out)
	case telemetry.StringCurrentAmperes:
		e.observeCurrent(s)
	case telemetry.StringSOHRatio:
		e.observeSOH(st, s)
	}
	return out
}

// Tick evaluates the checks that depend on the passage of time (stale
// telemetry) at event time now, and appends the changes to out. The replay
// driver ticks with the latest event time once every sample up to it has
// been observed; the daemon ticks with its clock.
func (e *Engine) Tick(now int64, out []Change) []Change {
	out = e.closeQuietPolls(now, out)
	out = e.tickAges(now, out)
	return e.stale.tick(e, now, out)
}
