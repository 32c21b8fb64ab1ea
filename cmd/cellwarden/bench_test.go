package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/cputime"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

var (
	bigCSVOnce sync.Once
	bigCSVPath string
	bigCSVErr  error
)

// benchDir holds files the benchmarks generate; TestMain removes it.
var benchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// bigCSV writes (once per test process) a simulated telemetry file of
// just over 5,000,000 rows: one UPS, 4 strings x 16 modules x 16 cells,
// 10 s polls, with a cell running away.
func bigCSV(b *testing.B) string {
	bigCSVOnce.Do(func() {
		sc := &sim.Scenario{
			Name: "bench", Seed: 5, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			Duration: 2343 * 10 * time.Second, Interval: 10 * time.Second,
			Fleet: []sim.UPSSpec{{Name: "ups-a", Chemistry: inventory.NMC, Strings: 4, Modules: 16, Cells: 16, TempQuantum: 0.1, SOH: 0.95}},
			Faults: []sim.FaultSpec{{Class: sim.ClassThermalRunaway, UPS: "ups-a", String: "2", Module: "7", Cell: "9",
				At: time.Hour, Duration: 2 * time.Hour, Magnitude: 8, SagVolts: 0.03, Rate: 15}},
		}
		if benchDir, bigCSVErr = os.MkdirTemp("", "cellwarden-bench"); bigCSVErr != nil {
			return
		}
		bigCSVPath = filepath.Join(benchDir, "fleet-5m.csv")
		f, err := os.Create(bigCSVPath)
		if err != nil {
			bigCSVErr = err
			return
		}
		w := bufio.NewWriter(f)
		if _, _, bigCSVErr = sim.Run(sc, w); bigCSVErr == nil {
			bigCSVErr = w.Flush()
		}
		if err := f.Close(); bigCSVErr == nil {
			bigCSVErr = err
		}
	})
	if bigCSVErr != nil {
		b.Fatal(bigCSVErr)
	}
	return bigCSVPath
}

// BenchmarkReplay5M replays the 5-million-row file through the reader,
// the detector and the NDJSON writer, as `cellwarden replay` does. Run it
// with -cpu 1 (make bench-replay) for the one-core figure.
func BenchmarkReplay5M(b *testing.B) {
	path := bigCSV(b)
	b.ReportAllocs()
	var rows int64
	var fired int
	cpu0 := cputime.Process()
	for b.Loop() {
		reg := telemetry.NewRegistry()
		rd, err := csvfile.Open(path, reg)
		if err != nil {
			b.Fatal(err)
		}
		w := alerting.NewNDJSONWriter(io.Discard)
		res, err := replay(rd, detector.New(detector.DefaultConfig(), reg, nil), ndjsonSink(w, reg))
		rd.Close()
		if err != nil {
			b.Fatal(err)
		}
		rows += res.reader.Rows
		fired = res.firing[detector.AlertCellOverTemperature]
	}
	if fired == 0 {
		b.Fatal("the overheating cell raised no alert")
	}
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
	b.ReportMetric(float64(rows)/(cputime.Process()-cpu0).Seconds(), "rows/cpu-s")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
