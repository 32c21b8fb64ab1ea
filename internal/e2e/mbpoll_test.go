//go:build integration

package e2e

import (
	"bytes"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// mbpoll (Debian), a Modbus client that is not ours, reads the simulator's
// Soltaro-layout registers and gets the documented values: cell voltages in
// mV, rack voltage in 0.1 V, cell temperatures in 0.1 °C.
func TestMbpollReadsTheSimulator(t *testing.T) {
	mbpoll, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatal("mbpoll is not installed (Debian package mbpoll; .ci/run installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	srv := exec.Command(build(t), "sim", "serve", "--modbus", addr, "--scenario", "runaway_nmc_slow", "--speed", "600")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Process.Signal(syscall.SIGTERM)
			srv.Wait()
		}
	}
	defer stop()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the simulator never listened on %s:\n%s", addr, srvOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the first poll's values land

	read := func(unit, start, count int) []int {
		t.Helper()
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
