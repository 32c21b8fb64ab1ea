//go:build integration && measure

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMeasurePrometheusPath is a measurement, not a test: the same hot
// cell going through a real Prometheus (default scrape and evaluation
// intervals of 1 m, a rule with for: 20s) and a real Alertmanager (default
// group_wait 30 s) to a webhook, for the comparison in docs/alerting.md.
// It takes 1.5 to 3.5 minutes, so it runs only with the "measure" tag:
//
//	go test -tags 'integration measure' -run MeasurePrometheusPath -v ./internal/e2e/
func TestMeasurePrometheusPath(t *testing.T) {
	prom := tool(t, "prometheus", "prometheus")
	am := tool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	arrived := make(chan time.Time, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { arrived <- time.Now() }))
	defer hook.Close()
	addr, _, dir := exporter(t) // cell 3 is at 27 °C
	amAddr, promAddr := freeAddr(t), freeAddr(t)
	os.WriteFile(filepath.Join(dir, "am.yml"), fmt.Appendf(nil, "route: {receiver: hook}\nreceivers: [{name: hook, webhook_configs: [{url: %q}]}]\n", hook.URL), 0o600)
	startPeer(t, am, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+filepath.Join(dir, "am"), "--web.listen-address="+amAddr, "--cluster.listen-address=")
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte("groups: [{name: x, rules: [{alert: Hot, expr: 'cellwarden_cell_temperature_celsius > 26.5', for: 20s}]}]\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "p.yml"), fmt.Appendf(nil, `
rule_files: [%s]
alerting: {alertmanagers: [{static_configs: [{targets: [%q]}]}]}
scrape_configs:
  - job_name: cellwarden
    scheme: https
    tls_config: {ca_file: %s}
    basic_auth: {username: prometheus, password: scrape-pass}
    static_configs: [{targets: [%q]}]
`, filepath.Join(dir, "rules.yml"), amAddr, filepath.Join(dir, "cert.pem"), addr), 0o600)
	start := time.Now() // the hot value is there from the start
	startPeer(t, prom, "--config.file="+filepath.Join(dir, "p.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	select {
	case at := <-arrived:
		t.Logf("Prometheus + Alertmanager defaults: %v from Prometheus start (first scrape is immediate) to webhook", at.Sub(start))
	case <-time.After(6 * time.Minute):
		t.Fatal("no webhook in 6 minutes")
	}
}
