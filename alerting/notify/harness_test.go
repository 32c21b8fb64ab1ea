package notify_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// hit is one request a sink received.
type hit struct {
	at     time.Time
	url    string
	header http.Header
	body   []byte
	code   int // 0: the connection "failed"
}

// sink is a fake receiver: an http.RoundTripper answering from a script,
// so that tests run in a synctest bubble without a network.
type sink struct {
	mu     sync.Mutex
	hits   []hit
	answer func(url string, n int) int // status for the n-th request (0-based); 0 = network error, hang = no answer
}

// hang is the answer of a receiver that never answers: the request ends
// when its context does.
const hang = -1

func (s *sink) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	s.mu.Lock()
	code := http.StatusOK
	if s.answer != nil {
		code = s.answer(req.URL.String(), len(s.hits))
	}
	s.hits = append(s.hits, hit{at: time.Now(), url: req.URL.String(), header: req.Header.Clone(), body: body, code: code})
	s.mu.Unlock()
	switch code {
	case hang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	case 0:
		return nil, errors.New("connect: connection refused")
	}
	h := http.Header{}
	if code == http.StatusTooManyRequests {
		h.Set("Retry-After", "7")
	}
	return &http.Response{StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)), Header: h,
		Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// all returns every request so far.
func (s *sink) all() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// delivered returns the webhook payloads answered 2xx.
func (s *sink) delivered(t *testing.T) []notify.WebhookMessage {
	t.Helper()
	var out []notify.WebhookMessage
	for _, h := range s.all() {
		if h.code/100 != 2 {
			continue
		}
		var m notify.WebhookMessage
		if err := json.Unmarshal(h.body, &m); err != nil {
			t.Fatalf("payload is not JSON: %v\n%s", err, h.body)
		}
		out = append(out, m)
	}
	return out
}

// summary renders payloads as "receiver status: alertname/status@start..."
// per notification, for comparing with what a user expects.
func summary(ms []notify.WebhookMessage) []string {
	var out []string
	for _, m := range ms {
		var as []string
		for _, a := range m.Alerts {
			where := strings.Trim(strings.Join([]string{a.Labels["ups"], a.Labels["string"], a.Labels["module"], a.Labels["cell"]}, "/"), "/")
			as = append(as, fmt.Sprintf("%s:%s:%s", a.Labels["alertname"], where, a.Status))
		}
		out = append(out, m.Receiver+" "+m.Status+" ["+strings.Join(as, " ")+"]")
	}
	return out
}

// rig is a Notifier under test.
type rig struct {
	n    *notify.Notifier
	m    *notify.Metrics
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	cfg  *notify.Config
}

// config parses an alerting section, validated with dir as the directory
// of the configuration file.
func config(t testing.TB, doc, dir string, env map[string]string) *notify.Config {
	t.Helper()
	var c notify.Config
	d, errs := yamlstrict.Decode([]byte(doc), &c)
	p := d.Problems()
	p.Append(errs...)
	c.Validate(p, "alerting", dir, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err := p.Err(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return &c
}

// start builds and starts a Notifier from an alerting section whose
// outbox is outbox.db in dir, sending through rt.
func start(t *testing.T, doc, dir string, rt http.RoundTripper) *rig {
	t.Helper()
	return startEnv(t, doc, dir, rt, nil)
}

// startEnv is start with the environment variables env. With rt nil the
// receivers send through transports of their own, over the network.
func startEnv(t *testing.T, doc, dir string, rt http.RoundTripper, env map[string]string) *rig {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewPedanticRegistry()
	r := &rig{m: notify.NewMetrics(reg), reg: reg, logs: logs, cfg: config(t, doc, dir, env)}
	opts := notify.Options{Logger: zap.New(core), Metrics: r.m}
	if rt != nil {
		opts.Client = &http.Client{Transport: rt}
	}
	n, err := notify.New(r.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(t.Context())
	r.n = n
	return r
}

func (r *rig) stop(t *testing.T) {
	t.Helper()
	if err := r.n.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// stopWithin stops the Notifier, giving up on deliveries after d.
func (r *rig) stopWithin(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, d)
	defer cancel()
	if err := r.n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) notify(t *testing.T, as ...alerting.Alert) {
	t.Helper()
	if err := r.n.Notify(as...); err != nil {
		t.Fatal(err)
	}
}

// counter returns the value of a counter or gauge with the given labels.
func (r *rig) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}) {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// mk builds an alert about the entity given as a path "ups/string/module/cell".
func mk(status, name, severity, path string, at time.Time) alerting.Alert {
	p := strings.Split(path, "/")
	p = append(p, "", "", "", "")
	return alerting.Alert{Time: at, Status: status, Value: 61.5,
		Labels:      alerting.Labels{Alertname: name, Severity: severity, UPS: p[0], String: p[1], Module: p[2], Cell: p[3]},
		Annotations: alerting.Annotations{Summary: name + " on " + path}}
}

func tempDir(t *testing.T) string {
	t.Helper()
	return filepath.Clean(t.TempDir())
}
