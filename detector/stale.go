package detector

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// burstWindow separates polls: a reading that follows the previous one of
// the same source by less than this belongs to the same poll, however long
// the poll takes in all (MQTT messages of one poll arrive milliseconds
// apart; a slow bus spreads a poll over seconds).
const burstWindow = int64(500 * time.Millisecond)

// maxPollSpan bounds a poll: readings that never pause for burstWindow (a
// source polled every 200 ms, a stream) are taken as polls of this length,
// so that their interval is learned and their silence noticed.
const maxPollSpan = int64(30 * time.Second)

// gapHistory is how many recent poll intervals the learned interval is the
// median of.
const gapHistory = 5

// minGaps is how many intervals must have been seen before a source can be
// declared stale.
const minGaps = 2

// leaf learns the poll interval of one stream of readings: a module's own
// (module and cell metrics), a string's own (string metrics) or a UPS's own
// (ambient).
type leaf struct {
	started   bool
	lastSeen  int64 // last reading
	pollStart int64 // first reading of the current poll
	gaps      [gapHistory]int64
	ngaps     int
	interval  int64 // learned; 0 until minGaps polls have been seen
	// Gaps long enough to have been outages are not learned from, unless
	// outageRun of them come in a row: then the cadence really changed.
	outages [outageRun - 1]int64
	nout    int
}

// outageRun is how many outage-length gaps in a row are taken as a new
// cadence.
const outageRun = 3

func (l *leaf) touch(now int64, c *StaleConfig) {
	if !l.started {
		l.started, l.pollStart, l.lastSeen = true, now, now
		return
	}
	if now-l.lastSeen >= burstWindow || now-l.pollStart >= maxPollSpan {
		gap := now - l.pollStart
		l.pollStart = now
		switch {
		case l.interval == 0 || float64(gap) <= float64(l.interval)*c.Multiple:
			l.nout = 0
			l.learn(gap)
		case l.nout < len(l.outages):
			l.outages[l.nout] = gap
			l.nout++
		default:
			for _, g := range l.outages {
				l.learn(g)
			}
			l.nout = 0
			l.learn(gap)
		}
	}
	if now > l.lastSeen {
		l.lastSeen = now
	}
}

func (l *leaf) learn(gap int64) {
	l.gaps[l.ngaps%gapHistory] = gap
	l.ngaps++
	if l.ngaps >= minGaps {
		l.interval = upperMedian(&l.gaps, min(l.ngaps, gapHistory))
	}
}

// deadline is when the leaf is stale if nothing arrives: never (MaxInt64)
// until an interval has been learned.
func (l *leaf) deadline(c *StaleConfig) int64 {
	if l.interval == 0 {
		return math.MaxInt64
	}
	d := int64(float64(l.interval) * c.Multiple)
	if d < c.MinAge.Nanos() {
		d = c.MinAge.Nanos()
	}
	return l.lastSeen + d
}

// upperMedian returns the median of the first n gaps (the upper middle
// value for an even n) without allocating.
func upperMedian(g *[gapHistory]int64, n int) int64 {
	var v [gapHistory]int64
	copy(v[:], g[:n])
	for i := 1; i < n; i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[n/2]
}

// Why a TelemetryStale alert fires.
const (
	staleNone uint8 = iota
	staleAll        // nothing at or below the entity reports
	staleOwn        // the entity's own readings stopped; those below it still report
)

// staleState is the per-source part of TelemetryStale (UPS, string and
// module entities; cells, the bulk of a fleet, have none).
type staleState struct {
	own      leaf
	lastAny  int64 // last reading at or below the entity
	agg      int64 // scratch for tick: the latest deadline at or below the entity
	interval int64 // scratch for tick: the longest learned interval at or below
	stale    bool  // at the last tick, nothing at or below reported in time
	firing   uint8
}

// staleTracker finds sources that went quiet. A UPS, string or module is
// stale when every stream of readings at or below it is past its deadline;
// a stale entity whose parent is stale is covered by the parent's alert.
// Between ticks only the earliest possible deadline is kept, so a tick that
// cannot find anything costs one comparison.
type staleTracker struct {
	cfg     *StaleConfig
	sources []telemetry.EntityID // UPS, string and module IDs, ascending
	states  []staleState         // by entityState.src - 1
	next    int64                // nothing can become stale before this time
}

// of returns the stale state of a UPS, string or module.
func (t *staleTracker) of(st *entityState) *staleState { return &t.states[st.src-1] }

func (t *staleTracker) init(c *StaleConfig) {
	t.cfg = c
	t.next = math.MaxInt64
}

// add starts tracking source id and returns its entityState.src. Sources
// are kept in ascending ID order: parents have smaller IDs than their
// children.
func (t *staleTracker) add(id telemetry.EntityID) uint32 {
	i, _ := slices.BinarySearch(t.sources, id)
	t.sources = slices.Insert(t.sources, i, id)
	t.states = append(t.states, staleState{})
	return uint32(len(t.states))
}

// touch records a reading of entity st at time now: the reading belongs to
// the own stream of the nearest source (the module for cell readings).
func (t *staleTracker) touch(e *Engine, st *entityState, now int64, out []Change) []Change {
	owner := st.module
	if owner == 0 {
		owner = st.self // a string or UPS reading
	}
	own := &t.of(&e.ents[owner-1]).own
	own.touch(now, t.cfg)
	if d := own.deadline(t.cfg); d < t.next {
		t.next = d
	}
	for id := owner; id != 0; id = e.ents[id-1].parent {
		a := &e.ents[id-1]
		s := t.of(a)
		silence := now - s.lastAny
		if now > s.lastAny {
			s.lastAny = now
		}
		if s.stale {
			// Children suppressed under this entity must be looked at
			// again at the next tick.
			s.stale = false
			t.next = math.MinInt64
		}
		if s.firing == staleAll || (s.firing == staleOwn && id == owner) {
			s.firing = staleNone
			out = append(out, Change{
				Time: now, Status: StatusResolved, Name: AlertTelemetryStale, Severity: SeverityWarning,
				Entity: id, Value: time.Duration(silence).Seconds(),
				Summary: fmt.Sprintf("%s %s is reporting again after %s of silence",
					a.level, e.path(id), time.Duration(silence).Round(time.Second)),
			})
		}
	}
	return out
}

// tick evaluates every source at event time now.
func (t *staleTracker) tick(e *Engine, now int64, out []Change) []Change {
	if !t.cfg.Enabled || now < t.next {
		return out
	}
	// Children before parents: fold each source's latest deadline and
	// longest interval into its parent.
	for _, id := range t.sources {
		s := t.of(&e.ents[id-1])
		s.agg, s.interval = math.MinInt64, s.own.interval
		if s.own.started {
			s.agg = s.own.deadline(t.cfg)
		}
	}
	for i := len(t.sources) - 1; i >= 0; i-- {
		st := &e.ents[t.sources[i]-1]
		if st.parent != 0 {
			p, c := t.of(&e.ents[st.parent-1]), t.of(st)
			p.agg = max(p.agg, c.agg)
			p.interval = max(p.interval, c.interval)
		}
	}
	next := int64(math.MaxInt64)
	for _, id := range t.sources {
		st := &e.ents[id-1]
		s := t.of(st)
		s.stale = now > s.agg
		ownDeadline := s.own.deadline(t.cfg)
		switch {
		case s.firing != staleNone:
		case (s.stale || now > ownDeadline) && e.inMaintenance(st):
			// Under maintenance: silence is expected.
		case s.stale && st.parent != 0 && t.of(&e.ents[st.parent-1]).stale:
			// Covered by the parent's alert.
		case s.stale:
			s.firing = staleAll
			age := time.Duration(now - s.lastAny)
			out = append(out, Change{
				Time: now, Status: StatusFiring, Name: AlertTelemetryStale, Severity: SeverityWarning,
				Entity: id, Value: age.Seconds(),
				Summary: fmt.Sprintf("no readings from %s %s for %s (expected every %s)",
					st.level, e.path(id), age.Round(time.Second), fmtInterval(s.interval)),
			})
		case now > ownDeadline:
			s.firing = staleOwn
			age := time.Duration(now - s.own.lastSeen)
			out = append(out, Change{
				Time: now, Status: StatusFiring, Name: AlertTelemetryStale, Severity: SeverityWarning,
				Entity: id, Value: age.Seconds(),
				Summary: fmt.Sprintf("no %s-level readings from %s %s for %s (expected every %s); the readings below it still arrive",
					st.level, st.level, e.path(id), age.Round(time.Second), fmtInterval(s.own.interval)),
			})
		default:
			next = min(next, ownDeadline)
		}
	}
	t.next = next
	return out
}

func fmtInterval(ns int64) time.Duration { return time.Duration(ns).Round(time.Millisecond) }
