//go:build integration

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// refusing makes the receiver answer 500 to every request from now on
// (on) or answer normally again (off).
func (r *faultyReceiver) refusing(on bool) { r.failAll(&r.fail500, on) }

// hanging makes the receiver never answer from now on (on), or answer
// again (off).
func (r *faultyReceiver) hanging(on bool) { r.failAll(&r.hang, on) }

// failAll sets a failure counter of the receiver to (practically) every
// request, or to none.
func (r *faultyReceiver) failAll(counter *int, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*counter = map[bool]int{true: 1 << 30, false: 0}[on]
}

// keys returns the Idempotency-Keys of the requests answered status.
func (r *faultyReceiver) keys(status int) map[string]bool {
	out := map[string]bool{}
	for _, q := range r.all() {
		if q.status == status {
			out[q.key] = true
		}
	}
	return out
}

// hotServe runs serve polling one fault BMS whose cell 1 is at 65 °C,
// alerting r, and returns it with the BMS, the configuration and the
// state directory (for a restart).
func hotServe(t *testing.T, r *faultyReceiver, tail string, args ...string) (d *daemonProc, bms *faultBMS, config, state string) {
	t.Helper()
	bms = startFaultBMS(t)
	bms.set(2000, 650)
	dir := t.TempDir()
	config = writeConfig(t, dir, tail, bms.addr())
	state = filepath.Join(dir, "state")
	return startDaemon(t, daemonOptions{config: config, stateDir: state, args: args}), bms, config, state
}

// snapshotAfter waits until the detector's snapshot was written after
// since.
func snapshotAfter(t *testing.T, state string, since time.Time) {
	t.Helper()
	if !eventually(time.Minute, func() bool {
		st, err := os.Stat(filepath.Join(state, "detector.snapshot"))
		return err == nil && st.ModTime().After(since)
	}) {
		t.Fatal("no detector snapshot written")
	}
}

// What must hold: with the webhook receiver down (answering 500), the
// alert fires and resolves, both notifications are queued, and serve is
// killed with SIGKILL. Restarted with the receiver back, it delivers the
// firing and then the resolved notification, each (fingerprint, status,
// startsAt) exactly once: the two entries queued before the kill (the
// firing one under the Idempotency-Key its refused attempts carried),
// none made anew (cellwarden_notifications_total of the new process is
// 0); the restarted detector knows the alert resolved and does not page
// it again.
func TestServeRestartAfterSIGKILLDeliversFiringAndResolvedOnce(t *testing.T) {
	r := newFaultyReceiver(t)
	r.refusing(true)
	r.up(t)
	d, bms, config, state := hotServe(t, r, hookConfig("http://"+r.addr+"/hook"))
	if !eventually(time.Minute, func() bool {
		return alertFiring(d) && d.metricOr0("cellwarden_notification_requests_failed_total", "receiver=oncall", "reason=server_error") > 0
	}) {
		t.Fatal("the alert did not fire with refused deliveries counted")
	}
	cool(t, d, bms)
	resolved := time.Now()
	if !eventually(time.Minute, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 2
	}) {
		t.Fatalf("queue length %v, want the firing and the resolved notification queued",
			d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall"))
	}
	// serve writes the snapshot within a second of an alert change; a
	// kill inside that second is the documented window (docs/alerting.md).
	snapshotAfter(t, state, resolved)
	d.kill()
	refused := r.keys(http.StatusInternalServerError)
	if got := r.statuses(); len(got) != 0 {
		t.Fatalf("delivered before the kill: %v", got)
	}

	r.refusing(false)
	d = startDaemon(t, daemonOptions{config: config, stateDir: state})
	if !eventually(time.Minute, func() bool { s := r.statuses(); return s["firing"] > 0 && s["resolved"] > 0 }) {
		t.Fatalf("not delivered after the restart: %+v", r.all())
	}
	if !eventually(30*time.Second, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 0
	}) {
		t.Error("the queue did not drain")
	}
	polls := d.metricOr0("cellwarden_collector_polls_total", "collector=bms-a")
	if !eventually(30*time.Second, func() bool { return d.metricOr0("cellwarden_collector_polls_total", "collector=bms-a") >= polls+10 }) {
		t.Fatal("serve does not poll after the restart")
	}
	// Ten polls (2 s, two group intervals) later: a repeated page would be here.
	checkOnce(t, d, r)
	var delivered []receivedRequest
	for _, q := range r.all() {
		if q.status == http.StatusOK {
			delivered = append(delivered, q)
		}
	}
	if len(delivered) != 2 || delivered[0].msg.Status != "firing" || delivered[1].msg.Status != "resolved" {
		t.Fatalf("delivered %+v, want firing then resolved", delivered)
	}
	if !refused[delivered[0].key] {
		t.Errorf("the firing notification came under Idempotency-Key %s, which no refused attempt before the kill carried (%v)", delivered[0].key, refused)
	}
	if n := d.metricOr0("cellwarden_notifications_total", "receiver=oncall"); n != 0 {
		t.Errorf("the restarted serve queued %v notifications: it should only deliver the two queued before the kill", n)
	}
	if alertFiring(d) {
		t.Error("the restarted serve shows the resolved alert as firing")
	}
}
