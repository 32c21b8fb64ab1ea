package modbus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// DeviceConfig describes one BMS behind a link.
type DeviceConfig struct {
	Name     string // for messages and metric labels
	UPS      string // the UPS the BMS belongs to
	String   string // the battery string it manages
	Unit     byte   // Modbus unit id
	Map      *Map
	Interval time.Duration
	// Timeout bounds each request (the link's timeout when 0).
	Timeout time.Duration
	// MaxGap: unmapped registers a read may span to join two ranges.
	MaxGap int
	// Clock stamps the polls (time.Now when nil; the demo plays a
	// simulation faster than real time through it).
	Clock func() time.Time
}

// Health is what a device's polls have shown, for the metrics side.
type Health struct {
	Up          bool // the last poll read at least one block
	LastSuccess time.Time
	LastPoll    time.Duration // how long the last poll took
	Polls       uint64
	Skipped     uint64            // polls skipped because the previous one overran
	Errors      map[string]uint64 // by kind, and "exception_N" by Modbus exception code
	Missing     uint64            // elements not decoded because their block failed
}

// Device polls one BMS.
type Device struct {
	cfg    DeviceConfig
	link   *Link
	blocks []Block // in poll order: blocks the unit did not answer last
	now    func() time.Time

	// Owned by the polling goroutine: the slices the next poll order is
	// built in, and whether the unit answered its last request.
	spare, late []Block
	answered    bool

	regs     *image    // the dump of the poll in progress, reused
	readings []Reading // the last poll's readings, reused by the next
	ids      idCache   // the entity of each reading, from the last poll

	mu     sync.Mutex
	health Health
	// unreadable marks planned blocks where bisection found nothing.
	unreadable map[Block]bool
}

// NewDevice prepares polling of cfg over link. A non-positive interval is
// taken as 10 s.
func NewDevice(cfg DeviceConfig, link *Link) *Device {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	blocks := cfg.Map.Plan(cfg.MaxGap)
	return &Device{cfg: cfg, link: link, blocks: blocks, now: now,
		health: Health{Errors: map[string]uint64{}}, unreadable: map[Block]bool{}, regs: newImage(blocks)}
}

// Name is the device's name from its configuration.
func (d *Device) Name() string { return d.cfg.Name }

// Health returns a copy of the device's health.
func (d *Device) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.health
	h.Errors = make(map[string]uint64, len(d.health.Errors))
	for k, v := range d.health.Errors {
		h.Errors[k] = v
	}
	return h
}

// readSplit reads b by bisection after an "illegal data address": it
// returns the sub-blocks that were read (their registers stored in regs),
// and an error that is not an illegal address (which ends the bisection).
func (d *Device) readSplit(ctx context.Context, b Block, regs *image, depth int) ([]Block, *ReadError) {
	halves := [2]Block{{b.Start, b.Count / 2}, {b.Start + b.Count/2, b.Count - b.Count/2}}
	var good []Block
	for _, h := range halves {
		vals, err := d.link.ReadWithin(ctx, d.cfg.Unit, d.cfg.Map.Function == "input", h, d.cfg.Timeout)
		switch {
		case err == nil:
			good = append(good, h)
			regs.store(h.Start, vals)
		case err.Kind == ErrException && err.Exception == 2 && h.Count > 1 && depth < 12:
			g, herr := d.readSplit(ctx, h, regs, depth+1)
			good = append(good, g...)
			if herr != nil {
				return good, herr
			}
		case err.Kind == ErrException && err.Exception == 2:
			// a single missing register, or deep enough: leave it out
		default:
			return good, err
		}
	}
	return good, nil
}

// Poll is one poll's result: one timestamp for every value read.
type Poll struct {
	Device  string
	Time    time.Time
	Decoded Decoded
	Errors  []BlockError
}

// silent reports whether err means the unit did not answer: a timeout, a
// lost connection, or a gateway saying the unit is unreachable
// (exceptions 10 and 11).
func silent(err *ReadError) bool {
	return err.Kind == ErrTimeout || err.Kind == ErrConnection ||
		(err.Kind == ErrException && (err.Exception == 10 || err.Exception == 11))
}

// BlockError is a block that could not be read.
type BlockError struct {
	Block Block
	Err   *ReadError
}

// Poll reads every block once, each within the device's timeout. A block
// the device refuses (a Modbus exception) is recorded and the others are
// still read and decoded. A block the unit does not answer (a timeout, a
// broken connection, or a gateway's exception 10 or 11 saying the unit is
// unreachable) costs only that block while the unit answers the others:
// the poll goes on when the unit's request before it was answered, and
// the block moves to the end of the poll order, so later polls read the
// blocks that answer first. Two such failures in a row give up the rest of
// the poll: a dead unit behind a shared gateway costs the other units on
// the link one timeout per poll, a unit that just died two, and a unit
// that answers all but some blocks one timeout per silent block.
// One goroutine polls a device, and the poll's Decoded.Readings are
// reused by its next poll: use them (turn them into Samples) before
// polling again.
func (d *Device) Poll(ctx context.Context) Poll {
	start := d.now()
	p := Poll{Device: d.cfg.Name, Time: start}
	regs := d.regs
	regs.reset()
	ok := 0
	input := d.cfg.Map.Function == "input"
	// The next poll's order: the blocks in this poll's order, then those
	// the unit did not answer (late). Both reuse the last poll's slices.
	next, late := d.spare[:0], d.late[:0]
	stopped := false
	for _, b := range d.blocks {
		if stopped {
			next = append(next, b)
			continue
		}
		vals, err := d.link.ReadWithin(ctx, d.cfg.Unit, input, b, d.cfg.Timeout)
		switch {
		case err == nil:
			d.answered = true
			ok++
			regs.store(b.Start, vals)
			next = append(next, b)
		case err.Kind == ErrException && err.Exception == 2 && b.Count > 1 && !d.unreadable[b]:
			// "Illegal data address": the map reaches registers the
			// device lacks (a rack with fewer modules than mapped). Find
			// the readable parts by bisection, so one missing register
			// does not cost the rest, and keep them for later polls.
			d.answered = true
			p.Errors = append(p.Errors, BlockError{Block: b, Err: err})
			good, herr := d.readSplit(ctx, b, regs, 0)
			ok += len(good)
			switch {
			case herr != nil:
				// The bisection was cut short: what it read counts for
				// this poll, the whole block is tried again next time.
				p.Errors = append(p.Errors, BlockError{Block: b, Err: herr})
				if silent(herr) {
					d.answered = false // the exception before it was an answer: go on
					late = append(late, b)
				} else {
					next = append(next, b)
				}
			case len(good) == 0:
				d.unreadable[b] = true
				next = append(next, b)
			default:
				next = append(next, good...)
			}
		case silent(err):
			p.Errors = append(p.Errors, BlockError{Block: b, Err: err})
			late = append(late, b)
			stopped = !d.answered
			d.answered = false
		default:
			// Another exception (an answer), or a garbled answer.
			p.Errors = append(p.Errors, BlockError{Block: b, Err: err})
			if err.Kind == ErrException {
				d.answered = true
			}
			next = append(next, b)
		}
	}
	next = append(next, late...)
	d.spare, d.blocks, d.late = d.blocks, next, late
	p.Decoded = d.cfg.Map.decode(regs, d.readings)
	d.readings = p.Decoded.Readings
	d.mu.Lock()
	defer d.mu.Unlock()
	h := &d.health
	h.Polls++
	h.Up = ok > 0
	if ok > 0 {
		h.LastSuccess = start
	}
	h.LastPoll = d.now().Sub(start)
	h.Missing += uint64(p.Decoded.Missing)
	for _, e := range p.Errors {
		h.Errors[e.Err.Kind.String()]++
		if e.Err.Kind == ErrException {
			h.Errors[fmt.Sprintf("exception_%d", e.Err.Exception)]++
		}
	}
	return p
}

// Run polls every Interval until ctx ends, handing each poll to emit. A poll
// that overruns its interval makes the next ones be skipped (and counted)
// rather than queued.
func (d *Device) Run(ctx context.Context, emit func(Poll)) {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		p := d.Poll(ctx)
		emit(p)
		if over := d.now().Sub(p.Time); over > d.cfg.Interval {
			d.mu.Lock()
			d.health.Skipped += uint64(over / d.cfg.Interval)
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Samples turns a poll's readings into Samples, interning the entities
// (the device's UPS and string, and the module and cell of each reading).
// Readings of entities the registry refuses are counted in the second
// result. A device reads the same elements poll after poll, so the entity
// of each reading is remembered by its position and interned again only
// when it changed. Like Poll, it is called by one goroutine at a time.
func (d *Device) Samples(p Poll, reg *telemetry.Registry, out []telemetry.Sample) ([]telemetry.Sample, int) {
	rejected := 0
	ts := p.Time.UnixNano()
	c := &d.ids
	if c.reg != reg {
		*c = idCache{reg: reg}
	}
	for i, r := range p.Decoded.Readings {
		level := r.Metric.Level()
		if i < len(c.keys) {
			if k := &c.keys[i]; k.level == level && k.module == r.Module && k.cell == r.Cell {
				out = append(out, telemetry.Sample{Time: ts, Value: r.Value, Entity: k.id, Metric: r.Metric})
				continue
			}
		}
		e := telemetry.Entity{UPS: d.cfg.UPS}
		switch level {
		case telemetry.LevelString:
			e.String = d.cfg.String
		case telemetry.LevelModule:
			e.String, e.Module = d.cfg.String, r.Module
		case telemetry.LevelCell:
			e.String, e.Module, e.Cell = d.cfg.String, r.Module, r.Cell
		}
		id, err := reg.Intern(e)
		if err != nil {
			rejected++
			continue
		}
		if i >= len(c.keys) {
			c.keys = append(c.keys, make([]idKey, i+1-len(c.keys))...)
		}
		c.keys[i] = idKey{module: r.Module, cell: r.Cell, level: level, id: id}
		out = append(out, telemetry.Sample{Time: ts, Value: r.Value, Entity: id, Metric: r.Metric})
	}
	return out, rejected
}

// idCache remembers the entity of each reading position for one registry.
type idCache struct {
	reg  *telemetry.Registry
	keys []idKey
}

type idKey struct {
	module, cell string
	level        telemetry.Level
	id           telemetry.EntityID // 0: not known
}
