package notify_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
)

// outage is a webhook and an Alertmanager with the default retry
// schedule (500 ms doubling to 1 m) and the default grouping (one group
// per string, group_interval 1m).
const outage = `
outbox: {path: outbox.db}
receivers:
  - name: hook
    webhook: {url: "https://hooks.example/hook"}
  - name: am
    alertmanager: {urls: ["http://am.example:9093"], resend_interval: 1m}
`

const (
	hookURL = "https://hooks.example/hook"
	amURL   = "http://am.example:9093/api/v2/alerts"
)

// scheduleBounds returns the fewest and the most attempts the retry
// schedule allows within d of the first one: the n-th wait is drawn from
// [b/2, b], b = min(minB × 2ⁿ, maxB).
func scheduleBounds(d, minB, maxB time.Duration) (fewest, most int) {
	count := func(frac func(time.Duration) time.Duration) int {
		n := 0
		for at := time.Duration(0); at <= d; n++ {
			at += frac(min(minB<<min(n, 30), maxB))
		}
		return n
	}
	return count(func(b time.Duration) time.Duration { return b }), count(func(b time.Duration) time.Duration { return b / 2 })
}

// What must hold: a webhook receiver and an Alertmanager that are down
// (connection refused) for 10 minutes or an hour, while alerts of three
// strings fire and resolve, lose nothing. While they are down only the
// oldest notification of each is retried, each wait within the backoff
// schedule's bounds and the number of attempts too; nothing is dropped.
// Once they are back (within max_backoff) every notification arrives,
// in the order of the changes, answered 2xx once per Idempotency-Key;
// the webhook gets every (fingerprint, status, startsAt) state exactly
// once, the Alertmanager every change as it happened (with the alerts
// firing then, as Prometheus pushes them).
func TestLongOutageLosesNothing(t *testing.T) {
	for _, down := range []time.Duration{10 * time.Minute, time.Hour} {
		t.Run(down.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var up atomic.Bool
				s := &sink{answer: func(string, int) int { return map[bool]int{false: 0, true: http.StatusOK}[up.Load()] }}
				r := start(t, outage, tempDir(t), s)
				defer r.stop(t)
				t0 := time.Now()
				// A fires and resolves, B fires and stays, C fires and
				// resolves 30 s later: each on a string of its own.
				at := func(f float64) { time.Sleep(time.Until(t0.Add(time.Duration(f * float64(down))))) }
				r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/1/1", time.Now()))
				at(0.25)
				r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/2/1/1", time.Now()))
				at(0.5)
				r.notify(t, mk("resolved", "CellOverTemperature", "critical", "ups-a/1/1/1", time.Now()))
				at(0.75)
				r.notify(t, mk("firing", "ThermalRunawayRisk", "critical", "ups-a/3/1/1", time.Now()))
				time.Sleep(30 * time.Second)
				r.notify(t, mk("resolved", "ThermalRunawayRisk", "critical", "ups-a/3/1/1", time.Now()))
				at(1)
				synctest.Wait()
				back := time.Now()
				up.Store(true)
				time.Sleep(time.Minute + time.Second) // max_backoff: the next attempt comes within it
				synctest.Wait()

				for _, url := range []string{hookURL, amURL} {
					hits := hitsTo(s, url)
					var failed []hit
					for len(failed) < len(hits) && hits[len(failed)].code == 0 {
						failed = append(failed, hits[len(failed)])
					}
					fewest, most := scheduleBounds(down, 500*time.Millisecond, time.Minute)
					t.Logf("%s: %d attempts while down %v (the schedule allows %d to %d)", url, len(failed), down, fewest, most)
					if len(failed) < fewest || len(failed) > most {
						t.Errorf("%s: %d attempts during a %v outage, the schedule allows %d to %d", url, len(failed), down, fewest, most)
					}
					for i := 1; i < len(hits) && i <= len(failed); i++ {
						b := min(500*time.Millisecond<<min(i-1, 30), time.Minute)
						if gap := hits[i].at.Sub(hits[i-1].at); gap < b/2 || gap > b {
							t.Errorf("%s: wait %d was %v, outside [%v, %v]", url, i, gap, b/2, b)
						}
						if k := hits[i].header.Get(notify.HeaderIdempotencyKey); k != hits[0].header.Get(notify.HeaderIdempotencyKey) {
							t.Errorf("%s: attempt %d has key %s: not the oldest notification's", url, i+1, k)
						}
					}
					if len(failed) == len(hits) || hits[len(failed)].at.Sub(back) > time.Minute {
						t.Fatalf("%s: not delivered within max_backoff of the receiver's return", url)
					}
					keys := map[string]int{}
					for _, h := range hits[len(failed):] {
						if h.code != http.StatusOK {
							t.Errorf("%s: answered %d after the return", url, h.code)
						}
						keys[h.header.Get(notify.HeaderIdempotencyKey)]++
					}
					for k, n := range keys {
						if n != 1 {
							t.Errorf("%s: Idempotency-Key %s delivered %d times", url, k, n)
						}
					}
				}

				// The webhook: five notifications, one state each, in order.
				var states []string
				seen := map[string]int{}
				for _, h := range hitsTo(s, hookURL) {
					if h.code != http.StatusOK {
						continue
					}
					var m notify.WebhookMessage
					if err := json.Unmarshal(h.body, &m); err != nil {
						t.Fatal(err)
					}
					for _, a := range m.Alerts {
						states = append(states, fmt.Sprintf("%s/%s:%s", a.Labels["alertname"], a.Labels["string"], a.Status))
						seen[a.Fingerprint+" "+a.Status+" "+a.StartsAt.String()]++
					}
				}
				equal(t, "webhook states", states, []string{
					"CellOverTemperature/1:firing", "CellOverTemperature/2:firing", "CellOverTemperature/1:resolved",
					"ThermalRunawayRisk/3:firing", "ThermalRunawayRisk/3:resolved",
				})
				for st, n := range seen {
					if n != 1 {
						t.Errorf("webhook: state %s delivered %d times", st, n)
					}
				}

				// The Alertmanager (one group: it groups itself): every
				// change pushed in order with the alerts then firing;
				// then B, still firing, re-sent each resend_interval.
				var pushes []string
				for _, h := range hitsTo(s, amURL) {
					if h.code != http.StatusOK {
						continue
					}
					var as []struct {
						Labels map[string]string `json:"labels"`
						EndsAt time.Time         `json:"endsAt"`
					}
					if err := json.Unmarshal(h.body, &as); err != nil {
						t.Fatal(err)
					}
					var push []string
					for _, a := range as {
						push = append(push, fmt.Sprintf("%s/%s:%s", a.Labels["alertname"], a.Labels["string"],
							map[bool]string{true: "firing", false: "resolved"}[a.EndsAt.After(h.at)]))
					}
					pushes = append(pushes, strings.Join(push, " "))
				}
				equal(t, "Alertmanager pushes", pushes[:5], []string{
					"CellOverTemperature/1:firing",
					"CellOverTemperature/1:firing CellOverTemperature/2:firing",
					"CellOverTemperature/1:resolved CellOverTemperature/2:firing",
					"CellOverTemperature/2:firing ThermalRunawayRisk/3:firing",
					"CellOverTemperature/2:firing ThermalRunawayRisk/3:resolved",
				})
				for _, p := range pushes[5:] {
					if p != "CellOverTemperature/2:firing" {
						t.Errorf("Alertmanager got %s after the queue, want only B's resends", p)
					}
				}

				for _, rc := range []string{"hook", "am"} {
					for _, reason := range []string{"client_error", "other", "outbox_full"} {
						if n := r.value(t, "cellwarden_notifications_failed_total", "receiver", rc, "reason", reason); n != 0 {
							t.Errorf("%s: %v notifications given up (%s)", rc, n, reason)
						}
					}
					if n := r.value(t, "cellwarden_notification_queue_length", "receiver", rc); n != 0 {
						t.Errorf("%s: %v notifications still queued", rc, n)
					}
					if sent, made := r.value(t, "cellwarden_notifications_sent_total", "receiver", rc),
						r.value(t, "cellwarden_notifications_total", "receiver", rc); sent != made {
						t.Errorf("%s: %v notifications sent of %v", rc, sent, made)
					}
				}
			})
		})
	}
}

// hitsTo returns the requests s got for url, in order.
func hitsTo(s *sink, url string) []hit {
	var out []hit
	for _, h := range s.all() {
		if h.url == url {
			out = append(out, h)
		}
	}
	return out
}

// Shutdown delivers what is queued while its context lasts: a receiver
// that recovers during the drain gets the notification before Shutdown
// returns, and the next start has nothing left to send.
func TestShutdownDeliversDuringTheDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var up atomic.Bool
		s := &sink{answer: func(string, int) int { return map[bool]int{false: 503, true: 200}[up.Load()] }}
		dir := tempDir(t)
		r := start(t, flaky, dir, s)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		time.Sleep(30 * time.Second)
		up.Store(true) // the receiver recovers as the drain begins
		r.stopWithin(t, 30*time.Second)
		if n := len(s.delivered(t)); n != 1 {
			t.Fatalf("%d notifications delivered during the drain, want 1", n)
		}
		again := &sink{}
		start(t, flaky, dir, again).stop(t)
		if n := len(again.all()); n != 0 {
			t.Errorf("the next start sent %d requests: the delivered notification was not removed", n)
		}
	})
}

// Shutdown honours its deadline with a receiver that hangs: it returns
// when its context ends (the request in flight cut), logs that the
// notification stays queued, and the next start delivers it under the
// same Idempotency-Key.
func TestShutdownHonoursItsDeadlineWithAHangingReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &sink{answer: func(string, int) int { return hang }}
		dir := tempDir(t)
		r := start(t, strings.Replace(flaky, "retry:", "timeout: 1h\n    retry:", 1), dir, s)
		r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
		synctest.Wait()
		began := time.Now()
		r.stopWithin(t, 5*time.Second)
		if took := time.Since(began); took > 5*time.Second+100*time.Millisecond {
			t.Errorf("Shutdown took %v with a 5s deadline", took)
		}
		if !strings.Contains(logText(r), "undelivered notifications stay in the outbox for the next start queued=1") {
			t.Errorf("the shutdown does not say a notification stays queued:\n%s", logText(r))
		}
		again := &sink{}
		r = start(t, flaky, dir, again)
		defer r.stop(t)
		synctest.Wait()
		if got := again.all(); len(got) != 1 || got[0].header.Get(notify.HeaderIdempotencyKey) != s.all()[0].header.Get(notify.HeaderIdempotencyKey) {
			t.Errorf("after the restart: %d requests; want the hung notification once, under its key", len(got))
		}
	})
}
