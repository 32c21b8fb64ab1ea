package detector

import (
	"runtime"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/cputime"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// BenchmarkEngine feeds a fleet of 1024 cells (voltage and temperature,
// 64 module temperatures) polled every 10 s, ticking once per poll as the
// replay driver does. Steady state must not allocate.
func BenchmarkEngine(b *testing.B) {
	reg := telemetry.NewRegistry()
	var poll []telemetry.Sample
	for m := 1; m <= 64; m++ {
		str := string(rune('0' + 1 + (m-1)/16))
		mod := itoa(m)
		mid, _ := reg.Intern(telemetry.Entity{UPS: "ups-a", String: str, Module: mod})
		poll = append(poll, telemetry.Sample{Entity: mid, Metric: telemetry.ModuleTemperatureCelsius, Value: 30})
		for c := 1; c <= 16; c++ {
			id, _ := reg.Intern(telemetry.Entity{UPS: "ups-a", String: str, Module: mod, Cell: itoa(c)})
			poll = append(poll,
				telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: 4.05 + float64(c)*0.001},
				telemetry.Sample{Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: 28 + float64(c%5)*0.1})
		}
	}
	eng := New(DefaultConfig(), reg, nil)
	out := make([]Change, 0, 16)
	t := base
	step := func() {
		for i := range poll {
			s := poll[i]
			s.Time = t
			out = eng.Observe(s, out[:0])
		}
		out = eng.Tick(t, out[:0])
		t += int64(10 * time.Second)
	}
	for range 10 { // warm up: states created, intervals learned
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		step()
		n += len(poll)
	}
	b.ReportMetric(float64(n)/(cputime.Process()-cpu0).Seconds(), "samples/cpu-s")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// BenchmarkMemoryPerCell reports the live heap per cell (engine state and
// registry) once a 4096-cell fleet reporting each cell's temperature and
// voltage has warmed up.
func BenchmarkMemoryPerCell(b *testing.B) { benchMemory(b, true) }

// BenchmarkMemoryVoltageOnlyPerCell is the same for a fleet whose BMSs
// report cell voltages only (temperatures per module, or none).
func BenchmarkMemoryVoltageOnlyPerCell(b *testing.B) { benchMemory(b, false) }

func benchMemory(b *testing.B, temps bool) {
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		reg := telemetry.NewRegistry()
		eng := New(DefaultConfig(), reg, nil)
		const strings, modules, cells = 16, 16, 16
		var ids []telemetry.EntityID
		for s := 1; s <= strings; s++ {
			for m := 1; m <= modules; m++ {
				for c := 1; c <= cells; c++ {
					id, _ := reg.Intern(telemetry.Entity{UPS: "ups-a", String: itoa(s), Module: itoa(m), Cell: itoa(c)})
					ids = append(ids, id)
				}
			}
		}
		for p := 0; p < 40; p++ {
			t := base + int64(p)*int64(30*time.Second)
			for i, id := range ids {
				if temps {
					eng.Observe(telemetry.Sample{Time: t, Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: 25 + float64(i%7)*0.1}, nil)
				}
				eng.Observe(telemetry.Sample{Time: t, Entity: id, Metric: telemetry.CellVoltageVolts, Value: 4.05 + float64(i%5)*0.001}, nil)
			}
			eng.Tick(t+int64(10*time.Second), nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(ids)), "B/cell")
		runtime.KeepAlive(eng)
		runtime.KeepAlive(ids)
	}
}
