package mqtt

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// stageConfig subscribes to the layouts of make bench-peers (bench1: one
// reading a message; bench16: 16 cells as object members) and to the
// reference module layout.
const stageConfig = `
mqtt:
  - broker: tcp://127.0.0.1:1883
    client_id: bench
    subscriptions:` + moduleSubscription + `
      - topic: bench1/{ups}/{string}/{module}/{cell}
        fields:
          - {path: v, metric: cell_voltage_volts}
      - topic: bench16/{ups}/{string}/{module}
        fields:
          - {path: "[*]", metric: cell_voltage_volts}
      - topic: bmsv/{ups}/{string}/{module}/{cell}/{metric}
        format: value
`

// stageLayout is one kind of message: its topics (cycled through, so that
// the benchmarks see many entities as the daemon does) and payload.
type stageLayout struct {
	name    string
	topics  []string
	payload []byte
	samples int
}

// stageLayouts returns the layouts of the stage benchmarks, each over
// 20 000 cells as in make bench-peers.
func stageLayouts() []stageLayout {
	var one, sixteen, module, value []string
	for i := range 20000 {
		cell, mod := i%16+1, i/16
		one = append(one, fmt.Sprintf("bench1/u%d/%d/%d/%d", mod/64, mod/16%4+1, mod%16+1, cell))
		value = append(value, fmt.Sprintf("bmsv/u%d/%d/%d/%d/cell_voltage_volts", mod/64, mod/16%4+1, mod%16+1, cell))
	}
	for i := range 20000 / 16 {
		sixteen = append(sixteen, fmt.Sprintf("bench16/u%d/%d/%d", i/64, i/16%4+1, i%16+1))
		module = append(module, fmt.Sprintf("bms/u%d/%d/%d", i/64, i/16%4+1, i%16+1))
	}
	var p strings.Builder
	p.WriteByte('{')
	for c := range 16 {
		if c > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `"%d":%.3f`, c+1, 3.301+float64(c)/1000)
	}
	p.WriteByte('}')
	return []stageLayout{
		{"one", one, []byte(`{"v":3.301}`), 1},
		{"sixteen", sixteen, []byte(p.String()), 16},
		{"module", module, []byte(modulePayload()), 33},
		{"value", value, []byte("3.301"), 1},
	}
}

// BenchmarkDecode measures the decoding of one message (topic and payload)
// into readings: template match and payload, no interning, no broker.
//
//	go test -run '^$' -bench 'Decode$' -benchmem ./collector/mqtt
func BenchmarkDecode(b *testing.B) {
	cfg := parseCollector(b, stageConfig)
	for _, l := range stageLayouts() {
		b.Run(l.name, func(b *testing.B) {
			var (
				doc   document
				out   []Reading
				dates []DateReading
				bad   []*DecodeError
			)
			n := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				topic := l.topics[i%len(l.topics)]
				for _, s := range cfg.subs {
					bind, ok := s.tmpl.Match(topic)
					if !ok {
						continue
					}
					out, dates, bad = s.decode(&doc, &bind, l.payload, 1, out[:0], dates[:0], bad[:0])
					break
				}
				if len(out) != l.samples || len(bad) != 0 {
					b.Fatalf("%s: %d readings, %d errors", topic, len(out), len(bad))
				}
				n += len(out)
			}
			b.ReportMetric(float64(n)/float64(b.N), "samples/op")
		})
	}
}

// BenchmarkProcessLayouts measures the consumer's whole work per message:
// match, decode, intern, health counters and the hand-over to emit.
//
//	go test -run '^$' -bench ProcessLayouts -benchmem ./collector/mqtt
func BenchmarkProcessLayouts(b *testing.B) {
	for _, l := range stageLayouts() {
		b.Run(l.name, func(b *testing.B) {
			c, err := New(parseCollector(b, stageConfig), telemetry.NewRegistry(), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			emit := func(s []telemetry.Sample) { n += len(s) }
			ms := make([]message, len(l.topics))
			for i := range l.topics {
				ms[i] = message{topic: l.topics[i], payload: l.payload, recv: 1}
			}
			c.consume(ms, emit) // every entity interned once, as in a running daemon
			n = 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.consume(ms[i%len(ms):i%len(ms)+1], emit)
			}
			if n != b.N*l.samples {
				b.Fatalf("%d samples, want %d", n, b.N*l.samples)
			}
			b.ReportMetric(float64(n)/float64(b.N), "samples/op")
		})
	}
}

// fakeMessage is a paho.Message as the client hands it to the handler.
type fakeMessage struct {
	topic   string
	payload []byte
}

func (m *fakeMessage) Duplicate() bool   { return false }
func (m *fakeMessage) Qos() byte         { return 1 }
func (m *fakeMessage) Retained() bool    { return false }
func (m *fakeMessage) Topic() string     { return m.topic }
func (m *fakeMessage) MessageID() uint16 { return 1 }
func (m *fakeMessage) Payload() []byte   { return m.payload }
func (m *fakeMessage) Ack()              {}

// BenchmarkHandler measures paho's message handler: the size check,
// counters and the hand-over to the bounded queue (drained every 1000
// messages outside the timer's concern: the consumer's side is
// BenchmarkProcessLayouts).
//
//	go test -run '^$' -bench Handler -benchmem ./collector/mqtt
func BenchmarkHandler(b *testing.B) {
	c, err := New(parseCollector(b, stageConfig), telemetry.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	l := stageLayouts()[0]
	msgs := make([]fakeMessage, len(l.topics))
	for i := range msgs {
		msgs[i] = fakeMessage{topic: l.topics[i], payload: l.payload}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.onMessage(nil, &msgs[i%len(msgs)])
		if i%1000 == 999 {
			drainQueue(c)
		}
	}
	drainQueue(c)
	if h := c.Health(); h.Dropped[DropQueueFull] != 0 {
		b.Fatalf("dropped %d", h.Dropped[DropQueueFull])
	}
}

// drainQueue empties the collector's queue without decoding.
func drainQueue(c *Collector) {
	c.qmu.Lock()
	clear(c.pending)
	c.pending = c.pending[:0]
	c.queued, c.queuedBytes = 0, 0
	c.qmu.Unlock()
	select {
	case <-c.wake:
	default:
	}
}
