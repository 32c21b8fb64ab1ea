// Package fleet polls every BMS a configuration lists under
// collectors.modbus: one link per TCP endpoint, gateway or serial port,
// shared by the units behind it (so their requests are serialised, as a
// bus or a one-client gateway needs, each within its own unit's timeout),
// and one poller per unit, with a register map or SunSpec discovery. It
// keeps what the units report beside their telemetry: health, battery
// dates and the BMSs' own alarm bits.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Unit is one polled BMS's health.
type Unit struct {
	Name string
	modbus.Health
}

// Fleet polls a set of BMSs.
type Fleet struct {
	links []*modbus.Link
	units []*unit
	log   *zap.Logger
	now   func() time.Time // stamps the polls
}

// unit is one BMS: a register-map device, or a SunSpec device with the
// health kept here.
type unit struct {
	name     string
	interval time.Duration
	dev      *modbus.Device
	ss       *sunspec.Device

	mu       sync.Mutex
	health   modbus.Health        // SunSpec only
	warranty time.Time            // SunSpec 802 WarrDt at the last poll
	dates    []modbus.DecodedDate // a map's date points at the last successful poll
	alarms   []Alarm              // the alarm bits the last poll read
	ups, str string

	// known is each alarm's last known state, for logging transitions
	// (owned by the unit's goroutine).
	known map[[2]string]bool
}

// Name is how a collector entry is named in logs and metrics.
func Name(c *modbus.CollectorConfig) string {
	if c.Name != "" {
		return c.Name
	}
	where := c.Address
	if c.Device != "" {
		where = c.Device
	}
	return fmt.Sprintf("%s/%d", where, c.Unit)
}

// New prepares polling of validated collector entries (their register maps
// loaded by modbus.ValidateCollectors, which also refuses entries that
// disagree about a shared link: a serial port's baud rate and parity, an
// address's transport). Entries with one Endpoint share a link, set up as
// the first of them says; every request is bounded by its own entry's
// timeout. Nothing is dialled before Run.
func New(cfgs []modbus.CollectorConfig, log *zap.Logger, clock func() time.Time) *Fleet {
	if clock == nil {
		clock = time.Now
	}
	f := &Fleet{log: log, now: clock}
	links := map[string]*modbus.Link{}
	for i := range cfgs {
		c := &cfgs[i]
		key := c.Endpoint()
		l := links[key]
		if l == nil {
			switch {
			case c.Device != "":
				l = modbus.NewRTULink(c.Device, c.Baud, c.Parity, c.Timeout.Duration())
			case c.Transport == "rtu_over_tcp":
				l = modbus.NewRTUOverTCPLink(c.Address, c.Timeout.Duration())
			default:
				l = modbus.NewTCPLink(c.Address, c.Timeout.Duration())
			}
			links[key] = l
			f.links = append(f.links, l)
		}
		u := &unit{name: Name(c), interval: c.Interval.Duration(), health: modbus.Health{Errors: map[string]uint64{}}, ups: c.UPS, str: c.String,
			known: map[[2]string]bool{}}
		if c.Profile == "sunspec" {
			u.ss = &sunspec.Device{Link: l, Unit: byte(c.Unit), Timeout: c.Timeout.Duration(), UPS: c.UPS, String: c.String,
				Log: log.With(zap.String("device", u.name))}
		} else {
			u.dev = modbus.NewDevice(modbus.DeviceConfig{Name: u.name, UPS: c.UPS, String: c.String, Unit: byte(c.Unit),
				Map: c.Map, Interval: c.Interval.Duration(), Timeout: c.Timeout.Duration(), MaxGap: c.MaxGap, Clock: f.now}, l)
		}
		f.units = append(f.units, u)
	}
	return f
}

// Len is the number of BMSs polled.
func (f *Fleet) Len() int { return len(f.units) }

// Run polls every unit until ctx ends, handing each poll's samples to emit
// (from the unit's goroutine; emit may block, which delays that unit's
// next poll and is counted as skipped polls). Entities the registry
// refuses are counted by reject. Run returns when every poller stopped.
func (f *Fleet) Run(ctx context.Context, reg *telemetry.Registry, emit func([]telemetry.Sample), reject func(device string, n int)) {
	var wg sync.WaitGroup
	for _, u := range f.units {
		wg.Go(func() {
			if u.dev != nil {
				f.runMapped(ctx, u, reg, emit, reject)
			} else {
				f.runSunSpec(ctx, u, reg, emit, reject)
			}
		})
	}
	wg.Wait()
}

func (f *Fleet) runMapped(ctx context.Context, u *unit, reg *telemetry.Registry, emit func([]telemetry.Sample), reject func(string, int)) {
	var samples []telemetry.Sample
	up := true
	u.dev.Run(ctx, func(p modbus.Poll) {
		for _, e := range p.Errors {
			f.log.Debug("Modbus block read failed", zap.String("device", p.Device), zap.Uint16("start", e.Block.Start),
				zap.Uint16("count", e.Block.Count), zap.String("kind", e.Err.Kind.String()), zap.Error(e.Err.Err))
		}
		isUp := u.dev.Health().Up
		f.transition(u.name, &up, isUp, p.Errors)
		alarms := make([]Alarm, 0, len(p.Decoded.Alarms))
		for _, a := range p.Decoded.Alarms {
			alarms = append(alarms, Alarm{Unit: u.name, UPS: u.ups, String: u.str, Name: a.Name, Active: a.Active,
				Point: "register " + strconv.Itoa(int(a.Addr)) + " bit " + strconv.Itoa(a.Bit)})
		}
		f.setAlarms(u, alarms)
		if isUp {
			u.mu.Lock()
			u.dates = p.Decoded.Dates
			u.mu.Unlock()
		}
		var n int
		samples, n = u.dev.Samples(p, reg, samples[:0])
		if n > 0 {
			reject(u.name, n)
		}
		if len(samples) > 0 {
			emit(samples)
		}
	})
}

// transition logs a device going down (with its first error) or coming
// back; each failed block is logged at debug level only, so a dead device
// does not flood the log.
func (f *Fleet) transition(name string, was *bool, now bool, errs []modbus.BlockError) {
	switch {
	case *was && !now:
		var err error = errors.New("no block could be read")
		if len(errs) > 0 {
			err = errs[0].Err
		}
		f.log.Warn("Modbus device down", zap.String("device", name), zap.Error(err))
	case !*was && now:
		f.log.Info("Modbus device up", zap.String("device", name))
	}
	*was = now
}

func (f *Fleet) runSunSpec(ctx context.Context, u *unit, reg *telemetry.Registry, emit func([]telemetry.Sample), reject func(string, int)) {
	t := time.NewTicker(u.interval)
	defer t.Stop()
	var samples []telemetry.Sample
	up, whole := true, true
	for {
		start := f.now()
		rs, err := u.ss.Poll(ctx)
		// A poll that read some models (partial) delivers them, like a
		// register map's poll that lost a block; each model not read
		// counts as an error of its kind.
		var partial *sunspec.PartialError
		ok := err == nil || errors.As(err, &partial)
		var errs []error
		switch {
		case partial != nil:
			errs = partial.Unwrap()
		case err != nil:
			errs = []error{err}
		}
		u.mu.Lock()
		h := &u.health
		h.Polls++
		h.LastPoll = f.now().Sub(start)
		h.Up = ok
		if ok {
			h.LastSuccess = start
			u.warranty = u.ss.Warranty
		}
		for _, e := range errs {
			kind := "other"
			var re *modbus.ReadError
			if errors.As(e, &re) {
				kind = re.Kind.String()
			}
			h.Errors[kind]++
		}
		u.mu.Unlock()
		switch {
		case !ok && up:
			f.log.Warn("Modbus device down", zap.String("device", u.name), zap.Error(err))
		case ok && !up:
			f.log.Info("Modbus device up", zap.String("device", u.name))
		}
		if partial != nil && whole {
			f.log.Warn("SunSpec models not read; the others are delivered", zap.String("device", u.name), zap.Error(err))
		} else if err == nil && !whole {
			f.log.Info("SunSpec device read whole again", zap.String("device", u.name))
		}
		up, whole = ok, partial == nil
		var alarms []Alarm
		if ok {
			for _, a := range u.ss.Alarms {
				alarms = append(alarms, Alarm{Unit: u.name, UPS: u.ups, String: a.String, Name: a.Name(), Active: a.Active,
					Point: "SunSpec " + strconv.Itoa(int(a.Model)) + " " + a.Point + " bit " + strconv.Itoa(a.Bit)})
			}
		}
		f.setAlarms(u, alarms)
		if ok {
			var n int
			samples, n = u.ss.Samples(start, rs, reg, samples[:0])
			if n > 0 {
				reject(u.name, n)
			}
			if len(samples) > 0 {
				emit(samples)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Health returns every unit's health, in configuration order.
func (f *Fleet) Health() []Unit {
	out := make([]Unit, 0, len(f.units))
	for _, u := range f.units {
		if u.dev != nil {
			out = append(out, Unit{Name: u.name, Health: u.dev.Health()})
			continue
		}
		u.mu.Lock()
		h := u.health
		h.Errors = make(map[string]uint64, len(u.health.Errors))
		for k, v := range u.health.Errors {
			h.Errors[k] = v
		}
		u.mu.Unlock()
		out = append(out, Unit{Name: u.name, Health: h})
	}
	return out
}

// DeviceDate is a battery date a device reports about the batteries it
// manages: SunSpec model 802's warranty expiry, or a register map's date
// point.
type DeviceDate struct {
	// Unit is the device's name; UPS and String those its entry names
	// (String empty for SunSpec: every string of the UPS).
	Unit, UPS, String string
	// Field is the lifecycle field: "warranty_until", "installed", ...
	Field string
	// Date is the day (midnight UTC).
	Date time.Time
	// Point says where the device holds it: "SunSpec 802 WarrDt",
	// "register 40120".
	Point string
}

// Dates returns the battery dates the units reported at their last
// successful poll, in configuration order.
func (f *Fleet) Dates() []DeviceDate {
	var out []DeviceDate
	for _, u := range f.units {
		u.mu.Lock()
		w, ds := u.warranty, u.dates
		u.mu.Unlock()
		if u.ss != nil && !w.IsZero() {
			out = append(out, DeviceDate{Unit: u.name, UPS: u.ss.UPS, Field: "warranty_until", Date: w, Point: "SunSpec 802 WarrDt"})
		}
		for _, d := range ds {
			out = append(out, DeviceDate{Unit: u.name, UPS: u.ups, String: u.str, Field: d.Field, Date: d.Date,
				Point: fmt.Sprintf("register %d", d.Addr)})
		}
	}
	return out
}

// Alarm is one alarm bit of a BMS as its unit's last poll read it: a
// register map's bitfield16 alarms, SunSpec event bits (see
// sunspec.Alarms).
type Alarm struct {
	// Unit is the device's name; UPS and String whose batteries it is
	// about (String empty for the whole battery of a SunSpec device).
	Unit, UPS, String string
	// Name is the alarm's name in the register map, or the SunSpec
	// model, field and bit ("802.Evt1.OVER_TEMP_ALARM").
	Name   string
	Active bool
	// Point says where the device holds it: "register 8512 bit 3",
	// "SunSpec 802 Evt1 bit 1".
	Point string
}

// setAlarms records the alarms a poll read and logs every alarm raised or
// cleared since the last poll that read it (an alarm first seen raised is
// logged as raised). Alarms a poll could not read are left out until a
// poll reads them again. Called by the unit's goroutine.
func (f *Fleet) setAlarms(u *unit, alarms []Alarm) {
	for _, a := range alarms {
		k := [2]string{a.String, a.Name}
		was := u.known[k]
		u.known[k] = a.Active
		switch {
		case a.Active && !was:
			f.log.Info("BMS alarm raised", zap.String("device", a.Unit), zap.String("string", a.String),
				zap.String("alarm", a.Name), zap.String("point", a.Point))
		case !a.Active && was:
			f.log.Info("BMS alarm cleared", zap.String("device", a.Unit), zap.String("string", a.String),
				zap.String("alarm", a.Name), zap.String("point", a.Point))
		}
	}
	u.mu.Lock()
	u.alarms = alarms
	u.mu.Unlock()
}

// Alarms returns the alarm bits each unit's last poll read, in
// configuration order, then in the order the device lays them out.
func (f *Fleet) Alarms() []Alarm {
	var out []Alarm
	for _, u := range f.units {
		u.mu.Lock()
		out = append(out, u.alarms...)
		u.mu.Unlock()
	}
	return out
}

// Close closes every link. Call it after Run returned.
func (f *Fleet) Close() {
	for _, l := range f.links {
		l.Close()
	}
}
