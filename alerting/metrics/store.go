// Package metrics is cellwarden's Prometheus exposition: the latest
// reading of every cell, module, string and UPS, the detector's residuals
// and scores, the active alerts (cellwarden_alerts, like Prometheus'
// ALERTS), the battery dates of the inventory, and the daemon's own health
// (collectors, samples, bad input, configuration reloads).
//
// The daemon's goroutines write into a Store; the metrics are rendered at
// scrape time from what the Store holds then, so a device that stops
// reporting or is removed disappears from the exposition instead of
// repeating its last value. NewHandler writes the Store's series as text
// straight from its tables (a fleet of 100 k cells has 1.4 M series); the
// Collector renders the same series as client_golang metrics, for
// registries, tests and the status page. The Store is safe for concurrent
// use: the detector goroutine updates it between samples and scrapes read
// it under a lock, a few hundred series at a time.
package metrics

import (
	"encoding/binary"
	"math"
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
	// StaleAfter: a reading not renewed for this long (wall clock, to the
	// second) is no longer exported, nor are the scores of its cell.
	StaleAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Store holds the current state the metrics are built from.
//
// It is laid out for fleets of 100 k cells and more: each entity has a row
// in the table of its level, its readings sit in flat slices indexed by
// row and metric, a cell's scores in a slice beside its row, and the label
// values of an entity are escaped once, when it is first seen, into one
// byte arena. Nothing in the tables holds a pointer, so the garbage
// collector does not scan them, and nothing is allocated per sample.
type Store struct {
	reg        *telemetry.Registry
	now        func() time.Time
	staleAfter time.Duration

	// orderMu serialises sorting new rows into the tables' orders.
	orderMu sync.Mutex

	mu sync.RWMutex
	// rows maps an EntityID (at index ID-1) to its row: row<<3 | level,
	// 0 while the Store has not seen it.
	rows   []uint32
	tables [telemetry.LevelCell + 1]table // by level; [0] is unused
	// scores and scoreFlags are by row of the cell table.
	scores     []score
	scoreFlags []uint8
	// text holds each row's label text (see table.text). It is only ever
	// appended to, so bytes a scrape saw under the lock stay valid after
	// it released it.
	text   []byte
	alerts map[alerting.Labels]time.Time // firing → since
	inv    *inventory.Inventory
	health []func() []CollectorHealth
	// findings are the battery-age verdicts (nil: export the inventory's
	// dates instead).
	findings []lifecycle.Finding
}

// table holds the rows of one level of the hierarchy.
type table struct {
	// width is the number of metrics of the level (slots of a row).
	width int
	ids   []telemetry.EntityID
	// text is where the row's label text starts in Store.text: a uvarint
	// length, then, for a cell, its escaped cell value; for the other
	// levels a uvarint split and the rendered pairs down to the UPS
	// (`module="3",string="1",ups="ups-a"`), the first split bytes of
	// which are the level's own pair.
	text []uint32
	// parent is, for a cell, its module's row.
	parent []uint32
	// vals and seen are by row*width+slot; seen is the wall clock in Unix
	// seconds of the reading (0: none).
	vals []float64
	seen []uint32
	// order lists the rows in exposition order (that of client_golang:
	// by label values in label-name order, finest identifier first). It
	// is replaced, never changed in place, so a scrape may keep using the
	// one it took.
	order []uint32
}

// score is a cell's detector.CellScore without its entity and flags.
type score struct {
	tempRes, tempThr, voltRes, voltThr, tempOff, voltOff, slope float64
}

// Flags of Store.scoreFlags.
const (
	scored uint8 = 1 << iota // the detector reported the cell at the last SetScores
	warm
	tempFault
	voltFault
)

// slots gives a metric's place in the rows of its level's table.
var slots = func() (s [telemetry.NumMetrics]int) {
	var n [telemetry.LevelCell + 1]int
	for _, m := range telemetry.Metrics() {
		s[m] = n[m.Level()]
		n[m.Level()]++
	}
	return s
}()

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
	s := &Store{reg: reg, now: opts.Now, staleAfter: opts.StaleAfter, alerts: map[alerting.Labels]time.Time{}}
	for _, m := range telemetry.Metrics() {
		s.tables[m.Level()].width++
	}
	return s
}

// Observe records the latest value of each sample's entity and metric.
// Samples without a reading (NaN) leave the previous value. Call it with a
// batch (one poll) rather than per sample: it takes the lock once.
func (s *Store) Observe(samples ...telemetry.Sample) {
	seen := unixSeconds(s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		if x.NoReading() || !x.Metric.Valid() {
			continue
		}
		level, row, ok := s.rowLocked(x.Entity)
		if !ok || level != x.Metric.Level() {
			continue
		}
		t := &s.tables[level]
		i := int(row)*t.width + slots[x.Metric]
		t.vals[i], t.seen[i] = x.Value, seen
	}
}

// SetScores replaces the cell scores with those each yields; pass the
// detector's Engine.CellScores from the goroutine that runs the engine.
// each runs under the Store's lock: it must not call the Store.
func (s *Store) SetScores(each func(func(detector.CellScore))) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.scoreFlags)
	each(func(c detector.CellScore) {
		level, row, ok := s.rowLocked(c.Entity)
		if !ok || level != telemetry.LevelCell {
			return
		}
		s.scores[row] = score{tempRes: c.TemperatureResidual, tempThr: c.TemperatureThreshold, voltRes: c.VoltageResidual,
			voltThr: c.VoltageThreshold, tempOff: c.TemperatureOffset, voltOff: c.VoltageOffset, slope: c.RisingSlope}
		f := scored
		if c.Warm {
			f |= warm
		}
		if c.TemperatureSensorFault {
			f |= tempFault
		}
		if c.VoltageSensorFault {
			f |= voltFault
		}
		s.scoreFlags[row] = f
	})
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
	for level := telemetry.LevelUPS; level <= telemetry.LevelCell; level++ {
		t := &s.tables[level]
		for row, id := range t.ids {
			if !under(s.reg.Info(id).Entity, e) {
				continue
			}
			clear(t.seen[row*t.width : (row+1)*t.width])
			if level == telemetry.LevelCell {
				s.scoreFlags[row] = 0
			}
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

// rowLocked returns the level and row of id, adding a row (and rows for
// the ancestors of a cell) on first sight. It reports false for the zero
// ID and when the label arena is full (4 GiB of identifiers).
func (s *Store) rowLocked(id telemetry.EntityID) (telemetry.Level, uint32, bool) {
	if id == 0 {
		return 0, 0, false
	}
	if int(id) <= len(s.rows) {
		if r := s.rows[id-1]; r != 0 {
			return telemetry.Level(r & 7), r >> 3, true
		}
	}
	info := s.reg.Info(id)
	var parent uint32
	if info.Level == telemetry.LevelCell {
		var ok bool
		if _, parent, ok = s.rowLocked(info.Module); !ok {
			return 0, 0, false
		}
	}
	start := len(s.text)
	if info.Level == telemetry.LevelCell {
		s.text = binary.AppendUvarint(s.text, uint64(escapedLen(info.Entity.Cell)))
		s.text = appendEscaped(s.text, info.Entity.Cell)
	} else {
		p, split := appendPairs(nil, info.Entity)
		s.text = binary.AppendUvarint(s.text, uint64(split))
		s.text = appendField(s.text, p)
	}
	if uint64(start) > math.MaxUint32 {
		s.text = s.text[:start]
		return 0, 0, false
	}
	t := &s.tables[info.Level]
	row := uint32(len(t.ids))
	t.ids = append(t.ids, id)
	t.text = append(t.text, uint32(start))
	t.vals = append(t.vals, make([]float64, t.width)...)
	t.seen = append(t.seen, make([]uint32, t.width)...)
	if info.Level == telemetry.LevelCell {
		t.parent = append(t.parent, parent)
		s.scores = append(s.scores, score{})
		s.scoreFlags = append(s.scoreFlags, 0)
	}
	if int(id) > len(s.rows) {
		s.rows = append(s.rows, make([]uint32, int(id)-len(s.rows))...)
	}
	s.rows[id-1] = row<<3 | uint32(info.Level)
	return info.Level, row, true
}

// cellText returns the escaped cell value of a row of the cell table.
func cellText(text []byte, off uint32) []byte {
	v, _ := field(text[off:])
	return v
}

// pairsText returns the rendered label pairs of a row of the other tables
// and the length of the level's own pair (with its comma).
func pairsText(text []byte, off uint32) (pairs []byte, split int) {
	b := text[off:]
	n, k := binary.Uvarint(b)
	pairs, _ = field(b[k:])
	return pairs, int(n)
}

// appendField appends v preceded by its length as a uvarint.
func appendField(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// field reads what appendField wrote at the start of b.
func field(b []byte) (v, rest []byte) {
	n, k := binary.Uvarint(b)
	return b[k : k+int(n)], b[k+int(n):]
}

func unixSeconds(t time.Time) uint32 { return uint32(max(t.Unix(), 0)) }
