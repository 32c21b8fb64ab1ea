package metrics_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/internal/testcert"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// The /metrics endpoint behind the exporter-toolkit web configuration:
// TLS with the configured certificate and basic auth with a bcrypt hash,
// set through --web.config.file as with any Prometheus exporter.
func TestServeWithTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := testcert.Write(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: %s\n", hash), 0o600)

	app := kingpin.New("cellwarden", "")
	serve := app.Command("serve", "")
	flags := metrics.AddFlags(serve)
	if _, err := app.Parse([]string{"serve", "--web.config.file=" + webConfig, "--web.listen-address=127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	f := newFleet(t)
	h, err := metrics.Handler(metrics.NewRegistry(f.store), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", (*flags.WebListenAddresses)[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- metrics.ServeListener(ctx, l, flags, h, zap.NewNop()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	get := func(c *http.Client, url, user, pass string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	https := "https://" + l.Addr().String() + "/metrics"

	code, body, err := get(trusting, https, "prometheus", "scrape-pass")
	if err != nil || code != http.StatusOK {
		t.Fatalf("scrape with the right password: %d %v", code, err)
	}
	for _, want := range []string{`cellwarden_cell_voltage_volts{cell="1",module="1",string="1",ups="ups-a"} 4.05`, "cellwarden_build_info", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	if code, _, err := get(trusting, https, "prometheus", "wrong"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d %v, want 401", code, err)
	}
	if code, _, err := get(trusting, https, "", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d %v, want 401", code, err)
	}
	if _, _, err := get(&http.Client{Timeout: 5 * time.Second}, https, "prometheus", "scrape-pass"); err == nil {
		t.Errorf("a client that does not trust the certificate got through")
	}
	if code, _, err := get(trusting, "http://"+l.Addr().String()+"/metrics", "prometheus", "scrape-pass"); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP served the metrics")
	}
}
