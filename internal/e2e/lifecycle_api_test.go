//go:build integration

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cellwarden/cellwarden/internal/testcert"
)

// apiCall makes a request to serve's lifecycle API with a JSON body (none
// when body is empty) as user (anonymous when empty) and returns the
// status and body (0 on a network error).
func apiCall(d *daemonProc, method, path, body, user, pass string) (int, string) {
	req, err := http.NewRequest(method, d.url+path, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The real binary behind TLS and bcrypt basic auth, watching three
// strings of ups-old through a Modbus gateway. The lifecycle API answers
// 401 without credentials and with a wrong password, and changes nothing
// then; with the credentials a maintenance window for string 1 is
// created (201, the user recorded as who does the work), listed by GET
// and by `cellwarden maintenance list` on the same state directory, and
// applied: with the BMSs of strings 1 and 2 silent, string 2 pages
// TelemetryStale and string 1 does not. DELETE ends the window and string
// 1 pages. The log names the user, never the password.
func TestLifecycleAPIMaintenanceOverTLSWithBasicAuth(t *testing.T) {
	const user = "operator"
	pass := secret(t, "apipass")
	gw, addr := startLCGateway(t, 3)
	dir := t.TempDir()
	pool := testcert.Write(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  %s: %s\n", user, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	// Polls 1 s apart, as in the lifecycle serve test: the stale check
	// learns the interval.
	var cfg strings.Builder
	cfg.WriteString("detector:\n  telemetry_stale: {min_age: 1s}\ncollectors:\n  modbus:\n")
	for u := 1; u <= 3; u++ {
		fmt.Fprintf(&cfg, "    - {name: bms-%d, address: %q, unit: %d, profile: soltaro_single_rack_vc, modules: 1, ups: %s, string: \"%d\", interval: 1s, timeout: 500ms}\n",
			u, addr, u, lcUPS, u)
	}
	config := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	d := startDaemon(t, daemonOptions{config: config, stateDir: state, args: []string{"--web.config.file", webConfig},
		tls: client, user: user, pass: pass})
	stale := func(str string) bool {
		v, ok := d.metric("cellwarden_alerts", "alertname=TelemetryStale", "ups="+lcUPS, "string="+str, "module=", "cell=")
		return ok && v == 1
	}
	lcWait(t, "every cell of ups-old in /metrics", func() bool {
		_, body := d.get("/metrics?name[]=cellwarden_cell_temperature_celsius")
		return len(parseSeries(body, "cellwarden_cell_temperature_celsius")) == 3*lcCells
	})
	firstPolls := gw.requests(2)

	window := `{"ups":"ups-old","string":"1","reason":"PTW-9","for":"2h"}`
	for _, c := range []struct {
		who, user, pass string
	}{{"no credentials", "", ""}, {"a wrong password", user, "not-" + pass}} {
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/v1/maintenance", ""},
			{http.MethodPost, "/api/v1/maintenance", window},
			{http.MethodDelete, "/api/v1/maintenance?ups=ups-old&string=1", ""},
			{http.MethodGet, "/api/v1/acknowledgements", ""},
			{http.MethodPost, "/api/v1/acknowledgements", `{"ups":"ups-old","string":"1","state":"end_of_life","owner":"x","planned":"2030-01-01","expires":"2030-01-01"}`},
		} {
			if code, body := apiCall(d, r.method, r.path, r.body, c.user, c.pass); code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s, want 401", r.method, r.path, c.who, code, body)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(state, "maintenance.json")); err == nil {
		t.Error("maintenance.json exists after refused requests only")
	}

	code, body := apiCall(d, http.MethodPost, "/api/v1/maintenance", window, user, pass)
	if code != http.StatusCreated || !strings.Contains(body, `"status":"success"`) || !strings.Contains(body, `"by":"operator"`) {
		t.Fatalf("POST /api/v1/maintenance with the credentials: %d %s, want 201 with by operator", code, body)
	}
	if code, body := apiCall(d, http.MethodGet, "/api/v1/maintenance", "", user, pass); code != http.StatusOK ||
		!strings.Contains(body, `"ups":"ups-old","string":"1","by":"operator","reason":"PTW-9"`) {
		t.Errorf("GET /api/v1/maintenance: %d %s, want 200 listing the window", code, body)
	}
	r := cellwarden(t, nil, "maintenance", "list", "--state.dir", state)
	if r.code != 0 || len(strings.Fields(r.stdout)) != 14 {
		t.Fatalf("maintenance list: exit %d, want a header and one row:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if row := strings.Fields(strings.Split(r.stdout, "\n")[1]); row[0] != lcUPS || row[1] != "1" || row[2] != "operator" || row[5] != "yes" || row[6] != "PTW-9" {
		t.Errorf("maintenance list row %q, want ups-old 1 operator ... yes PTW-9", row)
	}

	// The window is applied: string 1 is held, string 2 pages (once the
	// stale check has learned the strings' poll interval).
	lcWait(t, "5 times the first polls of string 2", func() bool { return gw.requests(2) >= 5*firstPolls })
	gw.silence(1, 2)
	lcWait(t, "TelemetryStale for ups-old/2, not under maintenance", func() bool { return stale("2") })
	from := gw.requests(3)
	lcWait(t, "5 more polls of string 3", func() bool { return gw.requests(3) > from+5 })
	if stale("1") || stale("") {
		t.Error("TelemetryStale pages for ups-old/1 (or the whole UPS) during the window opened through the API")
	}

	if code, body := apiCall(d, http.MethodDelete, "/api/v1/maintenance?ups=ups-old&string=1", "", user, pass); code != http.StatusOK {
		t.Fatalf("DELETE /api/v1/maintenance: %d %s, want 200", code, body)
	}
	lcWait(t, "TelemetryStale for ups-old/1 after the window was stopped", func() bool { return stale("1") })
	if code, body := apiCall(d, http.MethodDelete, "/api/v1/maintenance?ups=ups-old&string=1", "", user, pass); code != http.StatusNotFound {
		t.Errorf("DELETE of a window already stopped: %d %s, want 404", code, body)
	}

	log := d.log.String()
	for _, want := range []string{"maintenance window recorded", "maintenance window stopped", `"user": "operator"`} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q", want)
		}
	}
	if strings.Contains(log, pass) {
		t.Error("serve's log contains the web password")
	}
}
