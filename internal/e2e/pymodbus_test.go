//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
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

// poll is the rows of one poll: cellwarden modbus read writes each poll's
// rows together under one timestamp (no two polls share one).
type poll struct {
	time  string
	first int      // index of its first row among the lines read
	rows  []string // without the timestamp
}

// splitPolls groups CSV lines (the header skipped) into polls: runs of
// consecutive rows with the same timestamp.
func splitPolls(lines []string) []poll {
	var polls []poll
	for i, l := range lines {
		ts, row, ok := strings.Cut(l, ",")
		if !ok || ts == "time" {
			continue
		}
		if n := len(polls); n == 0 || polls[n-1].time != ts {
			polls = append(polls, poll{time: ts, first: i})
		}
		p := &polls[len(polls)-1]
		p.rows = append(p.rows, row)
	}
	return polls
}

// pollProblem says what is wrong with one poll of unit 1 of
// testdata/pymodbus_bms.py, or "" when it is complete and right: 4 string
// rows, 24 cell voltages and 24 cell temperatures, no row twice, the
// documented values among them.
func pollProblem(rows []string) string {
	seen := make(map[string]bool, len(rows))
	metrics := make(map[string]int)
	for _, r := range rows {
		if seen[r] {
			return "twice: " + r
		}
		seen[r] = true
		if f := strings.Split(r, ","); len(f) == 6 {
			if f[2] == "" {
				metrics["string"]++
			} else {
				metrics[f[4]]++
			}
		}
	}
	for metric, want := range map[string]int{"string": 4, "cell_voltage_volts": 24, "cell_temperature_celsius": 24} {
		if metrics[metric] != want {
			return fmt.Sprintf("%d %s rows, want %d", metrics[metric], metric, want)
		}
	}
	if len(rows) != 52 {
		return fmt.Sprintf("%d rows, want 52", len(rows))
	}
	for _, want := range []string{
		"u,1,,,string_voltage_volts,768.1",
		"u,1,,,string_current_amperes,-20",
		"u,1,,,string_soc_ratio,0.87",
		"u,1,,,string_soh_ratio,0.96",
		"u,1,1,1,cell_voltage_volts,3.3",
		"u,1,2,12,cell_temperature_celsius,27.3",
	} {
		if !seen[want] {
			return "no " + want
		}
	}
	return ""
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

	got.mu.Lock()
	beforeTerm := len(got.lines) // polls whose rows began before here had ended before the SIGTERM
	got.mu.Unlock()
	cw.Process.Signal(syscall.SIGTERM)
	<-done
	cw.Wait()

	// Every poll of unit 1 is complete and right (4 string rows, 24 of each
	// cell metric, the documented values among them), but for at most the
	// one poll the server was killed in the middle of, which is not the
	// last before the SIGTERM (the server came back). The polls written
	// after the SIGTERM may be cut by it; their rows are still right ones.
	got.mu.Lock()
	polls := splitPolls(got.lines)
	got.mu.Unlock()
	var complete map[string]bool
	cut, last := 0, -1
	for i, p := range polls {
		if p.first >= beforeTerm {
			continue
		}
		last = i
		if why := pollProblem(p.rows); why != "" {
			cut++
			t.Logf("poll at %s is incomplete (%s): %d rows", p.time, why, len(p.rows))
		} else if complete == nil {
			complete = make(map[string]bool)
			for _, r := range p.rows {
				complete[r] = true
			}
		}
	}
	switch {
	case last < 0 || complete == nil:
		t.Fatalf("no complete poll of unit 1 in %d polls", len(polls))
	case cut > 1:
		t.Errorf("%d of %d polls of unit 1 before the SIGTERM are incomplete, want at most 1 (the one the kill cut)", cut, last+1)
	case pollProblem(polls[last].rows) != "":
		t.Errorf("the last poll before the SIGTERM (at %s) is incomplete: cellwarden did not recover", polls[last].time)
	}
	for _, p := range polls {
		for _, r := range p.rows {
			if !complete[r] {
				t.Errorf("poll at %s has a row no complete poll has: %q", p.time, r)
			}
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
