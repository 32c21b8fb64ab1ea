package notify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/testcert"
	"go.uber.org/zap/zapcore"
)

// tlsReceiver is a receiver behind TLS that requires basic auth (user
// cellwarden, its password) and, with mTLS, a client certificate; it
// records what it accepted.
type tlsReceiver struct {
	srv      *httptest.Server
	password string

	mu       sync.Mutex
	accepted []*http.Request
	bodies   [][]byte
	refused  int
}

func startTLSReceiver(t *testing.T, pki *testcert.PKI, mTLS bool, password string) *tlsReceiver {
	t.Helper()
	rcv := &tlsReceiver{password: password}
	rcv.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if !ok || user != "cellwarden" || pass != rcv.password {
			rcv.refused++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rcv.accepted = append(rcv.accepted, r)
		rcv.bodies = append(rcv.bodies, body)
	}))
	rcv.srv.TLS = pki.ServerTLS(t)
	if !mTLS {
		rcv.srv.TLS.ClientAuth = 0
	}
	rcv.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	rcv.srv.StartTLS()
	t.Cleanup(rcv.srv.Close)
	return rcv
}

// got returns the requests accepted and how many were refused (401).
func (r *tlsReceiver) got() (accepted []*http.Request, bodies [][]byte, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.accepted...), append([][]byte(nil), r.bodies...), r.refused
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// writeFiles writes name → content files to dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A webhook receiver that requires a client certificate and basic auth
// gets the notification, signed, when the receiver's http_config has the
// CA, the client certificate and the password; without the certificate
// or with an unknown CA the handshake fails and is retried as a network
// error; a wrong password is refused with 401, which is final.
func TestWebhookWithClientCertificateAndBasicAuth(t *testing.T) {
	dir := tempDir(t)
	pki := testcert.WritePKI(t, dir)
	writeFiles(t, dir, map[string]string{"right.pass": "s3cret-pass\n", "wrong.pass": "not-the-pass\n"})
	rcv := startTLSReceiver(t, pki, true, "s3cret-pass")
	client := fmt.Sprintf("cert_file: %s, key_file: %s", pki.ClientCert, pki.ClientKey)
	for _, tc := range []struct {
		name, tlsConfig, passwordFile string
		// wait is the counter (with its reason) that tells the outcome.
		wait     []string
		accepted int
		logged   string // what the logs say went wrong
	}{
		{"certificate and password", "ca_file: " + pki.CA + ", " + client, "right.pass",
			[]string{"cellwarden_notifications_sent_total"}, 1, ""},
		{"no client certificate", "ca_file: " + pki.CA, "right.pass",
			[]string{"cellwarden_notification_requests_failed_total", "reason", "network"}, 0, "certificate required"},
		{"unknown CA", client, "right.pass",
			[]string{"cellwarden_notification_requests_failed_total", "reason", "network"}, 0, "certificate signed by unknown authority"},
		{"wrong password", "ca_file: " + pki.CA + ", " + client, "wrong.pass",
			[]string{"cellwarden_notifications_failed_total", "reason", "client_error"}, 0, "401 Unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, fmt.Sprintf(`
outbox: {path: %s}
receivers:
  - name: hook
    retry: {min_backoff: 10ms, max_backoff: 50ms}
    http_config:
      basic_auth: {username: cellwarden, password_file: %s}
      tls_config: {%s}
    webhook: {url: %q, hmac_secret: hunter2}
`, filepath.Join(t.TempDir(), "outbox.db"), tc.passwordFile, tc.tlsConfig, rcv.srv.URL+"/hook"), dir, nil)
			defer r.stopWithin(t, 100*time.Millisecond) // what was not delivered stays queued
			before, _, _ := rcv.got()
			r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
			waitUntil(t, strings.Join(tc.wait, " "), func() bool {
				return r.value(t, tc.wait[0], append([]string{"receiver", "hook"}, tc.wait[1:]...)...) >= 1
			})
			after, bodies, _ := rcv.got()
			if got := len(after) - len(before); got != tc.accepted {
				t.Fatalf("the receiver accepted %d requests, want %d", got, tc.accepted)
			}
			if logs := logText(r); !strings.Contains(logs, tc.logged) {
				t.Errorf("the logs do not say %q:\n%s", tc.logged, logs)
			}
			for i, req := range after[len(before):] {
				if cn := req.TLS.PeerCertificates[0].Subject.CommonName; cn != "cellwarden" {
					t.Errorf("client certificate %q", cn)
				}
				if sig := req.Header.Get(notify.HeaderSignature); sig != notify.Sign([]byte("hunter2"), bodies[len(before)+i]) {
					t.Errorf("signature %q does not match the body", sig)
				}
			}
		})
	}
}

// An Alertmanager behind TLS (a private CA) and basic auth, the password
// from an environment variable, gets the push at /api/v2/alerts.
func TestAlertmanagerBehindTLSAndBasicAuth(t *testing.T) {
	dir := tempDir(t)
	pki := testcert.WritePKI(t, dir)
	am := startTLSReceiver(t, pki, false, "am-pass")
	r := startEnv(t, fmt.Sprintf(`
outbox: {path: outbox.db}
receivers:
  - name: am
    http_config:
      basic_auth: {username: cellwarden, password_env: AM_PASSWORD}
      tls_config: {ca_file: ca.pem, server_name: localhost}
    alertmanager: {urls: [%q]}
`, am.srv.URL), dir, nil, map[string]string{"AM_PASSWORD": "am-pass"})
	defer r.stop(t)
	r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
	waitUntil(t, "the push", func() bool { return r.value(t, "cellwarden_notifications_sent_total", "receiver", "am") == 1 })
	reqs, bodies, refused := am.got()
	if len(reqs) != 1 || refused != 0 || reqs[0].URL.Path != "/api/v2/alerts" || reqs[0].TLS.ServerName != "localhost" {
		t.Fatalf("Alertmanager got %d requests (%d refused), path %s", len(reqs), refused, reqs[0].URL.Path)
	}
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(bodies[0], &alerts); err != nil || len(alerts) != 1 || alerts[0].Labels["cell"] != "7" {
		t.Errorf("pushed %s (%v)", bodies[0], err)
	}
}

// A bearer token from credentials_file is read at every request: a
// rotated token is used from the next request on, without a reload.
func TestBearerTokenFileIsReadAtEveryRequest(t *testing.T) {
	dir := tempDir(t)
	writeFiles(t, dir, map[string]string{"token": "first-token\n"})
	s := &sink{}
	r := start(t, `
outbox: {path: outbox.db}
receivers:
  - name: hook
    http_config:
      authorization: {credentials_file: token}
    webhook: {url: "https://hooks.example/hook", group_by: [ups]}
`, dir, s)
	defer r.stop(t)
	r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-a/1/3/7", time.Now()))
	waitUntil(t, "the first notification", func() bool { return len(s.all()) == 1 })
	writeFiles(t, dir, map[string]string{"token": "second-token\n"})
	r.notify(t, mk("firing", "CellOverTemperature", "critical", "ups-b/1/3/7", time.Now()))
	waitUntil(t, "the second notification", func() bool { return len(s.all()) == 2 })
	var got []string
	for _, h := range s.all() {
		got = append(got, h.header.Get("Authorization"))
	}
	equal(t, "Authorization headers", got, []string{"Bearer first-token", "Bearer second-token"})
}

// Settings that expose a receiver's traffic are logged when it starts:
// certificates not verified, credentials over plain HTTP.
func TestInsecureReceiverSettingsAreLogged(t *testing.T) {
	dir := tempDir(t)
	writeFiles(t, dir, map[string]string{"pass": "p"})
	r := start(t, `
outbox: {path: outbox.db}
receivers:
  - name: plain
    http_config: {basic_auth: {username: u, password_file: pass}}
    webhook: {url: "http://hooks.example/hook"}
  - name: unverified
    http_config: {tls_config: {insecure_skip_verify: true}}
    webhook: {url: "https://hooks.example/hook"}
  - name: fine
    http_config: {basic_auth: {username: u, password_file: pass}}
    webhook: {url: "https://hooks.example/hook"}
`, dir, &sink{})
	defer r.stop(t)
	var warns []string
	for _, e := range r.logs.FilterLevelExact(zapcore.WarnLevel).All() {
		warns = append(warns, e.ContextMap()["receiver"].(string)+": "+e.Message)
	}
	equal(t, "warnings", warns, []string{
		"plain: The receiver's credentials travel unencrypted: its URL is not https",
		"unverified: The receiver's TLS certificate is not verified (insecure_skip_verify)",
	})
}
