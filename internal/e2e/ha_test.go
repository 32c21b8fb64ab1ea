//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
)

// High availability (docs/operations.md, "High availability"): two
// replicas of one shard both poll, detect and alert, into an Alertmanager
// cluster whose members deduplicate what reaches the receiver.

// amNotification is one notification an Alertmanager delivered.
type amNotification struct {
	status, ups string
	alerts      int
}

// amSink is the webhook receiver behind the Alertmanagers.
type amSink struct {
	mu   sync.Mutex
	msgs []amNotification
}

func (s *amSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.WebhookMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, amNotification{status: m.Status, ups: m.GroupLabels["ups"], alerts: len(m.Alerts)})
	s.mu.Unlock()
}

// count returns how many notifications of the group of ups had status.
func (s *amSink) count(ups, status string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m.ups == ups && m.status == status {
			n++
		}
	}
	return n
}

func (s *amSink) all() []amNotification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]amNotification(nil), s.msgs...)
}

// amPeerTimeout is how long the second member of the cluster waits for
// the first one's notification to be gossiped before it sends its own
// (Alertmanager's default is 15 s), and amGroupInterval the group_interval
// of the test's route (default 5 m). The peer timeout must stay well
// below the group interval: the second member judges, after its wait,
// the group as it was when it flushed, so a change the first member
// notified within that wait is notified again, stale (with 3 s and 2 s
// this test saw every resolution followed by a second "firing").
const (
	amPeerTimeout   = 2 * time.Second
	amGroupInterval = 10 * time.Second
)

// startAMCluster runs n Alertmanagers clustered on loopback, each
// delivering to hook, grouping by UPS, and waits until each sees n
// members and is ready. It returns their base URLs.
func startAMCluster(t *testing.T, n int, hook string) []string {
	t.Helper()
	am := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
route:
  receiver: hook
  group_by: [ups]
  group_wait: 1s
  group_interval: %s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, amGroupInterval, hook), 0o600); err != nil {
		t.Fatal(err)
	}
	web, gossip := make([]string, n), make([]string, n)
	for i := range n {
		web[i], gossip[i] = freeAddr(t), freeAddr(t)
	}
	urls := make([]string, n)
	for i := range n {
		args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, fmt.Sprint("data-", i)),
			"--web.listen-address=" + web[i], "--cluster.listen-address=" + gossip[i], "--cluster.advertise-address=" + gossip[i],
			"--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=1s", "--cluster.peer-timeout=" + amPeerTimeout.String()}
		for j := range n {
			if j != i {
				args = append(args, "--cluster.peer="+gossip[j])
			}
		}
		startPeer(t, am, args...)
		urls[i] = "http://" + web[i]
	}
	for _, u := range urls {
		waitFor(t, "Alertmanager "+u+" to join a cluster of "+fmt.Sprint(n), func() bool {
			var s struct {
				Cluster struct {
					Status string `json:"status"`
					Peers  []any  `json:"peers"`
				} `json:"cluster"`
			}
			return getJSON(u+"/api/v2/status", &s) && s.Cluster.Status == "ready" && len(s.Cluster.Peers) == n
		})
	}
	return urls
}

// amHas reports whether the Alertmanager at u holds ups's
// CellOverTemperature as active.
func amHas(u, ups string) bool {
	var as []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if !getJSON(u+"/api/v2/alerts", &as) {
		return false
	}
	for _, a := range as {
		if a.Labels["alertname"] == "CellOverTemperature" && a.Labels["ups"] == ups && a.Status.State == "active" {
			return true
		}
	}
	return false
}

// What must hold: two replicas of one shard (the same configuration,
// each its own state directory and outbox) poll the same two Modbus
// BMSs and push every alert to both members of an Alertmanager cluster
// (an alertmanager receiver per member). When a cell overheats both
// replicas alert, both Alertmanagers hold the alert, and the webhook
// behind them gets the group's firing notification exactly once: the
// members deduplicate through their gossiped notification log. With one
// replica SIGKILLed, the alert it pushed neither resolves nor pages
// again once its endsAt (4 × resend_interval) has passed, since the
// survivor keeps it alive; a second UPS overheating then is paged once
// by the survivor alone; both resolutions arrive once each.
func TestHATwoReplicasPageOnceThroughAnAlertmanagerCluster(t *testing.T) {
	sink := &amSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	ams := startAMCluster(t, 2, hook.URL+"/hook")
	bmsA, bmsB := startFaultBMS(t), startFaultBMS(t)

	const resend = 2 * time.Second
	var tail strings.Builder
	fmt.Fprintf(&tail, "alerting:\n  outbox: {path: outbox.db}\n  receivers:\n")
	for i, u := range ams {
		fmt.Fprintf(&tail, `    - name: am-%d
      match: {alertname: [CellOverTemperature], severity: [critical]}
      retry: {min_backoff: 200ms, max_backoff: 1s}
      alertmanager: {urls: [%q], resend_interval: %s}
`, i+1, u, resend)
	}
	replicas := make([]*daemonProc, 2)
	for i := range replicas {
		dir := t.TempDir() // the same configuration, its own outbox and state
		cfg := writeConfig(t, dir, tail.String(), bmsA.addr(), bmsB.addr())
		replicas[i] = startDaemon(t, daemonOptions{config: cfg, stateDir: filepath.Join(dir, "state"), args: []string{"--shard", "0/1"}})
	}
	firing := func(d *daemonProc, ups string) bool {
		v, _ := d.metric("cellwarden_alerts", "alertname=CellOverTemperature", "severity=critical", "ups="+ups, "cell=1")
		return v == 1
	}
	// quiet waits past the time the second member would send its own
	// notification, were it not deduplicated: its peer timeout after the
	// first member's, and a margin.
	quiet := func() { time.Sleep(amPeerTimeout + 3*time.Second) }

	bmsA.ramp(t, "ups-a", 2000, 1, 250, 650, replicas...) // ups-a cell 1 heats to 65 °C
	waitFor(t, "both replicas to fire ups-a's CellOverTemperature", func() bool { return firing(replicas[0], "ups-a") && firing(replicas[1], "ups-a") })
	waitFor(t, "the firing notification of ups-a at the webhook", func() bool { return sink.count("ups-a", "firing") > 0 })
	for _, u := range ams {
		waitFor(t, u+" to hold ups-a's alert", func() bool { return amHas(u, "ups-a") })
	}
	for i, d := range replicas {
		for j := range ams {
			waitFor(t, fmt.Sprintf("replica %d to have pushed to Alertmanager %d", i+1, j+1), func() bool {
				return d.metricOr0("cellwarden_notifications_sent_total", fmt.Sprintf("receiver=am-%d", j+1)) > 0
			})
		}
	}
	quiet()
	if n := sink.count("ups-a", "firing"); n != 1 {
		t.Fatalf("ups-a's group was notified as firing %d times by two replicas through two Alertmanagers, want once: %+v", n, sink.all())
	}

	replicas[0].kill() // SIGKILL, by PID
	killed := time.Now()
	bmsB.ramp(t, "ups-b", 2000, 1, 250, 650, replicas[1]) // ups-b cell 1 heats to 65 °C: only the survivor sees it
	waitFor(t, "the survivor to fire ups-b's CellOverTemperature", func() bool { return firing(replicas[1], "ups-b") })
	waitFor(t, "the firing notification of ups-b at the webhook", func() bool { return sink.count("ups-b", "firing") > 0 })
	quiet()
	// The killed replica's pushes of ups-a's alert have expired by now.
	time.Sleep(time.Until(killed.Add(4*resend + 2*time.Second)))
	for _, u := range ams {
		if !amHas(u, "ups-a") {
			t.Errorf("%s no longer holds ups-a's alert after replica 1 was killed, though replica 2 still fires it", u)
		}
	}
	if a, b := sink.count("ups-a", "firing"), sink.count("ups-b", "firing"); a != 1 || b != 1 || sink.count("ups-a", "resolved") != 0 {
		t.Fatalf("with one replica killed: ups-a notified firing %d times, ups-b %d times, want once each and nothing resolved: %+v", a, b, sink.all())
	}

	bmsA.ramp(t, "ups-a", 2000, 1, 650, 250, replicas[1])
	bmsB.ramp(t, "ups-b", 2000, 1, 650, 250, replicas[1])
	waitFor(t, "both resolutions at the webhook", func() bool { return sink.count("ups-a", "resolved") > 0 && sink.count("ups-b", "resolved") > 0 })
	quiet()
	for _, ups := range []string{"ups-a", "ups-b"} {
		if f, r := sink.count(ups, "firing"), sink.count(ups, "resolved"); f != 1 || r != 1 {
			t.Errorf("%s's group notified firing %d and resolved %d times, want once each: %+v", ups, f, r, sink.all())
		}
	}
}
