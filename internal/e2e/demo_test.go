package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// get fetches a URL's body ("" on any error).
func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// eventually polls cond every 200 ms until it holds or the deadline passes.
func eventually(deadline time.Duration, cond func() bool) bool {
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// The README's first command, live: the simulator serves one UPS over
// Modbus TCP and publishes the other to the embedded MQTT broker, the
// daemon polls and subscribes, and the injected runaway is paged — on the
// log, /metrics and the status page. Played at 600x so the six simulated
// hours take 36 s.
func TestLiveDemoPagesTheRunaway(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(build(t), "demo", "--speed", "600", "--web.listen-address", addr)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr

	readings := func() bool {
		m := get(base + "/metrics")
		return strings.Contains(m, `cellwarden_cell_temperature_celsius{cell="5",module="3",string="1",ups="ups-a"}`) &&
			strings.Contains(m, `cellwarden_cell_temperature_celsius{cell="8",module="4",string="2",ups="ups-b"}`) &&
			strings.Contains(m, `cellwarden_collector_up{collector="ups-a-rack-1",source="modbus"} 1`) &&
			strings.Contains(m, `cellwarden_collector_up{collector="ups-b-gateway",source="mqtt"} 1`)
	}
	if !eventually(30*time.Second, readings) {
		t.Fatalf("no Modbus and MQTT cell readings in /metrics:\n%s\nstdout:\n%s\nstderr:\n%s", get(base+"/metrics"), out.String(), errb.String())
	}
	for _, want := range []string{base + "/", base + "/metrics", "ups-a: 2 racks served by the simulator over Modbus TCP", "embedded MQTT broker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo does not tell the user %q:\n%s", want, out.String())
		}
	}
	paged := func() bool {
		return strings.Contains(get(base+"/metrics"), `cellwarden_alerts{alertname="ThermalRunawayRisk",cell="5",module="3",severity="critical",string="1",ups="ups-a"} 1`)
	}
	if !eventually(60*time.Second, paged) {
		t.Fatalf("the runaway cell was not paged:\nstderr:\n%s", errb.String())
	}
	page := get(base + "/")
	alerts := page[strings.Index(page, `id="alerts"`)+1:]
	if !strings.Contains(alerts, "ThermalRunawayRisk") || !strings.Contains(alerts, "ups-a/1/3/5") || !strings.Contains(alerts, "thermal-runaway precursors") {
		t.Errorf("the status page's alert table lacks the runaway and its evidence:\n%s", page)
	}
	if !strings.Contains(errb.String(), `alert firing`) || !strings.Contains(errb.String(), `"alertname": "ThermalRunawayRisk"`) {
		t.Errorf("the log does not show the alert:\n%s", errb.String())
	}
	// A module stops reporting for 30 simulated minutes: stale, then back.
	if !strings.Contains(errb.String(), `"alertname": "TelemetryStale", "severity": "warning", "entity": "ups-b/1/4"`) &&
		!eventually(30*time.Second, func() bool { return strings.Contains(errb.String(), `"entity": "ups-b/1/4"`) }) {
		t.Errorf("the silent MQTT module was not reported stale:\n%s", errb.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo stopped with %v:\n%s", err, errb.String())
	}
}
