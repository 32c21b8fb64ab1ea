package modbus

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// soltaroAlarms is the register of the Soltaro map's level-2 alarm word:
// the third of its six blocks for a 2-module rack.
const soltaroAlarms = 0x2140

// pollValues returns the values of a poll that every block but the alarm
// block gives: the string's voltage (first block), SOH (second), and the
// last cell's voltage and temperature (the two blocks after the alarms).
func pollValues(p Poll) [4]float64 {
	return [4]float64{value(p, telemetry.StringVoltageVolts, "", ""), value(p, telemetry.StringSOHRatio, "", ""),
		value(p, telemetry.CellVoltageVolts, "2", "12"), value(p, telemetry.CellTemperatureCelsius, "2", "12")}
}

// wantValues are pollValues of soltaroBank.
var wantValues = [4]float64{768, 0.96, 3.323, 27.3}

// A unit that never answers one block (here its alarm word) loses only
// that block: every other block's values arrive on every poll, from the
// first on; the silent block costs one timeout a poll and is read last.
func TestSilentBlockCostsOnlyItself(t *testing.T) {
	addr := freePort(t)
	f := &fakeBMS{units: map[uint8]Registers{1: soltaroBank()}, stall: map[uint8]time.Duration{}, mute: map[uint8]uint16{1: soltaroAlarms}}
	srv := startServer(t, addr, f)
	defer srv.Stop()
	link := NewTCPLink(addr, time.Second)
	defer link.Close()
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second,
		Timeout: 100 * time.Millisecond}, link)
	blocks := len(dev.blocks)
	for poll := 1; poll <= 4; poll++ {
		p := dev.Poll(context.Background())
		if got := pollValues(p); got != wantValues {
			t.Errorf("poll %d: values %v, want %v (errors %v)", poll, got, wantValues, p.Errors)
		}
		if len(p.Errors) != 1 || p.Errors[0].Err.Kind != ErrTimeout || p.Errors[0].Block.Start != soltaroAlarms {
			t.Errorf("poll %d: errors %v, want one timeout for the alarm block", poll, p.Errors)
		}
		if last := dev.blocks[len(dev.blocks)-1]; last.Start != soltaroAlarms {
			t.Errorf("poll %d: the next poll order %v does not read the silent block last", poll, dev.blocks)
		}
	}
	f.mu.Lock()
	reads := f.reads[1]
	f.mu.Unlock()
	if reads != 4*blocks {
		t.Errorf("%d reads in 4 polls of %d blocks, want every block read once a poll", reads, blocks)
	}
	if h := dev.Health(); !h.Up || h.Errors["timeout"] != 4 {
		t.Errorf("health %+v: want up, with one timeout a poll", h)
	}
}

// A dead unit behind a shared gateway costs one timeout a poll (one
// request), and a unit that dies two on its first poll after answering,
// not one per block.
func TestDeadUnitCostsOneTimeoutPerPoll(t *testing.T) {
	f, link := servedSoltaro(t, time.Second)
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second,
		Timeout: 100 * time.Millisecond}, link)
	reads := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := f.reads[1]
		f.reads[1] = 0
		return n
	}
	if p := dev.Poll(context.Background()); len(p.Errors) != 0 {
		t.Fatalf("healthy poll: %v", p.Errors)
	}
	blocks := reads()
	// A stall of 400 ms: the server lets go of the abandoned connections
	// soon (it serves 8 clients at most).
	f.setStall(1, 400*time.Millisecond)
	want := []int{2, 1, 1} // the poll it dies in tries the next block once
	for i, w := range want {
		p := dev.Poll(context.Background())
		if n := reads(); n != w {
			t.Errorf("poll %d after the unit died: %d requests, want %d (of %d blocks)", i+1, n, w, blocks)
		}
		if len(p.Decoded.Readings) != 0 || dev.Health().Up {
			t.Errorf("poll %d after the unit died: %d readings, up %v", i+1, len(p.Decoded.Readings), dev.Health().Up)
		}
	}
	f.setStall(1, 0)
	time.Sleep(500 * time.Millisecond) // until the server let go of the abandoned connections
	if p := dev.Poll(context.Background()); len(p.Errors) != 0 || pollValues(p) != wantValues {
		t.Errorf("after the unit came back: errors %v, values %v", p.Errors, pollValues(p))
	}
}

// resettingBMS is a raw Modbus TCP server holding soltaroBank as unit 1
// that resets the connection (RST) whenever a read covers one register,
// and counts the connections it accepted.
type resettingBMS struct {
	l     net.Listener
	bank  Registers
	reset uint16

	mu      sync.Mutex
	accepts int
}

func startResettingBMS(t *testing.T, reset uint16) *resettingBMS {
	t.Helper()
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	s := &resettingBMS{l: l, bank: soltaroBank(), reset: reset}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepts++
			s.mu.Unlock()
			go s.serve(c.(*net.TCPConn))
		}
	}()
	t.Cleanup(func() { l.Close() })
	return s
}

func (s *resettingBMS) serve(c *net.TCPConn) {
	defer c.Close()
	req := make([]byte, 12) // MBAP header (7) + function, address, quantity
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		addr, n := binary.BigEndian.Uint16(req[8:]), binary.BigEndian.Uint16(req[10:])
		if s.reset >= addr && s.reset-addr < n {
			c.SetLinger(0) // close with RST
			return
		}
		pdu := []byte{3, byte(2 * n)}
		for i := range n {
			pdu = binary.BigEndian.AppendUint16(pdu, s.bank[addr+i])
		}
		resp := append([]byte{req[0], req[1], 0, 0}, 0, 0, req[6])
		binary.BigEndian.PutUint16(resp[4:], uint16(len(pdu)+1))
		if _, err := c.Write(append(resp, pdu...)); err != nil {
			return
		}
	}
}

// A connection reset on one block (a gateway that drops the connection
// on a request it dislikes) costs that block: the link dials again at
// once, without backoff, since the connection had answered, and the poll
// reads the other blocks.
func TestResetOnOneBlockRedialsAndContinues(t *testing.T) {
	s := startResettingBMS(t, soltaroAlarms)
	link := NewTCPLink(s.l.Addr().String(), time.Second)
	defer link.Close()
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: time.Second}, link)
	for poll := 1; poll <= 3; poll++ {
		p := dev.Poll(context.Background())
		if got := pollValues(p); got != wantValues {
			t.Errorf("poll %d: values %v, want %v (errors %v)", poll, got, wantValues, p.Errors)
		}
		if len(p.Errors) != 1 || p.Errors[0].Err.Kind != ErrConnection || p.Errors[0].Block.Start != soltaroAlarms {
			t.Errorf("poll %d: errors %v, want one connection error for the alarm block", poll, p.Errors)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Poll 1 dials, is reset at its third block and dials again at once;
	// polls 2 and 3 read the alarm block last, so poll 3 dials once and
	// poll 2 not at all.
	if s.accepts != 3 {
		t.Errorf("%d connections in 3 polls, want 3", s.accepts)
	}
}

// Each request is bounded by its own device's timeout, not by the timeout
// of the link (of the first unit configured on the endpoint): a slow unit
// with a long timeout is read, a unit as slow with a short one times out.
func TestEachDeviceHasItsOwnTimeout(t *testing.T) {
	addr := freePort(t)
	f := &fakeBMS{units: map[uint8]Registers{1: soltaroBank(), 2: soltaroBank()},
		stall: map[uint8]time.Duration{1: 150 * time.Millisecond, 2: 150 * time.Millisecond}}
	srv := startServer(t, addr, f)
	defer srv.Stop()
	link := NewTCPLink(addr, 50*time.Millisecond)
	defer link.Close()
	patient := NewDevice(DeviceConfig{Name: "rack1", UPS: "ups-a", String: "1", Unit: 1, Map: soltaro(t), Interval: 5 * time.Second,
		Timeout: 2 * time.Second}, link)
	hasty := NewDevice(DeviceConfig{Name: "rack2", UPS: "ups-a", String: "2", Unit: 2, Map: soltaro(t), Interval: 5 * time.Second,
		Timeout: 50 * time.Millisecond}, link)
	for i := range 2 {
		if p := patient.Poll(context.Background()); len(p.Errors) != 0 || pollValues(p) != wantValues {
			t.Errorf("poll %d of the slow unit with a 2 s timeout: errors %v, values %v", i+1, p.Errors, pollValues(p))
		}
		if p := hasty.Poll(context.Background()); len(p.Errors) == 0 || p.Errors[0].Err.Kind != ErrTimeout {
			t.Errorf("poll %d of the slow unit with a 50 ms timeout: errors %v, want a timeout", i+1, p.Errors)
		}
	}
	// The link's own timeout still applies to requests that bring none.
	if _, err := link.Read(context.Background(), 1, false, Block{Start: 0x2100, Count: 1}); err == nil || err.Kind != ErrTimeout {
		t.Errorf("Read with the link's 50 ms timeout of a unit that answers in 150 ms: %v, want a timeout", err)
	}
}
