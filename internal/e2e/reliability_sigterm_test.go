//go:build integration

package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/outbox"
)

// sigterm sends SIGTERM to serve and returns when.
func (d *daemonProc) sigterm(t *testing.T) time.Time {
	t.Helper()
	sent := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return sent
}

// exit waits, up to bound after sent, for serve to exit by itself; it
// returns how long after sent that was and the exit status.
func (d *daemonProc) exit(t *testing.T, sent time.Time, bound time.Duration) (time.Duration, int) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(time.Until(sent.Add(bound))):
		t.Fatalf("serve did not exit within %v of SIGTERM:\n%s", bound, d.log.String())
	}
	return time.Since(sent), d.cmd.ProcessState.ExitCode()
}

// What must hold: a notification queued when SIGTERM arrives (the
// receiver answered 500 until then and answers 200 only after the
// signal) is delivered during the drain: serve exits 0 with the
// receiver holding it once, and the next start finds the outbox empty
// (sends nothing).
func TestServeSIGTERMDeliversQueuedNotificationInTheDrain(t *testing.T) {
	r := newFaultyReceiver(t)
	r.refusing(true)
	r.up(t)
	d, _, config, state := hotServe(t, r, hookConfig("http://"+r.addr+"/hook"), "--shutdown.timeout", "30s")
	if !eventually(time.Minute, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 1 &&
			d.metricOr0("cellwarden_notification_requests_failed_total", "receiver=oncall", "reason=server_error") > 0
	}) {
		t.Fatal("the firing notification was not queued and refused")
	}
	sent := d.sigterm(t)
	r.refusing(false) // only now can a request succeed: during the drain
	took, code := d.exit(t, sent, time.Minute)
	t.Logf("serve exited %v after SIGTERM", took)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if s := r.statuses(); s["firing"] != 1 || len(s) != 1 {
		t.Errorf("delivered %v during the drain, want the firing notification once", s)
	}
	log := d.log.String()
	if !strings.Contains(log, "cellwarden stopped") || strings.Contains(log, "stay in the outbox") {
		t.Errorf("serve's log does not say it drained everything:\n%s", log)
	}

	before := len(r.all())
	d = startDaemon(t, daemonOptions{config: config, stateDir: state})
	polls := d.metricOr0("cellwarden_collector_polls_total", "collector=bms-a")
	if !eventually(30*time.Second, func() bool { return d.metricOr0("cellwarden_collector_polls_total", "collector=bms-a") >= polls+10 }) {
		t.Fatal("serve does not poll after the restart")
	}
	if n := len(r.all()) - before; n != 0 || d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") != 0 {
		t.Errorf("the next start sent %d requests: the delivered notification was still queued", n)
	}
}

// What must hold: with the receiver hanging (requests never answered,
// the receiver's timeout 1 m), SIGTERM still ends serve within its
// --shutdown.timeout (3 s; the test allows a generous margin and checks
// that serve exited by itself, with status 0), the log says the
// notification stays queued, the outbox holds it, and the next start
// delivers it once, under the Idempotency-Key of the hung attempt.
func TestServeSIGTERMWithAHangingReceiverExitsWithinShutdownTimeout(t *testing.T) {
	r := newFaultyReceiver(t)
	r.hanging(true)
	r.up(t)
	url := "http://" + r.addr + "/hook"
	d, _, config, state := hotServe(t, r, strings.Replace(hookConfig(url), "timeout: 1s", "timeout: 1m", 1), "--shutdown.timeout", "3s")
	if !eventually(time.Minute, func() bool {
		return d.metricOr0("cellwarden_notification_queue_length", "receiver=oncall") == 1 && len(r.all()) > 0
	}) {
		t.Fatal("the firing notification was not queued and sent")
	}
	took, code := d.exit(t, d.sigterm(t), 3*time.Second+30*time.Second)
	t.Logf("serve exited %v after SIGTERM with --shutdown.timeout 3s", took)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if log := d.log.String(); !strings.Contains(log, "undelivered notifications stay in the outbox for the next start") {
		t.Errorf("serve's log does not say the notification stays queued:\n%s", log)
	}
	ob, err := outbox.Open(filepath.Join(filepath.Dir(config), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	queued := ob.Len("oncall")
	ob.Close()
	if queued != 1 {
		t.Fatalf("the outbox holds %d notifications after the shutdown, want the undelivered one", queued)
	}
	hung := r.keys(0)

	r.hanging(false)
	d = startDaemon(t, daemonOptions{config: config, stateDir: state})
	if !eventually(time.Minute, func() bool { return r.statuses()["firing"] == 1 }) {
		t.Fatalf("not delivered after the next start: %+v", r.all())
	}
	time.Sleep(2 * time.Second) // two group intervals: a duplicate would come now
	var delivered []string
	for _, q := range r.all() {
		if q.status == http.StatusOK {
			delivered = append(delivered, q.key)
		}
	}
	if len(delivered) != 1 || !hung[delivered[0]] {
		t.Errorf("delivered under keys %v, want once under the hung attempt's key (%v)", delivered, hung)
	}
}
