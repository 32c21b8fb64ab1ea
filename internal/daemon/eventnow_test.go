package daemon

import (
	"testing"
	"time"
)

// The detector is ticked with the clock, but never further ahead of the
// latest reading than the time since it arrived: a gateway whose clock
// lags ours by two minutes does not look silent, while a fleet that stops
// reporting still ages.
func TestEventNowFollowsLaggingSources(t *testing.T) {
	wall := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	d := &daemon{o: Options{Clock: func() time.Time { return wall }}}
	if got := d.eventNow(); got != wall.UnixNano() {
		t.Errorf("before any reading: %v, want the clock", time.Unix(0, got).UTC())
	}
	// A reading stamped two minutes behind arrives now.
	d.lastEvent, d.lastEventAt = wall.Add(-2*time.Minute).UnixNano(), wall.UnixNano()
	wall = wall.Add(10 * time.Second)
	if got, want := d.eventNow(), wall.Add(-2*time.Minute).UnixNano(); got != want {
		t.Errorf("10 s after a lagging reading: %v, want %v", time.Unix(0, got).UTC(), time.Unix(0, want).UTC())
	}
	// Sources on time: the clock.
	d.lastEvent, d.lastEventAt = wall.UnixNano(), wall.UnixNano()
	wall = wall.Add(5 * time.Minute)
	if got := d.eventNow(); got != wall.UnixNano() {
		t.Errorf("5 min of silence after an on-time reading: %v, want the clock %v", time.Unix(0, got).UTC(), wall)
	}
}
