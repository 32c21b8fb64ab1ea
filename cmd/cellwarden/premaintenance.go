package main

import (
	"cmp"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cellwarden/cellwarden/internal/config"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The pre-maintenance check: `cellwarden audit --pre-maintenance U --url
// http://serve:9561` reads what a running serve knows about UPS U and
// says whether people may work on it (GO), only with care (CAUTION), or
// not (NO-GO). The NIRS batteries burned while being moved for
// maintenance, charged and past their life.

// Verdicts of the pre-maintenance check, in increasing severity; their
// values are the exit statuses.
const (
	verdictGo      = 0
	verdictCaution = 1
	verdictNoGo    = 2
)

var verdictNames = [...]string{verdictGo: "GO", verdictCaution: "CAUTION", verdictNoGo: "NO-GO"}

// preMaintOptions are audit's pre-maintenance flags.
type preMaintOptions struct {
	ups, url     string
	insecure     bool
	timeout      time.Duration
	maxCelsius   float64
	maxSOC       float64
	transportSOC float64
	maxDataAge   time.Duration
	lookback     time.Duration
}

// addPreMaintenanceFlags declares the pre-maintenance flags on audit.
func addPreMaintenanceFlags(c *kingpin.CmdClause, o *preMaintOptions) {
	c.Flag("pre-maintenance", "Check UPS U before work on it (a work permit's risk check) against the running serve at --url: exit status 0 GO, 1 CAUTION, 2 NO-GO, 3 cannot check.").PlaceHolder("U").StringVar(&o.ups)
	c.Flag("url", "The running serve, http(s)://[user:password@]host:port (its /metrics is read).").StringVar(&o.url)
	c.Flag("insecure-skip-verify", "Do not verify the serve's TLS certificate.").BoolVar(&o.insecure)
	c.Flag("timeout", "Deadline of the /metrics request.").Default("10s").DurationVar(&o.timeout)
	c.Flag("max-cell-celsius", "NO-GO when a cell of the UPS is above this temperature.").Default("45").Float64Var(&o.maxCelsius)
	c.Flag("max-soc", "CAUTION when a string's state of charge is above this ratio (0.5 is 50 %).").Default("0.5").Float64Var(&o.maxSOC)
	c.Flag("transport-soc", "The state of charge to discharge to before moving batteries (the vendor's transport/storage figure; 0.3 is typical).").Default("0.3").Float64Var(&o.transportSOC)
	c.Flag("max-data-age", "NO-GO when a collector of the UPS (--config) has received nothing for this long.").Default("1m").DurationVar(&o.maxDataAge)
	c.Flag("lookback", "Report the alerts of the UPS that resolved within this time (recent anomalies, from the serve's /api/v1/alerts); 0 skips them.").Default("24h").DurationVar(&o.lookback)
}

// reason is one finding of the check with the verdict it calls for.
type reason struct {
	verdict int
	text    string
}

// preString is what the check knows about one string of the UPS.
type preString struct {
	name                 string
	soc                  float64 // NaN: unknown
	temps                []float64
	hottest              string
	state, eol, ageYears string // battery age: "-" when unknown
}

// preAlert is a firing alert of the UPS.
type preAlert struct {
	name, severity, entity string
	since                  time.Time
}

// preRecent is an alert of the UPS that fired and resolved lately.
type preRecent struct {
	name, severity, entity, summary string
	fired, resolved                 time.Time
}

// preCollector is a collector's health.
type preCollector struct {
	name, source string
	up           bool
	last         time.Time
	mine         bool // serves the UPS (from --config)
}

// preCheck is the outcome of the check.
type preCheck struct {
	ups, url string
	at       time.Time
	strings  []*preString
	alerts   []preAlert
	recent   []preRecent
	// noHistory says why the recent alerts are unknown ("" when they
	// were read, or not asked for).
	noHistory  string
	collectors []preCollector
	reasons    []reason
}

func (c *preCheck) add(v int, format string, args ...any) {
	c.reasons = append(c.reasons, reason{v, fmt.Sprintf(format, args...)})
}

// verdict is the most severe verdict of the reasons (GO without any).
func (c *preCheck) verdict() int {
	v := verdictGo
	for _, r := range c.reasons {
		v = max(v, r.verdict)
	}
	return v
}

// runPreMaintenance runs the check and returns its verdict as an
// exitError (nil for GO).
func runPreMaintenance(o *auditOptions, stdout, stderr io.Writer) error {
	c, err := preMaintenance(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden audit --pre-maintenance: %v\n", err)
		return exitError{auditFailed}
	}
	c.write(stdout, &o.pre)
	if v := c.verdict(); v != verdictGo {
		return exitError{v}
	}
	return nil
}

// preMaintenance gathers what the check needs and judges it.
func preMaintenance(o *auditOptions, stderr io.Writer) (*preCheck, error) {
	p := &o.pre
	if !telemetry.ValidUPS(p.ups) {
		return nil, fmt.Errorf("--pre-maintenance %q must be a UPS identifier ([A-Za-z0-9_.:-]+)", p.ups)
	}
	if p.url == "" {
		return nil, errors.New("--url is required: the running serve to read the UPS's state from")
	}
	if p.lookback < 0 {
		return nil, fmt.Errorf("--lookback %s must not be negative (0 skips the recent anomalies)", p.lookback)
	}
	sc, err := newServeClient(p)
	if err != nil {
		return nil, err
	}
	fams, shown, err := sc.metrics()
	if err != nil {
		return nil, err
	}
	c := &preCheck{ups: p.ups, url: shown, at: o.now()}
	if p.lookback > 0 {
		if c.recent, c.noHistory, err = sc.recentAlerts(p.ups, c.at.Add(-p.lookback)); err != nil {
			return nil, err
		}
	}
	var findings []lifecycle.Finding
	ages := o.inventory != "" || o.assets != ""
	if o.config != "" && !ages {
		_, inv, err := lifecycle.LoadConfig(o.config)
		if err != nil {
			return nil, err
		}
		ages = inv != ""
	}
	if ages {
		rep, err := buildAudit(o, stderr)
		if err != nil {
			return nil, err
		}
		for _, f := range rep.Findings {
			if f.UPS == p.ups {
				findings = append(findings, f)
			}
		}
	}
	mine := map[string]bool{}
	if o.config != "" {
		cfg, err := config.Load(o.config)
		if err != nil {
			return nil, err
		}
		for _, m := range cfg.Collectors.Modbus {
			if m.UPS == p.ups {
				mine[m.Name] = true
			}
		}
	}
	c.gather(fams, findings, mine)
	c.judge(p)
	return c, nil
}

// serveClient reads a running serve: --url without its credentials, which
// go in a header, never in what is shown.
type serveClient struct {
	metricsURL url.URL
	// base is the serve's root: metricsURL's path without /metrics.
	base   url.URL
	user   *url.Userinfo
	client *http.Client
}

func newServeClient(p *preMaintOptions) (*serveClient, error) {
	u, err := url.Parse(p.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q must be http(s)://[user:password@]host:port", redactURL(p.url))
	}
	sc := &serveClient{user: u.User}
	u.User = nil
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	sc.metricsURL, sc.base = *u, *u
	sc.base.Path, sc.base.RawPath, sc.base.RawQuery = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/metrics"), "", ""
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: p.insecure} //nolint:gosec // opt-in by flag, off by default
	sc.client = &http.Client{Timeout: p.timeout, Transport: tr}
	return sc, nil
}

// get requests u; the caller closes the body of a 200. Errors name u.
func (sc *serveClient) get(u *url.URL) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if sc.user != nil {
		pw, _ := sc.user.Password()
		req.SetBasicAuth(sc.user.Username(), pw)
	}
	resp, err := sc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return resp, fmt.Errorf("reading %s: %s", u, resp.Status)
	}
	return resp, nil
}

// metrics reads the serve's /metrics; shown is the URL without its
// password, for the report and errors.
func (sc *serveClient) metrics() (map[string]*dto.MetricFamily, string, error) {
	shown := sc.metricsURL.String()
	resp, err := sc.get(&sc.metricsURL)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	fams, err := parseExposition(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", shown, err)
	}
	return fams, shown, nil
}

// parseExposition reads a Prometheus text exposition.
func parseExposition(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(r)
}

// recentAlerts reads the alerts of ups that resolved at or after since
// from the serve's /api/v1/alerts. A serve without that endpoint (one
// older than it, 404) leaves them unknown, with the reason in none.
func (sc *serveClient) recentAlerts(ups string, since time.Time) (recent []preRecent, none string, err error) {
	u := sc.base
	u.Path += "/api/v1/alerts"
	u.RawQuery = url.Values{"ups": {ups}, "since": {since.UTC().Format(time.RFC3339)}}.Encode()
	resp, err := sc.get(&u)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Sprintf("%s answers 404: this serve keeps no alert history (it predates /api/v1/alerts)", u.Redacted()), nil
	}
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	recent, err = parseRecentAlerts(io.LimitReader(resp.Body, 16<<20), ups, since)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", u.Redacted(), err)
	}
	return recent, "", nil
}

// apiAlerts is the answer of GET /api/v1/alerts (internal/daemon/api.go).
type apiAlerts struct {
	Status string `json:"status"`
	Data   struct {
		Alerts []apiAlert `json:"alerts"`
	} `json:"data"`
}

// apiAlert is what the check reads of an alert of /api/v1/alerts.
type apiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// parseRecentAlerts picks from an answer of /api/v1/alerts the alerts of
// ups that resolved at or after since, most recent first. The firing
// ones are read from /metrics.
func parseRecentAlerts(r io.Reader, ups string, since time.Time) ([]preRecent, error) {
	var a apiAlerts
	if err := json.NewDecoder(r).Decode(&a); err != nil {
		return nil, fmt.Errorf("not the answer of /api/v1/alerts: %w", err)
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("status %q, not success", a.Status)
	}
	var out []preRecent
	for _, x := range a.Data.Alerts {
		l := x.Labels
		if x.State != "resolved" || l["ups"] != ups || x.EndsAt.Before(since) {
			continue
		}
		ent := telemetry.Entity{UPS: l["ups"], String: l["string"], Module: l["module"], Cell: l["cell"]}
		out = append(out, preRecent{name: l["alertname"], severity: l["severity"], entity: ent.Path(), summary: x.Annotations["summary"],
			fired: x.StartsAt.UTC(), resolved: x.EndsAt.UTC()})
	}
	slices.SortStableFunc(out, func(a, b preRecent) int { return b.resolved.Compare(a.resolved) })
	return out, nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL hides a password in a URL that may not parse.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return "***" + s[at:]
	}
	return s
}

// series calls fn for every sample of a family.
func series(fams map[string]*dto.MetricFamily, name string, fn func(l map[string]string, v float64)) {
	f := fams[name]
	if f == nil {
		return
	}
	for _, m := range f.GetMetric() {
		l := make(map[string]string, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		v := math.NaN()
		switch {
		case m.GetGauge() != nil:
			v = m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			v = m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			v = m.GetUntyped().GetValue()
		}
		fn(l, v)
	}
}

// gather collects the UPS's strings, alerts and the collectors' health.
func (c *preCheck) gather(fams map[string]*dto.MetricFamily, findings []lifecycle.Finding, mine map[string]bool) {
	byName := map[string]*preString{}
	str := func(name string) *preString {
		s := byName[name]
		if s == nil {
			s = &preString{name: name, soc: math.NaN(), state: "-", eol: "-", ageYears: "-"}
			byName[name] = s
		}
		return s
	}
	type cellTemp struct {
		path string
		v    float64
	}
	temps := map[string][]cellTemp{}
	series(fams, "cellwarden_cell_temperature_celsius", func(l map[string]string, v float64) {
		if l["ups"] == c.ups && !math.IsNaN(v) {
			temps[l["string"]] = append(temps[l["string"]], cellTemp{l["module"] + "/" + l["cell"], v})
		}
	})
	for name, ts := range temps {
		s := str(name)
		hot := slices.MaxFunc(ts, func(a, b cellTemp) int { return cmp.Compare(a.v, b.v) })
		s.hottest = hot.path
		for _, t := range ts {
			s.temps = append(s.temps, t.v)
		}
		slices.Sort(s.temps)
	}
	series(fams, "cellwarden_string_soc_ratio", func(l map[string]string, v float64) {
		if l["ups"] == c.ups {
			str(l["string"]).soc = v
		}
	})
	if len(findings) > 0 {
		for i := range findings {
			f := &findings[i]
			s := str(f.String)
			s.state = f.State.String()
			if !f.EndOfLife.IsZero() {
				s.eol = f.EndOfLife.String()
			}
			if f.AgeKnown {
				s.ageYears = strconv.FormatFloat(f.AgeYears(), 'f', 1, 64)
			}
		}
	} else {
		// No inventory given: the serve's own verdicts.
		series(fams, "cellwarden_battery_lifecycle_state", func(l map[string]string, v float64) {
			if l["ups"] == c.ups && v == 1 {
				str(l["string"]).state = l["state"]
			}
		})
		series(fams, "cellwarden_battery_end_of_life_timestamp_seconds", func(l map[string]string, v float64) {
			if l["ups"] == c.ups {
				str(l["string"]).eol = time.Unix(int64(v), 0).UTC().Format(time.DateOnly)
			}
		})
		series(fams, "cellwarden_battery_installed_timestamp_seconds", func(l map[string]string, v float64) {
			if l["ups"] == c.ups {
				str(l["string"]).ageYears = strconv.FormatFloat(c.at.Sub(time.Unix(int64(v), 0)).Hours()/24/365.25, 'f', 1, 64)
			}
		})
	}
	for _, s := range byName {
		c.strings = append(c.strings, s)
	}
	slices.SortFunc(c.strings, func(a, b *preString) int { return naturalCompare(a.name, b.name) })

	starts := map[string]float64{}
	key := func(l map[string]string) string {
		return strings.Join([]string{l["alertname"], l["severity"], l["ups"], l["string"], l["module"], l["cell"]}, "\x00")
	}
	series(fams, "cellwarden_alert_start_timestamp_seconds", func(l map[string]string, v float64) { starts[key(l)] = v })
	series(fams, "cellwarden_alerts", func(l map[string]string, v float64) {
		if l["ups"] != c.ups || v != 1 {
			return
		}
		ent := telemetry.Entity{UPS: l["ups"], String: l["string"], Module: l["module"], Cell: l["cell"]}
		a := preAlert{name: l["alertname"], severity: l["severity"], entity: ent.Path()}
		if t, ok := starts[key(l)]; ok {
			a.since = time.Unix(0, int64(t*1e9)).UTC()
		}
		c.alerts = append(c.alerts, a)
	})
	slices.SortFunc(c.alerts, func(a, b preAlert) int {
		return cmp.Or(cmp.Compare(severityRank(b.severity), severityRank(a.severity)), cmp.Compare(a.entity, b.entity), cmp.Compare(a.name, b.name))
	})

	cols := map[string]*preCollector{}
	col := func(l map[string]string) *preCollector {
		k := l["collector"]
		if cols[k] == nil {
			cols[k] = &preCollector{name: k, source: l["source"], mine: mine[k]}
		}
		return cols[k]
	}
	series(fams, "cellwarden_collector_up", func(l map[string]string, v float64) { col(l).up = v == 1 })
	series(fams, "cellwarden_collector_last_success_timestamp_seconds", func(l map[string]string, v float64) {
		if v > 0 {
			col(l).last = time.Unix(0, int64(v*1e9))
		}
	})
	for name := range mine {
		if cols[name] == nil {
			cols[name] = &preCollector{name: name, source: "modbus", mine: true}
		}
	}
	for _, x := range cols {
		c.collectors = append(c.collectors, *x)
	}
	slices.SortFunc(c.collectors, func(a, b preCollector) int { return cmp.Compare(a.name, b.name) })
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 3
	case "warning":
		return 2
	case "info":
		return 1
	}
	return 0
}

// naturalCompare orders numeric identifiers by number, others as text.
func naturalCompare(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// judge turns what was gathered into reasons.
func (c *preCheck) judge(p *preMaintOptions) {
	hasData := false
	for _, s := range c.strings {
		if len(s.temps) > 0 || !math.IsNaN(s.soc) {
			hasData = true
		}
	}
	if !hasData {
		c.add(verdictNoGo, "no telemetry of %s in %s: the UPS's state is unknown (data missing, or the UPS is not watched by this serve)", c.ups, c.url)
	}
	for _, a := range c.alerts {
		switch {
		case a.severity == "critical":
			c.add(verdictNoGo, "critical alert %s firing on %s since %s", a.name, a.entity, formatSince(a.since))
		case a.name == "TelemetryStale":
			c.add(verdictNoGo, "telemetry of %s is stale (TelemetryStale since %s): its current state is unknown", a.entity, formatSince(a.since))
		case a.severity == "warning":
			c.add(verdictCaution, "warning %s firing on %s since %s", a.name, a.entity, formatSince(a.since))
		}
	}
	if c.noHistory != "" {
		c.add(verdictCaution, "recent anomalies unknown: %s; read its log for the last %s", c.noHistory, shortDuration(p.lookback))
	}
	for _, a := range c.recent {
		if !anomaly(a) {
			continue
		}
		what := "warning"
		if a.severity == "critical" {
			what = "critical alert"
		}
		c.add(verdictCaution, "%s %s fired on %s at %s and resolved at %s: find out why before the work", what, a.name, a.entity, formatSince(a.fired), formatSince(a.resolved))
	}
	for _, x := range c.collectors {
		switch {
		case !x.mine:
		case !x.up:
			c.add(verdictNoGo, "collector %s of %s is down: its data is missing", x.name, c.ups)
		case x.last.IsZero() || c.at.Sub(x.last) > p.maxDataAge:
			c.add(verdictNoGo, "collector %s of %s has received nothing for more than %s: its data is stale", x.name, c.ups, p.maxDataAge)
		}
	}
	for _, s := range c.strings {
		name := entityName(c.ups, s.name)
		if s.name == "" {
			name = "ups " + c.ups + " (as a whole)"
		}
		if s.state == "end_of_life" {
			c.add(verdictCaution, "%s is past end of life (%s): handle and move it with extra care, as the vendor advises for batteries past their life", name, s.eol)
		}
		if s.name == "" {
			continue // a UPS-wide finding: readings are per string
		}
		if len(s.temps) == 0 {
			if hasData {
				c.add(verdictNoGo, "no cell temperatures of %s: data missing", name)
			}
		} else if hot := s.temps[len(s.temps)-1]; hot > p.maxCelsius {
			c.add(verdictNoGo, "cell %s/%s is at %.1f °C, above %g °C", name, s.hottest, hot, p.maxCelsius)
		}
		switch {
		case math.IsNaN(s.soc):
			if hasData {
				c.add(verdictCaution, "state of charge of %s unknown: read it on the BMS before moving the batteries", name)
			}
		case s.soc > p.maxSOC:
			c.add(verdictCaution, "%s is at %s state of charge, above %s: discharge it to the vendor's transport/storage state of charge (typically %s) before moving it",
				name, percent(s.soc), percent(p.maxSOC), percent(p.transportSOC))
		}
	}
}

// anomaly reports whether a recently resolved alert calls for care: a
// critical alert or a warning about the batteries' condition. Stale
// telemetry that came back says nothing about the cells (stale data now
// is NO-GO anyway), and age is judged on its own.
func anomaly(a preRecent) bool {
	switch a.name {
	case "TelemetryStale", "BatteryEndOfLife", "BatteryEndOfLifeSoon":
		return false
	}
	return a.severity == "critical" || a.severity == "warning"
}

// shortDuration writes 24h for 24h0m0s and 90m as 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatSince(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.Format(time.RFC3339)
}

func percent(r float64) string { return strconv.FormatFloat(r*100, 'f', -1, 64) + " %" }

// write prints the check: the verdict and its reasons first, then the
// evidence.
func (c *preCheck) write(w io.Writer, p *preMaintOptions) {
	v := c.verdict()
	fmt.Fprintf(w, "Pre-maintenance check of UPS %s at %s from %s\n", c.ups, c.at.UTC().Format(time.RFC3339), c.url)
	fmt.Fprintf(w, "VERDICT: %s\n", verdictNames[v])
	ordered := slices.Clone(c.reasons)
	slices.SortStableFunc(ordered, func(a, b reason) int { return cmp.Compare(b.verdict, a.verdict) })
	for _, r := range ordered {
		fmt.Fprintf(w, "  %-7s  %s\n", verdictNames[r.verdict], r.text)
	}
	if len(ordered) == 0 {
		fmt.Fprintln(w, "  nothing stands against the work")
	}

	fmt.Fprintln(w, "\nStrings")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STRING\tAGE STATE\tEND OF LIFE\tAGE (Y)\tSOC\tCELLS\tMAX °C\tMEDIAN °C\tHOTTEST CELL")
	for _, s := range c.strings {
		soc, hi, med, hot := "-", "-", "-", "-"
		if !math.IsNaN(s.soc) {
			soc = percent(s.soc)
		}
		if n := len(s.temps); n > 0 {
			hi = strconv.FormatFloat(s.temps[n-1], 'f', 1, 64)
			med = strconv.FormatFloat(s.temps[n/2], 'f', 1, 64)
			hot = s.hottest
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", dash(s.name), s.state, s.eol, s.ageYears, soc, len(s.temps), hi, med, hot)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nFiring alerts")
	if len(c.alerts) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tALERT\tENTITY\tSINCE")
		for _, a := range c.alerts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.severity, a.name, a.entity, formatSince(a.since))
		}
		tw.Flush()
	}

	if p.lookback > 0 {
		fmt.Fprintf(w, "\nRecent anomalies (resolved in the last %s)\n", shortDuration(p.lookback))
		switch {
		case c.noHistory != "":
			fmt.Fprintln(w, "  unknown: "+c.noHistory)
		case len(c.recent) == 0:
			fmt.Fprintln(w, "  none")
		default:
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEVERITY\tALERT\tENTITY\tFIRED\tRESOLVED\tSUMMARY")
			for _, a := range c.recent {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.severity, a.name, a.entity, formatSince(a.fired), formatSince(a.resolved), dash(a.summary))
			}
			tw.Flush()
		}
	}

	fmt.Fprintln(w, "\nCollectors")
	if len(c.collectors) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COLLECTOR\tSOURCE\tUP\tLAST DATA\tSERVES "+c.ups)
		for _, x := range c.collectors {
			last := "never"
			if !x.last.IsZero() {
				last = x.last.UTC().Format(time.RFC3339)
			}
			serves := "unknown"
			if x.mine {
				serves = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.name, dash(x.source), yesNo(x.up), last, serves)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nThresholds: NO-GO on a critical alert, a cell above %g °C (--max-cell-celsius), missing or stale data (collectors of the UPS: older than %s, --max-data-age); "+
		"CAUTION past end of life, above %s state of charge (--max-soc; discharge to %s, --transport-soc), on a warning, or on a critical alert or warning resolved within %s (--lookback).\n",
		p.maxCelsius, p.maxDataAge, percent(p.maxSOC), percent(p.transportSOC), shortDuration(p.lookback))
}
