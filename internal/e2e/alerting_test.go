//go:build integration

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/testcert"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// tool returns the path of an external program the test needs; a missing
// one fails the test (.ci/run installs it).
func tool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed (Debian package %s; .ci/run installs it)", names[0], pkg)
	return ""
}

// startPeer runs a peer program for the rest of the test, its output in a
// file that is shown if the test fails.
func startPeer(t *testing.T, path string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(path)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", filepath.Base(path), out)
		}
	})
}

// exporter serves the metrics of a small fleet on loopback, behind TLS and
// basic auth from a web configuration file as a user would set them up,
// and returns its address, the CA pool, and the web config's directory
// (holding cert.pem).
func exporter(t *testing.T) (addr string, pool *x509.CertPool, dir string) {
	t.Helper()
	dir = t.TempDir()
	pool = testcert.Write(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: %s\n", hash), 0o600)

	reg := telemetry.NewRegistry()
	store := metrics.NewStore(reg, metrics.StoreOptions{})
	for i, v := range []float64{4.05, 4.06, 4.04} {
		id, _ := reg.Intern(telemetry.Entity{UPS: "ups-a", String: "1", Module: "1", Cell: fmt.Sprint(i + 1)})
		store.Observe(telemetry.Sample{Entity: id, Metric: telemetry.CellVoltageVolts, Value: v},
			telemetry.Sample{Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: 25 + float64(i)})
	}
	store.Alert(alerting.Alert{Time: time.Now(), Status: "firing", Labels: alerting.Labels{Alertname: "CellOverTemperature", Severity: "critical", UPS: "ups-a", String: "1", Module: "1", Cell: "3"}})
	promReg := metrics.NewRegistry(store, notify.NewMetrics(nil))
	metrics.NewSelf(promReg, map[string][]string{"modbus": {"timeout"}}).ConfigLoaded(true, time.Now())
	h, err := metrics.Handler(promReg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{l.Addr().String()}, WebSystemdSocket: &off, WebConfigFile: &webConfig}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.ServeListener(ctx, l, flags, h, zap.NewNop()) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String(), pool, dir
}

// promtool check metrics accepts cellwarden's exposition.
func TestPromtoolChecksTheExposition(t *testing.T) {
	promtool := tool(t, "prometheus", "promtool")
	addr, pool, _ := exporter(t)
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	req.SetBasicAuth("prometheus", "scrape-pass")
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "cellwarden_cell_voltage_volts") {
		t.Fatalf("no cell metrics in the exposition:\n%s", body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// The rules for the daemon are valid and pass their unit tests.
func TestPromtoolTestsTheRules(t *testing.T) {
	promtool := tool(t, "prometheus", "promtool")
	dir := filepath.Join("..", "..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "cellwarden.rules.yml"}, {"test", "rules", "cellwarden.rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// getJSON fetches a Prometheus-style API answer; false when it cannot.
func getJSON(u string, v any) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// A real Prometheus scrapes cellwarden over TLS with basic auth: the
// target is up and the cell values are queryable.
func TestPrometheusScrapesCellwarden(t *testing.T) {
	prom := tool(t, "prometheus", "prometheus")
	addr, _, dir := exporter(t)
	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, fmt.Appendf(nil, `
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: cellwarden
    scheme: https
    tls_config: {ca_file: %s}
    basic_auth: {username: prometheus, password: scrape-pass}
    static_configs: [{targets: [%q]}]
`, filepath.Join(dir, "cert.pem"), addr), 0o600)
	startPeer(t, prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)

	var health string
	waitFor(t, "Prometheus to scrape the target", func() bool {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if !getJSON("http://"+promAddr+"/api/v1/targets", &r) || len(r.Data.ActiveTargets) != 1 {
			return false
		}
		health = r.Data.ActiveTargets[0].Health + " " + r.Data.ActiveTargets[0].LastError
		return r.Data.ActiveTargets[0].Health == "up"
	})
	var q struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	query := url.QueryEscape(`cellwarden_cell_voltage_volts{ups="ups-a",string="1",module="1",cell="2"}`)
	waitFor(t, "the cell voltage in Prometheus", func() bool {
		return getJSON("http://"+promAddr+"/api/v1/query?query="+query, &q) && len(q.Data.Result) == 1
	})
	if v := q.Data.Result[0].Value[1]; v != "4.06" {
		t.Errorf("Prometheus has cell 2 at %v V, want 4.06 (target %s)", v, health)
	}
}

// hookSink is a webhook receiver for Alertmanager's notifications.
type hookSink struct {
	mu   sync.Mutex
	msgs []notify.WebhookMessage
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m notify.WebhookMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err == nil {
		h.mu.Lock()
		h.msgs = append(h.msgs, m)
		h.mu.Unlock()
	}
}

// has reports whether a notification with status holds the alert.
func (h *hookSink) has(status, alertname string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		for _, a := range m.Alerts {
			if a.Status == status && a.Labels["alertname"] == alertname && a.Labels["cell"] == "7" {
				return true
			}
		}
	}
	return false
}

// cellwarden pushes an alert to a real Alertmanager, which delivers it to
// a webhook; then the resolution.
func TestAlertmanagerDeliversCellwardensAlerts(t *testing.T) {
	am := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	sink := &hookSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	dir := t.TempDir()
	amAddr := freeAddr(t)
	amCfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(amCfg, fmt.Appendf(nil, `
route:
  receiver: hook
  group_by: [ups, string]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL+"/hook"), 0o600)
	startPeer(t, am, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	waitFor(t, "Alertmanager to be ready", func() bool {
		resp, err := http.Get("http://" + amAddr + "/-/ready")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	var cfg notify.Config
	d, errs := yamlstrict.Decode(fmt.Appendf(nil, `
outbox: {path: outbox.db}
receivers:
  - name: am
    alertmanager: {urls: ["http://%s"], resend_interval: 1m}
`, amAddr), &cfg)
	p := d.Problems()
	p.Append(errs...)
	cfg.Validate(p, "alerting", dir, nil)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(&cfg, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	defer n.Shutdown(context.Background())

	labels := alerting.Labels{Alertname: "ThermalRunawayRisk", Severity: "critical", UPS: "ups-a", String: "1", Module: "3", Cell: "7"}
	fired := time.Now().UTC().Truncate(time.Millisecond)
	if err := n.Notify(alerting.Alert{Time: fired, Status: "firing", Labels: labels, Annotations: alerting.Annotations{Summary: "cell 7 heading for runaway"}, Value: 71}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the firing alert at the webhook", func() bool { return sink.has("firing", "ThermalRunawayRisk") })
	if err := n.Notify(alerting.Alert{Time: time.Now(), Status: "resolved", Labels: labels, Annotations: alerting.Annotations{Summary: "cooled down"}, Value: 40}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolved alert at the webhook", func() bool { return sink.has("resolved", "ThermalRunawayRisk") })

	sink.mu.Lock()
	defer sink.mu.Unlock()
	a := sink.msgs[0].Alerts[0]
	if !a.StartsAt.Equal(fired) || a.Annotations["summary"] != "cell 7 heading for runaway" || a.Labels["severity"] != "critical" {
		t.Errorf("Alertmanager delivered %+v", a)
	}
	if a.Fingerprint != notify.Fingerprint(map[string]string{"alertname": "ThermalRunawayRisk", "severity": "critical",
		"ups": "ups-a", "string": "1", "module": "3", "cell": "7"}) {
		t.Errorf("Alertmanager's fingerprint %s differs from cellwarden's", a.Fingerprint)
	}
}
