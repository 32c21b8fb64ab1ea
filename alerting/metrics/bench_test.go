package metrics_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// benchFleet interns cells cells in the reference layout of
// docs/benchmarks.md: 16 cells a module, 16 modules a string, 4 strings a
// UPS.
func benchFleet(b *testing.B, cells int) (*telemetry.Registry, []telemetry.EntityID) {
	b.Helper()
	reg := telemetry.NewRegistry()
	ids := make([]telemetry.EntityID, cells)
	for i := range ids {
		m := i / 16
		id, err := reg.Intern(telemetry.Entity{UPS: fmt.Sprintf("u%d", m/64), String: fmt.Sprint(m/16%4 + 1), Module: fmt.Sprint(m%16 + 1), Cell: fmt.Sprint(i%16 + 1)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	return reg, ids
}

// benchStore returns a store of the cells ids, each with a voltage, a
// temperature and a warm detector score, as the daemon holds them: 14
// series a cell.
func benchStore(reg *telemetry.Registry, ids []telemetry.EntityID) *metrics.Store {
	store := metrics.NewStore(reg, metrics.StoreOptions{})
	batch := make([]telemetry.Sample, 0, 32)
	for i, id := range ids {
		batch = append(batch, telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: 3.301 + float64(i%5)/1000},
			telemetry.Sample{Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: 25.1 + float64(i%7)/10})
		if len(batch) == cap(batch) {
			store.Observe(batch...)
			batch = batch[:0]
		}
	}
	store.Observe(batch...)
	rnd := rand.New(rand.NewPCG(1, 2))
	store.SetScores(func(yield func(detector.CellScore)) {
		for _, id := range ids {
			yield(detector.CellScore{Entity: id, Warm: true, TemperatureResidual: rnd.NormFloat64() * 0.3, TemperatureThreshold: 3 + rnd.Float64(),
				VoltageResidual: rnd.NormFloat64() * 0.002, VoltageThreshold: 0.015 + rnd.Float64()/1000, TemperatureOffset: rnd.NormFloat64() * 0.5,
				VoltageOffset: rnd.NormFloat64() * 0.001, RisingSlope: rnd.NormFloat64() * 0.01})
		}
	})
	return store
}

// discard is a ResponseWriter that counts the bytes of the body.
type discard struct {
	h http.Header
	n int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(int)             {}
func (w *discard) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// A full /metrics scrape at 100 k cells: NewHandler, and the Collector
// through promhttp as the daemon served it before (gzip, as Prometheus
// and Go clients ask for it). Reports the series, the bytes on the wire
// and the bytes of text of one scrape.
func BenchmarkScrape100kCells(b *testing.B) {
	store := benchStore(benchFleet(b, 100_000))
	handler := metrics.NewHandler(metrics.NewRegistry(nil), store, zap.NewNop())
	collector := promhttp.HandlerFor(metrics.NewRegistry(store), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	for _, bc := range []struct {
		name string
		h    http.Handler
		gzip bool
	}{{"handler", handler, false}, {"handler-gzip", handler, true}, {"collector-promhttp-gzip", collector, true}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if bc.gzip {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			b.ReportAllocs()
			w := &discard{h: http.Header{}}
			cpu0 := cpuTime()
			for b.Loop() {
				w.n = 0
				bc.h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/scrape")
			b.ReportMetric(float64(w.n), "wire-bytes/scrape")
			rec := httptest.NewRecorder()
			bc.h.ServeHTTP(rec, req)
			var body io.Reader = rec.Body
			if bc.gzip {
				var err error
				if body, err = gzip.NewReader(rec.Body); err != nil {
					b.Fatal(err)
				}
			}
			series, text := 0, 0
			sc := bufio.NewScanner(body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				text += len(sc.Bytes()) + 1
				if !bytes.HasPrefix(sc.Bytes(), []byte("#")) {
					series++
				}
			}
			b.ReportMetric(float64(series), "series/scrape")
			b.ReportMetric(float64(text), "text-bytes/scrape")
		})
	}
}

// cpuTime returns the CPU time of the process (user and system): on a
// shared machine a steadier figure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The Store's memory per cell at 100 k cells, after a scrape (which
// builds its exposition order), measured from the live heap.
func BenchmarkStoreMemory100kCells(b *testing.B) {
	const cells = 100_000
	var before, after runtime.MemStats
	reg, ids := benchFleet(b, cells)
	var store *metrics.Store
	h := metrics.NewHandler(metrics.NewRegistry(nil), nil, zap.NewNop())
	for b.Loop() {
		store, h = nil, nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		store = benchStore(reg, ids)
		h = metrics.NewHandler(metrics.NewRegistry(nil), store, zap.NewNop())
		h.ServeHTTP(&discard{h: http.Header{}}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/cells, "B/cell")
	runtime.KeepAlive(h)
}
