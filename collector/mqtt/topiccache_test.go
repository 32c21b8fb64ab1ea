package mqtt

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The samples of messages whose cells change at random, by number, name
// and length, on a module topic and on a string topic (whose cells belong
// to several modules), concern the entities the payload names: the IDs
// kept per topic never stand in for another entity.
func TestTopicEntityIDsAtRandom(t *testing.T) {
	reg := telemetry.NewRegistry()
	c, err := New(parseCollector(t, `
mqtt:
  - broker: tcp://127.0.0.1:1883
    subscriptions:
      - topic: mod/{ups}/{string}/{module}
        fields:
          - {path: "m.c[*]", metric: cell_voltage_volts}
      - topic: str/{ups}/{string}
        fields:
          - {path: "m[*].c[*]", metric: cell_voltage_volts}
`), reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{reg: reg}
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"1", "2", "3", "12", "21", "123", "x", "xy"}
	// cells returns some of names in a random order, and them sorted as
	// the decoder reads an object's members.
	cells := func() (shuffled, sorted []string) {
		shuffled = slices.Clone(names)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = shuffled[:1+rng.IntN(len(names))]
		return shuffled, slices.Sorted(slices.Values(shuffled))
	}
	// object renders keys as a JSON object of values from value(key).
	object := func(keys []string, value func(string) string) string {
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q:%s", k, value(k))
		}
		return "{" + b.String() + "}"
	}
	// A message of module 2 on the module topic, or of some modules on
	// the string topic, and the rows it gives.
	var want []string
	v := 0
	for range 3000 {
		modules, sortedModules := []string{"2"}, []string{"2"}
		topic := "mod/u/1/2"
		if rng.IntN(2) == 0 {
			modules, sortedModules = cells()
			topic = "str/u/1"
		}
		sortedCells := map[string][]string{}
		values := map[[2]string]int{}
		payload := object(modules, func(m string) string {
			keys, sorted := cells()
			sortedCells[m] = sorted
			return `{"c":` + object(keys, func(k string) string {
				v++
				values[[2]string{m, k}] = v
				return fmt.Sprint(v)
			}) + "}"
		})
		if topic == "mod/u/1/2" {
			payload = strings.TrimSuffix(strings.TrimPrefix(payload, `{"2":`), "}")
		}
		for _, m := range sortedModules {
			for _, k := range sortedCells[m] {
				want = append(want, fmt.Sprintf("u/1/%s/%s cell_voltage_volts %d", m, k, values[[2]string{m, k}]))
			}
		}
		c.onMessage(nil, &fakeMessage{topic: topic, payload: []byte(`{"m":` + payload + "}")})
		c.drain(s.emit)
	}
	got := s.all()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("sample %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
}

// The first message of a topic sizes what is kept for it exactly: every
// reading, the names of the cells of 32 of them; the next messages
// allocate nothing.
func TestTopicIDsSizedByTheFirstMessage(t *testing.T) {
	c, err := New(parseCollector(t, fmt.Sprintf(benchConfig, "1883", 1)), telemetry.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ms := []message{{topic: "bms/u/1/2", payload: []byte(modulePayload()), recv: 1}}
	emit := func([]telemetry.Sample) {}
	c.consume(ms, emit)
	kept := c.topics["bms/u/1/2"]
	// Cells 1-9 and 10-16, for voltage and temperature.
	const cells = 2 * (9 + 7*2)
	if len(kept.ids) != moduleSamples || cap(kept.ids) != moduleSamples || len(kept.cells) != cells || cap(kept.cells) != cells {
		t.Errorf("kept %d of %d readings, %d of %d bytes of cells; want %d and %d exactly",
			len(kept.ids), cap(kept.ids), len(kept.cells), cap(kept.cells), moduleSamples, cells)
	}
	if n := testing.AllocsPerRun(100, func() { c.consume(ms, emit) }); n != 0 {
		t.Errorf("%v allocations a message, want 0", n)
	}
}

// BenchmarkTopicCacheMemory measures the entity IDs a collector keeps per
// topic: 6250 module topics of the reference layout (16 cells, voltage
// and temperature each, and the module's temperature: 33 readings), as a
// fleet of 100 k cells publishes them. The registry is filled beforehand
// and shared, so the live heap the collector gains over the topics is its
// cache (the map included); B/topic reports it.
//
//	go test -run '^$' -bench TopicCacheMemory -benchtime 5x ./collector/mqtt
func BenchmarkTopicCacheMemory(b *testing.B) {
	const topics = 6250
	cfg := parseCollector(b, fmt.Sprintf(benchConfig, "1883", 1))
	payload := []byte(modulePayload())
	ms := make([]message, topics)
	for i := range ms {
		ms[i] = message{topic: fmt.Sprintf("bms/u%d/%d/%d", i/64, i/16%4+1, i%16+1), payload: payload, recv: 1}
	}
	reg := telemetry.NewRegistry()
	emit := func([]telemetry.Sample) {}
	fill, err := New(cfg, reg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	fill.consume(ms, emit)
	var perTopic float64
	for b.Loop() {
		b.StopTimer()
		c, err := New(cfg, reg, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		c.consume(ms[:1], emit) // the scratch space, at its size for one message
		before := liveHeap()
		b.StartTimer()
		for i := 1; i < topics; i++ {
			c.consume(ms[i:i+1], emit)
		}
		b.StopTimer()
		perTopic += float64(liveHeap()-before) / (topics - 1)
		runtime.KeepAlive(c)
		b.StartTimer()
	}
	b.ReportMetric(perTopic/float64(b.N), "B/topic")
}

// liveHeap returns the bytes of live heap after a collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
