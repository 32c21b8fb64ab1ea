package detector

import (
	"math"
	"slices"
	"time"
)

// Sensor fault flags of a track.
const (
	faultImpossible uint8 = 1 << iota // sentinel or outside the plausible range
	faultSpikes                       // repeated spikes
	faultStuck                        // repeats one value while its peers move
	faultNoisy                        // noise far above its peers'
	faultFrozen                       // jumped further than a cell heats or cools in a poll, then repeated that reading
)

// A temperature sensor that jumped further than the jump limit and then
// repeats that reading exactly is held back while it repeats it: a cell
// cannot heat or cool that fast and then hold still (its heat capacity),
// but a sensor that lost its thermistor reads an error code (85, 127,
// 150 °C) for as long as it is broken. A BMS that updates its registers
// more slowly than it is polled repeats a genuine reading until its next
// update, which releases it (a further change confirms the jump as a
// trend). The sensor is flagged frozen once it has repeated the reading
// frozenRepeats times over at least sensor_fault.frozen_for.
const frozenRepeats = 2

// Sentinel values BMSs report for a missing or broken sensor.
var sentinelCelsius = [...]float64{6553.5, -3276.8, 3276.7, 6553.6, -6553.6}

const sentinelVolts = 65.535

// track is the peer-relative state of one sensor: a cell's temperature or
// voltage, or a module's temperature. It holds no pointers.
type track struct {
	// Fields are ordered so that the struct has almost no padding (a
	// fleet has two tracks a cell), and so that what the poll reads of
	// every cell comes first and what only a reading's sensor checks read
	// last.
	seq uint32 // group poll the pending value belongs to
	// Learned normal offset from the peers' median (off) and the polls
	// learned (n).
	n uint32
	// chg is how often the reading changes from one poll to the next
	// (exponential mean over about changeMemory polls), chgN its count.
	chg   float32
	chgN  uint16 // at most changeMemory
	fault uint8
	// Stuck detection: the run length of the repeated value (prevVal),
	// and the lowest and highest the peers' drift (see group.drift) has
	// been since the run began. A sound sensor whose value swept a range of
	// a quantum must have changed its reading, whichever way the sweep
	// went.
	stuckRun uint32
	nD       uint32 // values of recentD so far
	dev      alertState
	off      float64
	pending  float64 // accepted reading waiting for its poll to close
	prevVal  float64 // the reading of the previous poll (NaN: none)
	res, thr float64 // last residual and the threshold it was judged by
	// moved is what this sensor's changes added to its group's drift
	// while it was leaving its peers (taken back when it stands out).
	moved                  float64
	stuckLo, stuckHi       float64
	stuckModLo, stuckModHi float64 // the same for the module's drift (moduleDrift)
	// Noise from the absolute second differences of the residual
	// (r[t] - 2 r[t-1] + r[t-2]), which cancel trends, so a cell warming
	// fast is not "noisy": a long-term EWMA, and the last few values whose
	// median is the short-term estimate (a single step gives two large
	// values, and two neighbouring outliers four, which the median of
	// twelve ignores).
	absd     float64
	prevRes  float64 // NaN: none
	prevRes2 float64 // NaN: none
	recentD  [12]float32
	resAt    int64      // when res was computed
	lastAt   int64      // when the last accepted reading was taken
	lastV    [3]float64 // the last accepted readings, ring (robustValue, lastValue)
	nV       uint32
	// jump is 1 + the index of the track's jump-filter state in
	// Engine.jumps, 0 while it has none (see jumpPool).
	jump uint32
}

func newTrack() track {
	return track{prevRes: math.NaN(), prevRes2: math.NaN(), pending: math.NaN(), prevVal: math.NaN()}
}

// jumpState is what the jump filter (track.accept) remembers of a sensor:
// readings held back as possible spikes, the level before a jump taken as
// real, and the times of recent spikes. A sound sensor needs none of it
// most of the time, so a track only holds one while there is something to
// remember (jumpPool). It holds no pointers.
type jumpState struct {
	held   float64 // reading held back as a possible spike (NaN: none)
	heldT  int64   // its time
	held2  float64 // a second one going on in the same direction (NaN: none)
	heldT2 int64
	// The level before the last jump that was taken as real, and when
	// (NaN: none): a jump back to it soon after makes both spikes.
	jumpFrom float64
	jumpAt   int64
	spikeAt  [4]int64 // recent spike times, ring
	nspike   uint32
	// same counts the readings that repeated held exactly (temperature
	// sensors only; see frozenRepeats).
	same uint32
}

// jumpPool holds the jump-filter states of the tracks that have one:
// about 5 % of a fleet's memory instead of a quarter, since a sensor
// only holds one from a jump until its spikes leave the spike window.
// Free states are reused, lowest index last freed first.
type jumpPool struct {
	table chunkTable[jumpState]
	free  []uint32 // indices into table
}

// of returns the jump state a sensor's index (1 + index, 0: none) refers
// to, or nil when it has none.
func (p *jumpPool) of(jump uint32) *jumpState {
	if jump == 0 {
		return nil
	}
	return p.table.at(jump - 1)
}

// take gives the sensor whose index jump is a fresh jump state.
func (p *jumpPool) take(jump *uint32) *jumpState {
	fresh := jumpState{held: math.NaN(), held2: math.NaN(), jumpFrom: math.NaN()}
	if n := len(p.free); n > 0 {
		*jump = p.free[n-1] + 1
		p.free = p.free[:n-1]
		*p.table.at(*jump - 1) = fresh
	} else {
		*jump = p.table.add(fresh) + 1
	}
	return p.table.at(*jump - 1)
}

// frozen reports whether, at t, the sensor has repeated a reading it
// jumped to for at least frozenFor (see frozenRepeats).
func (p *jumpPool) frozen(jump uint32, t, frozenFor int64) bool {
	j := p.of(jump)
	return j != nil && !math.IsNaN(j.held) && math.IsNaN(j.held2) && j.same >= frozenRepeats && t-j.heldT >= frozenFor
}

// settle follows a reading of tr at time at: it records the spike the
// reading confirmed (spike; one is only ever found with a jump state),
// returns the spikes since from, and gives tr's state back when it
// remembers nothing a reading at or after from could use (no reading held,
// no recent real jump, no spike since from; readings come in time order,
// older ones are dropped).
func (p *jumpPool) settle(jump *uint32, at, from int64, spike bool) int {
	j := p.of(*jump)
	if j == nil {
		return 0
	}
	if spike {
		j.recordSpike(at)
	}
	k := j.spikesWithin(from)
	if k == 0 && math.IsNaN(j.held) && math.IsNaN(j.held2) && math.IsNaN(j.jumpFrom) {
		p.free = append(p.free, *jump-1)
		*jump = 0
	}
	return k
}

// secondDiffToSigma converts the mean absolute second difference of white
// noise to its standard deviation: E|r[t]-2r[t-1]+r[t-2]| = σ√6·√(2/π).
const secondDiffToSigma = 0.5117

// sigma is the track's noise estimate, at least floor.
func (t *track) sigma(floor float64) float64 {
	return max(t.absd*secondDiffToSigma, floor)
}

// noise feeds residual r; alpha is the long-term EWMA weight (0 leaves it
// unchanged).
func (t *track) noise(r, alpha float64) {
	if !math.IsNaN(t.prevRes) && !math.IsNaN(t.prevRes2) {
		d := r - 2*t.prevRes + t.prevRes2
		t.absd += alpha * (math.Abs(d) - t.absd)
		t.recentD[t.nD%uint32(len(t.recentD))] = float32(d) // signed: see alternating
		t.nD++
	}
	t.prevRes2, t.prevRes = t.prevRes, r
}

// shortSigma is the short-term noise estimate: the median of the recent
// second differences, scaled to a standard deviation (0 until full). The
// median is only worked out when the largest value could put it above
// limit; otherwise the largest value's estimate is returned, which is
// below limit too.
func (t *track) shortSigma(limit float64) float64 {
	if t.nD < uint32(len(t.recentD)) {
		return 0
	}
	// The largest |d|: a non-negative float32's bits order as integers,
	// so the scan needs no branches on floats.
	top := uint32(0)
	for _, d := range t.recentD {
		top = max(top, math.Float32bits(d)&0x7fffffff)
	}
	if est := float64(math.Float32frombits(top)) * 0.6052; est <= limit {
		return est
	}
	v := t.recentD
	for i := range v {
		v[i] = abs32(v[i])
	}
	slices.Sort(v[:])
	// median |N(0, 6σ²)| = 0.6745·√6·σ.
	return float64(v[len(v)/2-1]+v[len(v)/2]) / 2 * 0.6052
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// alternating reports whether the recent second differences change sign
// often, as noise does (white noise gives a sign change between most
// neighbours); a reading that accelerates steadily one way, as a cell in
// thermal runaway does between coarse polls, has second differences of
// one sign and is not noise.
func (t *track) alternating() bool {
	n := uint32(len(t.recentD))
	if t.nD < n {
		return false
	}
	changes := 0
	for i := uint32(1); i < n; i++ {
		a, b := t.recentD[(t.nD+i-1)%n], t.recentD[(t.nD+i)%n]
		if a*b < 0 {
			changes++
		}
	}
	return changes >= len(t.recentD)/3
}

// pushValue remembers an accepted reading among the last three.
func (t *track) pushValue(v float64) {
	t.lastV[t.nV%3] = v
	t.nV++
}

// lastValue is the last accepted reading (NaN: none). accept returns every
// reading it accepts, and each is pushed: the last of them is the last
// pushed.
func (t *track) lastValue() float64 {
	if t.nV == 0 {
		return math.NaN()
	}
	return t.lastV[(t.nV-1)%3]
}

// robustValue is the median of the last three accepted readings (NaN until
// there are three): what the absolute limits judge for a sensor flagged
// noisy or stuck, whose single readings cannot be trusted but whose level
// can.
func (t *track) robustValue() float64 {
	if t.nV < 3 {
		return math.NaN()
	}
	a, b, c := t.lastV[0], t.lastV[1], t.lastV[2]
	return max(min(a, b), min(max(a, b), c))
}

// excursionWindow is how soon after a jump taken as real a jump back to
// the level before it shows that both were spikes: a cell does not warm by
// max_jump in one poll and cool back as fast (its thermal time constant is
// tens of minutes), so a plateau of a few readings is a sensor excursion.
const excursionWindow = int64(10 * time.Minute)

// accept runs the jump check on a plausible reading of the sensor whose
// jump-state index is jump and whose last accepted reading is last (NaN:
// none): a reading further than maxJump from the last accepted one is held
// back; the next readings tell whether it was a spike (they come back) or a
// real change (they stay, or a second and a third reading go on in the same
// direction, as in a fast runaway). A jump back to where the sensor was
// before a jump taken as real, within excursionWindow, was a spike of
// several readings. With freeze > 0 (temperatures, voltages jumping up), a reading that repeats
// the one held exactly is no news while the jump came within freeze of the
// last accepted reading (lastAt): the sensor stays held (see
// frozenRepeats). After a longer gap a cell may really have heated that
// far, and a repeat confirms the jump as before. It returns the readings to use
// now (0 to 3 of them, oldest first, with their times) and whether a spike
// was just confirmed.
func (p *jumpPool) accept(jump *uint32, last float64, lastAt int64, v float64, at int64, maxJump float64, freeze int64) (use [3]float64, times [3]int64, n int, spike bool) {
	if p.quiet(*jump, last, v, maxJump) {
		return [3]float64{v}, [3]int64{at}, 1, false
	}
	j := p.of(*jump)
	if j == nil {
		j = p.take(jump)
	}
	if !math.IsNaN(j.jumpFrom) && at-j.jumpAt > excursionWindow {
		j.jumpFrom = math.NaN()
	}
	return j.accept(last, lastAt, v, at, maxJump, freeze)
}

// quiet reports whether a reading v of a sensor needs no jump check: the
// sensor has nothing held and no jump to come back from, and v is within
// maxJump of its last accepted reading (or it has none). Almost every
// reading is; the caller then takes it as it is without a call.
func (p *jumpPool) quiet(jump uint32, last, v, maxJump float64) bool {
	return jump == 0 && (math.IsNaN(last) || math.Abs(v-last) <= maxJump)
}

// accept is jumpPool.accept with the sensor's jump state.
func (t *jumpState) accept(last float64, lastAt int64, v float64, at int64, maxJump float64, freeze int64) (use [3]float64, times [3]int64, n int, spike bool) {
	switch {
	case math.IsNaN(last):
		return [3]float64{v}, [3]int64{at}, 1, false
	case !math.IsNaN(t.held2):
		h, ht, h2, ht2 := t.held, t.heldT, t.held2, t.heldT2
		t.held, t.held2 = math.NaN(), math.NaN()
		switch {
		case math.Abs(v-h2) <= maxJump/2, (h2-h)*(v-h2) > 0: // a trend, confirmed
			t.jumpFrom, t.jumpAt = last, ht
			return [3]float64{h, h2, v}, [3]int64{ht, ht2, at}, 3, false
		case math.Abs(v-last) <= maxJump: // came back: both were spikes
			return [3]float64{v}, [3]int64{at}, 1, true
		}
		t.held, t.heldT, t.same = v, at, 0
		return use, times, 0, false
	case !math.IsNaN(t.held):
		h, ht := t.held, t.heldT
		switch {
		case freeze > 0 && v == h && ht-lastAt <= freeze: // the same reading again: a cell that jumped would not hold still
			t.same++
			return use, times, 0, false
		case math.Abs(v-h) <= maxJump/2: // the jump was real: it stayed
			t.jumpFrom, t.jumpAt = last, ht
			t.held, t.same = math.NaN(), 0
			return [3]float64{h, v}, [3]int64{ht, at}, 2, false
		case math.Abs(v-last) <= maxJump: // came back: a spike
			t.held, t.same = math.NaN(), 0
			return [3]float64{v}, [3]int64{at}, 1, true
		case (h-last)*(v-h) > 0: // going on: wait for one more reading
			t.held2, t.heldT2, t.same = v, at, 0
			return use, times, 0, false
		}
		t.held, t.heldT, t.same = v, at, 0 // another jump the other way: hold it instead
		return use, times, 0, false
	case math.Abs(v-last) > maxJump && !math.IsNaN(t.jumpFrom) && math.Abs(v-t.jumpFrom) <= maxJump/2:
		// Back where it was before the last jump: an excursion.
		t.jumpFrom = math.NaN()
		return [3]float64{v}, [3]int64{at}, 1, true
	case math.Abs(v-last) > maxJump:
		t.held, t.heldT, t.same = v, at, 0
		return use, times, 0, false
	}
	return [3]float64{v}, [3]int64{at}, 1, false
}

// spikesWithin counts the spikes recorded since from.
func (t *jumpState) spikesWithin(from int64) int {
	k := 0
	for i := 0; i < len(t.spikeAt) && i < int(t.nspike); i++ {
		if t.spikeAt[i] >= from {
			k++
		}
	}
	return k
}

func (t *jumpState) recordSpike(at int64) {
	t.spikeAt[t.nspike%uint32(len(t.spikeAt))] = at
	t.nspike++
}

// impossibleCelsius reports sentinels and readings outside the plausible
// range.
func impossibleCelsius(v float64, p *PlausibleConfig) bool {
	for _, s := range sentinelCelsius {
		if v == s {
			return true
		}
	}
	return v < p.MinCelsius || v > p.MaxCelsius
}

func impossibleVolts(v float64, p *PlausibleConfig) bool {
	return v == 0 || v == sentinelVolts || v <= p.MinCellVolts || v >= p.MaxCellVolts
}
