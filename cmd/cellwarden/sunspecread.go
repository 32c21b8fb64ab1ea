package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// sunspecDevice polls one SunSpec device: discovery once (again after a
// failure), then every model's registers each poll.
type sunspecDevice struct {
	link   *modbus.Link
	unit   byte
	ups    string
	str    string // used when the models carry no string index
	models []sunspec.ModelRef
}

// read is the discovery's register reader, in blocks of at most 125.
func (d *sunspecDevice) read(ctx context.Context, addr, count uint16) ([]uint16, error) {
	out := make([]uint16, 0, count)
	for count > 0 {
		n := min(count, modbus.MaxBlock)
		regs, err := d.link.Read(ctx, d.unit, false, modbus.Block{Start: addr, Count: n})
		if err != nil {
			return nil, err
		}
		out = append(out, regs...)
		addr, count = addr+n, count-n
	}
	return out, nil
}

// poll reads and decodes every model and returns the rows to write.
func (d *sunspecDevice) poll(ctx context.Context, log *zap.Logger) ([]sunspec.Reading, error) {
	if d.models == nil {
		_, models, err := sunspec.Discover(func(addr, count uint16) ([]uint16, error) { return d.read(ctx, addr, count) })
		if err != nil && len(models) == 0 {
			return nil, fmt.Errorf("SunSpec discovery: %w", err)
		}
		d.models = models
		if err != nil {
			// A partial chain: use it now, discover again next poll.
			log.Warn("SunSpec discovery incomplete", zap.Uint8("unit", d.unit), zap.Error(err))
			defer func() { d.models = nil }()
		}
		ids := make([]uint16, len(models))
		for i, m := range models {
			ids[i] = m.ID
		}
		log.Info("SunSpec models found", zap.Uint8("unit", d.unit), zap.Any("models", ids))
	}
	var decoded []sunspec.Model
	for _, ref := range d.models {
		switch ref.ID {
		case sunspec.ModelCommon, sunspec.ModelBattery, sunspec.ModelLithiumIonBank, sunspec.ModelLithiumIonString, sunspec.ModelLithiumIonModule:
		default:
			continue
		}
		regs, err := d.read(ctx, ref.Addr, ref.L+2)
		if err != nil {
			d.models = nil // rediscover: the device may have restarted with another layout
			return nil, fmt.Errorf("model %d at %d: %w", ref.ID, ref.Addr, err)
		}
		m, err := sunspec.Decode(ref.ID, regs)
		if err != nil {
			log.Warn("SunSpec model undecodable", zap.Uint16("model", ref.ID), zap.Uint16("addr", ref.Addr), zap.Error(err))
			continue
		}
		m.Addr = ref.Addr
		decoded = append(decoded, m)
	}
	readings, _, _ := sunspec.Readings(decoded)
	return readings, nil
}

// runSunSpecRead polls SunSpec devices (modbus read --profile sunspec).
func runSunSpecRead(ctx context.Context, o readOptions, link *modbus.Link, write func(t time.Time, rows [][7]string), log *zap.Logger) error {
	var devs []*sunspecDevice
	for _, d := range o.devices {
		unit, str, err := parseDevice(d)
		if err != nil {
			return err
		}
		devs = append(devs, &sunspecDevice{link: link, unit: unit, ups: o.ups, str: str})
	}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for n := 0; o.polls == 0 || n < o.polls; n++ {
		for _, d := range devs {
			now := time.Now()
			readings, err := d.poll(ctx, log)
			if err != nil {
				log.Warn("SunSpec poll failed", zap.Uint8("unit", d.unit), zap.Error(err))
				continue
			}
			var rows [][7]string
			for _, r := range readings {
				str := r.String
				if str == "" {
					str = d.str
				}
				e := telemetry.Entity{UPS: d.ups, String: str}
				switch r.Metric.Level() {
				case telemetry.LevelModule:
					e.Module = r.Module
				case telemetry.LevelCell:
					e.Module, e.Cell = r.Module, r.Cell
				}
				v := ""
				if !math.IsNaN(r.Value) {
					v = strconv.FormatFloat(r.Value, 'f', -1, 64)
				}
				rows = append(rows, [7]string{"", e.UPS, e.String, e.Module, e.Cell, r.Metric.String(), v})
			}
			write(now, rows)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	return nil
}
