package modbus

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// rtuGateway is an RTU-over-TCP gateway in the test: it answers read
// holding registers from banks per unit, stays silent for unknown units
// (a dead unit behind the gateway), and corrupts one answer's CRC on
// request.
type rtuGateway struct {
	mu      sync.Mutex
	units   map[byte]Registers
	corrupt bool
	l       net.Listener
}

func startRTUGateway(t *testing.T, units map[byte]Registers) *rtuGateway {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &rtuGateway{units: units, l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return g
}

func (g *rtuGateway) serve(c net.Conn) {
	defer c.Close()
	req := make([]byte, 8)
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		if crc16(req[:6]) != uint16(req[6])|uint16(req[7])<<8 || req[1] != 3 {
			continue
		}
		g.mu.Lock()
		regs, ok := g.units[req[0]]
		corrupt := g.corrupt
		g.corrupt = false
		g.mu.Unlock()
		if !ok {
			continue // a dead unit: no answer at all
		}
		addr, n := uint16(req[2])<<8|uint16(req[3]), uint16(req[4])<<8|uint16(req[5])
		pdu := []byte{3, byte(2 * n)}
		for i := uint16(0); i < n; i++ {
			v, ok := regs[addr+i]
			if !ok {
				pdu = []byte{0x83, 2} // illegal data address
				break
			}
			pdu = append(pdu, byte(v>>8), byte(v))
		}
		frame := rtuFrame(req[0], pdu)
		if corrupt {
			frame[len(frame)-1] ^= 0xFF
		}
		c.Write(frame)
	}
}

func TestRTUOverTCP(t *testing.T) {
	g := startRTUGateway(t, map[byte]Registers{1: {100: 3301, 101: 0xFFF6}, 2: {100: 42}})
	link := NewRTUOverTCPLink(g.l.Addr().String(), 200*time.Millisecond)
	defer link.Close()
	ctx := context.Background()
	read := func(unit byte, start, n uint16) ([]uint16, *ReadError) {
		return link.Read(ctx, unit, false, Block{Start: start, Count: n})
	}
	if v, err := read(1, 100, 2); err != nil || v[0] != 3301 || v[1] != 0xFFF6 {
		t.Fatalf("unit 1: %v %v", v, err)
	}
	if _, err := read(1, 100, 3); err == nil || err.Kind != ErrException || err.Exception != 2 {
		t.Errorf("unmapped register: %v, want exception 2", err)
	}
	if _, err := read(9, 100, 1); err == nil || err.Kind != ErrTimeout {
		t.Errorf("dead unit: %v, want a timeout", err)
	}
	if v, err := read(2, 100, 1); err != nil || v[0] != 42 {
		t.Errorf("unit 2 after the dead unit's timeout: %v %v", v, err)
	}
	g.mu.Lock()
	g.corrupt = true
	g.mu.Unlock()
	if _, err := read(1, 100, 1); err == nil || err.Kind != ErrProtocol {
		t.Errorf("corrupt CRC: %v, want a protocol error", err)
	}
	if v, err := read(1, 100, 1); err != nil || v[0] != 3301 {
		t.Errorf("after the corrupt answer: %v %v", v, err)
	}
}

func TestCRC16(t *testing.T) {
	// A well-known Modbus RTU request: unit 1, read holding registers 0..1.
	if got := crc16([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x02}); got != 0x0BC4 {
		t.Errorf("crc16 = %04x, want 0bc4 (bytes c4 0b on the wire)", got)
	}
}
