// Package metrics is cellwarden's Prometheus exposition: the latest
// reading of every cell, module, string and UPS, the detector's residuals
// and scores, the active alerts (cellwarden_alerts, like Prometheus'
// ALERTS), the battery dates of the inventory, and the daemon's own health
// (collectors, samples, bad input, configuration reloads).
//
// The daemon's goroutines write into a Store; a Collector built on it
// renders the metrics at scrape time from what the Store holds then, so a
// device that stops reporting or is removed disappears from the
// exposition instead of repeating its last value. The Store is safe for
// concurrent use: the detector goroutine updates it between samples and
// scrapes only read a consistent copy under a lock.
package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// DefaultStaleAfter is how long a reading stays exported without a newer
// one when StoreOptions leave it 0.
const DefaultStaleAfter = 5 * time.Minute

// StoreOptions tune a Store.
type StoreOptions struct {
	// StaleAfter: a reading not renewed for this long (wall clock) is no
	// longer exported, nor are the scores of its cell.
	StaleAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Store holds the current state the metrics are built from.
type Store struct {
	reg        *telemetry.Registry
	now        func() time.Time
	staleAfter time.Duration

	mu     sync.RWMutex
	values map[valueKey]reading
	scores map[telemetry.EntityID]detector.CellScore
	alerts map[alerting.Labels]time.Time // firing → since
	inv    *inventory.Inventory
	health []func() []CollectorHealth
	// findings are the battery-age verdicts (nil: export the inventory's
	// dates instead).
	findings []lifecycle.Finding
}

type valueKey struct {
	id     telemetry.EntityID
	metric telemetry.Metric
}

type reading struct {
	value float64
	seen  int64 // wall clock, Unix ns
}

// CollectorHealth is what one collector (a polled device, a broker
// subscription) reports about itself.
type CollectorHealth struct {
	// Name is the collector's configured name; Source its transport
	// ("modbus", "mqtt").
	Name, Source string
	// Up: the last poll or connection attempt worked.
	Up bool
	// LastSuccess is when data last arrived (zero: never).
	LastSuccess time.Time
	// LastDuration is how long the last poll took (0 when not polled).
	LastDuration time.Duration
	// Polls and Skipped count polls made and skipped (overrun).
	Polls, Skipped uint64
	// Errors counts errors by kind.
	Errors map[string]uint64
}

// NewStore returns an empty Store whose entities are those of reg.
func NewStore(reg *telemetry.Registry, opts StoreOptions) *Store {
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{reg: reg, now: opts.Now, staleAfter: opts.StaleAfter, values: map[valueKey]reading{},
		scores: map[telemetry.EntityID]detector.CellScore{}, alerts: map[alerting.Labels]time.Time{}}
}

// Observe records the latest value of each sample's entity and metric.
// Samples without a reading (NaN) leave the previous value. Call it with a
// batch (one poll) rather than per sample: it takes the lock once.
func (s *Store) Observe(samples ...telemetry.Sample) {
	seen := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		if x.NoReading() || !x.Metric.Valid() {
			continue
		}
		s.values[valueKey{x.Entity, x.Metric}] = reading{value: x.Value, seen: seen}
	}
}

// SetScores replaces the cell scores with those each yields; pass the
// detector's Engine.CellScores from the goroutine that runs the engine.
func (s *Store) SetScores(each func(func(detector.CellScore))) {
	scores := make(map[telemetry.EntityID]detector.CellScore, len(s.scores))
	each(func(c detector.CellScore) { scores[c.Entity] = c })
	s.mu.Lock()
	s.scores = scores
	s.mu.Unlock()
}

// Alert records an alert state change: a firing alert is exported in
// cellwarden_alerts until it resolves.
func (s *Store) Alert(as ...alerting.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range as {
		switch a.Status {
		case "firing":
			if _, ok := s.alerts[a.Labels]; !ok {
				s.alerts[a.Labels] = a.Time
			}
		case "resolved":
			delete(s.alerts, a.Labels)
		}
	}
}

// SetInventory sets the inventory whose dates are exported (nil for none).
func (s *Store) SetInventory(inv *inventory.Inventory) {
	s.mu.Lock()
	s.inv = inv
	s.mu.Unlock()
}

// SetFindings replaces the battery-age verdicts exported (the detector's
// Engine.Findings, from the goroutine that runs the engine). With them the
// battery dates are those the verdicts used (inventory, asset list, device
// dates, policy defaults), and each string's state and state-of-health
// trend are exported too.
func (s *Store) SetFindings(fs []lifecycle.Finding) {
	fs = slices.Clone(fs)
	s.mu.Lock()
	s.findings = fs
	s.mu.Unlock()
}

// AddHealth adds a source of collector health, called at every scrape
// (outside the Store's lock); it must be safe for concurrent use.
func (s *Store) AddHealth(fn func() []CollectorHealth) {
	s.mu.Lock()
	s.health = append(s.health, fn)
	s.mu.Unlock()
}

// Forget drops every reading, score and alert of e and the entities below
// it, as when a device is removed from the configuration.
func (s *Store) Forget(e telemetry.Entity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	below := func(id telemetry.EntityID) bool { return under(s.reg.Info(id).Entity, e) }
	for k := range s.values {
		if below(k.id) {
			delete(s.values, k)
		}
	}
	for id := range s.scores {
		if below(id) {
			delete(s.scores, id)
		}
	}
	for l := range s.alerts {
		if under(telemetry.Entity{UPS: l.UPS, String: l.String, Module: l.Module, Cell: l.Cell}, e) {
			delete(s.alerts, l)
		}
	}
}

// under reports whether x is e or below it.
func under(x, e telemetry.Entity) bool {
	return x.UPS == e.UPS && (e.String == "" || x.String == e.String) &&
		(e.Module == "" || x.Module == e.Module) && (e.Cell == "" || x.Cell == e.Cell)
}
