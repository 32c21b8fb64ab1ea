//go:build integration

package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
)

// soakEnv reads a soak parameter from the environment (make soak sets
// them) or returns its CI default.
func soakEnv[T any](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// soakSample is one reading of the daemon's own metrics.
type soakSample struct {
	at         time.Duration
	heap       float64 // go_memstats_heap_inuse_bytes
	nextGC     float64 // go_memstats_next_gc_bytes: twice the heap live after the last collection
	goroutines float64
	rss        float64
	samples    float64 // cellwarden_samples_total{source="mqtt"}
}

// What must hold under sustained load (the CI version: 10 240 cells for
// 60 s; `make soak`: 100 352 cells for 30 minutes): a load generator
// publishes every cell's voltage and temperature (one message per module
// of 16 cells, QoS 1) through mosquitto to serve, one round per interval.
// After a warm-up of a third of the run, memory stays flat and the
// goroutine count does not grow. Memory is judged by the heap goal
// (go_memstats_next_gc_bytes, twice the heap live after the last
// collection): go_memstats_heap_inuse_bytes, logged too, swings with
// the collector's timing between the live heap and that goal. The largest
// heap goal of the last third is at most 1.5 times the largest of the
// middle third plus 8 MiB; the goroutines at most 5 above the middle
// third's largest (scrapes in flight). When the publisher has
// stopped and the daemon is idle, every sample acknowledged by the broker
// is accounted for: cellwarden_samples_total plus the counted drops (the
// collector's dropped messages, the broker's $SYS dropped count) equals
// what was sent, so no sample is lost uncounted.
func TestReliabilitySoak(t *testing.T) {
	duration := soakEnv(t, "CELLWARDEN_SOAK_DURATION", time.Minute, time.ParseDuration)
	cells := soakEnv(t, "CELLWARDEN_SOAK_CELLS", 10240, strconv.Atoi)
	interval := soakEnv(t, "CELLWARDEN_SOAK_INTERVAL", 2*time.Second, time.ParseDuration)
	every := max(duration/30, 2*time.Second) // metric samples: about 30

	const perModule, modules, strs = 16, 16, 4 // 1024 cells per UPS
	upss := (cells + perModule*modules*strs - 1) / (perModule * modules * strs)
	cells = upss * perModule * modules * strs
	perMessage := 2 * perModule

	broker := mosquittotest.Start(t, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cellwarden.yml")
	// The peer rules warm up in 5 polls, well inside the test's own
	// warm-up (a third of the run): their state is all there before the
	// memory is judged.
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `detector:
  peers: {warmup_polls: 5}
collectors:
  mqtt:
    - name: soak
      broker: tcp://127.0.0.1:%s
      client_id: cellwarden-soak
      subscriptions:
        - topic: soak/{ups}/{string}/{module}
          fields:
            - {path: "v[*]", metric: cell_voltage_volts}
            - {path: "t[*]", metric: cell_temperature_celsius}
`, broker.Port), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, daemonOptions{config: cfg, stateDir: filepath.Join(dir, "state")})
	if !eventually(30*time.Second, func() bool { v, _ := d.metric("cellwarden_mqtt_connected", "collector=soak"); return v == 1 }) {
		t.Fatal("the MQTT collector did not connect")
	}

	opts := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + broker.Port).SetClientID("soak-publisher").
		SetAutoReconnect(false)
	pub := paho.NewClient(opts)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(250) })

	// One round: every module's message, then wait for every PUBACK.
	rng := rand.New(rand.NewPCG(1, 2))
	var sent float64 // samples acknowledged by the broker
	var body strings.Builder
	round := func() {
		var toks []paho.Token
		for u := range upss {
			for s := 1; s <= strs; s++ {
				for m := 1; m <= modules; m++ {
					body.Reset()
					body.WriteString(`{"v":[`)
					for c := range perModule {
						if c > 0 {
							body.WriteByte(',')
						}
						fmt.Fprintf(&body, "%.3f", 3.30+0.01*rng.Float64())
					}
					body.WriteString(`],"t":[`)
					for c := range perModule {
						if c > 0 {
							body.WriteByte(',')
						}
						fmt.Fprintf(&body, "%.1f", 25+rng.Float64())
					}
					body.WriteString("]}")
					toks = append(toks, pub.Publish(fmt.Sprintf("soak/ups-%03d/%d/%d", u, s, m), 1, false, body.String()))
				}
			}
		}
		for _, tok := range toks {
			if tok.WaitTimeout(time.Minute) && tok.Error() == nil {
				sent += float64(perMessage)
			}
		}
	}

	var trace []soakSample
	start := time.Now()
	next := start
	nextRound := start
	for time.Since(start) < duration {
		if !time.Now().Before(nextRound) {
			round()
			nextRound = nextRound.Add(interval)
		}
		if !time.Now().Before(next) {
			// One scrape per sample: every scrape builds every series
			// (about a dozen per cell) before name[] selects.
			_, body := d.get("/metrics?name[]=go_memstats_heap_inuse_bytes&name[]=go_memstats_next_gc_bytes&name[]=go_goroutines" +
				"&name[]=process_resident_memory_bytes&name[]=cellwarden_samples_total")
			v := func(name string, labels ...string) float64 { x, _ := sumSeries(body, name, labels...); return x }
			trace = append(trace, soakSample{at: time.Since(start).Round(time.Second),
				heap: v("go_memstats_heap_inuse_bytes"), nextGC: v("go_memstats_next_gc_bytes"), goroutines: v("go_goroutines"),
				rss: v("process_resident_memory_bytes"), samples: v("cellwarden_samples_total", "source=mqtt")})
			next = next.Add(every)
		}
		time.Sleep(min(time.Until(nextRound), time.Until(next), 100*time.Millisecond))
	}

	// Drain: the daemon is idle when its count stops moving and the
	// collector's queue is empty.
	received := func() float64 { return d.metricOr0("cellwarden_samples_total", "source=mqtt") }
	last := -1.0
	eventually(2*time.Minute, func() bool {
		now := received()
		idle := now == last && d.metricOr0("cellwarden_mqtt_queue_messages") == 0
		last = now
		time.Sleep(time.Second)
		return idle
	})
	got := received()
	droppedMsgs := d.metricOr0("cellwarden_mqtt_dropped_messages_total")
	brokerDropped := d.metricOr0("cellwarden_mqtt_broker_stat", "topic=$SYS/broker/publish/messages/dropped")
	counted := float64(perMessage) * (droppedMsgs + brokerDropped)
	badInput := d.metricOr0("cellwarden_bad_input_total", "source=mqtt")

	for _, s := range trace {
		t.Logf("t=%-6s heap_inuse=%6.1f MiB next_gc=%6.1f MiB rss=%6.1f MiB goroutines=%3.0f samples=%.0f",
			s.at, s.heap/(1<<20), s.nextGC/(1<<20), s.rss/(1<<20), s.goroutines, s.samples)
	}
	t.Logf("%d cells (%d UPSs) every %s for %s: sent %.0f samples, received %.0f, counted drops %.0f samples, bad input %.0f",
		cells, upss, interval, duration, sent, got, counted, badInput)
	if sent == 0 {
		t.Fatal("nothing was sent")
	}
	if got+counted != sent || badInput != 0 {
		t.Errorf("sent %.0f samples; received %.0f + counted drops %.0f = %.0f (bad input %.0f): %.0f unaccounted",
			sent, got, counted, got+counted, badInput, sent-got-counted)
	}

	n := len(trace)
	if n < 6 {
		t.Fatalf("only %d metric samples", n)
	}
	middle, end := trace[n/3:2*n/3], trace[2*n/3:]
	peak := func(ss []soakSample, f func(soakSample) float64) float64 {
		return slices.Max(func() []float64 {
			var out []float64
			for _, s := range ss {
				out = append(out, f(s))
			}
			return out
		}())
	}
	nextGC := func(s soakSample) float64 { return s.nextGC }
	gor := func(s soakSample) float64 { return s.goroutines }
	if m, e := peak(middle, nextGC), peak(end, nextGC); e > 1.5*m+8<<20 {
		t.Errorf("the live heap grows: heap goal (go_memstats_next_gc_bytes) at most %.1f MiB in the middle third, %.1f MiB in the last",
			m/(1<<20), e/(1<<20))
	}
	if m, e := peak(middle, gor), peak(end, gor); e > m+5 {
		t.Errorf("goroutines grow: at most %.0f in the middle third, %.0f in the last", m, e)
	}
}
