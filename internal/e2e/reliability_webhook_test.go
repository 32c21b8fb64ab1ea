package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
)

// faultyReceiver is a webhook receiver on a loopback address it holds
// for the whole test that can be down (every connection is reset at once,
// no request read), answer 500 to its first requests, or hang (never
// answer) on its first requests. It records every request.
type faultyReceiver struct {
	addr string
	srv  *http.Server

	mu       sync.Mutex
	serving  bool // up: serving requests; down: resetting connections
	fail500  int  // answer 500 to this many more requests
	hang     int  // never answer this many more requests
	requests []receivedRequest
}

// receivedRequest is one request the receiver read.
type receivedRequest struct {
	status int // what it answered; 0: it never answered
	key    string
	msg    notify.WebhookMessage
}

// newFaultyReceiver listens on a loopback address until the test ends,
// down until up() (holding the port, so that no other process takes it
// in between).
func newFaultyReceiver(t *testing.T) *faultyReceiver {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &faultyReceiver{addr: l.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(resettingListener{l, r})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
		r.srv.Close()
	})
	return r
}

// up starts serving requests.
func (r *faultyReceiver) up(*testing.T) {
	r.mu.Lock()
	r.serving = true
	r.mu.Unlock()
}

func (r *faultyReceiver) isUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serving
}

// resettingListener hands the receiver's server its connections while
// the receiver is up, and resets them (RST, nothing read) while it is
// down: to a client, a receiver that is not there.
type resettingListener struct {
	net.Listener
	r *faultyReceiver
}

func (l resettingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.r.isUp() {
			return c, err
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

func (r *faultyReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rec := receivedRequest{status: http.StatusOK, key: req.Header.Get(notify.HeaderIdempotencyKey)}
	if err := json.Unmarshal(body, &rec.msg); err != nil {
		rec.status = http.StatusBadRequest
	}
	r.mu.Lock()
	hang := r.hang > 0
	switch {
	case hang:
		r.hang--
		rec.status = 0
	case r.fail500 > 0:
		r.fail500--
		rec.status = http.StatusInternalServerError
	}
	r.requests = append(r.requests, rec)
	r.mu.Unlock()
	if hang {
		<-req.Context().Done() // never answers; the client gives up
		return
	}
	w.WriteHeader(rec.status)
}

// all returns every request received.
func (r *faultyReceiver) all() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedRequest(nil), r.requests...)
}

// delivered counts, per (fingerprint, status, startsAt), the alerts of
// requests answered 200.
func (r *faultyReceiver) delivered() map[string]int {
	out := map[string]int{}
	for _, q := range r.all() {
		if q.status != http.StatusOK {
			continue
		}
		for _, a := range q.msg.Alerts {
			out[a.Fingerprint+" "+a.Status+" "+a.StartsAt.Format(time.RFC3339Nano)]++
		}
	}
	return out
}

// statuses counts the delivered alert states by status (firing, resolved).
func (r *faultyReceiver) statuses() map[string]int {
	out := map[string]int{}
	for _, q := range r.all() {
		if q.status == http.StatusOK {
			for _, a := range q.msg.Alerts {
				out[a.Status]++
			}
		}
	}
	return out
}

// hookConfig is an alerting section sending the critical
// CellOverTemperature to url, with a 1 s request timeout and short
// backoffs, its outbox at outbox.db beside the configuration.
func hookConfig(url string) string { return hookConfigOutbox(url, "outbox.db") }

// hookConfigOutbox is hookConfig with the outbox at path.
func hookConfigOutbox(url, path string) string {
	return fmt.Sprintf(`alerting:
  outbox: {path: %q}
  receivers:
    - name: oncall
      match: {alertname: [CellOverTemperature], severity: [critical]}
      timeout: 1s
      retry: {min_backoff: 200ms, max_backoff: 1s}
      webhook: {url: %q, group_interval: 1s}
`, path, url)
}

// hotDaemon runs serve polling one fault BMS whose cell 1 is at 65 °C
// (CellOverTemperature, critical) from the first poll, alerting
// receiver r.
func hotDaemon(t *testing.T, r *faultyReceiver) (*daemonProc, *faultBMS) {
	t.Helper()
	bms := startFaultBMS(t)
	bms.set(2000, 650)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, hookConfig("http://"+r.addr+"/hook"), bms.addr())
	return startDaemon(t, daemonOptions{config: cfg, stateDir: filepath.Join(dir, "state")}), bms
}

// alertFiring reports whether /metrics shows ups-a's CellOverTemperature.
func alertFiring(d *daemonProc) bool {
	v, _ := d.metric("cellwarden_alerts", "alertname=CellOverTemperature", "severity=critical", "ups=ups-a", "cell=1")
	return v == 1
}

// checkOnce checks that the firing and the resolved state of the alert
// were each delivered exactly once, that every request for them carried
// one of at most two Idempotency-Keys (one per notification), and that
// cellwarden_notifications_sent_total agrees.
func checkOnce(t *testing.T, d *daemonProc, r *faultyReceiver) {
	t.Helper()
	for st, n := range r.delivered() {
		if n != 1 {
			t.Errorf("alert state %s delivered %d times, want once", st, n)
		}
	}
	if s := r.statuses(); s["firing"] != 1 || s["resolved"] != 1 {
		t.Errorf("delivered states %v, want one firing and one resolved", s)
	}
	keys := map[string]bool{}
	ok := 0
	for _, q := range r.all() {
		keys[q.key] = true
		if q.status == http.StatusOK {
			ok++
		}
	}
	if len(keys) > 2 {
		t.Errorf("%d distinct Idempotency-Keys for two notifications: %v", len(keys), keys)
	}
	if sent := d.metricOr0("cellwarden_notifications_sent_total", "receiver=oncall"); sent != float64(ok) {
		t.Errorf("cellwarden_notifications_sent_total = %v, the receiver accepted %d", sent, ok)
	}
}

// cool brings cell 1 back to 25 °C, as a cell cools (bms.ramp), and waits
// until the alert resolved on /metrics.
func cool(t *testing.T, d *daemonProc, bms *faultBMS) {
	t.Helper()
	bms.ramp(t, "ups-a", 2000, 1, 650, 250, d)
	if !eventually(time.Minute, func() bool { return !alertFiring(d) }) {
		t.Fatal("the alert did not resolve after the cell cooled")
	}
}

// What must hold: a webhook receiver that is down (every connection
// reset before a request is read: no answer, as when nothing listens)
// for 20 s, standing for the 10 minutes (nothing in the retry
// path depends on the length: the backoff is capped at max_backoff and
// retried for as long as it takes), loses nothing: the alert fires and
// resolves while it is down, both notifications stay queued
// (cellwarden_notification_queue_length), every failed attempt is
// counted as reason="network", and once the receiver is back the firing
// and the resolved state each arrive exactly once, in order.
func TestReliabilityWebhookDownThenBack(t *testing.T) {
	t.Parallel()
	r := newFaultyReceiver(t)
	start := time.Now()
	d, bms := hotDaemon(t, r)
	if !eventually(time.Minute, func() bool {
		return alertFiring(d) && d.metricOr0("cellwarden_notification_requests_failed_total", "receiver=oncall", "reason=network") > 0
	}) {
		t.Fatal("the alert did not fire with failed deliveries counted")
	}
	cool(t, d, bms)
	if !eventually(time.Minute, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 2
	}) {
		t.Errorf("queue length %v, want the firing and the resolved notification queued",
			d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall"))
	}
	time.Sleep(time.Until(start.Add(20 * time.Second))) // the outage lasts 20 s
	failed := d.metricOr0("cellwarden_notification_requests_failed_total", "receiver=oncall", "reason=network")
	r.up(t)
	if !eventually(time.Minute, func() bool { s := r.statuses(); return s["firing"] > 0 && s["resolved"] > 0 }) {
		t.Fatalf("not delivered after the receiver came back: %v", r.all())
	}
	if !eventually(30*time.Second, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 0
	}) {
		t.Error("the queue did not drain")
	}
	time.Sleep(2 * time.Second) // two group intervals: a duplicate would come now
	checkOnce(t, d, r)
	if failed < 3 {
		t.Errorf("%v network failures counted during a 20 s outage", failed)
	}
	got := r.all()
	if len(got) != 2 || got[0].msg.Status != "firing" || got[1].msg.Status != "resolved" {
		t.Errorf("the receiver got %d requests (%+v), want firing then resolved", len(got), got)
	}
}

// What must hold: a receiver answering 500, or hanging (never answering,
// cut by the receiver's 1 s timeout), is retried under the same
// Idempotency-Key until it answers 200, each failure counted by its
// reason (server_error, network); the sender is not stuck behind it: the
// firing and the resolved state each arrive once.
func TestReliabilityWebhookRetriedUntilAnswered(t *testing.T) {
	for _, tc := range []struct {
		name          string
		fail500, hang int
		reason        string
	}{
		{name: "500s", fail500: 5, reason: "server_error"},
		{name: "hang", hang: 2, reason: "network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newFaultyReceiver(t)
			r.fail500, r.hang = tc.fail500, tc.hang
			r.up(t)
			d, bms := hotDaemon(t, r)
			if !eventually(time.Minute, func() bool { return r.statuses()["firing"] == 1 }) {
				t.Fatalf("the firing notification was not delivered: %+v", r.all())
			}
			cool(t, d, bms)
			if !eventually(30*time.Second, func() bool { return r.statuses()["resolved"] == 1 }) {
				t.Fatal("the resolved notification was not delivered")
			}
			time.Sleep(2 * time.Second) // two group intervals: a duplicate would come now
			checkOnce(t, d, r)
			failures := tc.fail500 + tc.hang
			if n := d.metricOr0("cellwarden_notification_requests_failed_total", "receiver=oncall", "reason="+tc.reason); n != float64(failures) {
				t.Errorf("cellwarden_notification_requests_failed_total{reason=%s} = %v, want %d", tc.reason, n, failures)
			}
			first := r.all()[:failures+1] // the failed attempts, then the 200: one notification
			for _, q := range first {
				if q.key != first[0].key {
					t.Errorf("attempts of one notification carry Idempotency-Keys %q and %q", first[0].key, q.key)
				}
			}
		})
	}
}
