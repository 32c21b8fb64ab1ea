package notify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/testcert"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// check decodes and validates an alerting section; it returns the
// problems, one per line.
// The section is decoded under an "alerting" key, as in the
// configuration file, so that the lines are those of doc.
func check(doc, dir string, env map[string]string) (*notify.Config, string) {
	var file struct {
		Alerting notify.Config `yaml:"alerting"`
	}
	d, errs := yamlstrict.Decode([]byte("alerting:"+strings.ReplaceAll(doc, "\n", "\n  ")), &file)
	p := d.Problems()
	p.Append(errs...)
	c := &file.Alerting
	c.Validate(p, "alerting", dir, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err := p.Err(); err != nil {
		return c, err.Error()
	}
	return c, ""
}

func TestConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	c, errs := check(`
outbox: {path: state/outbox.db}
receivers:
  - name: oncall
    webhook: {url: "https://pager.example/hook"}
  - name: am
    alertmanager: {urls: ["http://127.0.0.1:9093"]}
`, dir, nil)
	if errs != "" {
		t.Fatal(errs)
	}
	if c.Outbox.Path != filepath.Join(dir, "state", "outbox.db") || c.Outbox.MaxEntries != 10000 {
		t.Errorf("outbox %+v", c.Outbox)
	}
	w := c.Receivers[0].Webhook
	if strings.Join(w.GroupBy, ",") != "ups,string" || w.GroupWait != 0 || w.GroupInterval != yamlstrict.Duration(time.Minute) ||
		w.RepeatInterval != yamlstrict.Duration(4*time.Hour) || !w.SendResolved {
		t.Errorf("webhook defaults %+v", w)
	}
	r := c.Receivers[1]
	if r.Timeout != yamlstrict.Duration(10*time.Second) || r.Retry.MinBackoff != yamlstrict.Duration(500*time.Millisecond) ||
		r.Retry.MaxBackoff != yamlstrict.Duration(time.Minute) || r.Alertmanager.ResendInterval != yamlstrict.Duration(time.Minute) {
		t.Errorf("receiver defaults %+v %+v", r, r.Alertmanager)
	}
}

func TestConfigSecretsFromFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "url"), []byte("https://hooks.example/T0KEN\n"), 0o600)
	_, errs := check(`
outbox: {path: o.db}
receivers:
  - name: a
    webhook: {url_file: url, hmac_secret_file: secret}
  - name: b
    webhook: {url: "http://b.example", hmac_secret_env: HOOK_SECRET}
`, dir, map[string]string{"HOOK_SECRET": "from-env"})
	if errs != "" {
		t.Fatal(errs)
	}
}

// http_config's files resolve against the configuration's directory;
// the authorization type defaults to Bearer.
func TestConfigHTTPConfig(t *testing.T) {
	dir := t.TempDir()
	pki := testcert.WritePKI(t, dir)
	os.WriteFile(filepath.Join(dir, "token"), []byte("t0ken\n"), 0o600)
	c, errs := check(`
outbox: {path: o.db}
receivers:
  - name: am
    http_config:
      authorization: {credentials_file: token}
      tls_config: {ca_file: ca.pem, cert_file: client.pem, key_file: client-key.pem, server_name: am.example, min_version: TLS13}
    alertmanager: {urls: ["https://am.example:9093"]}
  - name: hook
    http_config: {basic_auth: {username: cellwarden, password_env: HOOK_PASSWORD}}
    webhook: {url: "https://hooks.example"}
`, dir, map[string]string{"HOOK_PASSWORD": "from-env"})
	if errs != "" {
		t.Fatal(errs)
	}
	h := c.Receivers[0].HTTPConfig
	if h.Authorization.Type != "Bearer" || h.Authorization.CredentialsFile != filepath.Join(dir, "token") {
		t.Errorf("authorization %+v", h.Authorization)
	}
	if tc := h.TLSConfig; tc.CAFile != pki.CA || tc.CertFile != pki.ClientCert || tc.KeyFile != pki.ClientKey || tc.ServerName != "am.example" {
		t.Errorf("tls_config %+v", tc)
	}
	if b := c.Receivers[1].HTTPConfig.BasicAuth; b == nil || b.Username != "cellwarden" || b.PasswordEnv != "HOOK_PASSWORD" {
		t.Errorf("basic_auth %+v", b)
	}
}

func TestBadAlertingConfigs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"receivers need an outbox", `
receivers:
  - name: a
    webhook: {url: "http://a.example"}`,
			[]string{`alerting.outbox.path: is required when there are receivers (the file that keeps undelivered notifications) (line 1)`}},
		{"name, kind and URL", `
outbox: {path: o.db, max_entries: -1}
external_url: "ftp://x"
receivers:
  - name: "on call"
    webhook: {url: "mailto:ops@example.com"}
  - name: both
    webhook: {url: "http://a.example"}
    alertmanager: {urls: ["http://am:9093"]}
  - name: neither
  - name: both
    alertmanager: {urls: [], resend_interval: 100ms}`,
			[]string{
				`alerting.outbox.max_entries: "-1" must be 1..10000000 (line 2)`,
				`alerting.external_url: "ftp://x" must be an http or https URL (line 3)`,
				`alerting.receivers[0].name: "on call" must match [A-Za-z0-9_.-]+ (line 5)`,
				`alerting.receivers[0].webhook.url: "mailto:<redacted>" must be an http or https URL (line 6)`,
				`alerting.receivers[1]: needs exactly one of webhook and alertmanager (line 7)`,
				`alerting.receivers[2]: needs exactly one of webhook and alertmanager (line 10)`,
				`alerting.receivers[3].name: "both" is also the name of receivers[1] (line 11)`,
				`alerting.receivers[3].alertmanager.resend_interval: "100ms" must be at least 1s (line 12)`,
				`alerting.receivers[3].alertmanager.urls: needs at least one Alertmanager URL (line 12)`,
			}},
		{"matchers", `
outbox: {path: o.db}
receivers:
  - name: a
    match: {severity: [page], "bad-label": [x], cell: []}
    match_re: {alertname: "Battery(", ups: "ups-.*"}
    webhook: {url: "http://a.example"}`,
			[]string{
				`alerting.receivers[0].match.bad-label: is not a label name (line 5)`,
				`alerting.receivers[0].match.cell: needs at least one value (line 5)`,
				`alerting.receivers[0].match.severity[0]: "page" is not a severity (info, warning, critical) (line 5)`,
				"alerting.receivers[0].match_re.alertname: \"Battery(\" is not a regular expression: missing closing ): `^(?:Battery()$` (line 6)",
			}},
		{"secrets, timing and retry", `
outbox: {path: o.db}
receivers:
  - name: a
    timeout: 0s
    retry: {min_backoff: 2s, max_backoff: 1s}
    webhook:
      url: "http://a.example"
      hmac_secret: x
      hmac_secret_env: Y
      group_by: [ups, "string-id"]
      group_interval: 5m
      repeat_interval: 1m
  - name: b
    webhook: {url_file: missing, hmac_secret_file: empty}
  - name: c
    webhook: {url: "http://c.example", hmac_secret_env: UNSET}
  - name: d
    webhook: {hmac_secret: "never shown"}`,
			[]string{
				`alerting.receivers[0].timeout: "0s" must be above 0 (line 5)`,
				`alerting.receivers[0].retry.max_backoff: "1s" must be at least min_backoff (2s) (line 6)`,
				`alerting.receivers[0].webhook: needs at most one of hmac_secret, hmac_secret_file and hmac_secret_env (line 7)`,
				`alerting.receivers[0].webhook.group_by[1]: "string-id" is not a label name (line 11)`,
				`alerting.receivers[0].webhook.repeat_interval: "1m0s" must be at least group_interval (5m0s) (line 13)`,
				`alerting.receivers[1].webhook.hmac_secret_file: "empty" is empty (line 15)`,
				`alerting.receivers[1].webhook.url_file: "missing" cannot be read: no such file or directory (line 15)`,
				`alerting.receivers[2].webhook.hmac_secret_env: "UNSET" is not set in the environment (line 17)`,
				`alerting.receivers[3].webhook: needs exactly one of url and url_file (line 19)`,
			}},
		{"http_config", `
outbox: {path: o.db}
receivers:
  - name: a
    http_config:
      basic_auth: {password: "never shown", password_env: UNSET}
      authorization: {type: Basic, credentials_file: missing}
      tls_config: {ca_file: empty, cert_file: empty, min_version: TLS9}
    webhook: {url: "http://a.example"}
  - name: b
    http_config:
      basic_auth: {username: "a:b", password_file: empty, password_env: SET}
      tls_config: {cert_file: empty, key_file: empty, ca_file: missing}
    webhook: {url: "http://b.example"}
  - name: c
    http_config:
      authorization: {type: "Bearer token", credentials: "never shown"}
    alertmanager: {urls: ["http://am:9093"]}
  - name: d
    http_config: {authorization: {}, basic_auth: {username: u, password_file: empty}, proxy_url: "http://p"}
    alertmanager: {urls: ["http://am:9093"]}`,
			[]string{
				`alerting.receivers[0].http_config: needs at most one of basic_auth and authorization (line 5)`,
				`alerting.receivers[0].http_config.basic_auth.password: is not accepted in the configuration file: use password_file or password_env (line 6)`,
				`alerting.receivers[0].http_config.basic_auth.password_env: "UNSET" is not set in the environment (line 6)`,
				`alerting.receivers[0].http_config.basic_auth.username: is required (line 6)`,
				`alerting.receivers[0].http_config.authorization.credentials_file: "missing" cannot be read: no such file or directory (line 7)`,
				`alerting.receivers[0].http_config.authorization.type: "Basic" cannot be Basic: use basic_auth (line 7)`,
				`alerting.receivers[0].http_config.tls_config: needs both cert_file and key_file for a client certificate (line 8)`,
				`alerting.receivers[0].http_config.tls_config.ca_file: "empty" holds no PEM certificate (line 8)`,
				`alerting.receivers[0].http_config.tls_config.min_version: "TLS9" must be TLS10, TLS11, TLS12 or TLS13 (line 8)`,
				`alerting.receivers[1].http_config.basic_auth: needs exactly one of password_file and password_env (line 12)`,
				`alerting.receivers[1].http_config.basic_auth.username: "a:b" must not contain a colon (line 12)`,
				`alerting.receivers[1].http_config.tls_config.ca_file: "missing" cannot be read: no such file or directory (line 13)`,
				`alerting.receivers[1].http_config.tls_config.cert_file: "empty" with key_file is not a usable client certificate: tls: failed to find any PEM data in certificate input (line 13)`,
				`alerting.receivers[2].http_config.authorization.credentials: is not accepted in the configuration file: use credentials_file or credentials_env (line 17)`,
				`alerting.receivers[2].http_config.authorization.type: "Bearer token" is not an HTTP authentication scheme (such as Bearer) (line 17)`,
				`alerting.receivers[3].http_config: needs at most one of basic_auth and authorization (line 20)`,
				`alerting.receivers[3].http_config.authorization: needs exactly one of credentials_file and credentials_env (line 20)`,
				`alerting.receivers[3].http_config.basic_auth.password_file: "empty" is empty (line 20)`,
				`alerting.receivers[3].http_config.proxy_url: unknown field (line 20)`,
			}},
		{"unknown keys", `
outbox: {path: o.db}
receivers:
  - name: a
    alertmanager: {urls: ["http://am:9093"], group_wait: 1s}`,
			[]string{`alerting.receivers[0].alertmanager.group_wait: unknown field (line 5)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := check(tt.doc, dir, map[string]string{"SET": "x"})
			want := strings.Join(tt.want, "\n")
			if got != want {
				t.Errorf("problems:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(got, "never shown") {
				t.Errorf("a secret is in the messages")
			}
		})
	}
}
