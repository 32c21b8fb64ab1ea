//go:build integration

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/testcert"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// startNotifier runs a Notifier of the alerting section doc (relative
// paths against dir) until the test ends, its metrics in a registry of
// its own.
func startNotifier(t *testing.T, doc, dir string) (*notify.Notifier, *prometheus.Registry) {
	t.Helper()
	var cfg notify.Config
	d, errs := yamlstrict.Decode([]byte(doc), &cfg)
	p := d.Problems()
	p.Append(errs...)
	cfg.Validate(p, "alerting", dir, nil)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	n, err := notify.New(&cfg, notify.Options{Metrics: notify.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n, reg
}

// A real Alertmanager behind its web configuration — TLS with a private
// CA, client certificates required, basic auth with a bcrypt hash — gets
// cellwarden's alerts from a receiver whose http_config has the CA, the
// client certificate and the password (from a file) and delivers the
// firing and the resolved state to a webhook. A receiver with a wrong
// password is refused with 401: counted as client_error, not retried.
func TestAlertmanagerWithWebConfigTLSAndBasicAuth(t *testing.T) {
	am := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	sink := &hookSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	dir := t.TempDir()
	pki := testcert.WritePKI(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("am-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"alertmanager.yml": fmt.Sprintf(`
route:
  receiver: hook
  group_by: [ups, string]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL+"/hook"),
		"web.yml": fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  cellwarden: %s
`, pki.ServerCert, pki.ServerKey, pki.CA, hash),
		"am.pass":    "am-pass\n",
		"wrong.pass": "not-am-pass\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	amAddr := freeAddr(t)
	startPeer(t, am, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--web.config.file="+filepath.Join(dir, "web.yml"), "--cluster.listen-address=")
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{cert}}}}
	waitFor(t, "Alertmanager to be ready over TLS", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "https://"+amAddr+"/-/ready", nil)
		req.SetBasicAuth("cellwarden", "am-pass")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	receiver := func(passwordFile, resend string) string {
		return fmt.Sprintf(`
outbox: {path: %s.db}
receivers:
  - name: am
    retry: {min_backoff: 100ms, max_backoff: 500ms}
    http_config:
      basic_auth: {username: cellwarden, password_file: %s}
      tls_config: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem}
    alertmanager: {urls: ["https://%s"], resend_interval: %s}
`, passwordFile, passwordFile, amAddr, resend)
	}
	n, _ := startNotifier(t, receiver("am.pass", "1m"), dir)
	// The wrong one pushes the firing alert once within the test: a resend
	// (a new notification, refused again) would add a 401 to the count.
	wrong, wrongReg := startNotifier(t, receiver("wrong.pass", "1h"), dir)

	labels := alerting.Labels{Alertname: "ThermalRunawayRisk", Severity: "critical", UPS: "ups-a", String: "1", Module: "3", Cell: "7"}
	fired := alerting.Alert{Time: time.Now(), Status: "firing", Labels: labels, Annotations: alerting.Annotations{Summary: "cell 7 heading for runaway"}, Value: 71}
	for _, x := range []*notify.Notifier{n, wrong} {
		if err := x.Notify(fired); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the firing alert at the webhook", func() bool { return sink.has("firing", "ThermalRunawayRisk") })
	if err := n.Notify(alerting.Alert{Time: time.Now(), Status: "resolved", Labels: labels, Value: 40}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolved alert at the webhook", func() bool { return sink.has("resolved", "ThermalRunawayRisk") })

	waitFor(t, "the wrong password refused", func() bool {
		return reasonCount(t, wrongReg, "cellwarden_notifications_failed_total", "client_error") == 1
	})
	if got := reasonCount(t, wrongReg, "cellwarden_notification_requests_failed_total", "client_error"); got != 1 {
		t.Errorf("%v requests refused with the wrong password, want 1 (a 401 is final)", got)
	}
}

// reasonCount returns the value of the counter name{reason} in reg.
func reasonCount(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == name && l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
