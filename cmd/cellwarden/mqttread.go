package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/collector/mqtt"
	"github.com/cellwarden/cellwarden/internal/config"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type mqttReadOptions struct {
	config         string
	collectors     []string
	healthInterval time.Duration
}

// csvSink writes samples as telemetry CSV (§1), keeping the rows in time
// order: a sample older than the last row written (two gateways' clocks
// disagreeing) takes the last row's time and is counted.
type csvSink struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	reg    *telemetry.Registry
	line   []byte
	last   int64
	raised uint64
}

func newCSVSink(w io.Writer, reg *telemetry.Registry) *csvSink {
	s := &csvSink{bw: bufio.NewWriter(w), reg: reg}
	s.bw.WriteString(csvfile.Header + "\n")
	s.bw.Flush()
	return s
}

// write writes samples and flushes; safe for concurrent use.
func (s *csvSink) write(samples []telemetry.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		t := x.Time
		if t < s.last {
			t = s.last
			s.raised++
		}
		s.last = t
		e := s.reg.Info(x.Entity).Entity
		s.line = time.Unix(0, t).UTC().AppendFormat(s.line[:0], time.RFC3339Nano)
		for _, f := range [...]string{e.UPS, e.String, e.Module, e.Cell, x.Metric.String()} {
			s.line = append(s.line, ',')
			s.line = append(s.line, f...)
		}
		s.line = append(s.line, ',')
		if !math.IsNaN(x.Value) {
			s.line = strconv.AppendFloat(s.line, x.Value, 'f', -1, 64)
		}
		s.line = append(s.line, '\n')
		s.bw.Write(s.line)
	}
	s.bw.Flush()
}

// runMQTTRead subscribes with the MQTT collectors of a configuration file
// and writes what arrives as telemetry CSV (§1): the MQTT collector's path,
// usable without the daemon (cellwarden mqtt read ... | cellwarden replay
// --input -). Each collector's health is logged every healthInterval and
// when it stops (SIGINT, SIGTERM).
func runMQTTRead(o mqttReadOptions, stdout io.Writer, log *zap.Logger) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	var picked []mqtt.CollectorConfig
	for _, c := range cfg.Collectors.MQTT {
		if len(o.collectors) == 0 || slices.Contains(o.collectors, c.Name) {
			picked = append(picked, c)
		}
	}
	if len(picked) == 0 {
		return fmt.Errorf("%s has no collectors.mqtt entry to run (names: %v)", o.config, o.collectors)
	}
	reg := telemetry.NewRegistry()
	var cs []*mqtt.Collector
	for _, c := range picked {
		col, err := mqtt.New(c, reg, log)
		if err != nil {
			return fmt.Errorf("collector %s: %w", c.Name, err)
		}
		cs = append(cs, col)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sink := newCSVSink(stdout, reg)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if err := c.Run(ctx, sink.write); err != nil {
				log.Error("collector stopped", zap.String("collector", c.Name()), zap.Error(err))
			}
		})
	}
	if o.healthInterval > 0 {
		wg.Go(func() {
			t := time.NewTicker(o.healthInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					for _, c := range cs {
						logHealth(log, c.Health())
					}
				}
			}
		})
	}
	wg.Wait()
	for _, c := range cs {
		logHealth(log, c.Health())
	}
	if sink.raised > 0 {
		log.Warn("samples older than a row already written were given its time, to keep the CSV in time order",
			zap.Uint64("samples", sink.raised))
	}
	return nil
}

// logHealth logs a collector's health snapshot: its counters, the
// nonzero decode errors and drops, the broker's statistics, and the
// sources with the oldest last message.
func logHealth(log *zap.Logger, h mqtt.Health) {
	nonzero := func(m map[string]uint64) map[string]uint64 {
		out := map[string]uint64{}
		for k, v := range m {
			if v > 0 {
				out[k] = v
			}
		}
		return out
	}
	var oldest string
	var oldestT time.Time
	for src, t := range h.LastMessage {
		if oldest == "" || t.Before(oldestT) || (t.Equal(oldestT) && src < oldest) {
			oldest, oldestT = src, t
		}
	}
	fields := []zap.Field{zap.String("collector", h.Name), zap.Bool("connected", h.Connected), zap.Bool("subscribed", h.Subscribed),
		zap.Uint64("connects", h.Connects), zap.Uint64("connection_losses", h.ConnectionLosses),
		zap.Uint64("messages", h.Messages), zap.Uint64("bytes", h.Bytes), zap.Uint64("samples", h.Samples),
		zap.Uint64("no_reading", h.NoReading), zap.Any("decode_errors", nonzero(h.DecodeErrors)),
		zap.Any("dropped", nonzero(h.Dropped)), zap.Int("queued", h.Queued), zap.Any("broker", h.Broker),
		zap.Int("sources", len(h.LastMessage))}
	if oldest != "" {
		fields = append(fields, zap.String("stalest_source", oldest), zap.Time("stalest_source_last_message", oldestT))
	}
	if h.LastError != "" {
		fields = append(fields, zap.String("last_error", h.LastError))
	}
	log.Info("mqtt collector health", fields...)
}
