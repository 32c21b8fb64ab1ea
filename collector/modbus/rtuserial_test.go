package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: the RTU link opens the slave side
// like a serial port, the test answers on the master side.
func openPTY(t *testing.T) (master *os.File, slave string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	t.Cleanup(func() { m.Close() })
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

// answerPTY answers the read requests (8-byte RTU frames with a good CRC)
// that arrive on a pseudo-terminal's master side with the frame answer
// returns, or nothing when it returns nil, until the master is closed.
func answerPTY(master *os.File, answer func(req []byte) []byte) {
	req := make([]byte, 8)
	for {
		if _, err := io.ReadFull(master, req); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// EIO while the link has the port closed: wait for it to reopen.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if crc16(req[:6]) != uint16(req[6])|uint16(req[7])<<8 {
			continue
		}
		if frame := answer(req); frame != nil {
			master.Write(frame)
		}
	}
}

// A BMS on an RS-485 line (here a pseudo-terminal): the RTU link reads it,
// and a request for a unit that does not answer times out without
// disturbing the next one.
func TestRTUSerial(t *testing.T) {
	master, slave := openPTY(t)
	units := map[byte]Registers{1: {0x2100: 7680, 0x2101: 0xFF38}}
	go answerPTY(master, func(req []byte) []byte {
		regs, ok := units[req[0]]
		if !ok {
			return nil
		}
		addr, n := uint16(req[2])<<8|uint16(req[3]), uint16(req[4])<<8|uint16(req[5])
		pdu := []byte{3, byte(2 * n)}
		for i := uint16(0); i < n; i++ {
			v := regs[addr+i]
			pdu = append(pdu, byte(v>>8), byte(v))
		}
		return rtuFrame(req[0], pdu)
	})
	link := NewRTULink(slave, 19200, "E", 300*time.Millisecond)
	defer link.Close()
	ctx := context.Background()
	v, err := link.Read(ctx, 1, false, Block{Start: 0x2100, Count: 2})
	if err != nil || v[0] != 7680 || v[1] != 0xFF38 {
		t.Fatalf("unit 1 over RTU: %v %v", v, err)
	}
	if _, err := link.Read(ctx, 5, false, Block{Start: 0x2100, Count: 1}); err == nil || err.Kind != ErrTimeout {
		t.Errorf("silent unit 5: %v, want a timeout", err)
	}
	if v, err := link.Read(ctx, 1, false, Block{Start: 0x2100, Count: 1}); err != nil || v[0] != 7680 {
		t.Errorf("unit 1 after the timeout: %v %v", v, err)
	}
}

// A poll that overruns its interval makes Run skip (and count) the polls
// that fell due meanwhile, instead of queueing them.
func TestRunCountsSkippedPolls(t *testing.T) {
	_, link := servedSoltaro(t, time.Second)
	dev := NewDevice(DeviceConfig{Name: "rack1", UPS: "u", String: "1", Unit: 1, Map: soltaro(t), Interval: 10 * time.Second}, link)
	// The poll starts at t0; by the time it is handed over, 35 s have passed.
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	calls := 0
	dev.now = func() time.Time {
		calls++
		if calls == 1 {
			return t0
		}
		return t0.Add(35 * time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev.Run(ctx, func(Poll) { cancel() })
	if h := dev.Health(); h.Skipped != 3 || h.Polls != 1 {
		t.Errorf("health %+v: want 1 poll and the 3 that fell due during it skipped", h)
	}
}

// Units on one serial bus keep their own timeouts: the port, which takes
// its read timeout when opened, is opened again when a request brings
// another one. Unit 1 answers after 300 ms (each register holding its
// address): read within 1 s while the bus's own timeout is 100 ms, it
// answers; asked within 100 ms right after, it times out. Its late answer
// then waits in the port's buffer and spoils the next request (a silent
// unit's: a protocol error, not a timeout, as on a real bus), after which
// the port is opened afresh and unit 1 answers within 1 s again.
func TestRTUSerialTimeoutPerRequest(t *testing.T) {
	master, slave := openPTY(t)
	go answerPTY(master, func(req []byte) []byte {
		if req[0] != 1 {
			return nil // unit 5 is silent
		}
		addr, n := uint16(req[2])<<8|uint16(req[3]), uint16(req[4])<<8|uint16(req[5])
		pdu := []byte{3, byte(2 * n)}
		for i := range n {
			pdu = append(pdu, byte((addr+i)>>8), byte(addr+i))
		}
		time.Sleep(300 * time.Millisecond)
		return rtuFrame(1, pdu)
	})
	link := NewRTULink(slave, 19200, "E", 100*time.Millisecond)
	defer link.Close()
	ctx := context.Background()
	if v, err := link.ReadWithin(ctx, 1, false, Block{Start: 100, Count: 1}, time.Second); err != nil || v[0] != 100 {
		t.Fatalf("slow unit 1 within 1 s: %v %v", v, err)
	}
	if _, err := link.ReadWithin(ctx, 1, false, Block{Start: 200, Count: 1}, 100*time.Millisecond); err == nil || err.Kind != ErrTimeout {
		t.Errorf("slow unit 1 within 100 ms: %v, want a timeout", err)
	}
	time.Sleep(400 * time.Millisecond) // the late answer goes out
	if v, err := link.Read(ctx, 5, false, Block{Start: 100, Count: 1}); err == nil {
		t.Errorf("silent unit 5: %v, want an error", v)
	}
	if v, err := link.ReadWithin(ctx, 1, false, Block{Start: 300, Count: 2}, time.Second); err != nil || v[0] != 300 || v[1] != 301 {
		t.Errorf("slow unit 1 within 1 s after the timeouts: %v %v, want [300 301]", v, err)
	}
}
