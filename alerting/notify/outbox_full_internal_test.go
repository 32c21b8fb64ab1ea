package notify

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/outbox"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// countingTransport answers 200 to every request and keeps the bodies.
type countingTransport struct {
	mu     sync.Mutex
	bodies []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, string(b))
	c.mu.Unlock()
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func (c *countingTransport) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

// An outbox that cannot be written (a full disk; here a closed database,
// which fails every write the same way) makes Notify return the error and
// count it, but the change is kept: once the outbox can be written again
// the scheduler writes it and the notification is delivered, once. The
// end-to-end version on a full tmpfs is TestReliabilityOutboxDiskFull.
func TestOutboxWriteFailureKeepsTheChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		var cfg Config
		d, errs := yamlstrict.Decode([]byte(`outbox: {path: outbox.db}
receivers:
  - name: oncall
    webhook: {url: "http://hook.example/x", group_interval: 1s}
`), &cfg)
		p := d.Problems()
		p.Append(errs...)
		cfg.Validate(p, "alerting", dir, func(string) (string, bool) { return "", false })
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		rt := &countingTransport{}
		m := NewMetrics(nil)
		n, err := New(&cfg, Options{Client: &http.Client{Transport: rt}, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		n.ob.Close() // every write fails from here on
		at := time.Now()
		a := alerting.Alert{Time: at, Status: "firing", Value: 65,
			Labels: alerting.Labels{Alertname: "CellOverTemperature", Severity: "critical", UPS: "u", String: "1", Module: "1", Cell: "1"}}
		if err := n.Notify(a); err == nil {
			t.Fatal("Notify into an outbox that cannot be written returned nil")
		}
		if v := testutil.ToFloat64(m.outboxErrors); v != 1 {
			t.Errorf("cellwarden_outbox_write_errors_total = %v, want 1", v)
		}
		// The firing alert reported again changes nothing and writes
		// nothing: the kept group already has it.
		if err := n.Notify(a); err != nil {
			t.Errorf("the same change again: %v", err)
		}
		// Space is back.
		ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n.ob = ob
		n.Start(t.Context())
		time.Sleep(5 * time.Second) // several group intervals
		synctest.Wait()
		got := rt.all()
		if len(got) != 1 || !strings.Contains(got[0], `"status":"firing"`) || !strings.Contains(got[0], "CellOverTemperature") {
			t.Errorf("delivered %d notifications %v, want the firing one once", len(got), got)
		}
		if err := n.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
