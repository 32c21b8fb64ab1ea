package metrics

import (
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/collectors/version"
)

// Self counts what the daemon takes in, how its configuration reloads
// went and how its detector snapshots are written.
type Self struct {
	samples      *prometheus.CounterVec
	badInput     *prometheus.CounterVec
	reloadOK     prometheus.Gauge
	reloadTime   prometheus.Gauge
	snapFailures prometheus.Counter
	snapTime     prometheus.Gauge
	snapDuration prometheus.Gauge
}

// NewSelf creates the self-metrics and registers them with reg. The
// counters of the given sources, and of the bad-input reasons of each
// source, start at 0 so that a rate over them exists before the first
// increment.
func NewSelf(reg prometheus.Registerer, reasons map[string][]string) *Self {
	s := &Self{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_samples_total",
			Help: "Samples received, by source."}, []string{"source"}),
		badInput: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_bad_input_total",
			Help: "Input rejected (rows, payloads, registers), by source and reason."}, []string{"source", "reason"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellwarden_config_last_reload_successful",
			Help: "1 when the last configuration (re)load succeeded."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellwarden_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully."}),
		snapFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellwarden_snapshot_failures_total",
			Help: "Detector snapshots that could not be written (the previous one stays in place)."}),
		snapTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellwarden_snapshot_last_success_timestamp_seconds",
			Help: "When the detector snapshot was last written."}),
		snapDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellwarden_snapshot_last_duration_seconds",
			Help: "How long the last detector snapshot took to write (fsync included)."}),
	}
	for src, rs := range reasons {
		s.samples.WithLabelValues(src)
		for _, r := range rs {
			s.badInput.WithLabelValues(src, r)
		}
	}
	reg.MustRegister(s.samples, s.badInput, s.reloadOK, s.reloadTime, s.snapFailures, s.snapTime, s.snapDuration)
	return s
}

// Samples counts n samples from source.
func (s *Self) Samples(source string, n int) { s.samples.WithLabelValues(source).Add(float64(n)) }

// BadInput counts n rejected inputs from source for reason.
func (s *Self) BadInput(source, reason string, n int) {
	s.badInput.WithLabelValues(source, reason).Add(float64(n))
}

// ConfigLoaded records the outcome of a configuration (re)load at.
func (s *Self) ConfigLoaded(ok bool, at time.Time) {
	s.reloadOK.Set(b2f(ok))
	if ok {
		s.reloadTime.Set(seconds(at))
	}
}

// Snapshot records a detector snapshot written at (ok) or not, and how
// long it took.
func (s *Self) Snapshot(ok bool, at time.Time, took time.Duration) {
	s.snapDuration.Set(took.Seconds())
	if !ok {
		s.snapFailures.Inc()
		return
	}
	s.snapTime.Set(seconds(at))
}

// NewRegistry returns the daemon's own registry with the build
// information (cellwarden_build_info), the Go runtime and process metrics,
// extra (e.g. notify.Metrics) and, unless store is nil, the Collector of
// store. The daemon passes nil and serves the registry with
// NewHandler(reg, store, …), which writes the Store's series itself.
func NewRegistry(store *Store, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(version.NewCollector("cellwarden"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if store != nil {
		reg.MustRegister(NewCollector(store))
	}
	reg.MustRegister(extra...)
	return reg
}

// ModbusHealth adapts Modbus devices to Store.AddHealth.
func ModbusHealth(devs []*modbus.Device) func() []CollectorHealth {
	return func() []CollectorHealth {
		out := make([]CollectorHealth, 0, len(devs))
		for _, d := range devs {
			h := d.Health()
			out = append(out, CollectorHealth{Name: d.Name(), Source: "modbus", Up: h.Up, LastSuccess: h.LastSuccess,
				LastDuration: h.LastPoll, Polls: h.Polls, Skipped: h.Skipped, Errors: h.Errors})
		}
		return out
	}
}
