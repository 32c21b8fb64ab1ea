package daemon

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
)

// toolkitServer serves 200 behind exporter-toolkit's handler reading the
// web configuration file at path for every request, as serve's listener
// does, and returns its URL.
func toolkitServer(f *testing.F, path string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	off := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{l.Addr().String()}, WebSystemdSocket: &off, WebConfigFile: &path}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })}
	go web.Serve(l, srv, flags, slog.New(slog.DiscardHandler))
	f.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

// The lifecycle API lets a request change things when users() finds its
// user in the web configuration file, trusting exporter-toolkit to have
// checked the password. Whatever the file holds, users() must not panic,
// and for every user it reads, the toolkit must refuse a request with a
// wrong password: were the toolkit to read the file without that user,
// or without any (no authentication), the API would take the user's
// name for proof. (The toolkit answers 401, or 500 for a file it cannot
// read, or 429 over its rate limit.)
func FuzzWebConfigUsers(f *testing.F) {
	for _, s := range []string{
		"basic_auth_users:\n  alice: $2y$04$gCLDAzTadyNtfJhGfFDgVOGE6LK.JGmJuDM/.W8hsbYgtRHsEzuQW\n",
		"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: $2b$04$x\n  bob: $2b$04$y\n",
		"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n",
		"http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n",
		"basic_auth_users: {}\n", "basic_auth_users:\n", "", "---\n", "# comment only\n",
		"basic_auth_users:\n  on: x\n  yes: y\n  1: z\n  0x10: w\n  ~: v\n",
		"basic_auth_users:\n  alice: x\nbasic_auth_users:\n  bob: y\n",
		"basic_auth_users:\n  <<: {alice: x}\n",
		"basic_auth_users:\n  alice: x\n---\nbasic_auth_users:\n  bob: y\n",
		"unknown_field: 1\nbasic_auth_users:\n  alice: x\n",
		"basic_auth_users: [alice]\n", "{basic_auth_users: {\"alice\": x}}",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "web.yml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		f.Fatal(err)
	}
	base := toolkitServer(f, path)
	a := &lifecycleAPI{webConfig: path}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := a.users()
		if err != nil {
			return
		}
		for _, u := range slices.Sorted(maps.Keys(users)) {
			req, err := http.NewRequest(http.MethodGet, base, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(u, "not-the-password")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("users() reads the user %q, whom exporter-toolkit lets in with a wrong password, from\n%q", u, data)
			}
		}
	})
}

// A request body is decoded, checked and turned into an acknowledgement
// or a window by the functions of the POST handlers. Whatever it holds
// they must not panic; a refusal is a JSON error envelope with 400 or
// 413; an accepted body gives an entry that validates, says what the
// body said, and reads back the same from the JSON it is stored and
// answered as.
func FuzzLifecycleAPIBody(f *testing.F) {
	for _, s := range []string{
		goodAck, goodWindow,
		`{"ups":"ups-a","state":"soon","owner":"o","planned":"05/15/2026","expires":"15.06.2026"}`,
		`{"ups":"ups-a","string":"","by":"","reason":"","for":"2562047h"}`,
		`{"ups":"ups-a","for":"-1h"}`, `{"ups":"ups-a","string":"1/2"}`, `{"ups":7}`, `["ups-a"]`, `null`, ``, `{"ups":`,
		goodAck + goodAck, `{"ups":"ups-a","strng":"2"}`, `{"ups":"\ud800","owner":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	a := &lifecycleAPI{log: zap.NewNop()}
	post := func(t *testing.T, body []byte, v any) (*httptest.ResponseRecorder, bool) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		ok := a.decodeBody(rec, req, v)
		if !ok {
			var env apiResponse
			if (rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge) ||
				json.Unmarshal(rec.Body.Bytes(), &env) != nil || env.Status != "error" || env.Error == "" {
				t.Fatalf("refused with %d %q, want 400 or 413 and an error envelope", rec.Code, rec.Body.String())
			}
		}
		return rec, ok
	}
	roundTrip := func(t *testing.T, v, back any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("an accepted entry does not encode: %v", err)
		}
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatalf("an accepted entry does not read back: %v\n%s", err, b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var q ackRequest
		if _, ok := post(t, body, &q); ok {
			if ack, err := q.ack(apiNow); err == nil {
				if err := ack.Validate(); err != nil {
					t.Fatalf("accepted acknowledgement does not validate: %v", err)
				}
				state, _ := parseAckState(q.State)
				planned, _ := lifecycle.ParseDate(q.Planned)
				expires, _ := lifecycle.ParseDate(q.Expires)
				if ack.UPS != q.UPS || ack.String != q.String || ack.State != state || ack.Owner != q.Owner || ack.Note != q.Note ||
					ack.Planned != planned || ack.Expires != expires || !ack.Created.Equal(apiNow) {
					t.Fatalf("body %+v gave %+v", q, ack)
				}
				var back lifecycle.Ack
				roundTrip(t, ack, &back)
				if back.UPS != ack.UPS || back.String != ack.String || back.State != ack.State || back.Owner != ack.Owner || back.Note != ack.Note ||
					back.Planned != ack.Planned || back.Expires != ack.Expires || !back.Created.Equal(ack.Created) {
					t.Fatalf("%+v reads back as %+v", ack, back)
				}
			}
		}
		var w windowRequest
		if _, ok := post(t, body, &w); ok {
			if win, err := w.window(apiNow, "alice"); err == nil {
				if err := win.Validate(); err != nil {
					t.Fatalf("accepted window does not validate: %v", err)
				}
				if win.UPS != w.UPS || win.String != w.String || win.Reason != w.Reason || !win.Started.Equal(apiNow) || !win.Until.After(win.Started) ||
					(w.By != "" && win.By != w.By) || (w.For == "" && win.Until.Sub(win.Started) != lifecycle.DefaultMaintenance) {
					t.Fatalf("body %+v gave %+v", w, win)
				}
				var back lifecycle.Window
				roundTrip(t, win, &back)
				if back.UPS != win.UPS || back.String != win.String || back.By != win.By || back.Reason != win.Reason ||
					!back.Started.Equal(win.Started) || !back.Until.Equal(win.Until) {
					t.Fatalf("%+v reads back as %+v", win, back)
				}
			}
		}
	})
}
