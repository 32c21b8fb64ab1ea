package detector

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// ringSize is how many points of a cell's relative temperature the rising
// rule keeps over its window.
const ringSize = 16

// quietClose is how long a string's poll may stay quiet before a tick
// closes it.
const quietClose = int64(5 * time.Second)

// cellPeer is the peer-relative state of one cell. It holds no pointers.
type cellPeer struct {
	id  telemetry.EntityID
	mod uint32 // 1 + index into Engine.mods
	// temp and volt are 1 + the indices of the cell's sensor tracks in
	// Engine.tracks, 0 until the cell's first reading of that quantity:
	// a cell whose BMS reports only voltages (temperatures often come per
	// module) holds no temperature track.
	temp, volt uint32
	// Relative temperature (reading minus the peers' median) sampled every
	// window/ringSize for the rising rule.
	ring    slopeRing
	slope   float64 // Theil-Sen, °C/h, over the window (thirdsOf: over each third)
	span    float64 // hours the ring covers
	rising  alertState
	runaway alertState
	sensor  alertState
}

// tableChunk is how many entries one allocation of a chunkTable holds
// (about 80 KB of tracks, 60 KB of cells).
const tableChunk = 256

// chunkTable holds a growing table in chunks of tableChunk: a growing
// fleet neither copies the whole table nor holds it twice while it grows,
// and no more than one chunk is allocated ahead of the entries.
type chunkTable[T any] struct {
	chunks []*[tableChunk]T
	n      int
}

// at returns entry i (0 ≤ i < len).
func (t *chunkTable[T]) at(i uint32) *T { return &t.chunks[i/tableChunk][i%tableChunk] }

func (t *chunkTable[T]) len() int { return t.n }

// add appends v and returns its index.
func (t *chunkTable[T]) add(v T) uint32 {
	if t.n == len(t.chunks)*tableChunk {
		t.chunks = append(t.chunks, new([tableChunk]T))
	}
	i := uint32(t.n)
	*t.at(i) = v
	t.n++
	return i
}

// each calls fn with the entries in chunks, in order.
func (t *chunkTable[T]) each(fn func([]T)) {
	for k, ch := range t.chunks {
		fn(ch[:min(t.n-k*tableChunk, tableChunk)])
	}
}

// chunkTableOf takes over a table (a restored snapshot's), copying only
// its last chunk when that is not full.
func chunkTableOf[T any](s []T) chunkTable[T] {
	t := chunkTable[T]{n: len(s)}
	for len(s) >= tableChunk {
		t.chunks = append(t.chunks, (*[tableChunk]T)(s))
		s = s[tableChunk:]
	}
	if len(s) > 0 {
		ch := new([tableChunk]T)
		copy(ch[:], s)
		t.chunks = append(t.chunks, ch)
	}
	return t
}

// trackOf returns the track at index i of Engine.tracks (1 + index, as a
// cellPeer keeps it), or nil for 0: no reading of that quantity yet.
func (e *Engine) trackOf(i uint32) *track {
	if i == 0 {
		return nil
	}
	return e.tracks.at(i - 1)
}

// side returns a cell's temperature or voltage track (nil: none yet).
func (e *Engine) side(c *cellPeer, isTemp bool) *track {
	if isTemp {
		return e.trackOf(c.temp)
	}
	return e.trackOf(c.volt)
}

// cellSide is a cell of a closing poll with its track of one quantity.
type cellSide struct {
	c  *cellPeer
	tr *track
}

// readIn reports whether tr (nil: none) holds a reading of poll seq.
func (tr *track) readIn(seq uint32) bool {
	return tr != nil && tr.seq == seq && !math.IsNaN(tr.pending)
}

// faulty reports whether tr (nil: none) has a sensor fault flagged.
func (tr *track) faulty() bool { return tr != nil && tr.fault != 0 }

// sideOf returns a cell's temperature or voltage track, adding it on the
// cell's first reading of that quantity.
func (e *Engine) sideOf(c *cellPeer, isTemp bool) *track {
	i := &c.volt
	if isTemp {
		i = &c.temp
	}
	if *i == 0 {
		*i = e.tracks.add(newTrack()) + 1
	}
	return e.tracks.at(*i - 1)
}

// slopeRing holds a quantity sampled every window/ringSize for a
// Theil-Sen slope over the window. It holds no pointers. Its times are
// kept to the millisecond (readings are stamped to the second or the
// millisecond), as offsets from base, which push moves on every 49 days.
type slopeRing struct {
	v    [ringSize]float32
	t    [ringSize]uint32 // milliseconds after base (ringTick)
	n    uint32
	base int64
	next int64
}

// ringTick is the unit of slopeRing's times.
const ringTick = int64(time.Millisecond)

// time returns the time of point a.
func (r *slopeRing) time(a int) int64 { return r.base + int64(r.t[a])*ringTick }

// modPeer is the peer-relative state of one module.
type modPeer struct {
	id   telemetry.EntityID
	temp track
	// The module's residual sampled for ModuleTemperatureRising, its
	// Theil-Sen slope (°C/h) and the hours the points span.
	ring      slopeRing
	rslope    float64
	rspan     float64
	rlevel    float64 // where the Theil-Sen line ends: the residual's level, robustly
	rising    alertState
	warming   bool   // ModuleTemperatureRising's condition held at the last poll
	sensorSeq uint32 // group poll of sensorVal
	sensorVal float64
	// The module's own temperature sensor's checks: its last accepted
	// reading, its jump-filter state (1 + index into Engine.jumps, 0:
	// none), its fault flags and its SensorFault.
	sensorLast   float64
	sensorLastAt int64
	sensorJump   uint32
	sensorFault  uint8
	sensor       alertState
	hot          bool    // the module stood out from its string at the last poll
	nCells       int     // cells with a sound temperature in the last poll
	slope        float64 // median rising slope of its cells, °C/h
	// driftT and driftV accumulate its cells' common movement
	// (moduleDrift), from accSum over accN changes at each poll.
	driftT, driftV float64
	accSum         float64
	accN           uint32
	// inRunaway counts its cells whose ThermalRunawayRisk fires: their
	// neighbours then start no alerts of their own.
	inRunaway uint32
	runaway   alertState
	cells     []uint32 // indices into Engine.cells, ascending by ID
}

// group is one string: the peer group of its cells and modules.
type group struct {
	id       telemetry.EntityID
	ups      uint32   // 1 + index into Engine.upss
	cells    []uint32 // indices into Engine.cells, ascending by ID
	mods     []uint32 // indices into Engine.mods, ascending by ID
	seq      uint32
	open     bool
	pollTime int64 // latest sample of the open poll
	prevPoll int64
	// drift accumulates the peers' common change from poll to poll (the
	// mean over healthy cells present in both polls), so that a peer
	// joining or leaving does not look like movement.
	driftT, driftV float64
	lastActive     int64 // last time the string carried load
	lastDischarge  int64 // last time it discharged
	loaded         bool  // lastActive is set
	// curAt is the time of the string's latest current reading (curSeen:
	// there was one); without a recent one, load is inferred from the
	// median cell voltage, prevMedV at the previous poll (medSeen: set).
	curAt int64
	// episode is when the drop that started the latest inferred load
	// came; lastLow when the string, so loaded, was last seen discharged.
	episode, lastLow int64
	prevMedV         float64
	curSeen, medSeen bool
	// quantT and quantV are the resolutions the latest poll's cell
	// temperatures and voltages lie on (see resolution).
	quantT, quantV float64
	// The string's common temperature (driftT) sampled like a cell's ring,
	// and its Theil-Sen slope over the rising window (°C/h).
	slopeRing slopeRing
	slopeT    float64
	cool      coolState
	climb     climbState // of the median cell temperature, outside load
	climbLong climbState // the same over CoolingFailure's fast_strings_window
	// preLoadRise is the cooling rise at the poll before the string's
	// latest load began (coolLoad: the last poll was under load).
	preLoadRise float64
	coolLoad    bool
	// charge learns the string's normal median cell voltage
	// (ChargeVoltageHigh).
	charge coolState
	// offLo and offHi bound the offsets its cells may learn, voltage [0]
	// and temperature [1] (see offsetBounds), worked out at poll offSeq
	// (0: not yet).
	offLo, offHi [2]float64
	offSeq       [2]uint32
}

// offsetEvery is how many polls a string's offset bounds serve before
// they are worked out again: offsets learn over a day.
const offsetEvery = 64

// forgetOffsetBounds makes every string work out its cells' offset bounds
// again at its next poll, from the configuration in force.
func (e *Engine) forgetOffsetBounds() {
	for i := range e.groups {
		e.groups[i].offSeq = [2]uint32{}
	}
}

// offsetBounds bounds the offsets of a peer group, from the offsets offs
// of its warmed-up members (reordered): their median ± max(floor, z robust
// standard deviations) (peers.offset_bound_z). A cell that was already hot, or already
// low, when monitoring began would otherwise learn its fault as its
// normal; its peers' offsets say how far apart sound cells sit. With fewer
// than minPeers offsets there are no bounds.
func offsetBounds(offs []float64, floor, z float64, minPeers int) (lo, hi float64) {
	if len(offs) < minPeers {
		return math.Inf(-1), math.Inf(1)
	}
	med := median(offs)
	w := max(floor, z*spread(offs, med))
	return med - w, med + w
}

// inLoad reports whether the string carries load, or did within the
// cooldown, at time t.
func (g *group) inLoad(t int64, c *PeersConfig) bool {
	return g.loaded && t-g.lastActive < c.LoadCooldown.Nanos()
}

// inferLoad marks a string that has reported no current for currentFresh
// as under load from its cells' median voltage medV at poll time t (dt
// after its previous poll): when it dropped at least peers.load_step_volts
// (or one and a half voltage steps of the BMS) since the previous poll, as
// it does when a discharge starts or a recharge ends, and, once marked,
// while it stays ChargeVoltageHigh's rise below the string's normal (the
// string is discharged or recharging), for at most inferredLowMax after
// the drop that started the episode. A drop from a median already that
// far below the normal starts nothing (a string whose float was lowered
// for good, whose normal does not learn under load, would otherwise be
// held under load for ever by its dips), though it goes on marking a
// string already under load. A rise never starts it: a charger that
// overcharges raises the voltage. While the median falls the string counts
// as discharging. After a gap of currentFresh the previous median is too
// old to compare with. It reports whether it marked the string.
func (e *Engine) inferLoad(g *group, medV float64, t, dt int64) bool {
	pc := &e.cfg.Peers
	prev, seen := g.prevMedV, g.medSeen && dt <= int64(currentFresh)
	g.prevMedV, g.medSeen = medV, true
	if pc.LoadStepVolts <= 0 || g.currentKnown(t) {
		return false
	}
	known := g.charge.n > uint32(pc.WarmupPolls)
	lowAt := g.charge.base - e.cfg.ChargeVoltageHigh.RiseVolts
	loaded := g.inLoad(t, pc)
	drop := seen && prev-medV >= max(pc.LoadStepVolts, 1.5*g.quantV) && (loaded || !known || prev > lowAt)
	if drop && !loaded {
		g.episode = t
	}
	low := loaded && t-g.episode < int64(inferredLowMax) && known && medV <= lowAt
	if low {
		g.lastLow = t
	}
	if drop || low {
		g.lastActive, g.loaded = t, true
		if seen && medV < prev {
			g.lastDischarge = t
		}
	}
	return drop || low
}

// currentKnown reports whether the string reported its current within
// currentFresh of t, so that its load need not be inferred.
func (g *group) currentKnown(t int64) bool { return g.curSeen && t-g.curAt < int64(currentFresh) }

// currentFresh is how long a current reading tells whether a string
// carries load; inferredLowMax is how long after the drop that started an
// inferred load the string's low voltage keeps it under load;
// rechargeHold is how long after it was last seen discharged in such a
// load a string that reports no current raises no ChargeVoltageHigh (a
// charger may hold it above float in its constant-voltage phase).
const (
	currentFresh   = 15 * time.Minute
	inferredLowMax = 3 * time.Hour
	rechargeHold   = 6 * time.Hour
)

// cellOf returns the peer state of a cell, creating it (and its module's
// and string's) on first sight.
func (e *Engine) cellOf(st *entityState) *cellPeer {
	if st.aux == 0 {
		m := e.modOf(st.module)
		g := e.groupOf(st.str)
		idx := e.cells.add(cellPeer{id: st.self})
		st.aux = idx + 1
		e.cells.at(idx).mod = m
		g.cells = insertByID(g.cells, idx, func(i uint32) telemetry.EntityID { return e.cells.at(i).id })
		mp := &e.mods[m-1]
		mp.cells = insertByID(mp.cells, idx, func(i uint32) telemetry.EntityID { return e.cells.at(i).id })
	}
	return e.cells.at(st.aux - 1)
}

func insertByID(list []uint32, idx uint32, id func(uint32) telemetry.EntityID) []uint32 {
	i, _ := slices.BinarySearchFunc(list, id(idx), func(x uint32, target telemetry.EntityID) int {
		return int(id(x)) - int(target)
	})
	return slices.Insert(list, i, idx)
}

// groupOf returns the group of a string (by the string's entity ID).
func (e *Engine) groupOf(strID telemetry.EntityID) *group {
	sst := e.state(strID)
	if sst.aux == 0 {
		e.groups = append(e.groups, group{id: sst.self, quantT: 0.1})
		sst.aux = uint32(len(e.groups))
		g := &e.groups[sst.aux-1]
		g.ups = e.upsOf(sst.parent)
		u := &e.upss[g.ups-1]
		u.groups = append(u.groups, sst.aux-1)
	}
	return &e.groups[sst.aux-1]
}

// modOf returns 1 + the index of a module's peer state.
func (e *Engine) modOf(id telemetry.EntityID) uint32 {
	mst := e.state(id)
	if mst.aux == 0 {
		e.groupOf(mst.parent)
		e.mods = append(e.mods, modPeer{id: id, temp: newTrack(), sensorVal: math.NaN(), sensorLast: math.NaN()})
		mst.aux = uint32(len(e.mods))
		g := &e.groups[e.ents[mst.parent-1].aux-1]
		g.mods = insertByID(g.mods, mst.aux-1, func(i uint32) telemetry.EntityID { return e.mods[i].id })
	}
	return mst.aux
}

// folded reports whether another cell of c's module is in thermal runaway:
// its neighbours then heat for real, and their alerts would be the same
// incident told many times, so c starts none (those already firing go on).
func (e *Engine) folded(c *cellPeer) bool {
	return e.mods[c.mod-1].inRunaway > 0 && !c.runaway.firing()
}

func (e *Engine) groupOfCell(c *cellPeer) *group {
	return &e.groups[e.ents[e.ents[c.id-1].str-1].aux-1]
}

// observeCell handles a cell temperature or voltage reading: sensor checks,
// the absolute rules on accepted readings, and the reading's place in its
// string's poll.
func (e *Engine) observeCell(st *entityState, s telemetry.Sample, out []Change) []Change {
	c := e.cellOf(st)
	g := e.groupOfCell(c)
	isTemp := s.Metric == telemetry.CellTemperatureCelsius
	tr, maxJump := e.sideOf(c, isTemp), e.cfg.SensorFault.MaxJumpVolts
	impossible := impossibleVolts(s.Value, &e.cfg.Plausible)
	if isTemp {
		maxJump = e.cfg.SensorFault.MaxJumpCelsius
		impossible = impossibleCelsius(s.Value, &e.cfg.Plausible)
	}
	if impossible {
		e.stats.Implausible++
		tr.fault |= faultImpossible
		return e.sensorStep(c, s.Time, out)
	}
	tr.fault &^= faultImpossible
	use, times, n, spike := [3]float64{s.Value}, [3]int64{s.Time}, 1, false
	if last := tr.lastValue(); !e.jumps.quiet(tr.jump, last, s.Value, maxJump) {
		freeze, hold := int64(0), e.freezeFor(st.module)
		switch {
		case isTemp && !e.cellStandsOut(st, c):
			freeze = hold
		case !isTemp && s.Value > last && !(g.loaded && s.Time-g.lastActive <= hold) && !e.cellStandsOut(st, c):
			// A voltage jumps up only by its sensor while no current
			// flows: in a series string a current step moves a cell by
			// tens of mV, and an open cell would read the whole string's
			// voltage. While the string charges (a current within
			// frozen_for), a full cell of a string whose balancing failed
			// can climb its knee fast; and a cell may collapse at once
			// and stay there (an internal short): neither is held.
			freeze = hold
		}
		use, times, n, spike = e.jumps.accept(&tr.jump, last, tr.lastAt, s.Value, s.Time, maxJump, freeze)
	}
	tr.fault = e.jumpFaults(&tr.jump, tr.fault, s.Time, spike)
	out = e.sensorStep(c, s.Time, out)
	for i := 0; i < n; i++ {
		v := use[i]
		tr.pushValue(v)
		tr.lastAt = times[i]
		// The absolute rules see the readings the sensor checks pass; for a
		// sensor flagged noisy or stuck, the median of its last three
		// readings: its level still counts (a fire must not hide behind a
		// sensor fault), its single readings do not.
		rs := s
		rs.Value, rs.Time = v, times[i]
		if tr.fault&(faultStuck|faultNoisy) != 0 {
			rs.Value = tr.robustValue()
		}
		if !math.IsNaN(rs.Value) {
			if isTemp {
				out = e.overTemperature(st, rs, &e.cfg.CellOverTemperature, AlertCellOverTemperature, out, e.coolingFiring(g), e.folded(c))
			} else {
				out = e.voltageRange(st, rs, out)
			}
		}
		if g.open && tr.seq == g.seq && !math.IsNaN(tr.pending) {
			out = e.closePoll(g, out)
		}
		tr.pending, tr.seq = v, g.seq
		g.open = true
		g.pollTime = max(g.pollTime, s.Time)
	}
	return out
}

// observeModule handles a module temperature sensor reading: the sensor
// checks a cell's temperature sensor has that need no peers (impossible
// values, spikes, a jump to a reading it then repeats), the absolute rule
// on accepted readings, and the reading's place in its string's poll.
func (e *Engine) observeModule(st *entityState, s telemetry.Sample, out []Change) []Change {
	m := &e.mods[e.modOf(s.Entity)-1]
	g := &e.groups[e.ents[st.parent-1].aux-1]
	if impossibleCelsius(s.Value, &e.cfg.Plausible) {
		e.stats.Implausible++
		m.sensorFault |= faultImpossible
		return e.moduleSensorStep(m, s.Time, out)
	}
	m.sensorFault &^= faultImpossible
	freeze := int64(0)
	if !m.hot && !m.warming && !m.runaway.firing() && m.inRunaway == 0 && !m.temp.dev.firing() && !m.rising.firing() &&
		!(m.sensorLast >= e.cfg.ModuleOverTemperature.WarningCelsius) && !st.overTemp[0].firing() && !st.overTemp[1].firing() {
		freeze = e.freezeFor(st.self)
	}
	use, times, n, spike := e.jumps.accept(&m.sensorJump, m.sensorLast, m.sensorLastAt, s.Value, s.Time, e.cfg.SensorFault.MaxJumpCelsius, freeze)
	m.sensorFault = e.jumpFaults(&m.sensorJump, m.sensorFault, s.Time, spike)
	out = e.moduleSensorStep(m, s.Time, out)
	for i := 0; i < n; i++ {
		rs := s
		rs.Value, rs.Time = use[i], times[i]
		m.sensorLast, m.sensorLastAt = rs.Value, rs.Time
		out = e.overTemperature(st, rs, &e.cfg.ModuleOverTemperature, AlertModuleOverTemperature, out, e.coolingFiring(g), false)
		if g.open && m.sensorSeq == g.seq && !math.IsNaN(m.sensorVal) {
			out = e.closePoll(g, out)
		}
		m.sensorVal, m.sensorSeq = rs.Value, g.seq
		g.open = true
		g.pollTime = max(g.pollTime, s.Time)
	}
	return out
}

// moduleSensorStep evaluates a module temperature sensor's SensorFault.
func (e *Engine) moduleSensorStep(m *modPeer, t int64, out []Change) []Change {
	sc := &e.cfg.SensorFault
	if !sc.Enabled {
		return out
	}
	faulty := m.sensorFault != 0
	if faulty && !m.sensor.firing() && e.inMaintenance(&e.ents[m.id-1]) {
		faulty = false // sensors unplugged for the work: no new SensorFault
	}
	if t < m.sensor.since() {
		t = m.sensor.since()
	}
	return e.emit(out, m.sensor.step(t, faulty, &sc.Hold), t, AlertSensorFault, SeverityWarning, m.id, 0,
		func() string {
			if !faulty {
				return fmt.Sprintf("module %s temperature sensor reads plausibly again", e.path(m.id))
			}
			return fmt.Sprintf("module %s: temperature sensor %s; its readings are excluded from detection",
				e.path(m.id), faultWords(m.sensorFault))
		})
}

// closeQuietPolls closes the polls that have been quiet long enough.
func (e *Engine) closeQuietPolls(now int64, out []Change) []Change {
	for i := range e.groups {
		g := &e.groups[i]
		if g.open && now-g.pollTime >= quietClose {
			out = e.closePoll(g, out)
		}
	}
	return out
}

// scratch returns the engine's reusable buffer number i, emptied.
func (e *Engine) scratch(i int) []float64 { return e.bufs[i][:0] }

func (e *Engine) keep(i int, b []float64) { e.bufs[i] = b }

// commonMove estimates the common movement of many readings from their
// changes since the last poll: the mean of the changes, each clipped to
// ±(2 × the median absolute change + one quantum). Quantised readings mostly
// change by nothing from one poll to the next, so a median would say
// nothing moved; the clipping keeps one cell running away from dragging its
// peers' movement with it.
// It also returns the clipping bound.
func (e *Engine) commonMove(changes []float64, quantum float64) (move, bound float64) {
	abs := e.scratch(2)
	for _, x := range changes {
		abs = append(abs, math.Abs(x))
	}
	bound = 2*median(abs) + quantum
	e.keep(2, abs)
	sum := 0.0
	for _, x := range changes {
		sum += clip(x, bound)
	}
	return sum / float64(len(changes)), bound
}

// clip limits x to ±bound (bound ≥ 0, x not NaN).
func clip(x, bound float64) float64 {
	if x > bound {
		return bound
	}
	if x < -bound {
		return -bound
	}
	return x
}

// Stuck sensors by their peers' change rate: the odds below which a run of
// one repeated value is not chance, and the polls over which the rate is
// averaged.
const (
	stuckOdds     = 1e-9
	changeMemory  = 100
	minChangeRate = 0.2
)

// stillRun is the run of one repeated value that makes a sensor stuck
// without any common movement of its peers: a healthy sensor whose reading
// changes in a fraction p of polls repeats one value for n polls with
// probability (1-p)^n, and p is taken as low as the peers allow (their
// 10th percentile: some sensors sit in the middle of a quantisation step
// and change less often). MaxUint32 when the peers rarely change (coarse
// sensors in a still room), leaving only the common-movement test.
func (e *Engine) stillRun(g *group, side []cellSide) uint32 {
	rates := e.scratch(4)
	for _, p := range side {
		if tr := p.tr; tr.seq == g.seq && tr.fault == 0 && tr.chgN >= changeMemory/2 {
			rates = append(rates, float64(tr.chg))
		}
	}
	run := uint32(math.MaxUint32)
	if len(rates) >= e.cfg.Peers.MinPeers {
		k := len(rates) / 10
		selectK(rates, k)
		p := rates[k]
		if p >= minChangeRate && p < 1 {
			run = uint32(math.Ceil(math.Log(stuckOdds) / math.Log1p(-p)))
		}
	}
	e.keep(4, rates)
	return run
}

// fewAsConstant reports whether at most a quarter of a string's reporting
// sensors have repeated one value for run polls or longer. A stuck sensor
// is an individual anomaly: when many sensors have been as constant as it
// for as long, the peers' "movement" is an artefact of the few that changed
// and the string is simply still (a quantised string in a quiet room).
func (e *Engine) fewAsConstant(g *group, side []cellSide, run uint32, reporting int) bool {
	constant := 0
	for _, p := range side {
		if tr := p.tr; tr.seq == g.seq && !math.IsNaN(tr.pending) && tr.stuckRun >= run {
			constant++
		}
	}
	return 4*constant <= reporting
}

// moduleDrift adds to each module's common movement the mean of its sound
// cells' changes since the last poll (clipped like the string's), summed
// into accSum and accN by pollTracks. A stuck sensor's module-mates must
// have moved too: a module warming on its own moves its string's drift,
// but not the readings of the still modules beside it.
func (e *Engine) moduleDrift(g *group, isTemp bool) {
	for _, mi := range g.mods {
		m := &e.mods[mi]
		if m.accN > 0 {
			if isTemp {
				m.driftT += m.accSum / float64(m.accN)
			} else {
				m.driftV += m.accSum / float64(m.accN)
			}
		}
		m.accSum, m.accN = 0, 0
	}
}

func (m *modPeer) drift(isTemp bool) float64 {
	if isTemp {
		return m.driftT
	}
	return m.driftV
}

// moduleMoved reports whether a cell's module-mates swept a range of need
// since its run of one value began. The cell's own unchanged reading is a
// 1/n share of the module's mean, taken out. Modules of fewer than three
// cells are too small to tell, and leave it to the string.
func moduleMoved(m *modPeer, tr *track, need float64) bool {
	n := len(m.cells)
	if n < 3 {
		return true
	}
	return (tr.stuckModHi-tr.stuckModLo)*float64(n)/float64(n-1) >= need
}

// resetSweep starts the ranges the peers' drift sweeps from where they
// are now.
func (tr *track) resetSweep(drift, modDrift float64) {
	tr.stuckLo, tr.stuckHi = drift, drift
	tr.stuckModLo, tr.stuckModHi = modDrift, modDrift
}

// spread is 1.4826 × the median absolute deviation of v around med (the
// standard deviation for normal data), computed in place.
func spread(v []float64, med float64) float64 {
	if len(v) < 3 {
		return 0
	}
	for i := range v {
		v[i] = math.Abs(v[i] - med)
	}
	return 1.4826 * median(v)
}

// closePoll evaluates a string's completed poll: peer medians, each cell's
// residual beyond its learned offset, the peer rules, the module rules and
// the string's cooling check.
func (e *Engine) closePoll(g *group, out []Change) []Change {
	if !g.open {
		return out
	}
	t := g.pollTime
	dt := int64(0)
	if g.prevPoll > 0 {
		dt = t - g.prevPoll
	}
	load := g.inLoad(t, &e.cfg.Peers)
	inhibit := e.coolingFiring(g)
	// The loops over the string's cells go through pointers, found once.
	cs := e.polled[:0]
	for _, ci := range g.cells {
		cs = append(cs, e.cells.at(ci))
	}
	e.polled = cs
	medV, okV := e.pollTracks(g, cs, false, dt, load, t)
	if okV && e.inferLoad(g, medV, t, dt) {
		load = true
	}
	medT, ok := e.pollTracks(g, cs, true, dt, load, t)
	out = e.pollModules(g, t, dt, load, inhibit, out)
	for _, c := range cs {
		if e.trackOf(c.temp).readIn(g.seq) || e.trackOf(c.volt).readIn(g.seq) {
			out = e.cellRules(c, t, inhibit, out)
		}
	}
	if ok {
		out = e.stringCooling(g, medT, t, dt, load, out)
	}
	if okV {
		out = e.stringCharge(g, medV, t, load, out)
	}
	for _, c := range cs {
		for _, tr := range [...]*track{e.trackOf(c.temp), e.trackOf(c.volt)} {
			if tr != nil {
				tr.pending = math.NaN()
			}
		}
	}
	for _, mi := range g.mods {
		e.mods[mi].sensorVal = math.NaN()
	}
	g.seq++
	g.open = false
	g.prevPoll, g.pollTime = t, 0
	return out
}

// pollTracks updates one side (temperature or voltage) of every cell that
// reported in the poll, and returns the peers' median.
func (e *Engine) pollTracks(g *group, cs []*cellPeer, isTemp bool, dt int64, load bool, t int64) (float64, bool) {
	// The cells with a track of this quantity, found once.
	side := e.sides[:0]
	for _, c := range cs {
		if tr := e.side(c, isTemp); tr != nil {
			side = append(side, cellSide{c, tr})
		}
	}
	e.sides = side
	pc := &e.cfg.Peers
	k, thr := 0, e.cfg.CellVoltageDeviation.Threshold
	if isTemp {
		k, thr = 1, e.cfg.CellTemperatureDeviation.Threshold
	}
	if g.offSeq[k] == 0 || g.seq-g.offSeq[k] >= offsetEvery {
		offs := e.scratch(2)
		for _, p := range side {
			if p.tr.n >= uint32(pc.WarmupPolls) && p.tr.fault == 0 {
				offs = append(offs, p.tr.off)
			}
		}
		g.offLo[k], g.offHi[k] = offsetBounds(offs, thr, pc.OffsetBoundZ, pc.MinPeers)
		if len(offs) >= pc.MinPeers {
			g.offSeq[k] = g.seq
		}
		e.keep(2, offs)
	}
	offLo, offHi := g.offLo[k], g.offHi[k]
	// Quantisation: BMSs report temperatures in whole or half degrees,
	// or finer, and voltages in millivolts, or in steps of 5 or 10 mV.
	// Readings that flip between two steps are not noise, and a reading
	// that stays on one step is not stuck while its true value moves
	// less than a step.
	var floor, quant float64
	drift := &g.driftV
	if isTemp {
		g.quantT = resolution(side, g.seq, tempSteps[:])
		floor, quant, drift = tempFloor(g.quantT), g.quantT, &g.driftT
	} else {
		g.quantV = resolution(side, g.seq, voltSteps[:])
		floor, quant = voltFloor(g.quantV), g.quantV
	}
	// The peers' common movement leaves out the cells that stand out from
	// their peers: a hot module or a cell in runaway moves on its own, and
	// would make the sensors of still cells look stuck. What such a cell
	// added on its way out is taken back. Under load every cell moves
	// on its own path and none is left out.
	apart := func(tr *track) bool { return !load && tr.thr > 0 && math.Abs(tr.res) >= 0.5*tr.thr }
	vals := e.scratch(0)
	diffs := e.scratch(3)
	for _, p := range side {
		tr := p.tr
		if tr.seq == g.seq && !math.IsNaN(tr.pending) && tr.fault&(faultStuck|faultNoisy) == 0 {
			vals = append(vals, tr.pending)
			switch {
			case apart(tr):
				*drift -= tr.moved
				tr.moved = 0
			case !math.IsNaN(tr.prevVal):
				diffs = append(diffs, tr.pending-tr.prevVal)
			}
		}
	}
	if len(diffs) >= pc.MinPeers {
		move, bound := e.commonMove(diffs, quant)
		*drift += move
		for _, p := range side {
			c, tr := p.c, p.tr
			if tr.seq != g.seq || math.IsNaN(tr.pending) || tr.fault&(faultStuck|faultNoisy) != 0 || math.IsNaN(tr.prevVal) {
				continue
			}
			ch := clip(tr.pending-tr.prevVal, bound)
			m := &e.mods[c.mod-1]
			m.accSum += ch
			m.accN++
			if apart(tr) {
				continue
			}
			// Only what it added while already leaving its peers (beyond
			// its noise, or a quarter of its threshold) is its own
			// movement; before that it moved with them.
			if leaving := tr.thr > 0 && math.Abs(tr.res) >= min(0.25*tr.thr, 3*tr.sigma(floor)); leaving {
				tr.moved += ch / float64(len(diffs))
			} else {
				tr.moved = 0
			}
		}
		e.moduleDrift(g, isTemp)
	}
	if isTemp {
		w := e.cfg.CellTemperatureRising.Window.Nanos()
		if g.slopeRing.push(t, *drift, w) {
			g.slopeT, _ = g.slopeRing.theilSen(t-w, t)
		}
	}
	// Under load (and in the cooldown after) sensors change at their own
	// pace: a still-room run length means nothing then.
	stillRun := uint32(math.MaxUint32)
	if !load {
		stillRun = e.stillRun(g, side)
	}
	e.keep(3, diffs)
	// Runs of one repeated value, and how far the peers moved meanwhile.
	reporting := 0
	for _, p := range side {
		if c, tr := p.c, p.tr; tr.seq == g.seq && !math.IsNaN(tr.pending) {
			reporting++
			// The change rate is learned at rest only: a recharge ramp
			// changes every reading, and the rate learned then would make
			// the still string after it look stuck.
			if !math.IsNaN(tr.prevVal) && tr.fault == 0 && !load {
				changed := float32(0)
				if tr.pending != tr.prevVal {
					changed = 1
				}
				tr.chgN = min(tr.chgN+1, changeMemory)
				tr.chg += (changed - tr.chg) / float32(tr.chgN)
			}
			if tr.pending == tr.prevVal { // the value of the run
				tr.stuckRun++
			} else {
				tr.stuckRun = 0
				tr.resetSweep(*drift, e.mods[c.mod-1].drift(isTemp))
			}
			tr.prevVal = tr.pending
		}
	}
	e.keep(0, vals)
	if len(vals) < pc.MinPeers {
		// No peer comparison this poll: no residual either, so the
		// rules hold their state instead of judging a stale one.
		for _, p := range side {
			if tr := p.tr; tr.seq == g.seq {
				tr.res, tr.thr = math.NaN(), math.NaN()
			}
		}
		return math.NaN(), false
	}
	med := median(vals)
	// Residuals of the warm cells, their spread, and the peers' noise.
	res := e.scratch(1)
	sig := e.scratch(2)
	for _, p := range side {
		tr := p.tr
		if tr.seq == g.seq && !math.IsNaN(tr.pending) && tr.n >= uint32(pc.WarmupPolls) && tr.fault == 0 {
			res = append(res, tr.pending-med-tr.off)
			sig = append(sig, tr.sigma(floor))
		}
	}
	sp := 0.0
	if len(res) >= pc.MinPeers {
		sp = spread(res, median(res))
	}
	peerSigma := median(sig)
	e.keep(1, res)
	e.keep(2, sig)
	cfg := &e.cfg.CellVoltageDeviation
	move := max(e.cfg.SensorFault.StuckMoveVolts, 0.002, 1.5*g.quantV)
	if isTemp {
		cfg = &e.cfg.CellTemperatureDeviation
		move = max(e.cfg.SensorFault.StuckMoveCelsius, 1.5*g.quantT)
	}
	alpha := 0.0
	if dt > 0 {
		alpha = min(1, float64(dt)/float64(pc.OffsetLearning.Nanos()))
	}
	// While a string discharges all its cells heat with the one current.
	// After it (the recharge and the cooldown) they settle back each with
	// its own time constant: one that is back at rest while the others
	// still cool is not stuck, so the peers' movement then does not count.
	settling := load && t-g.lastDischarge > max(2*dt, int64(time.Minute))
	for _, p := range side {
		c, tr := p.c, p.tr
		if tr.seq != g.seq || math.IsNaN(tr.pending) {
			continue
		}
		m := &e.mods[c.mod-1]
		if settling {
			tr.resetSweep(*drift, m.drift(isTemp))
		} else {
			md := m.drift(isTemp)
			tr.stuckLo, tr.stuckHi = min(tr.stuckLo, *drift), max(tr.stuckHi, *drift)
			tr.stuckModLo, tr.stuckModHi = min(tr.stuckModLo, md), max(tr.stuckModHi, md)
		}
		v := tr.pending
		// Stuck: the same value poll after poll while the peers moved.
		// Under load cells heat at their own pace (internal resistance,
		// heat capacity, cooling path: ±40 % is common), so the slowest
		// moves well behind the peers' common movement: ask for half as
		// much again. After the load, their movement does not count at
		// all (settling).
		need := move
		if load {
			need = 1.5 * move
		}
		// A stuck flag stays while the value keeps repeating, even when
		// the peers come back to where they were.
		switch {
		case tr.fault&faultStuck != 0 && tr.stuckRun > 0:
		case tr.stuckRun >= uint32(e.cfg.SensorFault.MinStuckPolls) && (moduleMoved(m, tr, need) && tr.stuckHi-tr.stuckLo >= need || tr.stuckRun >= stillRun) &&
			e.fewAsConstant(g, side, tr.stuckRun, reporting):
			tr.fault |= faultStuck
		default:
			tr.fault &^= faultStuck
		}
		rel := v - med
		if tr.n < uint32(pc.WarmupPolls) {
			tr.n++
			tr.off += (rel - tr.off) / float64(tr.n)
			r := rel - tr.off
			tr.noise(r, 1/float64(tr.n))
			tr.res, tr.thr = r, math.Inf(1)
			continue
		}
		tr.off = min(max(tr.off, offLo), offHi)
		r := rel - tr.off
		alphaL := 1.0 / 50
		if tr.fault&faultNoisy != 0 {
			alphaL = 0 // a noisy sensor must not teach itself that noise is normal
		}
		tr.noise(r, alphaL)
		tr.res, tr.resAt = r, t
		noisyMin := e.cfg.SensorFault.NoisyMinCelsius
		// Quantised readings flip between neighbours, and their median
		// jumps by quanta: noise below two quanta is normal.
		if isTemp {
			noisyMin = max(noisyMin, 2*g.quantT)
		} else {
			noisyMin = max(e.cfg.SensorFault.NoisyMinVolts, 2*g.quantV)
		}
		limit := min(e.cfg.SensorFault.NoisyFactor*peerSigma, noisyMin+floor)
		if tr.fault&faultNoisy != 0 {
			limit = 0 // flagged: the exact value decides when it clears
		}
		sS := max(tr.shortSigma(limit), floor)
		if math.IsNaN(peerSigma) {
			sS = math.NaN() // no sound peer to compare with: leave the flag as it is
		}
		// Under load a current step moves each cell's voltage by its own
		// internal resistance: the steps look like noise for a while.
		if sS > e.cfg.SensorFault.NoisyFactor*peerSigma && sS > noisyMin+floor && tr.alternating() && (isTemp || !load) {
			tr.fault |= faultNoisy
		} else if sS < 0.7*e.cfg.SensorFault.NoisyFactor*peerSigma || sS < noisyMin {
			tr.fault &^= faultNoisy
		}
		sigma := math.Hypot(tr.sigma(floor), sp)
		tr.thr = max(cfg.Threshold, cfg.Z*sigma)
		if isTemp {
			switch {
			case tr.fault != 0:
				c.ring.n, c.slope, c.span = 0, 0, 0 // restart once the sensor is sound
			default:
				e.ringPush(c, t, rel)
			}
		}
		// Learn the offset only from normal-looking readings of a string
		// at rest.
		if tr.fault == 0 && !load && !tr.dev.firing() && math.Abs(r) < 3*sigma {
			tr.off += alpha * r
		}
	}
	return med, true
}

// ringPush samples a cell's relative temperature into its ring and updates
// the Theil-Sen slopes.
func (e *Engine) ringPush(c *cellPeer, t int64, rel float64) {
	w := e.cfg.CellTemperatureRising.Window.Nanos()
	if !c.ring.push(t, rel, w) {
		return
	}
	c.slope, c.span = c.ring.theilSen(t-w, t)
}

// thirdsOf works out the Theil-Sen slopes of the three thirds of the
// window ending at the ring's latest point, oldest first (zero while the
// ring is empty). Only a hot cell needs them (accelerating), so they are
// not kept: that would cost every cell 32 bytes.
func (e *Engine) thirdsOf(c *cellPeer) (thirds [3]float64) {
	if c.ring.n == 0 {
		return thirds
	}
	w := e.cfg.CellTemperatureRising.Window.Nanos()
	t := c.ring.time(int((c.ring.n - 1) % ringSize))
	for i := range thirds {
		thirds[i], _ = c.ring.theilSen(t-w+int64(i)*w/3, t-w+int64(i+1)*w/3)
	}
	return thirds
}

// push stores v at t when the ring is due for a point (one every
// window/ringSize) and says whether it did.
func (r *slopeRing) push(t int64, v float64, window int64) bool {
	if t < r.next {
		return false
	}
	r.next = t + window/ringSize
	if r.n == 0 {
		r.base = t
	}
	off := (t - r.base) / ringTick
	if off > math.MaxUint32 {
		off -= r.rebase(off)
	}
	i := r.n % ringSize
	r.v[i], r.t[i] = float32(v), uint32(off)
	r.n++
	return true
}

// rebase moves base on so that a point off ticks after it fits, and returns
// by how many ticks: to the oldest point kept, or, when that one is more
// than 2^32 ticks (49 days) older than the new point, to 2^32 ticks before
// it. The points older than that are then kept at base: older than any
// window still.
func (r *slopeRing) rebase(off int64) int64 {
	shift := int64(math.MaxUint32)
	for a := range min(int(r.n), ringSize) {
		shift = min(shift, int64(r.t[a]))
	}
	shift = max(shift, off-math.MaxUint32)
	for a := range min(int(r.n), ringSize) {
		r.t[a] = uint32(max(int64(r.t[a])-shift, 0))
	}
	r.base += shift * ringTick
	return shift
}

// lineEnd is the level at to of the line with the given slope (°C/h)
// through the ring points from from to to: the median of the points each
// carried forward along the slope. Unlike the latest point it ignores one
// poll's noise, and unlike a mean over the window it does not lag a climb.
func (r *slopeRing) lineEnd(from, to int64, slope float64) float64 {
	var v [ringSize]float64
	k := 0
	for a := range min(int(r.n), ringSize) {
		if t := r.time(a); t >= from && t <= to {
			v[k] = float64(r.v[a]) + slope*float64(to-t)/float64(time.Hour)
			k++
		}
	}
	if k == 0 {
		return math.NaN()
	}
	return median(v[:k])
}

// theilSen is the median of pairwise slopes (°C/h) of the ring points from
// from to to (both included), and the hours they span.
func (r *slopeRing) theilSen(from, to int64) (float64, float64) {
	var in [ringSize]uint8 // ring slots inside [from, to]
	k := 0
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for a := range min(int(r.n), ringSize) {
		if t := r.time(a); t >= from && t <= to {
			in[k] = uint8(a)
			k++
			first, last = min(first, t), max(last, t)
		}
	}
	var slopes [ringSize * (ringSize - 1) / 2]float64
	n := 0
	for i := 0; i < k; i++ {
		a := in[i]
		for _, b := range in[i+1 : k] {
			if r.t[b] == r.t[a] {
				continue
			}
			// Per tick here, per hour below: one division a pair.
			slopes[n] = float64(r.v[b]-r.v[a]) / float64(int64(r.t[b])-int64(r.t[a]))
			n++
		}
	}
	if n < 3 {
		return 0, 0
	}
	return median(slopes[:n]) * float64(time.Hour/time.Duration(ringTick)), float64(last-first) / float64(time.Hour)
}

// cellRules evaluates the peer rules of one cell after its poll. A rule
// steps only when its quantity was read in this poll by a sound, warmed-up
// sensor with peers to compare against; otherwise it holds its state, so a
// firing alert does not resolve because readings are missing, held back as
// a possible spike, or excluded as faulty.
func (e *Engine) cellRules(c *cellPeer, t int64, inhibit bool, out []Change) []Change {
	warm := uint32(e.cfg.Peers.WarmupPolls)
	g := e.groupOfCell(c)
	tr, vr := e.trackOf(c.temp), e.trackOf(c.volt) // one of them may be nil
	tempOK := tr.readIn(g.seq) && tr.n >= warm && tr.fault == 0 && !math.IsNaN(tr.res)
	voltOK := vr.readIn(g.seq) && vr.n >= warm && vr.fault == 0 && !math.IsNaN(vr.res)
	// The voltage evidence for the runaway rule may come from a recent
	// poll when voltages are read less often than temperatures.
	voltRecent := vr != nil && vr.n >= warm && vr.fault == 0 && !math.IsNaN(vr.res) && t-vr.resAt <= 3*int64(time.Minute)
	ent := c.id
	load := g.inLoad(t, &e.cfg.Peers)
	m := &e.mods[c.mod-1]
	// Inside a module that is warming or hot as a whole, a cell must stand
	// out from its own module (when the module has cells enough to tell).
	moduleWide := (m.hot || m.temp.dev.firing() || m.warming || m.rising.firing() || m.slope >= e.cfg.CellTemperatureRising.CelsiusPerHour) &&
		!math.IsNaN(m.temp.pending) && m.nCells >= 3
	standsOut := !moduleWide || (tempOK && tr.pending-m.temp.pending >= 0.7*tr.thr)
	fold := e.folded(c)

	// CellTemperatureDeviation.
	dc := &e.cfg.CellTemperatureDeviation
	hot := tempOK && tr.res >= tr.thr
	if tempOK && tr.dev.firing() {
		hot = tr.res >= 0.6*tr.thr
	}
	if dc.Enabled && tempOK {
		report := hot && !inhibit && (standsOut && !fold || tr.dev.firing())
		out = e.emit(out, tr.dev.step(t, report, &dc.Hold), t, AlertCellTemperatureDeviation, SeverityWarning, ent, tr.res,
			func() string {
				return fmt.Sprintf("cell %s is %s °C hotter than its peers beyond its usual offset (threshold %s °C)",
					e.path(ent), fmtDelta(tr.res), fmtDelta(tr.thr))
			})
	}
	// CellVoltageDeviation.
	vc := &e.cfg.CellVoltageDeviation
	if vc.Enabled && voltOK {
		vdev := math.Abs(vr.res) >= vr.thr
		if vr.dev.firing() {
			vdev = math.Abs(vr.res) >= 0.6*vr.thr
		} else if fold {
			vdev = false
		}
		out = e.emit(out, vr.dev.step(t, vdev, &vc.Hold), t, AlertCellVoltageDeviation, SeverityWarning, ent, vr.res,
			func() string {
				dir := "above"
				if vr.res < 0 {
					dir = "below"
				}
				return fmt.Sprintf("cell %s voltage is %.0f mV %s its peers beyond its usual offset (threshold %.0f mV)",
					e.path(ent), math.Abs(vr.res)*1000, dir, vr.thr*1000)
			})
	}
	if !tempOK {
		return out
	}
	// CellTemperatureRising, judged against the module's own rise: a
	// module warming as a whole is one problem (ModuleTemperatureDeviation),
	// not one per cell.
	rc := &e.cfg.CellTemperatureRising
	minRise := max(rc.MinRiseCelsius, 2*g.quantT)
	slope := c.slope - max(0, m.slope)
	// A string warming or cooling fast as a whole (HVAC, a recovering
	// room) spreads its cells' paces: ask for more than half its own rate.
	rate := max(rc.CelsiusPerHour, 0.5*math.Abs(g.slopeT))
	// No new alert under load or in the cooldown after it: cells then heat
	// and cool at their own pace (internal resistance, thermal mass). The
	// cell must also already stand somewhat above its peers.
	rising := !load && !fold && standsOut && c.span >= 0.5*time.Duration(rc.Window).Hours() &&
		slope >= rate && slope*c.span >= minRise && tr.res >= 0.5*minRise
	if c.rising.firing() {
		rising = slope >= 0.6*rate // hysteresis: no flapping at the threshold
	}
	if rc.Enabled {
		out = e.emit(out, c.rising.step(t, rising && !inhibit, &rc.Hold), t, AlertCellTemperatureRising, SeverityWarning, ent, slope,
			func() string {
				return fmt.Sprintf("cell %s is warming %.1f °C/h faster than its string and its module", e.path(ent), slope)
			})
	}
	// ThermalRunawayRisk. Combined evidence lowers each signal's bar: a
	// cell somewhat hotter than its peers that also sags is as telling as a
	// hot one that accelerates. Under load a cell with a higher internal
	// resistance sags and warms faster than its peers by nature: neither
	// counts then.
	kc := &e.cfg.ThermalRunawayRisk
	sag := !load && voltRecent && vr.res <= -max(kc.SagVolts, 4*vr.sigma(voltFloor(g.quantV)))
	accel := false
	var thirds [3]float64
	if !load && hot {
		thirds = e.thirdsOf(c)
		accel = accelerating(&thirds, kc.AcceleratingPerHour, m.slope)
	}
	crit := tr.pending >= kc.CriticalCelsius
	warmish := tr.res >= runawayWarmish*tr.thr
	risk := standsOut && !fold && ((warmish && sag) || (hot && (accel || crit)))
	if c.runaway.firing() {
		risk = tr.res >= 0.6*tr.thr
	}
	if kc.Enabled {
		st := c.runaway.step(t, risk, &kc.Hold)
		switch st {
		case StatusFiring:
			m.inRunaway++ // its neighbours start nothing from now on
		case StatusResolved:
			m.inRunaway--
		}
		out = e.emit(out, st, t, AlertThermalRunawayRisk, SeverityCritical, ent, tr.pending,
			func() string {
				var why []string
				why = append(why, fmt.Sprintf("%s °C hotter than its peers", fmtDelta(tr.res)))
				if sag {
					why = append(why, fmt.Sprintf("voltage %.0f mV below its peers", -vr.res*1000))
				}
				if accel {
					why = append(why, fmt.Sprintf("rise accelerating to %.1f °C/h", thirds[2]-max(0, m.slope)))
				}
				if crit {
					why = append(why, fmt.Sprintf("at %s °C, above %s °C", fmtNum(tr.pending), fmtNum(kc.CriticalCelsius)))
				}
				return fmt.Sprintf("cell %s shows thermal-runaway precursors: %s", e.path(ent), strings.Join(why, "; "))
			})
	}
	return out
}

// runawayWarmish is the share of its deviation threshold a cell that also
// sags must stand above its peers for ThermalRunawayRisk.
const runawayWarmish = 0.5

// accelerating reports a rise that speeds up across the three thirds of the
// rising window, each third's slope (relative to the module's) above the
// previous, the last above limit and the middle already rising: a one-off
// step sits in a single third and is not acceleration.
func accelerating(thirds *[3]float64, limit, moduleSlope float64) bool {
	base := max(0, moduleSlope)
	s1, s2, s3 := thirds[0]-base, thirds[1]-base, thirds[2]-base
	return s3 >= limit && s2 >= 0.25*limit && s3 > 1.3*s2 && s2 > s1
}

// sensorStep evaluates SensorFault for a cell after its sensors' flags
// changed.
func (e *Engine) sensorStep(c *cellPeer, t int64, out []Change) []Change {
	sc := &e.cfg.SensorFault
	if !sc.Enabled {
		return out
	}
	faulty := e.trackOf(c.temp).faulty() || e.trackOf(c.volt).faulty()
	if faulty && !c.sensor.firing() && e.inMaintenance(&e.ents[c.id-1]) {
		faulty = false // sensors unplugged for the work: no new SensorFault
	}
	if t < c.sensor.since() { // polls close at their own time; keep the machine monotonic
		t = c.sensor.since()
	}
	return e.emit(out, c.sensor.step(t, faulty, &sc.Hold), t, AlertSensorFault, SeverityWarning, c.id, 0,
		func() string {
			var what []string
			for _, s := range []struct {
				name string
				tr   *track
			}{{"temperature", e.trackOf(c.temp)}, {"voltage", e.trackOf(c.volt)}} {
				if s.tr.faulty() {
					what = append(what, s.name+" sensor "+faultWords(s.tr.fault))
				}
			}
			if len(what) == 0 {
				return fmt.Sprintf("cell %s sensors read plausibly again", e.path(c.id))
			}
			return fmt.Sprintf("cell %s: %s; its readings are excluded from detection", e.path(c.id), strings.Join(what, ", "))
		})
}

// freezeFor is how long a jump may follow the sensor's last accepted
// reading and still be held while its reading repeats (see
// jumpPool.accept): sensor_fault.frozen_for, or frozenGapPolls of the
// learned poll interval of mod (the module the sensor belongs to), up to
// maxFrozenGap, when that is longer, so that a BMS polled every few
// minutes, or a reading missing in between, still has its error codes
// held; 0 (never) while SensorFault is disabled, which would otherwise
// hold a reading without saying so.
func (e *Engine) freezeFor(mod telemetry.EntityID) int64 {
	if !e.cfg.SensorFault.Enabled {
		return 0
	}
	polls := min(frozenGapPolls*e.stale.of(&e.ents[mod-1]).own.interval, int64(maxFrozenGap))
	return max(e.cfg.SensorFault.FrozenFor.Nanos(), polls)
}

// frozenGapPolls is how many poll intervals a jump may follow the
// sensor's last accepted reading and be held: one reading may be missing.
// maxFrozenGap bounds that: a cell may really heat 10 °C and more in
// longer (and the stale tracker adopts hour-long gaps as a new cadence).
const (
	frozenGapPolls = 2
	maxFrozenGap   = 10 * time.Minute
)

// cellStandsOut reports whether a cell already stands out, so that a jump
// of one of its readings (temperature or voltage) is more likely the cell than
// its sensor (a thermistor that tops out as the cell vents) and is not
// held as frozen: the sensor's last accepted reading at or above the
// cell's temperature warning limit (the alert itself is silent under a
// CoolingFailure), hotter than its peers by half its threshold, warming
// faster than the rising rule's rate, a temperature, voltage or runaway
// alert of the cell firing, or its module in runaway.
func (e *Engine) cellStandsOut(st *entityState, c *cellPeer) bool {
	tt, vt := e.trackOf(c.temp), e.trackOf(c.volt)
	return tt != nil && (tt.lastValue() >= e.cfg.CellOverTemperature.WarningCelsius || tt.dev.firing() ||
		tt.thr > 0 && tt.res >= 0.5*tt.thr) ||
		vt != nil && vt.dev.firing() ||
		st.overTemp[0].firing() || st.overTemp[1].firing() || st.voltage[0].firing() || st.voltage[1].firing() ||
		c.rising.firing() || c.runaway.firing() || e.mods[c.mod-1].inRunaway > 0 ||
		c.slope >= e.cfg.CellTemperatureRising.CelsiusPerHour
}

// jumpFaults updates a sensor's spike and frozen flags after the jump
// filter took a reading at t (spike: it confirmed one), and counts the
// spike. A sensor without a jump state has neither.
func (e *Engine) jumpFaults(jump *uint32, f uint8, t int64, spike bool) uint8 {
	if *jump == 0 {
		return f &^ (faultSpikes | faultFrozen)
	}
	return e.jumpStateFaults(jump, f, t, spike)
}

func (e *Engine) jumpStateFaults(jump *uint32, f uint8, t int64, spike bool) uint8 {
	if spike {
		e.stats.Spikes++
	}
	f &^= faultSpikes | faultFrozen
	if e.jumps.settle(jump, t, t-e.cfg.SensorFault.SpikeWindow.Nanos(), spike) >= e.cfg.SensorFault.Spikes {
		f |= faultSpikes
	}
	if e.jumps.frozen(*jump, t, e.cfg.SensorFault.FrozenFor.Nanos()) {
		f |= faultFrozen
	}
	return f
}

func faultWords(f uint8) string {
	var w []string
	if f&faultImpossible != 0 {
		w = append(w, "reports impossible values (sentinel or out of range)")
	}
	if f&faultSpikes != 0 {
		w = append(w, "spikes")
	}
	if f&faultStuck != 0 {
		w = append(w, "is stuck while its peers change")
	}
	if f&faultFrozen != 0 {
		w = append(w, "jumped further than a cell can move in a poll and repeats that reading")
	}
	if f&faultNoisy != 0 {
		w = append(w, "is far noisier than its peers")
	}
	return strings.Join(w, " and ")
}

func fmtDelta(v float64) string { return fmt.Sprintf("%.1f", v) }

// emit appends a change for a transition of a rule's state machine;
// summary is only called when there is one.
func (e *Engine) emit(out []Change, st Status, t int64, name string, sev Severity, ent telemetry.EntityID, value float64, summary func() string) []Change {
	if st == 0 {
		return out
	}
	return append(out, Change{Time: t, Status: st, Name: name, Severity: sev, Entity: ent, Value: value, Summary: summary()})
}

// pollModules evaluates ModuleTemperatureDeviation (and a module's runaway
// risk): each module's temperature (the median of its cells, or its own
// sensor) against the other modules of its string.
func (e *Engine) pollModules(g *group, t, dt int64, load, inhibit bool, out []Change) []Change {
	pc := &e.cfg.Peers
	vals := e.scratch(0)
	for _, mi := range g.mods {
		m := &e.mods[mi]
		cells := e.scratch(3)
		for _, ci := range m.cells {
			if tr := e.trackOf(e.cells.at(ci).temp); tr.readIn(g.seq) && tr.fault == 0 {
				cells = append(cells, tr.pending)
			}
		}
		slopes := e.scratch(2)
		for _, ci := range m.cells {
			if c := e.cells.at(ci); !e.trackOf(c.temp).faulty() && c.span > 0 {
				slopes = append(slopes, c.slope)
			}
		}
		m.slope = 0
		if len(slopes) >= 3 {
			m.slope = median(slopes)
		}
		e.keep(2, slopes)
		m.nCells = len(cells)
		m.temp.pending = math.NaN()
		switch {
		case len(cells) >= 4 && g.quantT >= 0.5:
			m.temp.pending = midMean(cells)
		case len(cells) > 0:
			m.temp.pending = median(cells)
		case m.sensorSeq == g.seq && !math.IsNaN(m.sensorVal):
			m.temp.pending = m.sensorVal
		}
		e.keep(3, cells)
		if !math.IsNaN(m.temp.pending) {
			vals = append(vals, m.temp.pending)
		}
	}
	e.keep(0, vals)
	// Under load modules warm at their own pace; fewer modules than a
	// cell peer group (min_peers) give too rough a spread of those paces
	// to tell a hot module from a quick one, so they wait for the load
	// and its cooldown to pass.
	if len(vals) < pc.MinModules || load && len(vals) < pc.MinPeers {
		for _, mi := range g.mods {
			e.mods[mi].hot, e.mods[mi].warming = false, false
		}
		return out
	}
	med := median(vals)
	floor := tempFloor(g.quantT)
	res := e.scratch(1)
	for _, mi := range g.mods {
		tr := &e.mods[mi].temp
		if !math.IsNaN(tr.pending) && tr.n >= uint32(pc.WarmupPolls) {
			res = append(res, tr.pending-med-tr.off)
		}
	}
	sp := 0.0
	if len(res) >= pc.MinModules {
		sp = spread(res, median(res))
	}
	e.keep(1, res)
	alpha := 0.0
	if dt > 0 {
		alpha = min(1, float64(dt)/float64(pc.OffsetLearning.Nanos()))
	}
	mc := &e.cfg.ModuleTemperatureDeviation
	offs := e.scratch(1)
	for _, mi := range g.mods {
		if tr := &e.mods[mi].temp; !math.IsNaN(tr.pending) && tr.n >= uint32(pc.WarmupPolls) {
			offs = append(offs, tr.off)
		}
	}
	offLo, offHi := offsetBounds(offs, mc.Threshold, pc.OffsetBoundZ, pc.MinModules)
	e.keep(1, offs)
	kc := &e.cfg.ThermalRunawayRisk
	for _, mi := range g.mods {
		m := &e.mods[mi]
		tr := &m.temp
		m.hot = false
		if math.IsNaN(tr.pending) {
			continue
		}
		rel := tr.pending - med
		if tr.n < uint32(pc.WarmupPolls) {
			tr.n++
			tr.off += (rel - tr.off) / float64(tr.n)
			tr.noise(rel-tr.off, 1/float64(tr.n))
			continue
		}
		tr.off = min(max(tr.off, offLo), offHi)
		r := rel - tr.off
		tr.noise(r, 1.0/50)
		tr.res = r
		mfloor := floor
		if m.nCells >= 4 && g.quantT >= 0.5 {
			// The mean of the middle half of coarse readings moves by a
			// fraction of a quantum: cells sit at their own offsets across
			// the steps, so their readings flip at different temperatures.
			mfloor = max(0.05, floor*math.Sqrt(2/float64(m.nCells)))
		}
		sigma := math.Hypot(tr.sigma(mfloor), sp)
		tr.thr = max(mc.Threshold, mc.Z*sigma)
		// Combined evidence: half the threshold while the module warms as a
		// whole faster than the rising rule's rate, unless a hotter
		// neighbour is what warms it.
		hot := r >= tr.thr || (r >= 0.5*tr.thr && m.slope >= e.cfg.CellTemperatureRising.CelsiusPerHour && !e.warmedByNeighbour(g, m))
		if tr.dev.firing() {
			hot = r >= 0.6*tr.thr
		}
		m.hot = hot
		if mc.Enabled {
			out = e.emit(out, tr.dev.step(t, hot && !inhibit, &mc.Hold), t, AlertModuleTemperatureDeviation, SeverityWarning, m.id, r,
				func() string {
					return fmt.Sprintf("module %s is %s °C hotter than the other modules of its string beyond its usual offset (threshold %s °C)",
						e.path(m.id), fmtDelta(r), fmtDelta(tr.thr))
				})
		}
		out = e.moduleRising(m, g, t, r, sigma, load, inhibit, out)
		if kc.Enabled {
			risk := hot && tr.pending >= kc.CriticalCelsius
			if m.runaway.firing() {
				risk = hot && tr.pending >= kc.CriticalCelsius-5
			}
			out = e.emit(out, m.runaway.step(t, risk, &kc.Hold), t, AlertThermalRunawayRisk, SeverityCritical, m.id, tr.pending,
				func() string {
					return fmt.Sprintf("module %s shows thermal-runaway precursors: %s °C hotter than the other modules; at %s °C, above %s °C",
						e.path(m.id), fmtDelta(r), fmtNum(tr.pending), fmtNum(kc.CriticalCelsius))
				})
		}
		if !load && !tr.dev.firing() && math.Abs(r) < 3*sigma {
			tr.off += alpha * r
		}
	}
	return out
}

// moduleRising evaluates ModuleTemperatureRising for a module whose
// residual r (its temperature against the other modules of its string,
// beyond its offset) was just computed: the Theil-Sen slope of r over the
// rule's window and the level r has reached. A failing busbar or module fan
// shows as a steady climb long before the module is degrees hotter; the
// module's temperature is the median of its cells, so its noise is small
// and a fraction of a degree of steady climb is already evidence. The
// level (not the rise within the window) must clear the bar: after a
// discharge, a module that warmed less than its peers climbs back to its
// offset, which is no fault.
func (e *Engine) moduleRising(m *modPeer, g *group, t int64, r, sigma float64, load, inhibit bool, out []Change) []Change {
	rc := &e.cfg.ModuleTemperatureRising
	w := rc.Window.Nanos()
	if m.ring.push(t, r, w) {
		m.rslope, m.rspan = m.ring.theilSen(t-w, t)
		m.rlevel = m.ring.lineEnd(t-w, t, m.rslope)
	}
	m.warming = false
	if !rc.Enabled {
		return out
	}
	rate := rc.CelsiusPerHour
	if load {
		rate *= 2 // under load modules warm at their own pace (internal resistance)
	}
	// A noise-aware bar: the median of a module's cells moves by half or
	// whole quanta, and the residual's own noise must not make a rise.
	// A median of coarse readings moves by half or whole quanta; the mean
	// of the middle half by less, but a module whose cells all sit near
	// one step still moves by nearly a whole quantum at once.
	need := max(rc.MinRiseCelsius, moduleRisingZ*sigma, 1.5*g.quantT)
	if m.nCells < 4 {
		need = max(need, 2*g.quantT)
	}
	warming := m.rspan >= 0.5*time.Duration(rc.Window).Hours() && m.rslope >= rate && m.rlevel >= need && !e.warmedByNeighbour(g, m)
	if m.rising.firing() {
		warming = m.rslope >= 0.6*rate || r >= m.temp.thr
	}
	m.warming = warming
	return e.emit(out, m.rising.step(t, warming && !inhibit, &rc.Hold), t, AlertModuleTemperatureRising, SeverityWarning, m.id, m.rslope,
		func() string {
			return fmt.Sprintf("module %s is warming %.1f °C/h faster than the other modules of its string (%s °C above its usual offset)",
				e.path(m.id), m.rslope, fmtDelta(r))
		})
}

// warmedByNeighbour reports whether another module of m's string is
// already alerting as hot or warming, and warms faster than m: a module
// shares its heat with its neighbours, and their warming is the same
// incident (a second, hotter one still stands out).
func (e *Engine) warmedByNeighbour(g *group, m *modPeer) bool {
	for _, mi := range g.mods {
		o := &e.mods[mi]
		if o != m && (o.rising.firing() || o.temp.dev.firing()) && o.rslope > m.rslope {
			return true
		}
	}
	return false
}

// moduleRisingZ is how many noise sigmas of the module's residual the level
// must stand above its offset for ModuleTemperatureRising.
const moduleRisingZ = 4

// midMean is the mean of the middle half of v (the interquartile mean),
// sorting v in place: robust to a cell or two running away, and, unlike a
// median, not stuck on the quantisation steps of coarse sensors.
func midMean(v []float64) float64 {
	slices.Sort(v)
	lo, hi := len(v)/4, len(v)-len(v)/4
	sum := 0.0
	for _, x := range v[lo:hi] {
		sum += x
	}
	return sum / float64(hi-lo)
}

// onGrid reports whether v is a multiple of the step q.
func onGrid(v, q float64) bool {
	k := v / q
	return math.Abs(k-math.Round(k)) < 1e-6
}

// The resolutions readings are recognised on, coarsest first, each a
// multiple of the next: the last is assumed when readings lie on none of
// the others.
var (
	tempSteps = [...]float64{1, 0.5, 0.1}
	voltSteps = [...]float64{0.01, 0.005, 0.001}
)

// resolution is the coarsest of steps that every reading of the poll
// (the pending values of poll seq) lies on.
func resolution(side []cellSide, seq uint32, steps []float64) float64 {
	k := 0
	for _, p := range side {
		if tr := p.tr; tr.seq == seq && !math.IsNaN(tr.pending) {
			for k < len(steps)-1 && !onGrid(tr.pending, steps[k]) {
				k++
			}
			if k == len(steps)-1 {
				break
			}
		}
	}
	return steps[k]
}

// tempFloor and voltFloor are the least noise a temperature sensor (°C)
// or a cell voltage sensor (V) is credited with: 0.05 °C or 1 mV, or half
// its resolution.
func tempFloor(quantT float64) float64 { return max(0.05, 0.5*quantT) }
func voltFloor(quantV float64) float64 { return max(0.001, 0.5*quantV) }
