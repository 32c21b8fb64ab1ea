//go:build integration

package e2e

import (
	"bytes"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// simServer runs cellwarden sim serve with a layout and returns its port,
// its output and a stop function (idempotent).
func simServer(t *testing.T, profile string) (port string, out *bytes.Buffer, stop func()) {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ = net.SplitHostPort(addr)
	srv := exec.Command(build(t), "sim", "serve", "--modbus", addr, "--scenario", "runaway_nmc_slow", "--speed", "600", "--profile", profile)
	out = &bytes.Buffer{}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Process.Signal(syscall.SIGTERM)
			srv.Wait()
		}
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			stop()
			t.Fatalf("the simulator never listened on %s:\n%s", addr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return port, out, stop
}

// mbpollLanded reads registers with mbpoll until landed holds for what it
// read, for up to 30 s (a bound, not a timing assertion), and returns
// that read: the simulator listens before its first poll's values are in
// the registers.
func mbpollLanded(t *testing.T, port string, unit, start, count int, landed func([]int) bool) []int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		vals := mbpollRead(t, port, unit, start, count)
		if landed(vals) || time.Now().After(deadline) {
			return vals
		}
	}
}

// mbpollRead reads registers with mbpoll (Debian), a Modbus client that is
// not ours, and returns their values.
func mbpollRead(t *testing.T, port string, unit, start, count int) []int {
	t.Helper()
	mbpoll, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll is not installed (Debian package mbpoll; .ci/run installs it)")
	}
	out, err := exec.Command(mbpoll, "-m", "tcp", "-a", strconv.Itoa(unit), "-0", "-r", strconv.Itoa(start),
		"-c", strconv.Itoa(count), "-t", "4", "-1", "-p", port, "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll: %v\n%s", err, out)
	}
	var vals []int
	for _, m := range regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)`).FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.Atoi(m[2])
		vals = append(vals, v)
	}
	if len(vals) != count {
		t.Fatalf("mbpoll read %d of %d registers:\n%s", len(vals), count, out)
	}
	return vals
}

// mbpoll reads the simulator's Soltaro-layout registers and gets the
// documented values: cell voltages in mV, rack voltage in 0.1 V, cell
// temperatures in 0.1 °C; the simulator saw reads only.
func TestMbpollReadsTheSimulator(t *testing.T) {
	port, srvOut, stop := simServer(t, "soltaro_single_rack_vc")
	defer stop()
	// Registers are 0 until the simulator sets them (0 is out of every
	// range below): read until the values landed, then check them.
	read := func(unit, start, count int) []int {
		return mbpollLanded(t, port, unit, start, count, func(v []int) bool { return !slices.Contains(v, 0) })
	}

	tests := []struct {
		name           string
		unit, start, n int
		lo, hi         int
	}{
		{"cell voltages of string 1, mV", 1, 0x2800, 12, 3600, 4200},
		{"cell temperatures of string 2, 0.1 °C", 2, 0x2C00, 12, 150, 450},
		{"rack voltage of string 2, 0.1 V (72 NMC cells)", 2, 0x2100, 1, 2592, 3024},
		{"state of charge, %", 1, 0x2103, 1, 5, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, v := range read(tt.unit, tt.start, tt.n) {
				if v < tt.lo || v > tt.hi {
					t.Errorf("register %d = %d, want %d..%d", tt.start+i, v, tt.lo, tt.hi)
				}
			}
		})
	}
	// The server saw reads of holding registers only (function code 3).
	stop()
	if !regexp.MustCompile(`"read_requests_by_function": \{"3": ?[1-9][0-9]*\}, "refused_writes": 0`).MatchString(srvOut.String()) {
		t.Errorf("the simulator's request log is not reads-only:\n%s", srvOut.String())
	}
}

// mbpoll reads the simulator's SunSpec layout: the SunS marker at 40000,
// the common model's header, and the first lithium-ion module's cells as
// the 805 model lays them out.
func TestMbpollReadsSunSpec(t *testing.T) {
	port, _, stop := simServer(t, "sunspec")
	defer stop()
	if got := mbpollRead(t, port, 1, 40000, 4); got[0] != 0x5375 || got[1] != 0x6E53 || got[2] != 1 {
		t.Fatalf("registers 40000..40003 = %v: want the SunS marker then model 1", got)
	}
	// Model 1 (2 + L registers), model 802, then 804, then the first 805.
	addr := 40002
	var ids []int
	for len(ids) < 4 {
		h := mbpollRead(t, port, 1, addr, 2)
		ids = append(ids, h[0])
		if len(ids) < 4 {
			addr += 2 + h[1]
		}
	}
	if ids[0] != 1 || ids[1] != 802 || ids[2] != 804 || ids[3] != 805 {
		t.Fatalf("model chain starts %v, want [1 802 804 805]", ids)
	}
	// 805: +2 StrIdx, +3 ModIdx, +4 NCell; cells from +44, 4 registers each,
	// CellV in mV (CellV_SF -3) and CellTmp in 0.1 °C (Tmp_SF -1).
	head := mbpollRead(t, port, 1, addr+2, 3)
	if head[0] != 1 || head[1] != 1 || head[2] != 12 {
		t.Errorf("805 header %v, want string 1, module 1, 12 cells", head)
	}
	// CellV reads "not implemented" (0xFFFF) until the simulator's first
	// poll is published: read until it landed, then check the cell.
	cell := mbpollLanded(t, port, 1, addr+44, 2, func(v []int) bool { return v[0] != 0xFFFF && v[0] != -1 })
	if cell[0] < 3600 || cell[0] > 4200 || cell[1] < 150 || cell[1] > 450 {
		t.Errorf("first cell %v, want mV in 3600..4200 and 0.1 °C in 150..450", cell)
	}
}
