package detector

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// burstWindow groups readings into polls: readings of one source less than
// this far from the first reading of a poll belong to that poll (MQTT
// messages of one poll arrive milliseconds apart).
const burstWindow = int64(500 * time.Millisecond)

// gapHistory is how many recent poll intervals the learned interval is the
// median of.
const gapHistory = 5

// minGaps is how many intervals must have been seen before a source can be
// declared stale.
const minGaps = 2

// staleState is the per-source part of TelemetryStale.
type staleState struct {
	lastSeen   int64
	burstStart int64
	started    bool
	gaps       [gapHistory]int64
	ngaps      int // total gaps seen (capped use: ring index is ngaps % gapHistory)
	interval   int64
	stale      bool // stale at the last tick (firing or suppressed by a stale parent)
	firing     bool
}

// deadline is when the source becomes stale if nothing arrives.
func (s *staleState) deadline(c *StaleConfig) int64 {
	d := int64(float64(s.interval) * c.Multiple)
	if d < c.MinAge.Nanos() {
		d = c.MinAge.Nanos()
	}
	return s.lastSeen + d
}

// staleTracker learns each source's reading interval and finds the sources
// that went quiet. Between ticks only the earliest possible deadline is
// kept, so a tick that cannot find anything costs one comparison.
type staleTracker struct {
	cfg     *StaleConfig
	sources []telemetry.EntityID // UPS, string and module IDs, ascending
	next    int64                // no source can be stale before this time
}

func (t *staleTracker) init(c *StaleConfig) {
	t.cfg = c
	t.next = math.MaxInt64
}

// add starts tracking source id, keeping sources in ascending ID order so
// that tick settles a parent before its children.
func (t *staleTracker) add(id telemetry.EntityID) {
	i, found := slices.BinarySearch(t.sources, id)
	if !found {
		t.sources = slices.Insert(t.sources, i, id)
	}
}

// touch records a reading of source id at time now.
func (t *staleTracker) touch(st *entityState, id telemetry.EntityID, now int64, out []Change) []Change {
	s := &st.stale
	if !s.started {
		s.started, s.burstStart, s.lastSeen = true, now, now
		return out
	}
	silence := now - s.lastSeen
	if now > s.lastSeen {
		s.lastSeen = now
	}
	if now-s.burstStart >= burstWindow {
		s.gaps[s.ngaps%gapHistory] = now - s.burstStart
		s.ngaps++
		s.burstStart = now
		if s.ngaps >= minGaps {
			s.interval = median(&s.gaps, min(s.ngaps, gapHistory))
		}
	}
	if s.interval > 0 {
		if d := s.deadline(t.cfg); d < t.next {
			t.next = d
		}
	}
	s.stale = false
	if s.firing {
		s.firing = false
		out = append(out, Change{
			Time: now, Status: StatusResolved, Name: AlertTelemetryStale, Severity: SeverityWarning,
			Entity: id, Value: time.Duration(silence).Seconds(),
			Summary: fmt.Sprintf("%s %s is reporting again after %s of silence",
				st.level, st.info.Entity.Path(), time.Duration(silence).Round(time.Second)),
		})
	}
	return out
}

// median returns the median of the first n gaps (n <= gapHistory) without
// allocating; for an even n it is the lower middle value.
func median(g *[gapHistory]int64, n int) int64 {
	var v [gapHistory]int64
	copy(v[:], g[:n])
	for i := 1; i < n; i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[(n-1)/2]
}

// tick finds sources with no reading for longer than their deadline. A
// source whose parent is stale is not reported on its own: the parent's
// alert covers it. Parents are interned before their children, so scanning
// in ID order settles a parent before its children.
func (t *staleTracker) tick(e *Engine, now int64, out []Change) []Change {
	if !t.cfg.Enabled || now < t.next {
		return out
	}
	next := int64(math.MaxInt64)
	for _, id := range t.sources {
		st := &e.ents[id-1]
		s := &st.stale
		if s.interval == 0 {
			continue
		}
		d := s.deadline(t.cfg)
		if now <= d {
			if d < next {
				next = d
			}
			continue
		}
		s.stale = true
		if s.firing {
			continue
		}
		if t.parentStale(e, st) {
			// Covered by the parent's alert for now; look again at the
			// next tick, since the parent may come back without it.
			next = now
			continue
		}
		s.firing = true
		age := time.Duration(now - s.lastSeen)
		out = append(out, Change{
			Time: now, Status: StatusFiring, Name: AlertTelemetryStale, Severity: SeverityWarning,
			Entity: id, Value: age.Seconds(),
			Summary: fmt.Sprintf("no readings from %s %s for %s (expected every %s)",
				st.level, st.info.Entity.Path(), age.Round(time.Second), time.Duration(s.interval).Round(time.Millisecond)),
		})
	}
	t.next = next
	return out
}

func (t *staleTracker) parentStale(e *Engine, st *entityState) bool {
	p := st.info.Parent
	return p != 0 && e.ents[p-1].stale.stale
}
