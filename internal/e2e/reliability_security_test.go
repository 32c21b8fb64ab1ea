package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"golang.org/x/crypto/bcrypt"

	"github.com/cellwarden/cellwarden/internal/testcert"
)

// secret returns a random string that can only appear in an output if a
// secret leaked.
func secret(t *testing.T, kind string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return kind + "-" + hex.EncodeToString(b)
}

// signedHook is a webhook receiver that checks the HMAC signature of every
// request with its secret and, when it has one, its Authorization header,
// and answers 500 to its first request (so that the failure path logs the
// URL).
type signedHook struct {
	srv    *httptest.Server
	secret []byte
	auth   string // the Authorization header required ("" for none)

	mu           sync.Mutex
	good, bad, n int
}

// startSignedHook starts a signedHook; with serverTLS it serves TLS with
// that configuration.
func startSignedHook(t *testing.T, secret, auth string, serverTLS *tls.Config) *signedHook {
	h := &signedHook{secret: []byte(secret), auth: auth}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, h.secret)
		mac.Write(body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.n++
		if hmac.Equal([]byte(r.Header.Get("X-Cellwarden-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) &&
			r.Header.Get("Authorization") == h.auth {
			h.good++
		} else {
			h.bad++
		}
		if h.n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	h.srv.TLS = serverTLS
	if serverTLS != nil {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	t.Cleanup(h.srv.Close)
	return h
}

func (h *signedHook) counts() (good, bad int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.good, h.bad
}

// startAuthBroker runs an in-process MQTT broker on loopback that admits
// only user with password.
func startAuthBroker(t *testing.T, user, password string) string {
	t.Helper()
	addr := freeAddr(t)
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	ledger := &auth.Ledger{Auth: auth.AuthRules{{Username: auth.RString(user), Password: auth.RString(password), Allow: true}},
		ACL: auth.ACLRules{{Username: auth.RString(user), Filters: auth.Filters{"#": auth.ReadWrite}}}}
	if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return addr
}

// What must hold: serve started with secrets (a webhook HMAC key from a
// file, another from an environment variable, a webhook URL with a token
// from a url_file, an MQTT password from an environment variable, the
// web password, a webhook's bearer token from an environment variable,
// the basic-auth password of a webhook behind mutual TLS from a file)
// uses them — each webhook verifies its signature and credentials, the
// MQTT collector is admitted by a broker that checks the password — and
// none of them appears in serve's output (with a webhook failure and an
// unreachable MQTT broker in it), in /metrics or on the status page.
// Behind --web.config.file (TLS, basic auth) every endpoint, POST
// /-/reload included, answers 401 without credentials or with a wrong
// password, and works with the right ones.
func TestReliabilitySecretsStaySecretAndEndpointsNeedAuth(t *testing.T) {
	fileKey, envKey, mqttPass, urlToken, webPass := secret(t, "hmacfile"), secret(t, "hmacenv"), secret(t, "mqttpass"), secret(t, "urltoken"), secret(t, "webpass")
	bearer, hookPass := secret(t, "bearer"), secret(t, "hookpass")
	dir := t.TempDir()
	pool := testcert.Write(t, dir)
	pki := testcert.WritePKI(t, t.TempDir())
	hash, err := bcrypt.GenerateFromPassword([]byte(webPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	files := map[string]string{
		"web.yml":   fmt.Sprintf("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: %s\n", hash),
		"hook.key":  fileKey + "\n",
		"hook.pass": hookPass + "\n",
	}
	fileHook, envHook := startSignedHook(t, fileKey, "", nil), startSignedHook(t, envKey, "Bearer "+bearer, nil)
	tlsHook := startSignedHook(t, fileKey, "Basic "+base64.StdEncoding.EncodeToString([]byte("cellwarden:"+hookPass)), pki.ServerTLS(t))
	tlsHook.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	files["hook.url"] = fileHook.srv.URL + "/hook/" + urlToken + "?token=" + urlToken
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	broker := startAuthBroker(t, "cellwarden", mqttPass)
	bms := startFaultBMS(t)
	bms.set(2000, 650) // CellOverTemperature: both webhooks are called
	cfg := writeConfig(t, dir, fmt.Sprintf(`  mqtt:
    - {name: broker, broker: "tcp://%s", username: cellwarden, password_env: CW_TEST_MQTT_PASSWORD, client_id: cw-sec-1, max_reconnect_interval: 1s,
       subscriptions: [{topic: "bms/{ups}/{string}/{module}", fields: [{path: t, metric: module_temperature_celsius}]}]}
    - {name: nobroker, broker: "tcp://%s", username: cellwarden, password_env: CW_TEST_MQTT_PASSWORD, client_id: cw-sec-2, max_reconnect_interval: 1s,
       subscriptions: [{topic: "bms/{ups}/{string}/{module}", fields: [{path: t, metric: module_temperature_celsius}]}]}
alerting:
  outbox: {path: outbox.db}
  receivers:
    - name: file-hook
      match: {severity: [critical]}
      retry: {min_backoff: 100ms, max_backoff: 500ms}
      webhook: {url_file: hook.url, hmac_secret_file: hook.key}
    - name: env-hook
      match: {severity: [critical]}
      retry: {min_backoff: 100ms, max_backoff: 500ms}
      http_config: {authorization: {credentials_env: CW_TEST_BEARER}}
      webhook: {url: %q, hmac_secret_env: CW_TEST_HMAC}
    - name: tls-hook
      match: {severity: [critical]}
      retry: {min_backoff: 100ms, max_backoff: 500ms}
      http_config:
        basic_auth: {username: cellwarden, password_file: hook.pass}
        tls_config: {ca_file: %s, cert_file: %s, key_file: %s}
      webhook: {url: %q, hmac_secret_file: hook.key}
`, broker, freeAddr(t), envHook.srv.URL+"/hook", pki.CA, pki.ClientCert, pki.ClientKey, tlsHook.srv.URL+"/hook"), bms.addr())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	d := startDaemon(t, daemonOptions{config: cfg, stateDir: filepath.Join(dir, "state"),
		env:  []string{"CW_TEST_MQTT_PASSWORD=" + mqttPass, "CW_TEST_HMAC=" + envKey, "CW_TEST_BEARER=" + bearer},
		args: []string{"--web.config.file", webConfig, "--log.level", "debug"}, tls: client, user: "prometheus", pass: webPass})

	if !eventually(time.Minute, func() bool {
		fg, _ := fileHook.counts()
		eg, _ := envHook.counts()
		tg, _ := tlsHook.counts()
		up, _ := d.metric("cellwarden_collector_up", "collector=broker")
		return fg >= 2 && eg >= 2 && tg >= 2 && up == 1
	}) {
		t.Fatalf("want the three webhooks called with valid signatures and credentials (the first answered 500) and the MQTT collector up")
	}
	for name, h := range map[string]*signedHook{"file-hook": fileHook, "env-hook": envHook, "tls-hook": tlsHook} {
		if _, bad := h.counts(); bad != 0 {
			t.Errorf("%s: %d requests with a wrong signature", name, bad)
		}
	}

	// Authentication: every endpoint, every method.
	anon := &daemonProc{url: d.url, client: client}
	wrong := &daemonProc{url: d.url, client: client, user: "prometheus", pass: "not-" + webPass}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/metrics"}, {http.MethodGet, "/"}, {http.MethodPost, "/-/reload"},
		{http.MethodGet, "/-/ready"}, {http.MethodGet, "/-/healthy"},
	} {
		for who, p := range map[string]*daemonProc{"no credentials": anon, "a wrong password": wrong} {
			if code, _ := p.request(c.method, c.path); code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401", c.method, c.path, who, code)
			}
		}
		if code, _ := d.request(c.method, c.path); code != http.StatusOK {
			t.Errorf("%s %s with the password: %d, want 200", c.method, c.path, code)
		}
	}
	plain := &daemonProc{url: strings.Replace(d.url, "https://", "http://", 1), client: http.DefaultClient, user: "prometheus", pass: webPass}
	if code, body := plain.get("/metrics"); code == http.StatusOK {
		t.Errorf("plain HTTP /metrics answered 200 behind TLS: %.100s", body)
	}

	_, metrics := d.get("/metrics")
	_, page := d.get("/")
	if !strings.Contains(metrics, "cellwarden_collector_up") || !strings.Contains(page, "CellOverTemperature") {
		t.Fatal("/metrics or the status page is not what it should be")
	}
	for what, text := range map[string]string{"serve's output": d.log.String(), "/metrics": metrics, "the status page": page} {
		for _, s := range []string{fileKey, envKey, mqttPass, urlToken, webPass, bearer, hookPass} {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %s", what, s)
			}
		}
	}
	for _, want := range []string{"500 Internal Server Error", "nobroker"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("serve's output lacks %q: the failure paths that could leak were not exercised", want)
		}
	}
}
