package mqtt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// BenchmarkIngestMosquitto measures sustained ingest through Debian's
// mosquitto on loopback: two publisher processes publish b.N
// messages of the reference JSON layout (one 16-cell module: 33 samples,
// about 400 bytes) and the collector decodes them into Samples. Run it on
// one core:
//
//	go test -run '^$' -bench IngestMosquitto -benchtime 200000x -cpu 1 ./collector/mqtt
//
// It reports messages/s and samples/s, the CPU the benchmark process used
// per second of wall time and per message (collector and paho client;
// mosquitto and the publishers run in their own processes) and the heap
// in use and peak RSS.
func BenchmarkIngestMosquitto(b *testing.B) {
	for _, qos := range []int{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) { benchIngest(b, qos) })
	}
}

func benchIngest(b *testing.B, qos int) {
	broker := mosquittotest.Start(b, "max_inflight_messages 1000\n")
	cfg := parseCollector(b, fmt.Sprintf(benchConfig, broker.Port, qos))
	reg := telemetry.NewRegistry()
	c, err := New(cfg, reg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	var msgs, samples atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(s []telemetry.Sample) {
			// A batch holds the samples of whole messages, 33 each.
			msgs.Add(int64(len(s) / moduleSamples))
			samples.Add(int64(len(s)))
		})
	}()
	defer func() { cancel(); <-done }()
	for i := 0; !c.Health().Subscribed; i++ {
		if i == 3000 {
			b.Fatal("never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	const publishers = 2
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	errs := make(chan error, publishers)
	for p := range publishers {
		n := b.N / publishers
		if p == 0 {
			n += b.N % publishers
		}
		// The publisher is this test binary in another process (see
		// TestMain), so its CPU is not counted as the collector's.
		// mosquitto_pub -l is no publisher for this: at QoS 1 it exits at
		// the end of its input with messages unsent (2.0.11, measured).
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=tcp://127.0.0.1:%s|bms/ups-a/1/%d|%d|%d", publisherEnv, broker.Port, p+1, qos, n))
		cmd.Stderr = os.Stderr
		go func() { errs <- cmd.Run() }()
	}
	// A stall is a minute of wall time without a message (a bound, not a
	// timing assertion): counted from the start, it covers the publisher
	// processes' start-up before the first one, then from each message on.
	const stallBound = time.Minute
	last, progress := int64(0), start
	for {
		h := c.Health()
		// Messages mosquitto dropped (its queue for us overflowed) count
		// as done too; they show in the broker-dropped figure.
		got := msgs.Load() + int64(h.Dropped[DropQueueFull]) + int64(h.Broker["$SYS/broker/publish/messages/dropped"])
		if got >= int64(b.N) {
			break
		}
		if now := time.Now(); got != last {
			last, progress = got, now
		} else if now.Sub(progress) > stallBound {
			b.Fatalf("stalled at %d of %d messages (none for %s): %+v", got, b.N, stallBound, h)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	for range publishers {
		if err := <-errs; err != nil {
			b.Fatalf("mosquitto_pub: %v", err)
		}
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := c.Health()
	b.ReportMetric(float64(msgs.Load())/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(samples.Load())/elapsed.Seconds(), "samples/s")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu%")
	b.ReportMetric(cpu.Seconds()*1e6/float64(msgs.Load()), "cpu-us/msg")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(ru1.Maxrss)/1024, "maxrss-MiB")
	b.ReportMetric(float64(h.Dropped[DropQueueFull]), "dropped")
	b.ReportMetric(h.Broker["$SYS/broker/publish/messages/dropped"], "broker-dropped")
}

const benchConfig = `
mqtt:
  - broker: tcp://127.0.0.1:%s
    client_id: bench
    clean_session: true
    qos: %d
    subscriptions:` + moduleSubscription + "\n"

// moduleSamples is the number of samples in modulePayload.
const moduleSamples = 33

// modulePayload is one 16-cell module in the reference JSON layout.
func modulePayload() string {
	var p strings.Builder
	p.WriteString(`{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[`)
	for i := range 16 {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, "%.3f", 3.301+float64(i)/1000)
	}
	p.WriteString(`],"cell_temperature_celsius":[`)
	for i := range 16 {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, "%.1f", 25.1+float64(i)/10)
	}
	p.WriteString(`],"module_temperature_celsius":24.5}`)
	return p.String()
}

// BenchmarkProcess measures the collector's own work per message, without
// a broker: template match, JSON decoding, interning, health counters.
func BenchmarkProcess(b *testing.B) {
	c, err := New(parseCollector(b, fmt.Sprintf(benchConfig, "1883", 1)), telemetry.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(modulePayload())
	n := 0
	emit := func(s []telemetry.Sample) { n += len(s) }
	ms := []message{{topic: "bms/ups-a/1/3", payload: payload, recv: 1}}
	b.ReportAllocs()
	for b.Loop() {
		c.consume(ms, emit)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}

const publisherEnv = "CELLWARDEN_BENCH_PUBLISHER"

// TestMain runs this binary as a benchmark publisher when
// CELLWARDEN_BENCH_PUBLISHER is BROKER|TOPIC|QOS|N: it publishes N module
// messages, at most 1000 unacknowledged at a time, and exits.
func TestMain(m *testing.M) {
	spec := os.Getenv(publisherEnv)
	if spec == "" {
		os.Exit(m.Run())
	}
	f := strings.Split(spec, "|")
	qos, _ := strconv.Atoi(f[2])
	n, _ := strconv.Atoi(f[3])
	client := paho.NewClient(paho.NewClientOptions().AddBroker(f[0]).SetClientID("bench-pub-" + f[1]).
		SetConnectTimeout(2 * time.Second).SetMaxResumePubInFlight(1000))
	if tok := client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		fmt.Fprintln(os.Stderr, "publisher: cannot connect:", tok.Error())
		os.Exit(1)
	}
	payload := []byte(modulePayload())
	var window []paho.Token
	for i := range n {
		window = append(window, client.Publish(f[1], byte(qos), false, payload))
		if len(window) == 1000 || i == n-1 {
			for _, t := range window {
				if !t.WaitTimeout(time.Minute) || t.Error() != nil {
					fmt.Fprintln(os.Stderr, "publisher: publish failed:", t.Error())
					os.Exit(1)
				}
			}
			window = window[:0]
		}
	}
	client.Disconnect(1000)
	os.Exit(0)
}
