//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startPymodbus runs the Soltaro-layout BMS of testdata/pymodbus_bms.py on
// addr and waits until it listens.
func startPymodbus(t *testing.T, port, logFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "testdata/pymodbus_bms.py", port, logFile)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return cmd
		}
		if i == 150 {
			cmd.Process.Kill()
			t.Fatal("pymodbus never listened (is Debian's python3-pymodbus installed? .ci/run installs it)")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rows collects the CSV rows cellwarden writes, safe for concurrent use.
type rows struct {
	mu    sync.Mutex
	lines []string
}

func (r *rows) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to a minute (a bound, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// The cellwarden binary polls a pymodbus server holding a vendor layout and
// reports the right values; a dead unit on the same endpoint does not stop
// the others; killing and restarting the server mid-run recovers without
// restarting cellwarden; the server only ever sees read function codes.
func TestPollsPymodbusAndRecovers(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("/usr/bin/python3 is missing")
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import pymodbus").CombinedOutput(); err != nil {
		t.Fatalf("python3-pymodbus is not installed (.ci/run installs it): %v %s", err, out)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	logFile := filepath.Join(t.TempDir(), "requests.log")
	server := startPymodbus(t, port, logFile)

	cw := exec.Command(build(t), "modbus", "read", "--address", "127.0.0.1:"+port, "--ups", "u",
		"--device", "1:1", "--device", "3:3", "--modules", "2", "--interval", "300ms", "--timeout", "200ms")
	stdout, err := cw.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cw.Stderr = &stderr
	if err := cw.Start(); err != nil {
		t.Fatal(err)
	}
	got := &rows{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got.mu.Lock()
			got.lines = append(got.lines, sc.Text())
			got.mu.Unlock()
		}
	}()
	const voltageRow = ",u,1,,,string_voltage_volts,768.1"
	waitFor(t, "three polls of unit 1 beside the dead unit 3", func() bool { return got.count(voltageRow) >= 3 })

	server.Process.Kill()
	server.Wait()
	before := got.count(voltageRow)
	time.Sleep(time.Second) // cellwarden meets the dead server
	server = startPymodbus(t, port, logFile)
	defer func() { server.Process.Kill(); server.Wait() }()
	waitFor(t, "polls of unit 1 after the server restarted", func() bool { return got.count(voltageRow) >= before+3 })

	cw.Process.Signal(syscall.SIGTERM)
	<-done
	cw.Wait()

	// Every poll of unit 1 is complete and right (4 string rows, 24 of each
	// cell metric, the documented values among them), but for at most the
	// one poll the server was killed in the middle of.
	polls := got.count(voltageRow)
	for _, want := range []struct {
		row  string
		each int
	}{
		{",u,1,1,1,cell_voltage_volts,3.3", 1},
		{",u,1,2,12,cell_temperature_celsius,27.3", 1},
		{",u,1,,,string_current_amperes,-20", 1},
		{",cell_voltage_volts,", 24},
	} {
		if n := got.count(want.row); n < want.each*(polls-1) || n > want.each*polls {
			t.Errorf("%q appears %d times in %d polls of unit 1, want %d (one poll may be cut by the kill)",
				want.row, n, polls, want.each*polls)
		}
	}
	if got.count(",u,3,") != 0 {
		t.Error("rows for the dead unit 3")
	}
	log := stderr.String()
	if !strings.Contains(log, `"kind": "timeout"`) {
		t.Errorf("the dead unit's timeouts were not reported:\n%s", log)
	}
	requests, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(requests), "write") || !strings.Contains(string(requests), "read fc=3") {
		t.Errorf("the server saw more than reads of holding registers:\n%s", requests)
	}
}
