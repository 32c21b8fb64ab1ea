package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped alerting example loads, with its receivers in order.
func TestShippedAlertingExample(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "deploy", "examples", "cellwarden-alerting.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range cfg.Alerting.Receivers {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "oncall,facilities,alertmanager" {
		t.Errorf("receivers %s", got)
	}
	if cfg.Alerting.Outbox.Path != "/var/lib/cellwarden/outbox.db" {
		t.Errorf("outbox path %q", cfg.Alerting.Outbox.Path)
	}
	secrets, err := filepath.Abs(filepath.Join("..", "..", "deploy", "examples", "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Alerting.Receivers[0].HTTPConfig.Authorization; a == nil || a.Type != "Bearer" ||
		!sameFile(a.CredentialsFile, filepath.Join(secrets, "oncall-token")) {
		t.Errorf("oncall authorization %+v", a)
	}
	am := cfg.Alerting.Receivers[2].HTTPConfig
	if b := am.BasicAuth; b == nil || b.Username != "cellwarden" || !sameFile(b.PasswordFile, filepath.Join(secrets, "alertmanager-password")) ||
		am.TLSConfig.MinVersion != "TLS12" {
		t.Errorf("alertmanager http_config %+v %+v", b, am.TLSConfig)
	}
}

// sameFile reports whether two paths name one file.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// check-config reports alerting problems with the file, path and line,
// together with the others.
func TestAlertingProblemsAreReported(t *testing.T) {
	_, err := Parse([]byte(`
alerting:
  receivers:
    - name: oncall
      match: {severity: [page]}
      webhook: {url: "https://pager.example/T0KEN", hmac_secret_env: CELLWARDEN_TEST_UNSET}
`), "c.yml")
	want := strings.Join([]string{
		`c.yml: alerting.outbox.path: is required when there are receivers (the file that keeps undelivered notifications) (line 2)`,
		`c.yml: alerting.receivers[0].match.severity[0]: "page" is not a severity (info, warning, critical) (line 5)`,
		`c.yml: alerting.receivers[0].webhook.hmac_secret_env: "CELLWARDEN_TEST_UNSET" is not set in the environment (line 6)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// A relative outbox path resolves against the configuration file.
func TestAlertingOutboxRelativeToFile(t *testing.T) {
	cfg, err := Parse([]byte("alerting:\n  outbox: {path: state/outbox.db}\n"), filepath.Join("etc", "cellwarden.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("etc", "state", "outbox.db"); cfg.Alerting.Outbox.Path != want {
		t.Errorf("outbox path %q, want %q", cfg.Alerting.Outbox.Path, want)
	}
}
