//go:build integration

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The real `cellwarden serve` among the real Prometheus tools: promtool
// accepts its /metrics, a real Prometheus scrapes it (target up, cell
// values and active alerts queryable), and the alert it raises for a hot
// cell reaches a webhook through a real Alertmanager.
func TestServeWithPrometheusAndAlertmanager(t *testing.T) {
	promtool := tool(t, "prometheus", "promtool")
	prom := tool(t, "prometheus", "prometheus")
	am := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")

	// A Soltaro-layout BMS of one module, every cell at 25 °C.
	m, err := modbus.Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	m.SetModules(1)
	bank := modbus.NewBank(false)
	bank.Fill(1, m)
	set := func(metric telemetry.Metric, cell string, v float64) {
		addr, words, ok := m.Encode(metric, "1", cell, v)
		if !ok {
			t.Fatalf("no register for %s of cell %s", metric, cell)
		}
		bank.Set(1, addr, words)
	}
	for c := 1; c <= 12; c++ {
		set(telemetry.CellTemperatureCelsius, fmt.Sprint(c), 25)
		set(telemetry.CellVoltageVolts, fmt.Sprint(c), 3.9)
	}
	bmsAddr := serveModbus(t, bank)

	// Alertmanager, delivering to a webhook.
	sink := &hookSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	dir := t.TempDir()
	amAddr := freeAddr(t)
	os.WriteFile(filepath.Join(dir, "alertmanager.yml"), fmt.Appendf(nil, `
route: {receiver: hook, group_by: [ups, string], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL+"/hook"), 0o600)
	startPeer(t, am, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")

	// cellwarden serve, polling the BMS and pushing to Alertmanager.
	cfg := filepath.Join(dir, "cellwarden.yml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
collectors:
  modbus:
    - {name: rack-1, address: %q, unit: 1, profile: soltaro_single_rack_vc, modules: 1, ups: ups-p, string: "1", interval: 1s, timeout: 500ms}
alerting:
  outbox: {path: outbox.db}
  receivers:
    - name: am
      alertmanager: {urls: ["http://%s"], resend_interval: 1m}
`, bmsAddr, amAddr), 0o600)
	webAddr := freeAddr(t)
	serve := exec.Command(build(t), "serve", "--config", cfg, "--state.dir", filepath.Join(dir, "state"), "--web.listen-address", webAddr)
	var serveLog lockedBuffer
	serve.Stderr = &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		serve.Process.Kill()
		serve.Wait()
		if t.Failed() {
			t.Logf("serve log:\n%s", serveLog.String())
		}
	})
	metrics := func() string { return get("http://" + webAddr + "/metrics") }
	if !eventually(time.Minute, func() bool {
		return strings.Contains(metrics(), `cellwarden_cell_temperature_celsius{cell="3",module="1",string="1",ups="ups-p"} 25`)
	}) {
		t.Fatalf("serve exports no cell temperature:\n%s", metrics())
	}

	// promtool accepts the exposition of the real daemon.
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader([]byte(metrics()))
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// A real Prometheus scrapes it.
	promAddr := freeAddr(t)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), fmt.Appendf(nil, `
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: cellwarden
    static_configs: [{targets: [%q]}]
`, webAddr), 0o600)
	startPeer(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	query := func(q string) int {
		var r struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		if !getJSON("http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(q), &r) {
			return -1
		}
		return len(r.Data.Result)
	}
	if !eventually(time.Minute, func() bool {
		return query(`up{job="cellwarden"} == 1`) == 1 && query(`cellwarden_cell_voltage_volts{ups="ups-p",cell="12"}`) == 1
	}) {
		t.Fatal("Prometheus does not have the daemon up with its cell voltages")
	}

	// Cell 5 overheats: CellOverTemperature (critical) after its 20 s hold,
	// in Prometheus' cellwarden_alerts and at the webhook via Alertmanager.
	// It heats 8 °C a step, each read by serve: a reading that jumps 40 °C
	// and then holds still is a broken sensor to the detector, not a hot
	// cell.
	for _, v := range []float64{33, 41, 49, 57, 65} {
		set(telemetry.CellTemperatureCelsius, "5", v)
		if !eventually(time.Minute, func() bool {
			return strings.Contains(metrics(), fmt.Sprintf(`cellwarden_cell_temperature_celsius{cell="5",module="1",string="1",ups="ups-p"} %g`+"\n", v))
		}) {
			t.Fatalf("serve did not read cell 5 at %g °C", v)
		}
	}
	atWebhook := func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, msg := range sink.msgs {
			for _, a := range msg.Alerts {
				if a.Status == "firing" && a.Labels["alertname"] == "CellOverTemperature" && a.Labels["severity"] == "critical" &&
					a.Labels["ups"] == "ups-p" && a.Labels["cell"] == "5" && strings.Contains(a.Annotations["summary"], "65 °C") {
					return true
				}
			}
		}
		return false
	}
	if !eventually(2*time.Minute, atWebhook) {
		t.Fatalf("the critical alert did not reach the webhook through Alertmanager; metrics:\n%s", metrics())
	}
	if !eventually(time.Minute, func() bool {
		return query(`cellwarden_alerts{alertname="CellOverTemperature",severity="critical",cell="5"} == 1`) == 1
	}) {
		t.Error("Prometheus does not show the active alert in cellwarden_alerts")
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}
	if resp, err := http.Get("http://" + webAddr + "/-/healthy"); err == nil {
		resp.Body.Close()
		t.Error("serve still answers after SIGTERM")
	}
}
