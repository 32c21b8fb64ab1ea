package modbus

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// fakeBMS is an in-process Modbus server: register banks per unit id, an
// optional stall per unit, an optional register per unit whose reads are
// answered only after a long stall (a block the unit never answers in
// time), and a record of every function it was asked for and of the reads
// of each unit.
type fakeBMS struct {
	mu    sync.Mutex
	units map[uint8]Registers
	stall map[uint8]time.Duration
	mute  map[uint8]uint16
	calls []string
	reads map[uint8]int
}

// muteStall is how long a read of a muted register waits: far beyond any
// test's timeout.
const muteStall = 3 * time.Second

func (f *fakeBMS) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeBMS) HandleCoils(req *sv.CoilsRequest) ([]bool, error) {
	f.record(fmt.Sprintf("coils write=%v", req.IsWrite))
	return nil, sv.ErrIllegalFunction
}

func (f *fakeBMS) HandleDiscreteInputs(*sv.DiscreteInputsRequest) ([]bool, error) {
	f.record("discrete inputs")
	return nil, sv.ErrIllegalFunction
}

func (f *fakeBMS) HandleHoldingRegisters(req *sv.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		f.record("holding write")
		return nil, sv.ErrIllegalFunction
	}
	f.record("fc3")
	return f.read(req.UnitId, req.Addr, req.Quantity)
}

func (f *fakeBMS) HandleInputRegisters(req *sv.InputRegistersRequest) ([]uint16, error) {
	f.record("fc4")
	return f.read(req.UnitId, req.Addr, req.Quantity)
}

func (f *fakeBMS) read(unit uint8, addr, n uint16) ([]uint16, error) {
	f.mu.Lock()
	stall, bank := f.stall[unit], f.units[unit]
	if m, ok := f.mute[unit]; ok && m >= addr && m-addr < n {
		stall = muteStall
	}
	if f.reads == nil {
		f.reads = map[uint8]int{}
	}
	f.reads[unit]++
	f.mu.Unlock()
	time.Sleep(stall)
	out := make([]uint16, n)
	for i := range out {
		v, ok := bank[addr+uint16(i)]
		if !ok {
			return nil, sv.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}

func (f *fakeBMS) setStall(unit uint8, d time.Duration) {
	f.mu.Lock()
	f.stall[unit] = d
	f.mu.Unlock()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startServer serves f on addr. It takes up to 8 clients: the tests that
// time out requests leave their abandoned connections with it for as
// long as the stalled read holds them (300 ms to 3 s), and a refused dial
// would put the link in backoff, failing requests that the test counts.
func startServer(t *testing.T, addr string, f *fakeBMS) *sv.ModbusServer {
	t.Helper()
	s, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, Timeout: 30 * time.Second, MaxClients: 8,
		Logger: log.New(io.Discard, "", 0)}, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// servedSoltaro serves soltaroBank as unit 1 on a free loopback port for
// the rest of the test and returns the fake and a link to it.
func servedSoltaro(t *testing.T, timeout time.Duration) (*fakeBMS, *Link) {
	t.Helper()
	addr := freePort(t)
	f := &fakeBMS{units: map[uint8]Registers{1: soltaroBank()}, stall: map[uint8]time.Duration{}}
	srv := startServer(t, addr, f)
	t.Cleanup(func() { srv.Stop() })
	link := NewTCPLink(addr, timeout)
	t.Cleanup(func() { link.Close() })
	return f, link
}

// soltaroBank is a 2-module Soltaro rack with known values.
func soltaroBank() Registers {
	regs := Registers{0x2100: 7680, 0x2101: 0xFF38, 0x2103: 87, 0x2104: 96, 0x2140: 0, 0x2141: 0, 0x2185: 0}
	for n := 0; n < 24; n++ {
		regs[0x2800+uint16(n)] = uint16(3300 + n)
		regs[0x2C00+uint16(n)] = uint16(250 + n)
	}
	return regs
}

func soltaro(t *testing.T) *Map {
	m, err := Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	m.SetModules(2)
	return m
}

func value(p Poll, metric telemetry.Metric, module, cell string) float64 {
	v, ok := reading(p.Decoded, metric, module, cell)
	if !ok {
		return math.NaN()
	}
	return v
}

func TestPollReadsOnlyAndDecodes(t *testing.T) {
	f, link := servedSoltaro(t, time.Second)
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	p := dev.Poll(context.Background())
	if len(p.Errors) != 0 {
		t.Fatalf("errors: %v", p.Errors)
	}
	if v := value(p, telemetry.CellVoltageVolts, "2", "12"); math.Abs(v-3.323) > 1e-9 {
		t.Errorf("cell 2/12 = %v V, want 3.323", v)
	}
	reg := telemetry.NewRegistry()
	samples, rejected := dev.Samples(p, reg, nil)
	if len(samples) != 52 || rejected != 0 {
		t.Errorf("%d samples (%d rejected), want 52", len(samples), rejected)
	}
	if id, ok := reg.Lookup(telemetry.Entity{UPS: "ups-a", String: "1", Module: "1", Cell: "3"}); !ok || id == 0 {
		t.Error("cell ups-a/1/1/3 was not interned")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c != "fc3" {
			t.Errorf("the server saw %q: only read function codes may be sent", c)
		}
	}
	if len(f.calls) != len(dev.blocks) {
		t.Errorf("%d requests for %d planned blocks", len(f.calls), len(dev.blocks))
	}
}

// A server restart breaks the connection; the link redials (after its
// backoff) without the daemon restarting.
func TestRecoversFromServerRestart(t *testing.T) {
	addr := freePort(t)
	f := &fakeBMS{units: map[uint8]Registers{1: soltaroBank()}, stall: map[uint8]time.Duration{}}
	srv := startServer(t, addr, f)
	link := NewTCPLink(addr, 500*time.Millisecond)
	defer link.Close()
	clock := time.Now()
	var mu sync.Mutex
	link.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	if p := dev.Poll(context.Background()); len(p.Errors) != 0 {
		t.Fatalf("first poll: %v", p.Errors)
	}
	srv.Stop()
	if p := dev.Poll(context.Background()); len(p.Decoded.Readings) != 0 || len(p.Errors) == 0 || dev.Health().Up {
		t.Fatalf("poll with the server down: %d readings, %d errors, up=%v: want nothing read and the device down",
			len(p.Decoded.Readings), len(p.Errors), dev.Health().Up)
	}
	srv = startServer(t, addr, f)
	defer srv.Stop()
	mu.Lock()
	clock = clock.Add(time.Minute) // past any backoff
	mu.Unlock()
	p := dev.Poll(context.Background())
	if len(p.Errors) != 0 || value(p, telemetry.StringVoltageVolts, "", "") != 768 {
		t.Fatalf("after restart: errors %v, voltage %v", p.Errors, value(p, telemetry.StringVoltageVolts, "", ""))
	}
	if h := dev.Health(); h.Errors["connection"] == 0 || !h.Up {
		t.Errorf("health %+v: want connection errors counted and the device up again", h)
	}
}

// After a request times out, the late answer must not be taken for the
// next request's (goburrow's transaction-id desync): the next poll reads
// the right values.
func TestRecoversAfterTimeout(t *testing.T) {
	f, link := servedSoltaro(t, 200*time.Millisecond)
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	f.setStall(1, 400*time.Millisecond)
	if p := dev.Poll(context.Background()); len(p.Errors) == 0 {
		t.Fatal("a stalled unit answered in time")
	}
	f.setStall(1, 0)
	time.Sleep(500 * time.Millisecond) // let the stalled answers go out on the old connection
	for i := 0; i < 3; i++ {
		p := dev.Poll(context.Background())
		if len(p.Errors) != 0 || value(p, telemetry.CellTemperatureCelsius, "2", "1") != 26.2 {
			t.Fatalf("poll %d after the timeout: errors %v, cell 2/1 = %v", i, p.Errors, value(p, telemetry.CellTemperatureCelsius, "2", "1"))
		}
	}
	if dev.Health().Errors["timeout"] == 0 {
		t.Error("timeouts not counted")
	}
}

// An exception for one block (a register the device lacks) costs that block
// only.
func TestExceptionCostsOneBlock(t *testing.T) {
	addr := freePort(t)
	bank := soltaroBank()
	delete(bank, 0x2104) // the device lacks SOH
	f := &fakeBMS{units: map[uint8]Registers{1: bank}, stall: map[uint8]time.Duration{}}
	srv := startServer(t, addr, f)
	defer srv.Stop()
	link := NewTCPLink(addr, time.Second)
	defer link.Close()
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	p := dev.Poll(context.Background())
	if len(p.Errors) != 1 || p.Errors[0].Err.Kind != ErrException || p.Errors[0].Err.Exception != 2 {
		t.Fatalf("errors %v: want one illegal-data-address exception", p.Errors)
	}
	if v := value(p, telemetry.CellVoltageVolts, "1", "1"); v != 3.3 {
		t.Errorf("cell voltages lost with the SOH block: 1/1 = %v", v)
	}
	if h := dev.Health(); h.Errors["exception_2"] != 1 || !h.Up {
		t.Errorf("health %+v", h)
	}
}

// A unit that stalls behind a shared gateway costs the others at most its
// timeout: they keep getting read.
func TestStalledUnitDoesNotStopOthers(t *testing.T) {
	addr := freePort(t)
	f := &fakeBMS{units: map[uint8]Registers{1: soltaroBank(), 2: soltaroBank()}, stall: map[uint8]time.Duration{2: 300 * time.Millisecond}}
	srv := startServer(t, addr, f)
	defer srv.Stop()
	link := NewTCPLink(addr, 100*time.Millisecond)
	defer link.Close()
	good := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	bad := NewDevice(DeviceConfig{Name: "rack2", UPS: "ups-a", String: "2", Unit: 2, Map: soltaro(t), Interval: time.Second}, link)
	var wg sync.WaitGroup
	var goodErrs []int
	var mu sync.Mutex
	for i := 0; i < 3; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); bad.Poll(context.Background()) }()
		go func() {
			defer wg.Done()
			p := good.Poll(context.Background())
			mu.Lock()
			goodErrs = append(goodErrs, len(p.Errors))
			mu.Unlock()
		}()
		wg.Wait()
	}
	// The good unit's blocks may fail while the stalled unit's late
	// answers drain from the shared connection, but each poll must read
	// most of it.
	if slices.Max(goodErrs) == len(good.blocks) {
		t.Errorf("the healthy unit lost whole polls: errors per poll %v of %d blocks", goodErrs, len(good.blocks))
	}
	if bad.Health().Up {
		t.Error("the stalled unit is reported up")
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// A map sized for more modules than the rack has (the profile's 20 against
// a 2-module rack) still delivers the cells that exist: the block that runs
// into missing registers is split, and the split is kept.
func TestSplitsBlocksOnMissingRegisters(t *testing.T) {
	_, link := servedSoltaro(t, time.Second)
	m, err := Profile("soltaro_single_rack_vc") // 20 modules of 12 cells mapped
	if err != nil {
		t.Fatal(err)
	}
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "u", String: "1", Unit: 1, Map: m, Interval: time.Second}, link)
	for poll := 1; poll <= 3; poll++ {
		p := dev.Poll(context.Background())
		cells := 0
		for _, r := range p.Decoded.Readings {
			if r.Metric == telemetry.CellVoltageVolts {
				cells++
			}
		}
		if cells != 24 {
			t.Errorf("poll %d: %d cell voltages, want the rack's 24", poll, cells)
		}
	}
}

// A peer that hangs up (a BMS at its client limit, a restart) is a
// connection error and backs off, not a protocol error redialled per block.
func TestHangupIsAConnectionError(t *testing.T) {
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	link := NewTCPLink(l.Addr().String(), time.Second)
	defer link.Close()
	_, rerr := link.Read(context.Background(), 1, false, Block{Start: 0, Count: 1})
	if rerr == nil || rerr.Kind != ErrConnection {
		t.Fatalf("hang-up: %v, want a connection error", rerr)
	}
	_, rerr = link.Read(context.Background(), 1, false, Block{Start: 0, Count: 1})
	if rerr == nil || rerr.Kind != ErrConnection || !strings.Contains(rerr.Error(), "next attempt in") {
		t.Errorf("second read: %v, want the backoff to hold off the redial", rerr)
	}
}
