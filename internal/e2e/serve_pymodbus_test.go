//go:build integration

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `cellwarden serve` polls a Modbus implementation that is not ours
// (pymodbus, a Soltaro-layout BMS) and exposes the right values on
// /metrics; the dead unit behind the same endpoint is down without holding
// up the live one; killing and restarting the server mid-run recovers
// without restarting cellwarden.
func TestServeExposesPymodbusValues(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import pymodbus").CombinedOutput(); err != nil {
		t.Fatalf("python3-pymodbus is not installed (.ci/run installs it): %v %s", err, out)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	server := startPymodbus(t, port, filepath.Join(t.TempDir(), "requests.log"))
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })

	dir := t.TempDir()
	cfg := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(cfg, []byte(`collectors:
  modbus:
    - {name: rack-1, address: "127.0.0.1:`+port+`", unit: 1, profile: soltaro_single_rack_vc, modules: 2, ups: u, string: "1", interval: 300ms, timeout: 200ms}
    - {name: rack-3, address: "127.0.0.1:`+port+`", unit: 3, profile: soltaro_single_rack_vc, modules: 2, ups: u, string: "3", interval: 300ms, timeout: 200ms}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cw := exec.Command(build(t), "serve", "--config", cfg, "--state.dir", filepath.Join(dir, "state"), "--web.listen-address", addr)
	var errb lockedBuffer
	cw.Stderr = &errb
	if err := cw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cw.Process.Kill(); cw.Wait() })
	metrics := func() string { return get("http://" + addr + "/metrics") }
	has := func(lines ...string) func() bool {
		return func() bool {
			m := metrics()
			for _, l := range lines {
				if !strings.Contains(m, l+"\n") {
					return false
				}
			}
			return true
		}
	}
	values := []string{
		`cellwarden_string_voltage_volts{string="1",ups="u"} 768.1`,
		`cellwarden_string_current_amperes{string="1",ups="u"} -20`,
		`cellwarden_cell_voltage_volts{cell="1",module="1",string="1",ups="u"} 3.3`,
		`cellwarden_cell_temperature_celsius{cell="12",module="2",string="1",ups="u"} 27.3`,
		`cellwarden_collector_up{collector="rack-1",source="modbus"} 1`,
		`cellwarden_collector_up{collector="rack-3",source="modbus"} 0`,
	}
	if !eventually(time.Minute, has(values...)) {
		t.Fatalf("/metrics lacks the pymodbus BMS's values:\n%s\n%s", metrics(), errb.String())
	}
	if strings.Contains(metrics(), `string="3",ups="u"`) {
		t.Error("readings for the dead unit 3")
	}
	if !strings.Contains(metrics(), `cellwarden_collector_errors_total{collector="rack-3",kind="timeout",source="modbus"}`) {
		t.Errorf("the dead unit's timeouts are not counted:\n%s", metrics())
	}

	server.Process.Kill()
	server.Wait()
	if !eventually(time.Minute, has(`cellwarden_collector_up{collector="rack-1",source="modbus"} 0`)) {
		t.Fatalf("rack-1 is not reported down while its server is dead:\n%s", metrics())
	}
	server = startPymodbus(t, port, filepath.Join(t.TempDir(), "requests.log"))
	if !eventually(time.Minute, has(values[0], `cellwarden_collector_up{collector="rack-1",source="modbus"} 1`)) {
		t.Fatalf("rack-1 did not recover after the server restarted:\n%s\n%s", metrics(), errb.String())
	}
	if !strings.Contains(errb.String(), "Modbus device down") || !strings.Contains(errb.String(), "Modbus device up") {
		t.Errorf("the outage and the recovery are not logged:\n%s", errb.String())
	}
	cw.Process.Signal(syscall.SIGTERM)
	if err := cw.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM:\n%s", err, errb.String())
	}
}
