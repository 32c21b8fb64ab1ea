package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/promtest"
)

// apiNow is the wall clock of the handler-level tests.
var apiNow = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

// apiRequest is one request to the lifecycle API.
type apiRequest struct {
	method, target, contentType, body string
	user, pass                        string
}

// apiAnswer is what came back: the status, the headers and the envelope.
type apiAnswer struct {
	code      int
	header    http.Header
	raw       string
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (q apiRequest) request(t *testing.T, base string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(q.method, base+q.target, strings.NewReader(q.body))
	if err != nil {
		t.Fatal(err)
	}
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	if q.user != "" {
		req.SetBasicAuth(q.user, q.pass)
	}
	return req
}

// serve runs the request through h.
func (q apiRequest) serve(t *testing.T, h http.Handler) apiAnswer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, q.request(t, "http://cellwarden.test"))
	return decodeAnswer(t, rec.Code, rec.Header(), rec.Body.String())
}

// send makes the request to a running daemon.
func (q apiRequest) send(t *testing.T, base string) apiAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(q.request(t, base))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAnswer(t, resp.StatusCode, resp.Header, string(body))
}

// decodeAnswer reads the envelope of a JSON answer (toolkit's 401s are
// plain text and keep only their code).
func decodeAnswer(t *testing.T, code int, h http.Header, body string) apiAnswer {
	t.Helper()
	a := apiAnswer{code: code, header: h, raw: body}
	if h.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("answer %d is not the JSON envelope: %v\n%s", code, err, body)
		}
	}
	return a
}

// apiFixture is the lifecycle API over the stores of a fresh state
// directory, with the nudges it gave the daemon counted and its log
// recorded.
type apiFixture struct {
	api     *lifecycleAPI
	mux     *http.ServeMux
	state   string
	nudges  atomic.Int32
	logs    *observer.ObservedLogs
	webPath string
}

// webConfigWithUser writes a web configuration file whose one basic-auth
// user is user with password pass.
func webConfigWithUser(t *testing.T, dir, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return writeWebConfig(t, dir, fmt.Sprintf("basic_auth_users:\n  %s: %s\n", user, hash))
}

func writeWebConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newAPIFixture(t *testing.T, webConfig string, withoutAuth bool) *apiFixture {
	t.Helper()
	f := &apiFixture{state: t.TempDir(), mux: http.NewServeMux(), webPath: webConfig}
	acks, err := lifecycle.OpenStore(filepath.Join(f.state, ackFile))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	f.api = &lifecycleAPI{acks: acks, maint: lifecycle.NewMaintenanceStore(filepath.Join(f.state, maintenanceFile)), alerts: newAlertLog(maxResolved),
		webConfig: webConfig, withoutAuth: withoutAuth, log: zap.New(core), now: func() time.Time { return apiNow },
		changed: func() { f.nudges.Add(1) }}
	f.api.register(f.mux)
	return f
}

// stored returns what the stores hold, as "ups/string" of each
// acknowledgement and window.
func (f *apiFixture) stored(t *testing.T) []string {
	t.Helper()
	acks, err := f.api.acks.List()
	if err != nil {
		t.Fatal(err)
	}
	ws, err := f.api.maint.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range acks {
		out = append(out, "ack "+a.UPS+"/"+a.String)
	}
	for _, w := range ws {
		out = append(out, "window "+w.UPS+"/"+w.String)
	}
	return out
}

const (
	goodAck    = `{"ups":"ups-a","string":"1","state":"end_of_life","owner":"facilities-dc1","planned":"2026-05-15","expires":"2026-05-31","note":"CHG-1042"}`
	goodWindow = `{"ups":"ups-a","string":"2","reason":"PTW-1234","for":"4h"}`
)

// Without basic_auth_users in the web configuration file (no file, or one
// with TLS only) every change is refused with 403 and a message that says
// how to allow it, and nothing is written; reads work.
// --web.enable-lifecycle-api-without-auth lets the same changes through.
func TestLifecycleAPIRefusesChangesWithoutAuth(t *testing.T) {
	tlsOnly := writeWebConfig(t, t.TempDir(), "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
	changes := []apiRequest{
		{method: http.MethodPost, target: "/api/v1/acknowledgements", contentType: "application/json", body: goodAck},
		{method: http.MethodPost, target: "/api/v1/maintenance", contentType: "application/json", body: `{"ups":"ups-a","by":"alice"}`},
		{method: http.MethodDelete, target: "/api/v1/acknowledgements?ups=ups-a&string=1&state=end_of_life"},
		{method: http.MethodDelete, target: "/api/v1/maintenance?ups=ups-a"},
	}
	for _, c := range []struct{ name, webConfig string }{{"no web configuration", ""}, {"TLS without users", tlsOnly}} {
		t.Run(c.name, func(t *testing.T) {
			f := newAPIFixture(t, c.webConfig, false)
			for _, q := range changes {
				a := q.serve(t, f.mux)
				if a.code != http.StatusForbidden || a.Status != "error" || a.ErrorType != "forbidden" ||
					!strings.Contains(a.Error, "set basic_auth_users in the web configuration file (--web.config.file)") ||
					!strings.Contains(a.Error, "--web.enable-lifecycle-api-without-auth (dangerous") {
					t.Errorf("%s %s: %d %s, want 403 saying how to allow changes", q.method, q.target, a.code, a.raw)
				}
			}
			if got := f.stored(t); len(got) != 0 || f.nudges.Load() != 0 {
				t.Errorf("refused changes stored %v and nudged the daemon %d times", got, f.nudges.Load())
			}
			for _, target := range []string{"/api/v1/acknowledgements", "/api/v1/maintenance"} {
				if a := (apiRequest{method: http.MethodGet, target: target}).serve(t, f.mux); a.code != http.StatusOK || string(a.Data) != "[]" {
					t.Errorf("GET %s: %d %s, want 200 with an empty list", target, a.code, a.raw)
				}
			}
		})
	}
	t.Run("without auth by the flag", func(t *testing.T) {
		f := newAPIFixture(t, "", true)
		for _, q := range changes[:2] {
			if a := q.serve(t, f.mux); a.code != http.StatusCreated {
				t.Errorf("%s %s with --web.enable-lifecycle-api-without-auth: %d %s, want 201", q.method, q.target, a.code, a.raw)
			}
		}
		if got := f.stored(t); len(got) != 2 {
			t.Errorf("the stores hold %v, want an acknowledgement and a window", got)
		}
	})
}

// Bad input is refused with the status that says why and a message that
// names the field; nothing is written and the daemon is not nudged.
func TestLifecycleAPIRefusesBadInput(t *testing.T) {
	f := newAPIFixture(t, webConfigWithUser(t, t.TempDir(), "alice", "pw"), false)
	const acks, maint, js = "/api/v1/acknowledgements", "/api/v1/maintenance", "application/json"
	withAck := func(field, value string) string {
		var m map[string]string
		if err := json.Unmarshal([]byte(goodAck), &m); err != nil {
			t.Fatal(err)
		}
		m[field] = value
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, c := range []struct {
		name                              string
		method, target, contentType, body string
		code                              int
		err                               string
	}{
		{"text body", http.MethodPost, acks, "text/plain", goodAck, 415, `Content-Type "text/plain": the body must be application/json`},
		{"no content type", http.MethodPost, maint, "", goodWindow, 415, `Content-Type "": the body must be application/json`},
		{"form post", http.MethodPost, maint, "application/x-www-form-urlencoded", "ups=ups-a", 415, `Content-Type "application/x-www-form-urlencoded": the body must be application/json`},
		{"empty body", http.MethodPost, acks, js, "", 400, "body: empty; want a JSON object"},
		{"broken JSON", http.MethodPost, acks, js, `{"ups":`, 400, "body: invalid JSON: unexpected EOF"},
		{"not an object", http.MethodPost, maint, js, `["ups-a"]`, 400, "body: must be a JSON object, not a JSON array"},
		{"wrong type", http.MethodPost, acks, js, `{"ups":7}`, 400, "body: ups must be a string, not a JSON number"},
		{"misspelt field", http.MethodPost, maint, js, `{"ups":"ups-a","strng":"2","by":"alice"}`, 400, `body: unknown field "strng"`},
		{"created is not the client's", http.MethodPost, acks, js, strings.Replace(goodAck, "{", `{"created":"2026-01-01T00:00:00Z",`, 1), 400, `body: unknown field "created"`},
		{"two objects", http.MethodPost, acks, js, goodAck + goodAck, 400, "body: data after the JSON object"},
		{"too large", http.MethodPost, acks, js, `{"note":"` + strings.Repeat("x", maxAPIBody) + `"}`, 413, "body: larger than 65536 bytes"},
		{"ack without ups", http.MethodPost, acks, js, `{"state":"soon"}`, 400, "ups is required"},
		{"ack with a bad ups", http.MethodPost, acks, js, strings.Replace(goodAck, `"ups-a"`, `"ups a"`, 1), 400, `acknowledgement: ups "ups a" must match [A-Za-z0-9_.:-]+`},
		{"ack state", http.MethodPost, acks, js, withAck("state", "eol"), 400, `state "eol" must be end_of_life or soon`},
		{"ack date", http.MethodPost, acks, js, withAck("planned", "2026-02-30"), 400, `planned "2026-02-30" is not a day of the calendar (2026-02-30)`},
		{"ack dates", http.MethodPost, acks, js, withAck("expires", "someday"), 400, `expires "someday" is not a date in a known format (2014-09-15, 2014/09/15, 09/15/2014, 09/15/14, 15.09.2014, 20140915, Sep 15 2014, 15 Sep 2014)`},
		{"ack without owner", http.MethodPost, acks, js, withAck("owner", ""), 400, "acknowledgement: owner is required"},
		{"ack expired", http.MethodPost, acks, js, withAck("expires", "2026-03-03"), 400, "acknowledgement: expires 2026-03-03 is before the day it is recorded (2026-03-04)"},
		{"window without ups", http.MethodPost, maint, js, `{"string":"2"}`, 400, "ups is required"},
		{"window length", http.MethodPost, maint, js, `{"ups":"ups-a","for":"a shift"}`, 400, `for "a shift" must be a duration such as 8h or 90m`},
		{"window length negative", http.MethodPost, maint, js, `{"ups":"ups-a","for":"-1h"}`, 400, "for -1h must be positive"},
		{"window string", http.MethodPost, maint, js, `{"ups":"ups-a","string":"1/2"}`, 400, `maintenance window: string "1/2" must be valid UTF-8 without '/' or control characters`},
		{"remove without ups", http.MethodDelete, acks + "?state=soon", "", "", 400, "query: ups is required"},
		{"remove misspelt", http.MethodDelete, acks + "?ups=ups-a&strng=1&state=soon", "", "", 400, `query: unknown parameter "strng" (want ups, string, state)`},
		{"remove twice named", http.MethodDelete, maint + "?ups=ups-a&ups=ups-b", "", "", 400, "query: ups given 2 times"},
		{"remove without state", http.MethodDelete, acks + "?ups=ups-a&string=1", "", "", 400, `query: state "" must be end_of_life or soon`},
		{"remove nothing", http.MethodDelete, acks + "?ups=ups-a&string=1&state=end_of_life", "", "", 404, "no acknowledgement of ups-a/1 state end_of_life"},
		{"stop nothing", http.MethodDelete, maint + "?ups=ups-a&string=2", "", "", 404, "ups-a/2 has no maintenance window"},
		{"stop nothing UPS-wide", http.MethodDelete, maint + "?ups=ups-a", "", "", 404, "ups ups-a has no maintenance window"},
		{"other method", http.MethodPut, maint, js, goodWindow, 405, "PUT is not allowed: GET, HEAD, POST, DELETE"},
		{"other endpoint", http.MethodGet, "/api/v1/silences", "", "", 404, "/api/v1/silences: no such endpoint (/api/v1/acknowledgements, /api/v1/maintenance, /api/v1/alerts)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := apiRequest{method: c.method, target: c.target, contentType: c.contentType, body: c.body, user: "alice", pass: "pw"}.serve(t, f.mux)
			if a.code != c.code || a.Status != "error" || a.Error != c.err {
				t.Errorf("%d %s, want %d with error %q", a.code, a.raw, c.code, c.err)
			}
		})
	}
	if a := (apiRequest{method: http.MethodPatch, target: acks}).serve(t, f.mux); a.header.Get("Allow") != "GET, HEAD, POST, DELETE" {
		t.Errorf("405 with Allow %q, want GET, HEAD, POST, DELETE", a.header.Get("Allow"))
	}
	if got := f.stored(t); len(got) != 0 || f.nudges.Load() != 0 {
		t.Errorf("refused changes stored %v and nudged the daemon %d times", got, f.nudges.Load())
	}
}

// With basic auth configured, an acknowledgement and a window posted by
// alice are answered 201, listed by GET, stored where `cellwarden
// acknowledge --list` and `maintenance list` read them, with alice as the
// window's by when the body names nobody; each change nudges the daemon
// and is logged with the user, never the password; DELETE removes them.
func TestLifecycleAPIRecordsChanges(t *testing.T) {
	const pass = "correct-horse-battery-staple"
	f := newAPIFixture(t, webConfigWithUser(t, t.TempDir(), "alice", pass), false)
	as := func(method, target, body string) apiAnswer {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json; charset=utf-8"
		}
		return apiRequest{method: method, target: target, contentType: ct, body: body, user: "alice", pass: pass}.serve(t, f.mux)
	}

	a := as(http.MethodPost, "/api/v1/acknowledgements", goodAck)
	wantAck := `{"ups":"ups-a","string":"1","state":"end_of_life","owner":"facilities-dc1","planned":"2026-05-15","expires":"2026-05-31","note":"CHG-1042","created":"2026-03-04T09:00:00Z"}`
	if a.code != http.StatusCreated || a.Status != "success" || string(a.Data) != wantAck {
		t.Errorf("POST acknowledgement: %d %s, want 201 with %s", a.code, a.raw, wantAck)
	}
	if a := as(http.MethodGet, "/api/v1/acknowledgements", ""); a.code != http.StatusOK || string(a.Data) != "["+wantAck+"]" {
		t.Errorf("GET acknowledgements: %d %s", a.code, a.raw)
	}
	acks, err := lifecycle.OpenStore(filepath.Join(f.state, "acknowledgements.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := acks.List(); err != nil || len(got) != 1 || got[0].Owner != "facilities-dc1" || got[0].Planned.String() != "2026-05-15" {
		t.Errorf("the acknowledgement store holds %+v (%v)", got, err)
	}

	a = as(http.MethodPost, "/api/v1/maintenance", goodWindow)
	wantWindow := `{"ups":"ups-a","string":"2","by":"alice","reason":"PTW-1234","started":"2026-03-04T09:00:00Z","until":"2026-03-04T13:00:00Z"}`
	if a.code != http.StatusCreated || string(a.Data) != wantWindow {
		t.Errorf("POST maintenance: %d %s, want 201 with %s", a.code, a.raw, wantWindow)
	}
	if a := as(http.MethodGet, "/api/v1/maintenance", ""); a.code != http.StatusOK || string(a.Data) != "["+wantWindow+"]" {
		t.Errorf("GET maintenance: %d %s", a.code, a.raw)
	}
	maint, err := lifecycle.OpenMaintenanceStore(filepath.Join(f.state, "maintenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := maint.Active(apiNow.Add(time.Hour)); err != nil || len(ws) != 1 || ws[0].By != "alice" || ws[0].String != "2" {
		t.Errorf("the maintenance store's active windows: %+v (%v)", ws, err)
	}
	a = as(http.MethodPost, "/api/v1/maintenance", `{"ups":"ups-b","by":"bob"}`)
	if a.code != http.StatusCreated || !strings.Contains(string(a.Data), `"by":"bob"`) || !strings.Contains(string(a.Data), `"until":"2026-03-04T17:00:00Z"`) {
		t.Errorf("POST maintenance with by and no length: %d %s, want bob for the default 8 h", a.code, a.raw)
	}

	if a := as(http.MethodDelete, "/api/v1/maintenance?ups=ups-a&string=2", ""); a.code != http.StatusOK || string(a.Data) != wantWindow {
		t.Errorf("DELETE maintenance: %d %s, want 200 with the stopped window", a.code, a.raw)
	}
	if a := as(http.MethodDelete, "/api/v1/acknowledgements?ups=ups-a&string=1&state=end_of_life", ""); a.code != http.StatusOK || a.Status != "success" {
		t.Errorf("DELETE acknowledgement: %d %s, want 200", a.code, a.raw)
	}
	if got, err := acks.List(); err != nil || len(got) != 0 {
		t.Errorf("after DELETE the acknowledgement store holds %+v (%v)", got, err)
	}
	if ws, err := maint.List(); err != nil || len(ws) != 1 || ws[0].UPS != "ups-b" {
		t.Errorf("after DELETE the maintenance store holds %+v (%v), want ups-b's window only", ws, err)
	}
	if n := f.nudges.Load(); n != 5 {
		t.Errorf("5 changes nudged the daemon %d times", n)
	}

	for _, msg := range []string{"acknowledgement recorded", "maintenance window recorded", "maintenance window stopped", "acknowledgement removed"} {
		if es := f.logs.FilterMessage(msg).FilterField(zap.String("user", "alice")).All(); len(es) == 0 {
			t.Errorf("no %q log entry with user alice", msg)
		}
	}
	for _, e := range f.logs.All() {
		if b, _ := json.Marshal(e.ContextMap()); strings.Contains(string(b), pass) || strings.Contains(e.Message, pass) {
			t.Errorf("the log entry %q contains the password", e.Message)
		}
	}
}

// startBehindAuth runs the daemon as start does, with webConfig as its
// web configuration file, and waits until /-/ready answers the user.
func startBehindAuth(t *testing.T, config, stateDir, webConfig, user, pass string) *instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{url: "http://" + l.Addr().String(), reload: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	flags := &web.FlagConfig{WebListenAddresses: &[]string{l.Addr().String()}, WebSystemdSocket: &off, WebConfigFile: &webConfig}
	go func() {
		in.done <- Run(ctx, Options{ConfigPath: config, StateDir: stateDir, SnapshotInterval: time.Hour, ShutdownTimeout: 10 * time.Second,
			Web: flags, Listener: l, Reload: in.reload, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	}()
	t.Cleanup(func() { in.stop(t) })
	ready := apiRequest{method: http.MethodGet, target: "/-/ready", user: user, pass: pass}
	waitFor(t, "/-/ready to answer 200", func() bool {
		select {
		case err := <-in.done:
			t.Fatalf("daemon.Run returned early: %v", err)
		default:
		}
		return ready.send(t, in.url).code == http.StatusOK
	})
	return in
}

// The running daemon behind basic auth: a string past its design life
// pages BatteryEndOfLife; an acknowledgement POSTed without credentials
// or with a wrong password is refused (401) and the alert keeps firing;
// posted by alice it resolves the alert and the string is exported as
// acknowledged. A maintenance window POSTed by alice is on the status
// page with her as the one doing the work.
func TestLifecycleAPIAcknowledgementResolvesBatteryEndOfLife(t *testing.T) {
	const pass = "s3cret-web"
	bms := startBMS(t, 1, 1)
	dir := t.TempDir()
	config := testConfig{bmsAddr: bms.addr, modules: 1, units: []modbusUnit{{"rack-1", "ups-a", 1}}}.write(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(`batteries:
  - {ups: ups-a, string: "1", vendor: LG Energy Solution, chemistry: NMC, installed: 2012-09-15, design_life_years: 10}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(cfg, "inventory: inventory.yaml")
	cfg.Close()
	d := startBehindAuth(t, config, filepath.Join(dir, "state"), webConfigWithUser(t, dir, "alice", pass), "alice", pass)
	metricsURL := strings.Replace(d.url, "http://", "http://alice:"+pass+"@", 1) + "/metrics"
	value := func(name string, labels map[string]string) float64 {
		m, err := promtest.Scrape(nil, metricsURL)
		if err != nil {
			return -1
		}
		v, _ := m.Value(name, labels)
		return v
	}
	eol := map[string]string{"alertname": "BatteryEndOfLife", "ups": "ups-a", "string": "1"}
	waitFor(t, "BatteryEndOfLife for ups-a/1", func() bool { return value("cellwarden_alerts", eol) == 1 })

	ack := apiRequest{method: http.MethodPost, target: "/api/v1/acknowledgements", contentType: "application/json",
		body: fmt.Sprintf(`{"ups":"ups-a","string":"1","state":"end_of_life","owner":"facilities-dc1","planned":%q,"expires":%q}`,
			time.Now().AddDate(0, 1, 0).Format(time.DateOnly), time.Now().AddDate(0, 2, 0).Format(time.DateOnly))}
	if a := ack.send(t, d.url); a.code != http.StatusUnauthorized {
		t.Errorf("POST without credentials: %d %s, want 401", a.code, a.raw)
	}
	ack.user, ack.pass = "alice", "not-"+pass
	if a := ack.send(t, d.url); a.code != http.StatusUnauthorized {
		t.Errorf("POST with a wrong password: %d %s, want 401", a.code, a.raw)
	}
	if v := value("cellwarden_alerts", eol); v != 1 {
		t.Errorf("BatteryEndOfLife = %v after the refused acknowledgements, want 1", v)
	}
	ack.pass = pass
	if a := ack.send(t, d.url); a.code != http.StatusCreated {
		t.Fatalf("POST with alice's credentials: %d %s, want 201", a.code, a.raw)
	}
	waitFor(t, "BatteryEndOfLife of ups-a/1 to resolve", func() bool { return value("cellwarden_alerts", eol) != 1 })
	waitFor(t, "ups-a/1 exported as acknowledged", func() bool {
		return value("cellwarden_battery_lifecycle_acknowledged", map[string]string{"ups": "ups-a", "string": "1"}) == 1
	})

	win := apiRequest{method: http.MethodPost, target: "/api/v1/maintenance", contentType: "application/json",
		body: `{"ups":"ups-a","string":"1","reason":"PTW-7"}`, user: "alice", pass: pass}
	if a := win.send(t, d.url); a.code != http.StatusCreated {
		t.Fatalf("POST maintenance with alice's credentials: %d %s, want 201", a.code, a.raw)
	}
	page := apiRequest{method: http.MethodGet, target: "/", user: "alice", pass: pass}
	waitFor(t, "the status page to list alice's window", func() bool {
		return strings.Contains(page.send(t, d.url).raw, "<tr><td>ups-a</td><td>1</td><td>alice</td><td>PTW-7</td>")
	})
}
