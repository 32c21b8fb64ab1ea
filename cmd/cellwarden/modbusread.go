package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type readOptions struct {
	address  string
	profile  string
	ups      string
	devices  []string // UNIT:STRING
	modules  int
	interval time.Duration
	timeout  time.Duration
	polls    int
	// rtuOverTCP: the endpoint is a gateway carrying raw RTU frames.
	rtuOverTCP bool
}

// runModbusRead polls BMSs behind one Modbus TCP endpoint through a
// register map and writes what they report as telemetry CSV (§1), one
// timestamp per poll: the Modbus collector's path, usable without the
// daemon (cellwarden modbus read ... | cellwarden replay --input -).
// parseDevice reads a --device value: UNIT or UNIT:STRING.
func parseDevice(d string) (unit byte, str string, err error) {
	unitText, str, _ := strings.Cut(d, ":")
	u, perr := strconv.ParseUint(unitText, 10, 8)
	if perr != nil {
		return 0, "", fmt.Errorf("--device %q must be UNIT[:STRING] with a unit id 0..255, e.g. 1:1", d)
	}
	if str == "" {
		str = "1"
	}
	return byte(u), str, nil
}

func runModbusRead(o readOptions, stdout io.Writer, log *zap.Logger) error {
	if len(o.devices) == 0 {
		o.devices = []string{"1:1"}
	}
	if o.interval <= 0 || o.timeout <= 0 || o.timeout >= o.interval {
		return fmt.Errorf("--timeout (%s) must be above 0 and below --interval (%s)", o.timeout, o.interval)
	}
	link := modbus.NewTCPLink(o.address, o.timeout)
	if o.rtuOverTCP {
		link = modbus.NewRTUOverTCPLink(o.address, o.timeout)
	}
	defer link.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	bw := bufio.NewWriter(stdout)
	bw.WriteString(csvfile.Header + "\n")
	bw.Flush()
	var mu sync.Mutex // one poll's rows stay together
	var lastTS time.Time
	// write emits one poll's rows. Polls of devices sharing the link
	// finish in any order; the CSV contract wants time order, so a poll
	// that ends after a later-started one takes the latest time written (a
	// shift within one poll's duration).
	write := func(t time.Time, rows [][7]string) {
		mu.Lock()
		defer mu.Unlock()
		if t.Before(lastTS) {
			t = lastTS
		}
		lastTS = t
		ts := t.UTC().Format(time.RFC3339Nano)
		for _, r := range rows {
			r[0] = ts
			bw.WriteString(strings.Join(r[:], ",") + "\n")
		}
		bw.Flush()
	}
	if o.profile == "sunspec" {
		return runSunSpecRead(ctx, o, link, write, log)
	}
	var devs []*modbus.Device
	for _, d := range o.devices {
		unit, str, err := parseDevice(d)
		if err != nil {
			return err
		}
		m, err := modbus.Profile(o.profile)
		if err != nil {
			return err
		}
		if o.modules > 0 {
			m.SetModules(o.modules)
			if err := m.Check(); err != nil {
				return fmt.Errorf("--modules %d: %w", o.modules, err)
			}
		}
		e := telemetry.Entity{UPS: o.ups, String: str}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("--ups %q --device %q: %w", o.ups, d, err)
		}
		devs = append(devs, modbus.NewDevice(modbus.DeviceConfig{Name: fmt.Sprintf("%s unit %d", o.address, unit),
			UPS: o.ups, String: str, Unit: unit, Map: m, Interval: o.interval}, link))
	}
	reg := telemetry.NewRegistry()
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			n := 0
			var samples []telemetry.Sample
			d.Run(pctx, func(p modbus.Poll) {
				for _, e := range p.Errors {
					log.Warn("block read failed", zap.String("device", p.Device), zap.Uint16("start", e.Block.Start),
						zap.Uint16("count", e.Block.Count), zap.String("kind", e.Err.Kind.String()), zap.Error(e.Err.Err))
				}
				samples, _ = d.Samples(p, reg, samples[:0])
				rows := make([][7]string, 0, len(samples))
				for _, s := range samples {
					ent := reg.Info(s.Entity).Entity
					v := ""
					if !math.IsNaN(s.Value) {
						v = strconv.FormatFloat(s.Value, 'f', -1, 64)
					}
					rows = append(rows, [7]string{"", ent.UPS, ent.String, ent.Module, ent.Cell, s.Metric.String(), v})
				}
				write(p.Time, rows)
				if n++; o.polls > 0 && n >= o.polls {
					cancel()
				}
			})
		}()
	}
	wg.Wait()
	for _, d := range devs {
		h := d.Health()
		log.Info("device health", zap.String("device", d.Name()), zap.Bool("up", h.Up), zap.Uint64("polls", h.Polls), zap.Uint64("skipped", h.Skipped),
			zap.Any("errors", h.Errors), zap.Time("last_success", h.LastSuccess))
	}
	return nil
}
