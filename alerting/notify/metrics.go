package notify

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the notifiers' metrics. They outlive a Notifier, so that a
// configuration reload (a new Notifier) keeps the counters going.
type Metrics struct {
	created        *prometheus.CounterVec
	sent           *prometheus.CounterVec
	failed         *prometheus.CounterVec
	requests       *prometheus.CounterVec
	requestsFailed *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	outboxErrors   prometheus.Counter

	queueDesc, groupsDesc, entriesDesc, capacityDesc, sizeDesc *prometheus.Desc

	mu  sync.Mutex
	cur *Notifier
}

// NewMetrics creates the metrics and registers them with reg (when not
// nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_notifications_total",
			Help: "Notifications queued for delivery, by receiver."}, []string{"receiver"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_notifications_sent_total",
			Help: "Notifications delivered (answered 2xx), by receiver."}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_notifications_failed_total",
			Help: "Notifications given up: refused by the receiver (client_error, other) or dropped from the full outbox (outbox_full)."},
			[]string{"receiver", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_notification_requests_total",
			Help: "HTTP requests made to deliver notifications, by receiver."}, []string{"receiver"}),
		requestsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cellwarden_notification_requests_failed_total",
			Help: "Failed notification requests, by receiver and reason (client_error, rate_limited, server_error, network, other)."},
			[]string{"receiver", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cellwarden_notification_latency_seconds",
			Help:    "Time from queueing a notification to its delivery, by receiver.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}},
			[]string{"receiver"}),
		outboxErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cellwarden_outbox_write_errors_total",
			Help: "Outbox writes that failed (a full disk, an I/O error): queueing a notification or recording a change (kept in memory and retried every second), or removing a delivered notification (sent again)."}),
		queueDesc: prometheus.NewDesc("cellwarden_notification_queue_length",
			"Notifications in the outbox waiting for delivery, by receiver.", []string{"receiver"}, nil),
		groupsDesc: prometheus.NewDesc("cellwarden_alert_groups",
			"Alert groups with firing or not yet notified alerts, by receiver.", []string{"receiver"}, nil),
		entriesDesc:  prometheus.NewDesc("cellwarden_outbox_entries", "Notifications in the outbox.", nil, nil),
		capacityDesc: prometheus.NewDesc("cellwarden_outbox_capacity_entries", "Most notifications the outbox holds before it drops the oldest.", nil, nil),
		sizeDesc:     prometheus.NewDesc("cellwarden_outbox_size_bytes", "Size of the outbox database.", nil, nil),
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// attach makes n the notifier whose queues are exported and
// pre-initialises its receivers' counters at 0.
func (m *Metrics) attach(n *Notifier) {
	for _, r := range n.receivers {
		m.created.WithLabelValues(r.name)
		m.sent.WithLabelValues(r.name)
		m.requests.WithLabelValues(r.name)
		m.latency.WithLabelValues(r.name)
		for _, reason := range []string{reasonClientError, reasonOther, reasonOutboxFull} {
			m.failed.WithLabelValues(r.name, reason)
		}
		for _, reason := range requestReasons {
			m.requestsFailed.WithLabelValues(r.name, reason)
		}
	}
	m.mu.Lock()
	m.cur = n
	m.mu.Unlock()
}

// detach stops exporting n's queues.
func (m *Metrics) detach(n *Notifier) {
	m.mu.Lock()
	if m.cur == n {
		m.cur = nil
	}
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range []prometheus.Collector{m.created, m.sent, m.failed, m.requests, m.requestsFailed, m.latency, m.outboxErrors} {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.queueDesc, m.groupsDesc, m.entriesDesc, m.capacityDesc, m.sizeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range []prometheus.Collector{m.created, m.sent, m.failed, m.requests, m.requestsFailed, m.latency, m.outboxErrors} {
		c.Collect(ch)
	}
	m.mu.Lock()
	n := m.cur
	m.mu.Unlock()
	if n == nil || n.ob == nil {
		return
	}
	n.mu.Lock()
	groups := map[string]int{}
	for _, g := range n.groups {
		if len(g.Alerts) > 0 { // not a group that only remembers resolutions
			groups[g.Receiver]++
		}
	}
	n.mu.Unlock()
	for _, r := range n.receivers {
		ch <- prometheus.MustNewConstMetric(m.queueDesc, prometheus.GaugeValue, float64(n.ob.Len(r.name)), r.name)
		ch <- prometheus.MustNewConstMetric(m.groupsDesc, prometheus.GaugeValue, float64(groups[r.name]), r.name)
	}
	ch <- prometheus.MustNewConstMetric(m.entriesDesc, prometheus.GaugeValue, float64(n.ob.Total()))
	ch <- prometheus.MustNewConstMetric(m.capacityDesc, prometheus.GaugeValue, float64(n.ob.Capacity()))
	ch <- prometheus.MustNewConstMetric(m.sizeDesc, prometheus.GaugeValue, float64(n.ob.Size()))
}
