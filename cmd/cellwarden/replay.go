package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/config"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

type replayOptions struct {
	input, inventory, config, alertsOut string
	baseline                            bool
	stdin                               io.Reader
}

// replayResult is what one replay saw, for the summary.
type replayResult struct {
	reader   csvfile.Stats
	engine   detector.Stats
	firing   map[string]int
	resolved map[string]int
	elapsed  time.Duration
}

func runReplay(o replayOptions, stdout, stderr io.Writer, log *zap.Logger) error {
	cfg := config.Default()
	if o.config != "" {
		var err error
		if cfg, err = config.Load(o.config); err != nil {
			return err
		}
	}
	if o.baseline {
		cfg.Detector = detector.StaticBaselineConfig()
	}
	inv, err := cfg.LoadInventory(o.inventory)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	var rd *csvfile.Reader
	if o.input == "-" {
		rd, err = csvfile.NewReader(o.stdin, "-", reg)
	} else {
		rd, err = csvfile.Open(o.input, reg)
	}
	if err != nil {
		return err
	}
	defer rd.Close()

	out := stdout
	var file *os.File // the --alerts-out file, if any
	if o.alertsOut != "" && o.alertsOut != "-" {
		if file, err = os.Create(o.alertsOut); err != nil {
			return err
		}
		defer file.Close()
		out = file
	}
	diag := bufio.NewWriter(stderr)
	defer diag.Flush()
	rd.OnBadRow = func(b csvfile.BadRow) { fmt.Fprintln(diag, b.String()) }

	log.Debug("replay started", zap.String("input", rd.Source()), zap.Bool("inventory", inv != nil))
	w := alerting.NewNDJSONWriter(out)
	eng, err := cfg.Engine(reg, inv, !o.baseline)
	if err != nil {
		return err
	}
	res, readErr := replay(rd, eng, ndjsonSink(w, reg))
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing alerts: %w", err)
	}
	writeSummary(diag, rd.Source(), &res)
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("writing alerts: %w", err)
		}
	}
	return readErr
}

// replay feeds every sample of rd to eng in file order and hands each
// alert change to sink. Stale checks tick with the event time of the last
// complete timestamp: when a row with a later time arrives, every row of
// the previous time has been observed. The returned error is a read error
// of rd or the first error of sink.
func replay(rd *csvfile.Reader, eng *detector.Engine, sink func(*detector.Change) error) (replayResult, error) {
	res := replayResult{firing: map[string]int{}, resolved: map[string]int{}}
	start := time.Now()
	changes := make([]detector.Change, 0, 64)
	var watermark int64
	started := false
	emit := func() error {
		for i := range changes {
			c := &changes[i]
			if c.Status == detector.StatusFiring {
				res.firing[c.Name]++
			} else {
				res.resolved[c.Name]++
			}
			if err := sink(c); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	for {
		s, rerr := rd.Next()
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
		changes = changes[:0]
		if started && s.Time > watermark {
			changes = eng.Tick(watermark, changes)
		}
		watermark, started = s.Time, true
		changes = eng.Observe(s, changes)
		if len(changes) > 0 {
			if err := emit(); err != nil {
				return res, err
			}
		}
	}
	if started {
		changes = eng.Tick(watermark, changes[:0])
		if err := emit(); err != nil {
			return res, err
		}
	}
	res.reader = rd.Stats()
	res.engine = eng.Stats()
	res.elapsed = time.Since(start)
	return res, err
}

// ndjsonSink writes changes as NDJSON alerts.
func ndjsonSink(w *alerting.NDJSONWriter, reg *telemetry.Registry) func(*detector.Change) error {
	return func(c *detector.Change) error {
		a := alerting.FromChange(*c, reg)
		if err := w.Write(&a); err != nil {
			return fmt.Errorf("writing alerts: %w", err)
		}
		return nil
	}
}

// writeSummary prints what the replay read, skipped and raised. The last
// line (throughput) is the only one that varies between runs.
func writeSummary(w io.Writer, source string, r *replayResult) {
	fmt.Fprintf(w, "replay summary for %s\n", source)
	fmt.Fprintf(w, "  rows read: %d\n", r.reader.Rows)
	fmt.Fprintf(w, "  samples: %d (no reading: %d, implausible: %d, out of order: %d)\n",
		r.reader.Samples, r.reader.NoReading, r.engine.Implausible, r.engine.OutOfOrder)
	if n := r.engine.EnvelopeCells; n > 0 {
		fmt.Fprintf(w, "  cells judged by the all-chemistry voltage envelope (no chemistry in the inventory): %d\n", n)
	}
	fmt.Fprintf(w, "  rows skipped: %d\n", r.reader.SkippedTotal())
	for _, reason := range csvfile.Reasons() {
		if n := r.reader.Skipped[reason]; n > 0 {
			fmt.Fprintf(w, "    %s: %d\n", reason, n)
		}
	}
	names := make([]string, 0, len(r.firing)+len(r.resolved))
	total := 0
	for n, c := range r.firing {
		names = append(names, n)
		total += c
	}
	for n := range r.resolved {
		if _, ok := r.firing[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  alerts fired: %d\n", total)
	for _, n := range names {
		fmt.Fprintf(w, "    %s: %d firing, %d resolved\n", n, r.firing[n], r.resolved[n])
	}
	secs := r.elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(r.reader.Rows) / secs
	}
	fmt.Fprintf(w, "  throughput: %.0f rows/s (%.3f s)\n", rate, secs)
}
