package modbus

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	gb "github.com/goburrow/modbus"

	"github.com/cellwarden/cellwarden/collector/modbus/modbustest"
	"github.com/cellwarden/cellwarden/internal/cputime"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// bmsMap is a BMS with 256 cells (16 modules x 16), voltage and temperature
// per cell: 512 registers in 6 blocks.
const bmsMap = `name: bench
points:
  - {name: v, address: 4096, type: uint16, scale: 0.001, metric: cell_voltage_volts, array: {modules: 16, per_module: 16}}
  - {name: t, address: 8192, type: int16, scale: 0.1, metric: cell_temperature_celsius, array: {modules: 16, per_module: 16}}
`

// BenchmarkPoll200BMS polls 200 simulated BMSs of 256 cells each, one
// round per iteration, over 4 links (a gateway each, 50 units behind it),
// as a 1 s poll interval would. It reports the CPU time of a round (client
// and the in-process server together) and the live heap.
func BenchmarkPoll200BMS(b *testing.B) {
	m, err := ParseMap([]byte(bmsMap), "bench")
	if err != nil {
		b.Fatal(err)
	}
	const gateways, perGateway = 4, 50
	var devices [][]*Device
	for g := 0; g < gateways; g++ {
		bank := NewBank(false)
		for u := 1; u <= perGateway; u++ {
			bank.Fill(uint8(u), m)
		}
		addr := serveBank(b, bank)
		link := NewTCPLink(addr, time.Second)
		defer link.Close()
		var ds []*Device
		for u := 1; u <= perGateway; u++ {
			ds = append(ds, NewDevice(DeviceConfig{Name: fmt.Sprint(u), UPS: "u", String: fmt.Sprint(g*perGateway + u),
				Unit: byte(u), Map: m, Interval: time.Second}, link))
		}
		devices = append(devices, ds)
	}
	round := func() int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		readings := 0
		for _, ds := range devices {
			for _, d := range ds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := d.Poll(context.Background())
					if len(p.Errors) > 0 {
						b.Error(p.Errors[0].Err)
					}
					mu.Lock()
					readings += len(p.Decoded.Readings)
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		return readings
	}
	round() // connect
	cpu0 := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for b.Loop() {
		total += round()
	}
	b.StopTimer()
	cpu := (cputime.Process() - cpu0) / time.Duration(b.N)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(total)/float64(b.N), "readings/round")
	b.ReportMetric(cpu.Seconds()*1000, "cpu-ms/round")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}

// serveBank serves bank on a free loopback port until the benchmark ends.
func serveBank(b *testing.B, bank *Bank) string { return modbustest.Serve(b, bank) }

// BenchmarkPollAgainstBareGoburrow reads the same blocks of one 256-cell
// BMS from an in-process server, once per iteration, with the collector
// (link, device, decoding and Samples, as the daemon does) and with a bare
// goburrow client on its own persistent connection: the ceiling of that
// connection. The ratio of the two ns/op is the collector's share of the
// connection's register throughput.
func BenchmarkPollAgainstBareGoburrow(b *testing.B) {
	m, err := ParseMap([]byte(bmsMap), "bench")
	if err != nil {
		b.Fatal(err)
	}
	bank := NewBank(false)
	bank.Fill(1, m)
	addr := serveBank(b, bank)
	blocks := m.Plan(0)
	b.Run("collector", func(b *testing.B) {
		link := NewTCPLink(addr, time.Second)
		defer link.Close()
		dev := NewDevice(DeviceConfig{Name: "1", UPS: "u", String: "1", Unit: 1, Map: m, Interval: time.Second}, link)
		reg := telemetry.NewRegistry()
		var out []telemetry.Sample
		b.ReportAllocs()
		for b.Loop() {
			p := dev.Poll(context.Background())
			if len(p.Errors) > 0 {
				b.Fatal(p.Errors[0].Err)
			}
			out, _ = dev.Samples(p, reg, out[:0])
		}
		b.ReportMetric(float64(len(out)), "samples/poll")
	})
	b.Run("goburrow", func(b *testing.B) {
		h := gb.NewTCPClientHandler(addr)
		h.Timeout, h.SlaveId = time.Second, 1
		defer h.Close()
		client := gb.NewClient(h)
		b.ReportAllocs()
		for b.Loop() {
			for _, blk := range blocks {
				if _, err := client.ReadHoldingRegisters(blk.Start, blk.Count); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDecode decodes one poll of a 256-cell BMS (512 registers) from
// the dense image a Device fills, and from a Registers map: the CPU the
// collector spends on a poll beyond the network.
func BenchmarkDecode(b *testing.B) {
	m, err := ParseMap([]byte(bmsMap), "bench")
	if err != nil {
		b.Fatal(err)
	}
	blocks := m.Plan(0)
	regs := Registers{}
	im := newImage(blocks)
	for _, blk := range blocks {
		vals := make([]uint16, blk.Count)
		for i := range vals {
			vals[i] = uint16(3300 + i)
			regs[blk.Start+uint16(i)] = vals[i]
		}
		im.store(blk.Start, vals)
	}
	for _, bc := range []struct {
		name string
		d    dump
	}{{"image", im}, {"map", regs}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf []Reading
			b.ReportAllocs()
			for b.Loop() {
				buf = m.decode(bc.d, buf).Readings
			}
			if len(buf) != 512 {
				b.Fatalf("decoded %d readings, want 512", len(buf))
			}
		})
	}
}
