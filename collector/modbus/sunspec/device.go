package sunspec

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Device polls one SunSpec device over a link: discovery once (again after
// a failed read, since the device may have restarted with another layout,
// and after an incomplete chain), then the registers of every model
// cellwarden decodes (1, 802–805), each poll.
type Device struct {
	Link *modbus.Link
	Unit byte
	// Timeout bounds each request (the link's timeout when 0).
	Timeout time.Duration
	// UPS owns the batteries; String is used for readings whose models
	// carry no string index.
	UPS, String string
	Log         *zap.Logger

	models []ModelRef
	// Warranty is the day the batteries' warranty expires as model 802
	// WarrDt gave it at the last poll (zero when no model implements it).
	Warranty time.Time
	// Alarms are the event bits of models 802, 803 and 804 at the last
	// successful poll (see Alarms), the strings of 803 and 804 without an
	// index set to String. An unnamed bit (Evt2, the vendor fields) is
	// listed from the poll it was first seen set on, as clear once it is.
	Alarms []Alarm
	// unnamed are the unnamed bits seen set, by string and name.
	unnamed map[[2]string]Alarm
}

// read is the discovery's register reader, in blocks of at most 125.
func (d *Device) read(ctx context.Context, addr, count uint16) ([]uint16, error) {
	out := make([]uint16, 0, count)
	for count > 0 {
		n := min(count, modbus.MaxBlock)
		regs, err := d.Link.ReadWithin(ctx, d.Unit, false, modbus.Block{Start: addr, Count: n}, d.Timeout)
		if err != nil {
			return nil, err
		}
		out = append(out, regs...)
		addr, count = addr+n, count-n
	}
	return out, nil
}

// PartialError is Poll's error when some models could not be read but
// others were: Poll's readings are those of the models read.
type PartialError struct {
	// Models are the models not read, each with its read error.
	Models []ModelError
}

// ModelError is a model that could not be read.
type ModelError struct {
	Ref ModelRef
	Err error
}

func (e *PartialError) Error() string {
	parts := make([]string, len(e.Models))
	for i, m := range e.Models {
		parts[i] = fmt.Sprintf("model %d at %d: %v", m.Ref.ID, m.Ref.Addr, m.Err)
	}
	return "SunSpec models not read: " + strings.Join(parts, "; ")
}

// Unwrap gives the read errors.
func (e *PartialError) Unwrap() []error {
	errs := make([]error, len(e.Models))
	for i, m := range e.Models {
		errs[i] = m.Err
	}
	return errs
}

// Poll reads and decodes every model. A model that cannot be read costs
// only itself: Poll returns the readings of the others with a
// *PartialError, and the next poll discovers again (the device may have
// restarted with another layout; a model read at the wrong address does
// not decode and is skipped). When no model could be read, Poll returns
// no readings and the error.
func (d *Device) Poll(ctx context.Context) ([]Reading, error) {
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	if d.models == nil {
		_, models, err := Discover(func(addr, count uint16) ([]uint16, error) { return d.read(ctx, addr, count) })
		if err != nil && len(models) == 0 {
			return nil, fmt.Errorf("SunSpec discovery: %w", err)
		}
		d.models = models
		if err != nil {
			// A partial chain: use it now, discover again next poll.
			log.Warn("SunSpec discovery incomplete", zap.Uint8("unit", d.Unit), zap.Error(err))
			defer func() { d.models = nil }()
		}
		ids := make([]uint16, len(models))
		for i, m := range models {
			ids[i] = m.ID
		}
		log.Info("SunSpec models found", zap.Uint8("unit", d.Unit), zap.Any("models", ids))
	}
	var decoded []Model
	var failed []ModelError
	read := 0
	for _, ref := range d.models {
		switch ref.ID {
		case ModelCommon, ModelBattery, ModelLithiumIonBank, ModelLithiumIonString, ModelLithiumIonModule:
		default:
			continue
		}
		if ctx.Err() != nil {
			break
		}
		regs, err := d.read(ctx, ref.Addr, ref.L+2)
		if err != nil {
			failed = append(failed, ModelError{Ref: ref, Err: err})
			continue
		}
		read++
		m, err := Decode(ref.ID, regs)
		if err != nil {
			log.Warn("SunSpec model undecodable", zap.Uint8("unit", d.Unit), zap.Uint16("model", ref.ID),
				zap.Uint16("addr", ref.Addr), zap.Error(err))
			continue
		}
		m.Addr = ref.Addr
		decoded = append(decoded, m)
	}
	if len(failed) > 0 {
		d.models = nil // rediscover at the next poll
	}
	if read == 0 && len(failed) > 0 {
		f := failed[0]
		return nil, fmt.Errorf("model %d at %d: %w", f.Ref.ID, f.Ref.Addr, f.Err)
	}
	readings, warranty, ok := Readings(decoded)
	// The warranty stays what the last read of model 802 said.
	if !slices.ContainsFunc(failed, func(f ModelError) bool { return f.Ref.ID == ModelBattery }) {
		d.Warranty = time.Time{}
		if ok {
			d.Warranty = warranty
		}
	}
	d.Alarms = d.alarms(decoded)
	if len(failed) == 0 {
		return readings, nil
	}
	return readings, &PartialError{Models: failed}
}

// alarms lists the models' event bits for Alarms.
func (d *Device) alarms(models []Model) []Alarm {
	all := Alarms(models)
	as := all[:0]
	now := make(map[[2]string]bool, len(all))
	for _, a := range all {
		if a.String == "" && a.Model != ModelBattery {
			a.String = d.String
		}
		k := [2]string{a.String, a.Name()}
		if now[k] {
			continue // an 804 without Idx and the one whose Idx is String
		}
		now[k] = true
		as = append(as, a)
		if a.Symbol == "" && a.Active {
			if d.unnamed == nil {
				d.unnamed = map[[2]string]Alarm{}
			}
			d.unnamed[k] = a
		}
	}
	n := len(as)
	for k, a := range d.unnamed {
		if !now[k] {
			a.Active = false
			as = append(as, a)
		}
	}
	// Map order must not show: the cleared unnamed bits come last, sorted.
	slices.SortFunc(as[n:], func(a, b Alarm) int {
		return cmp.Or(strings.Compare(a.String, b.String), strings.Compare(a.Name(), b.Name()))
	})
	return as
}

// Entity is the entity a reading of this device belongs to.
func (d *Device) Entity(r Reading) telemetry.Entity {
	str := r.String
	if str == "" {
		str = d.String
	}
	e := telemetry.Entity{UPS: d.UPS, String: str}
	switch r.Metric.Level() {
	case telemetry.LevelUPS:
		e.String = ""
	case telemetry.LevelModule:
		e.Module = r.Module
	case telemetry.LevelCell:
		e.Module, e.Cell = r.Module, r.Cell
	}
	return e
}

// Samples turns one poll's readings, taken at t, into samples, interning
// their entities; readings of entities the registry refuses are counted in
// the second result.
func (d *Device) Samples(t time.Time, rs []Reading, reg *telemetry.Registry, out []telemetry.Sample) ([]telemetry.Sample, int) {
	rejected := 0
	for _, r := range rs {
		id, err := reg.Intern(d.Entity(r))
		if err != nil {
			rejected++
			continue
		}
		out = append(out, telemetry.Sample{Time: t.UnixNano(), Value: r.Value, Entity: id, Metric: r.Metric})
	}
	return out, rejected
}
