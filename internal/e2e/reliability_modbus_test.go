package e2e

import (
	bin "encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The reliability tests (reliability_*_test.go) run the real `cellwarden
// serve` on loopback against peers that misbehave, and check what must
// hold; docs/reliability.md lists each guarantee with its test. This file
// holds the misbehaving Modbus device they share, the daemon runner and the
// /metrics reader, and the Modbus fault test.

// faultMode is how a faultBMS answers.
type faultMode int

const (
	faultNone     faultMode = iota + 1 // answers correctly
	faultStall                         // reads requests, never answers
	faultGarbage                       // answers bytes that are no Modbus frame
	faultReset                         // resets the connection (RST) on a request
	faultWrongTID                      // answers with the previous transaction id
	faultLate                          // answers correctly, after the client's timeout
)

func (m faultMode) String() string {
	return map[faultMode]string{faultNone: "none", faultStall: "stall", faultGarbage: "garbage", faultReset: "reset",
		faultWrongTID: "wrong_tid", faultLate: "late"}[m]
}

// faultBMS is a Modbus TCP device written against the raw protocol, so it
// can misbehave in ways a Modbus library would not: it serves the
// registers of faultMap (any unit id) and records every function code it
// is sent.
type faultBMS struct {
	l net.Listener

	mu    sync.Mutex
	mode  faultMode
	regs  map[uint16]uint16
	fcs   map[byte]int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// faultMap is faultBMS's register map: a string voltage (the marker the
// tests change to see values flow) and one module of cells (at most
// maxFaultCells): voltages in mV from 1000, temperatures in 0.1 °C from 2000.
func faultMap(cells int) string {
	return fmt.Sprintf(`name: fault_bms
function: holding
byte_order: big
word_order: msw_first
points:
  - {name: string_voltage, address: 100, type: uint16, scale: 0.1, metric: string_voltage_volts}
  - {name: cell_voltage, address: 1000, type: uint16, scale: 0.001, metric: cell_voltage_volts, array: {modules: 1, per_module: %[1]d}}
  - {name: cell_temperature, address: 2000, type: uint16, scale: 0.1, metric: cell_temperature_celsius, array: {modules: 1, per_module: %[1]d}}
`, cells)
}

const maxFaultCells = 256

// startFaultBMS serves a healthy BMS (cells at 3.300 V and up, 25 °C) on
// a free loopback port until the test ends.
func startFaultBMS(t *testing.T) *faultBMS {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &faultBMS{l: l, mode: faultNone, regs: map[uint16]uint16{100: 7000}, fcs: map[byte]int{}, conns: map[net.Conn]bool{}}
	for i := range uint16(maxFaultCells) {
		b.regs[1000+i] = 3300 + i
		b.regs[2000+i] = 250
	}
	b.wg.Go(b.accept)
	t.Cleanup(b.close)
	return b
}

func (b *faultBMS) addr() string { return b.l.Addr().String() }

func (b *faultBMS) setMode(m faultMode) {
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

// set sets a register.
func (b *faultBMS) set(reg, v uint16) {
	b.mu.Lock()
	b.regs[reg] = v
	b.mu.Unlock()
}

// ramp moves the cell temperature registers first..first+n-1 (0.1 °C,
// cell 1 at register 2000) from one value to another in steps of at most
// 8 °C, as a cell heats or cools, and at each step waits until every
// daemon in ds shows ups's first cell at it on /metrics. A temperature
// that jumps further than a cell can heat or cool in a poll (10 °C) and
// then holds still is a broken sensor to the detector (SensorFault), not a
// hot cell.
func (b *faultBMS) ramp(t *testing.T, ups string, first uint16, n int, from, to uint16, ds ...*daemonProc) {
	t.Helper()
	cell := strconv.Itoa(int(first) - 2000 + 1)
	for v := from; v != to; {
		switch {
		case to > v:
			v = min(to, v+80)
		default:
			v = max(to, v-80)
		}
		b.mu.Lock()
		for i := range uint16(n) {
			b.regs[first+i] = v
		}
		b.mu.Unlock()
		want := float64(v) / 10
		for _, d := range ds {
			if !eventually(time.Minute, func() bool {
				got, ok := d.metric("cellwarden_cell_temperature_celsius", "ups="+ups, "cell="+cell)
				return ok && math.Abs(got-want) < 1e-9
			}) {
				t.Fatalf("%s cell %s never showed %.1f °C on /metrics", ups, cell, want)
			}
		}
	}
}

// functionCodes returns how often each function code was requested.
func (b *faultBMS) functionCodes() map[byte]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[byte]int{}
	for k, v := range b.fcs {
		out[k] = v
	}
	return out
}

func (b *faultBMS) close() {
	b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *faultBMS) accept() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Go(func() {
			b.serve(c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			c.Close()
		})
	}
}

// serve answers one connection's requests until it fails or is reset.
func (b *faultBMS) serve(c net.Conn) {
	for {
		var hdr [7]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(bin.BigEndian.Uint16(hdr[4:6]))
		if n < 2 || n > 254 {
			return
		}
		pdu := make([]byte, n-1)
		if _, err := io.ReadFull(c, pdu); err != nil {
			return
		}
		b.mu.Lock()
		b.fcs[pdu[0]]++
		mode := b.mode
		var resp []byte
		switch {
		case pdu[0] != 3 && pdu[0] != 4 || len(pdu) != 5:
			resp = []byte{pdu[0] | 0x80, 1} // illegal function
		default:
			start, count := bin.BigEndian.Uint16(pdu[1:3]), bin.BigEndian.Uint16(pdu[3:5])
			resp = []byte{pdu[0], byte(2 * count)}
			for r := start; r < start+count; r++ {
				resp = bin.BigEndian.AppendUint16(resp, b.regs[r])
			}
		}
		b.mu.Unlock()
		tid := bin.BigEndian.Uint16(hdr[0:2])
		switch mode {
		case faultStall:
			continue
		case faultGarbage:
			if _, err := c.Write([]byte("\x13\x37garbage, not Modbus\xff\xfe\x00")); err != nil {
				return
			}
			continue
		case faultReset:
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // close sends RST
			}
			return
		case faultWrongTID:
			tid--
		case faultLate:
			time.Sleep(time.Second)
		}
		adu := bin.BigEndian.AppendUint16(nil, tid)
		adu = append(adu, 0, 0)
		adu = bin.BigEndian.AppendUint16(adu, uint16(len(resp)+1))
		adu = append(adu, hdr[6])
		if _, err := c.Write(append(adu, resp...)); err != nil {
			return
		}
	}
}

// daemonProc is one `cellwarden serve` run by a reliability test.
type daemonProc struct {
	cmd    *exec.Cmd
	url    string // http://host:port (https with TLS)
	client *http.Client
	user   string // basic auth, when set
	pass   string
	log    *lockedBuffer // standard output and error
	done   chan struct{}
}

// daemonOptions start a daemonProc.
type daemonOptions struct {
	config, stateDir string
	env              []string // added to the environment
	args             []string // added to the command line
	tls              *http.Client
	user, pass       string
}

// startDaemon runs serve on a free loopback port until the test ends
// (SIGKILLed by PID if still running) and waits until /-/ready is 200.
func startDaemon(t *testing.T, o daemonOptions) *daemonProc {
	t.Helper()
	addr := freeAddr(t)
	d := &daemonProc{url: "http://" + addr, client: http.DefaultClient, user: o.user, pass: o.pass, log: &lockedBuffer{}, done: make(chan struct{})}
	if o.tls != nil {
		d.url, d.client = "https://"+addr, o.tls
	}
	d.cmd = exec.Command(build(t), append([]string{"serve", "--config", o.config, "--state.dir", o.stateDir,
		"--web.listen-address", addr}, o.args...)...)
	d.cmd.Env = append(os.Environ(), o.env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("serve log:\n%s", d.log.String())
		}
	})
	if !eventually(time.Minute, func() bool {
		code, _ := d.get("/-/ready")
		return code == http.StatusOK || d.exited()
	}) || d.exited() {
		t.Fatalf("serve did not become ready:\n%s", d.log.String())
	}
	return d
}

func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (d *daemonProc) kill() {
	if !d.exited() {
		d.cmd.Process.Kill()
		<-d.done
	}
}

// request makes a request with the daemon's credentials and returns the
// status and body (0 on a network error).
func (d *daemonProc) request(method, path string) (int, string) {
	req, err := http.NewRequest(method, d.url+path, nil)
	if err != nil {
		return 0, ""
	}
	if d.user != "" {
		req.SetBasicAuth(d.user, d.pass)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (d *daemonProc) get(path string) (int, string) { return d.request(http.MethodGet, path) }

// metric returns the value of the series of name whose labels include
// labels ("k=v" pairs); ok is false when there is none. Only that family
// is scraped (/metrics?name[]=).
func (d *daemonProc) metric(name string, labels ...string) (float64, bool) {
	_, body := d.get("/metrics?name[]=" + name)
	return sumSeries(body, name, labels...)
}

// sumSeries sums, in a text exposition, the series of name whose labels
// include labels ("k=v" pairs); ok is false when there is none.
func sumSeries(body, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range parseSeries(body, name) {
		if s.has(labels) {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// metricOr0 is metric with a missing series read as 0 (counters of
// reasons not seen yet, summed over their other labels).
func (d *daemonProc) metricOr0(name string, labels ...string) float64 {
	v, _ := d.metric(name, labels...)
	return v
}

// series is one sample line of the text exposition.
type series struct {
	labels map[string]string
	value  float64
}

func (s series) has(labels []string) bool {
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// parseSeries reads the samples of the metric name from a text exposition
// (label values without escaped quotes, which cellwarden's are).
func parseSeries(body, name string) []series {
	var out []series
	for line := range strings.SplitSeq(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		s := series{labels: map[string]string{}}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			for kv := range strings.SplitSeq(rest[1:end], ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// writeConfig writes the fault BMS's map of four cells and a
// configuration polling each address as its own UPS (ups-a, ups-b, ...;
// collector bms-a, ...) every 200 ms with a 150 ms timeout, followed by
// tail; cells learn in 5 polls, CellOverTemperature holds for 1 s and
// clears after 1 s.
func writeConfig(t *testing.T, dir, tail string, addrs ...string) string {
	return writeConfigCells(t, dir, tail, 4, addrs...)
}

// writeConfigCells is writeConfig with a map of cells cells.
func writeConfigCells(t *testing.T, dir, tail string, cells int, addrs ...string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "bms.yaml"), []byte(faultMap(cells)), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("detector:\n  peers: {warmup_polls: 5}\n  cell_over_temperature: {for: 1s, clear_for: 1s}\ncollectors:\n  modbus:\n")
	for i, a := range addrs {
		c := string(rune('a' + i))
		fmt.Fprintf(&b, "    - {name: bms-%s, address: %q, unit: 1, map_file: bms.yaml, ups: ups-%s, string: \"1\", interval: 200ms, timeout: 150ms}\n", c, a, c)
	}
	b.WriteString(tail)
	path := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// What must hold: a Modbus device that stalls (never answers), answers
// garbage, resets the connection, answers with the wrong transaction id
// or answers after the timeout (the late answer that desynchronises
// goburrow's transaction ids) is reported down with the error counted by
// its kind, and once it behaves again serve recovers unattended: its
// values flow again on /metrics and cellwarden_collector_up is back to 1
// within 30 s, without a restart. Meanwhile a unit on another endpoint is
// never held up: its new values reach /metrics while the faulty one
// misbehaves. Both devices are only ever sent read function codes (3, 4).
func TestReliabilityModbusFaultsRecoverUnattended(t *testing.T) {
	a, b := startFaultBMS(t), startFaultBMS(t)
	dir := t.TempDir()
	d := startDaemon(t, daemonOptions{config: writeConfig(t, dir, "", a.addr(), b.addr()), stateDir: filepath.Join(dir, "state")})

	// shows reports whether bms-X's string voltage is v/10 and it is up.
	shows := func(x string, v uint16) func() bool {
		return func() bool {
			got, ok := d.metric("cellwarden_string_voltage_volts", "ups=ups-"+x)
			up, _ := d.metric("cellwarden_collector_up", "collector=bms-"+x)
			return ok && got == float64(v)/10 && up == 1
		}
	}
	if !eventually(30*time.Second, func() bool { return shows("a", 7000)() && shows("b", 7000)() }) {
		t.Fatal("the two devices' values are not on /metrics")
	}
	marker := uint16(7000)
	for _, tc := range []struct {
		mode faultMode
		kind string // the error counted
	}{
		{faultStall, "timeout"},
		{faultGarbage, "protocol"},
		{faultReset, "connection"},
		{faultWrongTID, "protocol"},
		{faultLate, "timeout"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			errs := func() float64 {
				return d.metricOr0("cellwarden_collector_errors_total", "collector=bms-a", "kind="+tc.kind)
			}
			before := errs()
			a.setMode(tc.mode)
			if !eventually(30*time.Second, func() bool {
				up, _ := d.metric("cellwarden_collector_up", "collector=bms-a")
				return up == 0 && errs() > before
			}) {
				t.Fatalf("bms-a not down with %s errors counted while it misbehaves (%s): before %v, now %v", tc.kind, tc.mode, before, errs())
			}
			// The other endpoint's unit goes on: a new value arrives.
			marker++
			b.set(100, marker)
			if !eventually(30*time.Second, shows("b", marker)) {
				t.Errorf("bms-b's new value did not arrive while bms-a was in %s", tc.mode)
			}
			if up, _ := d.metric("cellwarden_collector_up", "collector=bms-a"); up != 0 {
				t.Errorf("bms-a up while in %s", tc.mode)
			}
			a.setMode(faultNone)
			a.set(100, marker)
			if !eventually(30*time.Second, shows("a", marker)) {
				t.Fatalf("bms-a did not recover within 30 s after %s", tc.mode)
			}
		})
	}
	if d.exited() {
		t.Fatal("serve exited")
	}
	for name, dev := range map[string]*faultBMS{"bms-a": a, "bms-b": b} {
		fcs := dev.functionCodes()
		for fc, n := range fcs {
			if fc != 3 && fc != 4 {
				t.Errorf("%s was sent function code %d (%d times): only reads (3, 4) may be sent", name, fc, n)
			}
		}
		if fcs[3] == 0 {
			t.Errorf("%s was never read: %v", name, fcs)
		}
	}
	for _, want := range []string{"Modbus device down", "Modbus device up"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}
