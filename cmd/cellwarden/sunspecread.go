package main

import (
	"context"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/sunspec"
)

// runSunSpecRead polls SunSpec devices (modbus read --profile sunspec).
func runSunSpecRead(ctx context.Context, o readOptions, link *modbus.Link, write func(t time.Time, rows [][7]string), log *zap.Logger) error {
	var devs []*sunspec.Device
	for _, d := range o.devices {
		unit, str, err := parseDevice(d)
		if err != nil {
			return err
		}
		devs = append(devs, &sunspec.Device{Link: link, Unit: unit, UPS: o.ups, String: str, Log: log})
	}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for n := 0; o.polls == 0 || n < o.polls; n++ {
		for _, d := range devs {
			now := time.Now()
			readings, err := d.Poll(ctx)
			if err != nil {
				log.Warn("SunSpec poll failed", zap.Uint8("unit", d.Unit), zap.Error(err))
				continue
			}
			var rows [][7]string
			for _, r := range readings {
				e := d.Entity(r)
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
