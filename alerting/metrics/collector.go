package metrics

import (
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Collector is the prometheus.Collector of a Store: the same series as
// NewHandler writes, as client_golang metrics, for registries, tests and
// tools. It builds a metric for every series, which at 100 k cells takes
// tens of seconds and gigabytes: serve /metrics with NewHandler.
type Collector struct {
	s     *Store
	descs []*prometheus.Desc // by family id
}

// NewCollector returns the collector of s. Register it once.
func NewCollector(s *Store) *Collector {
	c := &Collector{s: s, descs: make([]*prometheus.Desc, len(cat.all))}
	for _, f := range cat.all {
		c.descs[f.id] = prometheus.NewDesc(f.name, f.help, f.labels, nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.s.expose(collectSink{c, ch}, nil) //nolint:errcheck // collectSink never fails
}

// Gather implements prometheus.Gatherer with the Store's families alone,
// through its Collector (see Collector for the cost).
func (s *Store) Gather() ([]*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewCollector(s)); err != nil {
		return nil, err
	}
	return reg.Gather()
}

// collectSink is the sink of a Collector.
type collectSink struct {
	c  *Collector
	ch chan<- prometheus.Metric
}

func (k collectSink) entity(f *family, id telemetry.EntityID, _, _ []byte, _ int, sensor string, v float64) {
	lv := identity(k.c.s.reg.Info(id).Entity)
	if sensor != "" {
		lv = append(lv, sensor)
	}
	k.series(f, v, lv)
}

func (k collectSink) series(f *family, v float64, values []string) {
	k.ch <- prometheus.MustNewConstMetric(k.c.descs[f.id], f.typ, v, values...)
}

func (collectSink) unlocked() error { return nil }

// identity returns the label values of e down to its level.
func identity(e telemetry.Entity) []string {
	l := []string{e.UPS, e.String, e.Module, e.Cell}
	return l[:e.Level()]
}
