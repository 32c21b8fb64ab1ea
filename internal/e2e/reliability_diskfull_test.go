//go:build integration

package e2e

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size (e.g. "1m") on a new directory until
// the test ends (unmounted after the processes the test started later are
// stopped: cleanups run last-in first-out). It needs root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (.ci/run runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the file system has no space left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			return
		}
	}
}

// setRange sets the n registers from first to v at once: a request sees
// all of them set or none. (Here, not beside set: only integration tests
// use it.)
func (b *faultBMS) setRange(first uint16, n int, v uint16) {
	b.mu.Lock()
	for i := range uint16(n) {
		b.regs[first+i] = v
	}
	b.mu.Unlock()
}

// What must hold when the outbox's disk is full (a 1 MiB tmpfs, filled):
// serve keeps detecting and serving (/metrics answers, the 64 alerts of
// a whole string overheating are firing in cellwarden_alerts, new
// readings arrive, /-/healthy is 200); the failed outbox write is logged
// and counted in cellwarden_outbox_write_errors_total; nothing is sent
// that is not on disk; once space returns the kept change is written and
// the firing notification is delivered, each alert state exactly once.
// (The string's 64 alerts make a notification and a group state of about
// 40 KB each: more than bbolt can place in the pages it already has, so
// the write needs new space and fails.)
func TestReliabilityOutboxDiskFull(t *testing.T) {
	const cells = 64
	mnt := mountTmpfs(t, "1m")
	r := newFaultyReceiver(t)
	r.up(t)
	bms := startFaultBMS(t)
	dir := t.TempDir()
	cfg := writeConfigCells(t, dir, hookConfigOutbox("http://"+r.addr+"/hook", filepath.Join(mnt, "outbox.db")), cells, bms.addr())
	d := startDaemon(t, daemonOptions{config: cfg, stateDir: filepath.Join(dir, "state")})
	if !eventually(30*time.Second, func() bool { v, _ := d.metric("cellwarden_collector_up", "collector=bms-a"); return v == 1 }) {
		t.Fatal("bms-a is not up")
	}

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	// The whole string at once: a poll between single cells would fire
	// the first alerts alone, a small change that may fit in the pages
	// bbolt already has and be delivered with the disk full.
	bms.ramp(t, "ups-a", 2000, cells, 250, 650, d)
	firing := func() float64 {
		return d.metricOr0("cellwarden_alerts", "alertname=CellOverTemperature", "severity=critical", "ups=ups-a")
	}
	if !eventually(time.Minute, func() bool {
		return firing() == cells && d.metricOr0("cellwarden_outbox_write_errors_total") > 0
	}) {
		t.Fatalf("with the disk full: %v alerts firing, %v outbox write errors; want %d and some", firing(),
			d.metricOr0("cellwarden_outbox_write_errors_total"), cells)
	}
	// Still watching: a new reading arrives, the process is healthy.
	bms.set(100, 7123)
	if !eventually(30*time.Second, func() bool {
		v, _ := d.metric("cellwarden_string_voltage_volts", "ups=ups-a")
		return v == 712.3
	}) {
		t.Error("a new reading did not reach /metrics while the disk was full")
	}
	if code, _ := d.get("/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy answered %d with the disk full", code)
	}
	if !strings.Contains(d.log.String(), "no space left on device") {
		t.Error("the log does not say the outbox write failed for lack of space")
	}
	if n := len(r.all()); n != 0 {
		t.Errorf("the receiver got %d requests while the change could not be written", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !eventually(time.Minute, func() bool { return r.statuses()["firing"] == cells }) {
		t.Fatalf("after space returned the receiver has %v alert states, want %d firing", r.statuses(), cells)
	}
	time.Sleep(3 * time.Second) // three group intervals: a duplicate would come now
	for st, n := range r.delivered() {
		if n != 1 {
			t.Errorf("alert state %s delivered %d times", st, n)
		}
	}
	if n := len(r.delivered()); n != cells {
		t.Errorf("%d alert states delivered, want %d", n, cells)
	}
	if d.exited() {
		t.Error("serve exited")
	}
}
