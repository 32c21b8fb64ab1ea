package notify_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
)

const oncall = `
outbox: {path: outbox.db}
receivers:
  - name: oncall
    match: {severity: [critical]}
    retry: {min_backoff: 1s, max_backoff: 8s}
    webhook:
      url: https://pager.example/hooks/T0KEN-in-path?token=s3cret
      hmac_secret: hunter2
      group_wait: 10s
      group_interval: 1m
      repeat_interval: 1h
`

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// Alerts of one string arriving within group_wait are one notification;
// another string is another group.
func TestGroupsPerString(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := start(t, oncall, tempDir(t), s)
		defer r.stop(t)
		t0 := time.Now()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0))
		time.Sleep(3 * time.Second)
		r.notify(t, mk("firing", "ThermalRunawayRisk", "critical", "ups-a/1/3/7", t0.Add(3*time.Second)),
			mk("firing", "CellOverTemperature", "critical", "ups-a/2/1/1", t0.Add(3*time.Second)))
		time.Sleep(9 * time.Second)
		synctest.Wait()
		equal(t, "notifications after group_wait", summary(s.delivered(t)), []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing ThermalRunawayRisk:ups-a/1/3/7:firing]",
		})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		equal(t, "notifications after the second group's wait", summary(s.delivered(t)), []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing ThermalRunawayRisk:ups-a/1/3/7:firing]",
			"oncall firing [CellOverTemperature:ups-a/2/1/1:firing]",
		})
		msgs := s.delivered(t)
		if got := msgs[0].GroupLabels; got["ups"] != "ups-a" || got["string"] != "1" || len(got) != 2 {
			t.Errorf("groupLabels = %v, want ups and string", got)
		}
		if got := msgs[0].CommonLabels; got["cell"] != "7" || got["severity"] != "critical" || got["alertname"] != "" {
			t.Errorf("commonLabels = %v", got)
		}
		if msgs[0].GroupKey == msgs[1].GroupKey || !strings.HasPrefix(msgs[0].GroupKey, "oncall:") {
			t.Errorf("group keys %q and %q", msgs[0].GroupKey, msgs[1].GroupKey)
		}
	})
}

// After a notification a changed group waits for group_interval; the
// resolved alert is notified once with its end; an unchanged group with
// firing alerts repeats after repeat_interval; a group with nothing firing
// is not notified again.
func TestGroupIntervalResolvedAndRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := start(t, oncall, tempDir(t), s)
		defer r.stop(t)
		t0 := time.Now()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0),
			mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/8", t0))
		time.Sleep(20 * time.Second) // first notification at 10 s
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(49 * time.Second) // 69 s: still within group_interval of the first notification
		synctest.Wait()
		if n := len(s.delivered(t)); n != 1 {
			t.Fatalf("%d notifications within group_interval, want 1", n)
		}
		time.Sleep(2 * time.Second) // 71 s: the change is notified
		synctest.Wait()
		want := []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing CellOverTemperature:ups-a/1/3/8:firing]",
			"oncall firing [CellOverTemperature:ups-a/1/3/7:resolved CellOverTemperature:ups-a/1/3/8:firing]",
		}
		equal(t, "after group_interval", summary(s.delivered(t)), want)
		res := s.delivered(t)[1].Alerts[0]
		if !res.StartsAt.Equal(t0) || !res.EndsAt.Equal(t0.Add(20*time.Second)) {
			t.Errorf("resolved alert startsAt %v endsAt %v, want %v and %v", res.StartsAt, res.EndsAt, t0, t0.Add(20*time.Second))
		}
		if fir := s.delivered(t)[1].Alerts[1]; !fir.EndsAt.IsZero() {
			t.Errorf("a firing alert has endsAt %v", fir.EndsAt)
		}
		time.Sleep(time.Hour) // repeat_interval after the second notification
		synctest.Wait()
		want = append(want, "oncall firing [CellOverTemperature:ups-a/1/3/8:firing]")
		equal(t, "after repeat_interval", summary(s.delivered(t)), want)
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/8", time.Now()))
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		want = append(want, "oncall resolved [CellOverTemperature:ups-a/1/3/8:resolved]")
		equal(t, "after everything resolved", summary(s.delivered(t)), want)
		if got := r.value(t, "cellwarden_notifications_total", "receiver", "oncall"); got != 4 {
			t.Errorf("cellwarden_notifications_total = %v, want 4", got)
		}
		if got := r.value(t, "cellwarden_alert_groups", "receiver", "oncall"); got != 0 {
			t.Errorf("cellwarden_alert_groups = %v after everything resolved", got)
		}
	})
}

// An alert reported firing again (as after a restart of the detector) is
// not a change; one that fires and resolves before its group is notified
// arrives resolved, with both times.
func TestRepeatsAndShortAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := start(t, oncall, tempDir(t), s)
		defer r.stop(t)
		t0 := time.Now()
		a := mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0)
		r.notify(t, a)
		time.Sleep(15 * time.Second)
		r.notify(t, a, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0.Add(time.Second)))
		r.notify(t, mk("firing", "ThermalRunawayRisk", "critical", "ups-a/2/1/1", time.Now()))
		r.notify(t, mk("resolved", "ThermalRunawayRisk", "critical", "ups-a/2/1/1", time.Now().Add(time.Second)))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		equal(t, "notifications", summary(s.delivered(t)), []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing]",
			"oncall resolved [ThermalRunawayRisk:ups-a/2/1/1:resolved]",
		})
	})
}

// Each receiver gets what its matchers select: facilities the end-of-life
// alerts, on-call the critical ones, nobody an info alert.
func TestRoutingBySeverityAndLabels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := start(t, `
outbox: {path: outbox.db}
receivers:
  - name: oncall
    match: {severity: [critical]}
    webhook: {url: "http://oncall.example/hook"}
  - name: facilities
    match_re: {alertname: "BatteryEndOfLife.*"}
    webhook: {url: "http://facilities.example/hook", group_by: [ups]}
  - name: ups-b-team
    match: {ups: [ups-b], severity: [warning, critical]}
    webhook: {url: "http://b.example/hook"}
`, tempDir(t), s)
		defer r.stop(t)
		now := time.Now()
		r.notify(t,
			mk("firing", "ThermalRunawayRisk", "critical", "ups-a/1/3/7", now),
			mk("firing", "BatteryEndOfLife", "warning", "ups-a/1", now),
			mk("firing", "BatteryEndOfLifeSoon", "info", "ups-a/2", now),
			mk("firing", "CellTemperatureDeviation", "warning", "ups-b/1/1/1", now),
			mk("firing", "TelemetryStale", "info", "ups-b/1", now),
		)
		synctest.Wait()
		got := summary(s.delivered(t))
		slices.Sort(got)
		equal(t, "notifications", got, []string{
			"facilities firing [BatteryEndOfLife:ups-a/1:firing BatteryEndOfLifeSoon:ups-a/2:firing]",
			"oncall firing [ThermalRunawayRisk:ups-a/1/3/7:firing]",
			"ups-b-team firing [CellTemperatureDeviation:ups-b/1/1/1:firing]",
		})
	})
}

const flaky = `
outbox: {path: outbox.db}
receivers:
  - name: hook
    retry: {min_backoff: 1s, max_backoff: 10s}
    webhook: {url: "https://hooks.example/path/T0KEN"}
`

// 5xx, 429 and network errors are retried with growing waits until the
// receiver takes the notification, which then arrives once; the failures
// are counted by reason.
func TestRetriesUntilDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answers := []int{503, 0, 429, 500, 500, 500, 200}
		s := &sink{answer: func(_ string, n int) int { return answers[min(n, len(answers)-1)] }}
		r := start(t, flaky, tempDir(t), s)
		defer r.stop(t)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		hits := s.all()
		if len(hits) != len(answers) {
			t.Fatalf("%d requests, want %d", len(hits), len(answers))
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].header.Get(notify.HeaderIdempotencyKey) != hits[0].header.Get(notify.HeaderIdempotencyKey) {
				t.Errorf("attempt %d has another idempotency key", i+1)
			}
		}
		if gap := hits[3].at.Sub(hits[2].at); gap < 7*time.Second {
			t.Errorf("retried %v after a 429 with Retry-After: 7", gap)
		}
		if a, b := hits[5].at.Sub(hits[4].at), hits[6].at.Sub(hits[5].at); b < a/2 || b > 10*time.Second {
			t.Errorf("backoff %v then %v: want growing waits capped at 10s", a, b)
		}
		if n := len(s.delivered(t)); n != 1 {
			t.Errorf("%d deliveries, want 1", n)
		}
		for reason, want := range map[string]float64{"server_error": 4, "network": 1, "rate_limited": 1, "client_error": 0} {
			if got := r.value(t, "cellwarden_notification_requests_failed_total", "receiver", "hook", "reason", reason); got != want {
				t.Errorf("requests failed for %s = %v, want %v", reason, got, want)
			}
		}
		if got := r.value(t, "cellwarden_notifications_sent_total", "receiver", "hook"); got != 1 {
			t.Errorf("sent = %v, want 1", got)
		}
		if got := r.value(t, "cellwarden_notification_queue_length", "receiver", "hook"); got != 0 {
			t.Errorf("queue length = %v after delivery", got)
		}
	})
}

// A 4xx is final: the notification is dropped and counted, and the next
// one is delivered.
func TestClientErrorIsTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{answer: func(_ string, n int) int { return []int{400, 200}[min(n, 1)] }}
		r := start(t, flaky, tempDir(t), s)
		defer r.stop(t)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		synctest.Wait()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-b/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(s.all()); n != 2 {
			t.Errorf("%d requests, want 2 (no retry after 400)", n)
		}
		equal(t, "delivered", summary(s.delivered(t)), []string{"hook firing [CellOverTemperature:ups-b/1/3/7:firing]"})
		if got := r.value(t, "cellwarden_notifications_failed_total", "receiver", "hook", "reason", "client_error"); got != 1 {
			t.Errorf("failed{client_error} = %v, want 1", got)
		}
	})
}

// Logs name the receiver and the URL's host, never its path, query, the
// HMAC secret or the basic-auth password (which the requests carry).
func TestLogsRedactURLsAndSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{answer: func(_ string, n int) int { return []int{0, 503, 404}[min(n, 2)] }}
		dir := tempDir(t)
		writeFiles(t, dir, map[string]string{"pager.pass": "pa55-from-file\n"})
		r := start(t, strings.Replace(oncall, "    webhook:", "    http_config: {basic_auth: {username: pager, password_file: pager.pass}}\n    webhook:", 1), dir, s)
		defer r.stop(t)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(s.all()) != 3 {
			t.Fatalf("%d requests, want 3", len(s.all()))
		}
		logs := logText(r)
		for _, h := range s.all() {
			if user, pass, ok := (&http.Request{Header: h.header}).BasicAuth(); !ok || user != "pager" || pass != "pa55-from-file" {
				t.Errorf("request with basic auth %q %q %v", user, pass, ok)
			}
		}
		for _, secret := range []string{"T0KEN", "s3cret", "hunter2", "/hooks", "pa55-from-file"} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %q:\n%s", secret, logs)
			}
		}
		for _, want := range []string{"https://pager.example", "connection refused", "503", "404"} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs do not say %q:\n%s", want, logs)
			}
		}
		if got := r.cfg.Receivers[0].Webhook.HMACSecret; strings.Contains(toString(got), "hunter2") || strings.Contains(toString(*r.cfg), "hunter2") ||
			strings.Contains(toString(*r.cfg), "pa55-from-file") {
			t.Errorf("a secret shows when the configuration is printed")
		}
	})
}

// The body is signed with HMAC-SHA256 under the receiver's secret.
func TestSignature(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := start(t, oncall, tempDir(t), s)
		defer r.stop(t)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		hits := s.all()
		if len(hits) != 1 {
			t.Fatalf("%d requests", len(hits))
		}
		h := hits[0]
		// The expected value, computed independently with openssl:
		//   printf %s "$body" | openssl dgst -sha256 -hmac hunter2
		if got, want := h.header.Get(notify.HeaderSignature), notify.Sign([]byte("hunter2"), h.body); got != want || !strings.HasPrefix(got, "sha256=") || len(got) != 71 {
			t.Errorf("signature %q, want %q", got, want)
		}
		if notify.Sign([]byte("hunter2"), append(h.body, ' ')) == h.header.Get(notify.HeaderSignature) {
			t.Errorf("the signature does not depend on the body")
		}
		if h.header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", h.header.Get("Content-Type"))
		}
	})
}

func toString(v any) string { return strings.TrimSpace(fmtAny(v)) }

// logText renders the rig's logs, a line an entry with its fields.
func logText(r *rig) string {
	var text strings.Builder
	for _, e := range r.logs.All() {
		text.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			text.WriteString(" " + k + "=" + strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " "))
		}
		text.WriteString("\n")
	}
	return text.String()
}

// The queue of a receiver that is down survives a shutdown: the next
// Notifier on the same outbox delivers it in order, with the groups as
// they were.
func TestQueueSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := tempDir(t)
		down := &sink{answer: func(string, int) int { return 503 }}
		r := start(t, oncall, dir, down)
		t0 := time.Now()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0))
		time.Sleep(20 * time.Second)
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if len(down.all()) < 3 {
			t.Fatalf("only %d attempts while down", len(down.all()))
		}
		if got := r.value(t, "cellwarden_notification_queue_length", "receiver", "oncall"); got != 2 {
			t.Errorf("queue length %v while the receiver is down, want 2", got)
		}
		ctx, cancel := contextWithTimeout(t, time.Second)
		defer cancel()
		r.n.Shutdown(ctx)

		up := &sink{}
		r = start(t, oncall, dir, up)
		defer r.stop(t)
		synctest.Wait()
		equal(t, "after the restart", summary(up.delivered(t)), []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing]",
			"oncall resolved [CellOverTemperature:ups-a/1/3/7:resolved]",
		})
		keys := map[string]bool{}
		for _, h := range append(down.all(), up.all()...) {
			keys[h.header.Get(notify.HeaderIdempotencyKey)] = true
		}
		if len(keys) != 2 {
			t.Errorf("%d idempotency keys over all attempts of 2 notifications", len(keys))
		}
	})
}

// A detector restarted from a snapshot taken before a resolution resolves
// the alert a second time: the receiver, told once already, hears nothing
// more. The same alert firing again later is a new incident, and its
// resolution is told again.
func TestResolvedAgainAfterRestartIsNotSentTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := tempDir(t)
		s := &sink{}
		r := start(t, oncall, dir, s)
		t0 := time.Now()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0))
		time.Sleep(time.Minute)
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		ctx, cancel := contextWithTimeout(t, time.Second)
		defer cancel()
		r.n.Shutdown(ctx)

		r = start(t, oncall, dir, s)
		defer r.stop(t)
		// The restored detector still had it firing and resolves it again.
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		equal(t, "after the restart", summary(s.delivered(t)), []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing]",
			"oncall resolved [CellOverTemperature:ups-a/1/3/7:resolved]",
		})
		if got := r.value(t, "cellwarden_alert_groups", "receiver", "oncall"); got != 0 {
			t.Errorf("cellwarden_alert_groups %v with nothing firing, want 0", got)
		}

		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(time.Minute)
		synctest.Wait()
		equal(t, "a new incident", summary(s.delivered(t))[2:], []string{
			"oncall firing [CellOverTemperature:ups-a/1/3/7:firing]",
			"oncall resolved [CellOverTemperature:ups-a/1/3/7:resolved]",
		})
	})
}

// An Alertmanager receiver pushes every change at once to
// /api/v2/alerts of every member, is delivered when one of them takes it,
// re-sends firing alerts each resend_interval with endsAt four intervals
// ahead, and sends a resolved alert with the time it resolved.
// Every member of an Alertmanager cluster gets every push: members share
// silences and the notification log, not alerts. A member that was down
// gets the firing alert again at the next resend.
func TestAlertmanagerPushesToEveryMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var am2Down atomic.Bool
		am2Down.Store(true)
		s := &sink{answer: func(u string, _ int) int {
			if strings.Contains(u, "am2") && am2Down.Load() {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}}
		r := start(t, `
outbox: {path: outbox.db}
receivers:
  - name: am
    alertmanager:
      urls: ["http://am1:9093", "http://am2:9093"]
      resend_interval: 1m
`, tempDir(t), s)
		defer r.stop(t)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		synctest.Wait()
		taken := func() map[string]int {
			m := map[string]int{}
			for _, h := range s.all() {
				if h.code == http.StatusOK {
					m[h.url]++
				}
			}
			return m
		}
		if got := taken(); got["http://am1:9093/api/v2/alerts"] != 1 || got["http://am2:9093/api/v2/alerts"] != 0 {
			t.Fatalf("pushes taken with am2 down: %v, want one by am1", got)
		}
		am2Down.Store(false)
		time.Sleep(61 * time.Second) // the next resend
		synctest.Wait()
		if got := taken(); got["http://am1:9093/api/v2/alerts"] != 2 || got["http://am2:9093/api/v2/alerts"] != 1 {
			t.Errorf("pushes taken after am2 came back and a resend: %v, want 2 by am1 and 1 by am2", got)
		}
	})
}

func TestAlertmanagerPushAndResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{answer: func(u string, _ int) int {
			if strings.Contains(u, "am1") {
				return 0 // this member is down
			}
			return http.StatusOK
		}}
		r := start(t, `
outbox: {path: outbox.db}
receivers:
  - name: am
    alertmanager:
      urls: ["http://am1:9093", "http://am2:9093/prefix/"]
      resend_interval: 1m
`, tempDir(t), s)
		defer r.stop(t)
		t0 := time.Now()
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", t0))
		synctest.Wait()
		time.Sleep(150 * time.Second)
		r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		synctest.Wait()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		var pushes []string
		for _, h := range s.all() {
			if h.code != http.StatusOK {
				continue
			}
			if h.url != "http://am2:9093/prefix/api/v2/alerts" {
				t.Errorf("pushed to %s", h.url)
			}
			var as []struct {
				Labels   map[string]string `json:"labels"`
				StartsAt time.Time         `json:"startsAt"`
				EndsAt   time.Time         `json:"endsAt"`
			}
			if err := jsonUnmarshal(h.body, &as); err != nil || len(as) != 1 {
				t.Fatalf("push %s: %v", h.body, err)
			}
			if !as[0].StartsAt.Equal(t0) || as[0].Labels["cell"] != "7" {
				t.Errorf("alert %+v", as[0])
			}
			pushes = append(pushes, as[0].EndsAt.Sub(h.at).String())
		}
		// At 0, 60 s and 120 s firing (endsAt 4 min ahead), at 150 s resolved
		// (endsAt = the resolution, now), then nothing.
		equal(t, "endsAt relative to each push", pushes, []string{"4m0s", "4m0s", "4m0s", "0s"})
	})
}
