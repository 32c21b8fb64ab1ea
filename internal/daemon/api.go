package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
)

// The lifecycle API: acknowledgements of battery-age findings and
// maintenance windows over HTTP, in the style of the Prometheus and
// Alertmanager APIs.
//
//	GET    /api/v1/acknowledgements
//	POST   /api/v1/acknowledgements                              (JSON body: the stored acknowledgement)
//	DELETE /api/v1/acknowledgements?ups=U[&string=S]&state=STATE
//	GET    /api/v1/maintenance
//	POST   /api/v1/maintenance                                   (JSON body: ups, string, by, reason, for)
//	DELETE /api/v1/maintenance?ups=U[&string=S]
//	GET    /api/v1/alerts[?since=T][&ups=U]                       (firing alerts and those resolved since T)
//
// Answers are {"status":"success","data":...} or
// {"status":"error","errorType":...,"error":...}. The handlers write the
// same files through the same lifecycle stores as `cellwarden
// acknowledge` and `cellwarden maintenance`; they never touch the
// detector, whose goroutine they nudge to read the files again.
//
// The alerts endpoint is read-only: the alerts firing now and those that
// resolved lately (alertLog), which /metrics, showing only the present,
// cannot tell the pre-maintenance check.
//
// Who may change things: TLS and basic auth of the web configuration file
// apply to every path, as to /metrics. Besides, POST and DELETE are
// refused (403) unless that file sets basic_auth_users, or serve runs
// with --web.enable-lifecycle-api-without-auth: an instance without
// authentication must not let whoever reaches its port mute alerts.

// maxAPIBody bounds a request body: an acknowledgement or a window is a
// few hundred bytes.
const maxAPIBody = 64 << 10

// lifecycleAPI serves /api/v1/. It is safe for concurrent use: it keeps
// no state of its own besides its configuration.
type lifecycleAPI struct {
	acks  *lifecycle.Store
	maint *lifecycle.MaintenanceStore
	// alerts are the daemon's firing and recently resolved alerts.
	alerts *alertLog
	// webConfig is the web configuration file ("" without one), read
	// again for every change, as exporter-toolkit reads it for every
	// request.
	webConfig string
	// withoutAuth allows changes when webConfig sets no users
	// (--web.enable-lifecycle-api-without-auth).
	withoutAuth bool
	log         *zap.Logger
	now         func() time.Time
	// changed tells the daemon loop that a file changed; it must not
	// block.
	changed func()
}

// register adds the API's paths to mux, and a JSON 404 for any other
// path under /api/.
func (a *lifecycleAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/acknowledgements", a.acknowledgements)
	mux.HandleFunc("/api/v1/maintenance", a.maintenance)
	mux.HandleFunc("/api/v1/alerts", a.alertList)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, "not_found",
			fmt.Sprintf("%s: no such endpoint (/api/v1/acknowledgements, /api/v1/maintenance, /api/v1/alerts)", r.URL.Path))
	})
}

// logMode says at start-up whether the API accepts changes.
func (a *lifecycleAPI) logMode() {
	users, err := a.users()
	switch {
	case err != nil:
		a.log.Warn("lifecycle API: the web configuration file cannot be read; changes are refused", zap.String("web_config", a.webConfig), zap.Error(err))
	case len(users) > 0:
		a.log.Info("lifecycle API: changes need basic auth", zap.String("web_config", a.webConfig))
	case a.withoutAuth:
		a.log.Warn("lifecycle API: changes are accepted WITHOUT authentication (--web.enable-lifecycle-api-without-auth): whoever reaches the port can mute alerts")
	default:
		a.log.Info("lifecycle API: read-only; changes need basic_auth_users in --web.config.file")
	}
}

// apiResponse is the envelope of every answer.
type apiResponse struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

// respond writes a success envelope.
func (a *lifecycleAPI) respond(w http.ResponseWriter, code int, data any) {
	writeJSON(w, code, apiResponse{Status: "success", Data: data})
}

// fail writes an error envelope; refusals of changes are logged.
func (a *lifecycleAPI) fail(w http.ResponseWriter, r *http.Request, code int, kind, msg string) {
	if code == http.StatusForbidden || code >= http.StatusInternalServerError {
		a.log.Warn("lifecycle API request refused", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("user", user(r)), zap.String("remote", r.RemoteAddr), zap.Int("code", code), zap.String("reason", msg))
	}
	writeJSON(w, code, apiResponse{Status: "error", ErrorType: kind, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v apiResponse) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the data can fail to encode, and ours cannot.
		code, b = http.StatusInternalServerError, []byte(`{"status":"error","errorType":"internal","error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// user is the basic-auth user name of a request ("" without one). The
// password is never read here.
func user(r *http.Request) string {
	u, _, _ := r.BasicAuth()
	return u
}

// users reads basic_auth_users from the web configuration file (none
// without a file), exactly as exporter-toolkit reads it for every request
// (yaml.v2 UnmarshalStrict into web.Config): mayChange trusts the toolkit
// to have checked the passwords of these users, so both must read the
// same names (FuzzWebConfigUsers). A YAML 1.2 reader differs on corner
// cases: a null key is the user "" for the toolkit, no user for
// go.yaml.in/yaml/v3.
func (a *lifecycleAPI) users() (map[string]bool, error) {
	if a.webConfig == "" {
		return nil, nil
	}
	data, err := os.ReadFile(a.webConfig)
	if err != nil {
		return nil, err
	}
	var c web.Config
	if err := yamlv2.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", a.webConfig, err)
	}
	users := make(map[string]bool, len(c.Users))
	for u := range c.Users {
		users[u] = true
	}
	return users, nil
}

// mayChange reports whether r may change acknowledgements or windows, and
// writes the refusal when it may not. exporter-toolkit has checked the
// password of a request that reaches here when the file sets users; the
// user name is checked again against the file as read now.
func (a *lifecycleAPI) mayChange(w http.ResponseWriter, r *http.Request) bool {
	users, err := a.users()
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "internal", "the web configuration file cannot be read: changes are refused")
		return false
	}
	switch {
	case len(users) > 0 && users[user(r)]:
		return true
	case len(users) > 0:
		a.fail(w, r, http.StatusForbidden, "forbidden", "changes need the credentials of a user in basic_auth_users")
		return false
	case a.withoutAuth:
		return true
	}
	a.fail(w, r, http.StatusForbidden, "forbidden", "changing acknowledgements and maintenance windows needs authentication: "+
		"set basic_auth_users in the web configuration file (--web.config.file), or start serve with "+
		"--web.enable-lifecycle-api-without-auth (dangerous: whoever reaches the port can then mute alerts)")
	return false
}

// decodeBody decodes a JSON object body into v, refusing other media
// types (which also keeps browsers from posting forms across sites),
// bodies over maxAPIBody, unknown fields and trailing data. It writes the
// refusal and returns false when the body is not usable.
func (a *lifecycleAPI) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		a.fail(w, r, http.StatusUnsupportedMediaType, "bad_data", fmt.Sprintf("Content-Type %q: the body must be application/json", r.Header.Get("Content-Type")))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	var (
		tooBig  *http.MaxBytesError
		badType *json.UnmarshalTypeError
		syntax  *json.SyntaxError
	)
	err = dec.Decode(v)
	if err == nil {
		// One object and nothing after it.
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return true
		}
		if !errors.As(err, &tooBig) {
			err = errors.New("data after the JSON object")
		}
	}
	switch {
	case errors.As(err, &tooBig):
		a.fail(w, r, http.StatusRequestEntityTooLarge, "bad_data", fmt.Sprintf("body: larger than %d bytes", maxAPIBody))
		return false
	case errors.Is(err, io.EOF):
		err = errors.New("empty; want a JSON object")
	case errors.As(err, &badType) && badType.Field != "":
		err = fmt.Errorf("%s must be a %s, not a JSON %s", badType.Field, badType.Type, badType.Value)
	case errors.As(err, &badType):
		err = fmt.Errorf("must be a JSON object, not a JSON %s", badType.Value)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("invalid JSON: %w", err)
	default:
		err = errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	a.fail(w, r, http.StatusBadRequest, "bad_data", "body: "+err.Error())
	return false
}

// changeQuery checks that r may change things and reads the query
// parameters of a DELETE (params), ups given. It writes the refusal and
// returns false when they are not usable.
func (a *lifecycleAPI) changeQuery(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, bool) {
	if !a.mayChange(w, r) {
		return nil, false
	}
	out, ok := a.params(w, r, names...)
	if ok && out["ups"] == "" {
		a.fail(w, r, http.StatusBadRequest, "bad_data", "query: ups is required")
		return nil, false
	}
	return out, ok
}

// params reads the query parameters of r: each of names at most once, no
// others (a misspelt "strng" must not make a change about the whole UPS).
// It writes the refusal and returns false when they are not usable.
func (a *lifecycleAPI) params(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "bad_data", "query: "+err.Error())
		return nil, false
	}
	out := map[string]string{}
	for k, vs := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		switch {
		case !known:
			a.fail(w, r, http.StatusBadRequest, "bad_data", fmt.Sprintf("query: unknown parameter %q (want %s)", k, strings.Join(names, ", ")))
			return nil, false
		case len(vs) > 1:
			a.fail(w, r, http.StatusBadRequest, "bad_data", fmt.Sprintf("query: %s given %d times", k, len(vs)))
			return nil, false
		}
		out[k] = vs[0]
	}
	return out, true
}

// ackRequest is the body of POST /api/v1/acknowledgements: the stored
// acknowledgement without created, which is when cellwarden records it.
type ackRequest struct {
	UPS     string `json:"ups"`
	String  string `json:"string"`
	State   string `json:"state"`
	Owner   string `json:"owner"`
	Planned string `json:"planned"`
	Expires string `json:"expires"`
	Note    string `json:"note"`
}

// ack turns the request into an acknowledgement recorded at now, with
// the checks of `cellwarden acknowledge`.
func (q *ackRequest) ack(now time.Time) (lifecycle.Ack, error) {
	if q.UPS == "" {
		return lifecycle.Ack{}, errors.New("ups is required")
	}
	state, err := parseAckState(q.State)
	if err != nil {
		return lifecycle.Ack{}, err
	}
	a := lifecycle.Ack{UPS: q.UPS, String: q.String, State: state, Owner: q.Owner, Note: q.Note, Created: now.UTC().Truncate(time.Second)}
	if err := a.SetDays(q.Planned, q.Expires, func(f string) string { return f }); err != nil {
		return lifecycle.Ack{}, err
	}
	return a, a.Validate()
}

// parseAckState accepts the states an acknowledgement can be for.
func parseAckState(s string) (lifecycle.State, error) {
	st, ok := lifecycle.ParseState(s)
	if !ok || (st != lifecycle.StateSoon && st != lifecycle.StateEndOfLife) {
		return 0, fmt.Errorf("state %q must be end_of_life or soon", s)
	}
	return st, nil
}

// acknowledgements serves /api/v1/acknowledgements.
func (a *lifecycleAPI) acknowledgements(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		serveList(a, w, r, "acknowledgements", a.acks.List)
	case http.MethodPost:
		var q ackRequest
		if !a.mayChange(w, r) || !a.decodeBody(w, r, &q) {
			return
		}
		ack, err := q.ack(a.now())
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
		a.done(w, r, a.acks.Acknowledge(ack), http.StatusCreated, ack, "acknowledgement recorded",
			zap.String("ups", ack.UPS), zap.String("string", ack.String), zap.Stringer("state", ack.State), zap.String("owner", ack.Owner),
			zap.Stringer("planned", ack.Planned), zap.Stringer("expires", ack.Expires), zap.String("note", ack.Note))
	case http.MethodDelete:
		q, ok := a.changeQuery(w, r, "ups", "string", "state")
		if !ok {
			return
		}
		state, err := parseAckState(q["state"])
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, "bad_data", "query: "+err.Error())
			return
		}
		found, err := a.acks.Remove(q["ups"], q["string"], state)
		if err == nil && !found {
			a.fail(w, r, http.StatusNotFound, "not_found", fmt.Sprintf("no acknowledgement of %s state %s", entityName(q["ups"], q["string"]), state))
			return
		}
		a.done(w, r, err, http.StatusOK, nil, "acknowledgement removed",
			zap.String("ups", q["ups"]), zap.String("string", q["string"]), zap.Stringer("state", state))
	default:
		a.notAllowed(w, r, "GET, HEAD, POST, DELETE")
	}
}

// windowRequest is the body of POST /api/v1/maintenance: the flags of
// `cellwarden maintenance start`.
type windowRequest struct {
	UPS    string `json:"ups"`
	String string `json:"string"`
	// By defaults to the basic-auth user.
	By     string `json:"by"`
	Reason string `json:"reason"`
	// For is a Go duration ("8h", "90m"); lifecycle.DefaultMaintenance
	// when empty.
	For string `json:"for"`
}

// window turns the request into a window starting at now, with the
// checks of `cellwarden maintenance start`.
func (q *windowRequest) window(now time.Time, user string) (lifecycle.Window, error) {
	if q.UPS == "" {
		return lifecycle.Window{}, errors.New("ups is required")
	}
	length := lifecycle.DefaultMaintenance
	if q.For != "" {
		d, err := time.ParseDuration(q.For)
		if err != nil {
			return lifecycle.Window{}, fmt.Errorf("for %q must be a duration such as 8h or 90m", q.For)
		}
		if d <= 0 {
			return lifecycle.Window{}, fmt.Errorf("for %s must be positive", q.For)
		}
		length = d
	}
	by := q.By
	if strings.TrimSpace(by) == "" {
		by = user
	}
	now = now.UTC().Truncate(time.Second)
	w := lifecycle.Window{UPS: q.UPS, String: q.String, By: by, Reason: q.Reason, Started: now, Until: now.Add(length)}
	return w, w.Validate()
}

// maintenance serves /api/v1/maintenance.
func (a *lifecycleAPI) maintenance(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		serveList(a, w, r, "maintenance windows", a.maint.List)
	case http.MethodPost:
		var q windowRequest
		if !a.mayChange(w, r) || !a.decodeBody(w, r, &q) {
			return
		}
		win, err := q.window(a.now(), user(r))
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
		a.done(w, r, a.maint.Start(win), http.StatusCreated, win, "maintenance window recorded",
			zap.String("ups", win.UPS), zap.String("string", win.String), zap.String("by", win.By), zap.Time("until", win.Until), zap.String("reason", win.Reason))
	case http.MethodDelete:
		q, ok := a.changeQuery(w, r, "ups", "string")
		if !ok {
			return
		}
		win, found, err := a.maint.Stop(q["ups"], q["string"])
		if err == nil && !found {
			a.fail(w, r, http.StatusNotFound, "not_found", entityName(q["ups"], q["string"])+" has no maintenance window")
			return
		}
		a.done(w, r, err, http.StatusOK, win, "maintenance window stopped",
			zap.String("ups", win.UPS), zap.String("string", win.String), zap.String("by", win.By))
	default:
		a.notAllowed(w, r, "GET, HEAD, POST, DELETE")
	}
}

// alertList serves GET /api/v1/alerts: the firing alerts, then those
// resolved at or after since (RFC 3339 or Unix seconds; every one
// remembered without it), of one UPS with ups=U.
func (a *lifecycleAPI) alertList(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.notAllowed(w, r, "GET, HEAD")
		return
	}
	q, ok := a.params(w, r, "since", "ups")
	if !ok {
		return
	}
	since, err := parseSince(q["since"])
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "bad_data", "query: "+err.Error())
		return
	}
	a.respond(w, http.StatusOK, alertsData{Alerts: a.alerts.query(since, q["ups"])})
}

// alertsData is the data of GET /api/v1/alerts, as Prometheus's.
type alertsData struct {
	Alerts []loggedAlert `json:"alerts"`
}

// parseSince reads a time as the Prometheus API does: RFC 3339, or Unix
// seconds with an optional fraction. "" is the zero time.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		// Years 1 to 9999: what JSON can write back.
		if !(f >= -62135596800 && f < 253402300800) {
			return time.Time{}, fmt.Errorf("since %q is out of range", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q must be an RFC 3339 time (2026-03-04T09:00:00Z) or Unix seconds", s)
	}
	return t, nil
}

// serveList answers a GET with every stored item (an empty list, not
// null, when there is none).
func serveList[T any](a *lifecycleAPI, w http.ResponseWriter, r *http.Request, what string, list func() ([]T, error)) {
	items, err := list()
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "internal", what+" unreadable: "+err.Error())
		return
	}
	a.respond(w, http.StatusOK, append([]T{}, items...))
}

// done ends a change: the store's error (500), or the nudge to the
// daemon, the log line (msg, with the user) and the answer.
func (a *lifecycleAPI) done(w http.ResponseWriter, r *http.Request, err error, code int, data any, msg string, fields ...zap.Field) {
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "internal", "the change was not stored: "+err.Error())
		return
	}
	a.changed()
	a.log.Info(msg, append([]zap.Field{zap.String("user", user(r)), zap.String("remote", r.RemoteAddr)}, fields...)...)
	a.respond(w, code, data)
}

// notAllowed answers a method the endpoint does not have; allow lists
// those it has.
func (a *lifecycleAPI) notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	a.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed: "+allow)
}

// entityName names a UPS ("ups dc1-ups-a") or a string ("dc1-ups-a/2").
func entityName(ups, str string) string {
	if str == "" {
		return "ups " + ups
	}
	return ups + "/" + str
}
