package daemon

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/internal/config"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// statusState is what the status page shows besides the metrics: the
// active alerts with their evidence, and the configuration's state.
type statusState struct {
	mu        sync.Mutex
	active    map[alerting.Labels]alerting.Alert
	since     map[alerting.Labels]time.Time
	source    string
	shard     string
	reloadErr string
	started   time.Time
	// maint: the active maintenance windows; acks: the acknowledgements
	// covering battery-age findings, by UPS and string.
	maint []lifecycle.Window
	acks  map[[2]string]lifecycle.Ack
}

func newStatusState() *statusState {
	return &statusState{active: map[alerting.Labels]alerting.Alert{}, since: map[alerting.Labels]time.Time{}, started: time.Now()}
}

func (s *statusState) setConfig(cfg *config.Config, sh Shard, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source, s.shard, s.reloadErr = cfg.Source, sh.String(), ""
	if err != nil {
		s.reloadErr = err.Error()
	}
}

// setMaintenance records the active maintenance windows.
func (s *statusState) setMaintenance(ws []lifecycle.Window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maint = slices.Clone(ws)
}

// setFindings records who acknowledged which battery-age finding.
func (s *statusState) setFindings(fs []lifecycle.Finding) {
	acks := map[[2]string]lifecycle.Ack{}
	for i := range fs {
		if a := fs[i].Ack; a != nil {
			acks[[2]string{fs[i].UPS, fs[i].String}] = *a
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = acks
}

// alerts records alert changes.
func (s *statusState) alerts(as []alerting.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range as {
		if a.Status == "firing" {
			if _, ok := s.active[a.Labels]; !ok {
				s.since[a.Labels] = a.Time
			}
			s.active[a.Labels] = a
			continue
		}
		delete(s.active, a.Labels)
		delete(s.since, a.Labels)
	}
}

// savedAlert is a firing alert in the state directory's alerts file.
type savedAlert struct {
	Labels      alerting.Labels      `json:"labels"`
	Annotations alerting.Annotations `json:"annotations"`
	Since       time.Time            `json:"since"`
}

// firing returns the active alerts, ordered by their labels.
func (s *statusState) firing() []savedAlert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]savedAlert, 0, len(s.active))
	for l, a := range s.active {
		out = append(out, savedAlert{Labels: l, Annotations: a.Annotations, Since: s.since[l]})
	}
	slices.SortFunc(out, func(a, b savedAlert) int {
		x, y := a.Labels, b.Labels
		return cmp.Or(cmp.Compare(x.UPS, y.UPS), cmp.Compare(x.String, y.String), cmp.Compare(x.Module, y.Module),
			cmp.Compare(x.Cell, y.Cell), cmp.Compare(x.Alertname, y.Alertname), cmp.Compare(x.Severity, y.Severity))
	})
	return out
}

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string { return time.Since(t).Truncate(time.Second).String() },
}).Parse(statusHTML))

// page is the status page's data.
type page struct {
	Now                       string
	Config, Shard, ReloadErr  string
	Uptime                    string
	UPSs, Strings, Cells      int
	CollectorsUp, Collectors  int
	Critical, Warning         int
	Alerts                    []pageAlert
	Heat                      []heatString
	Batteries                 []battery
	NoTemperatures, NoBattery bool
	Maintenance               []pageWindow
}

// pageWindow is an active maintenance window.
type pageWindow struct {
	UPS, String, By, Reason, Started, Until string
}

type pageAlert struct {
	Name, Severity, Entity, Summary, Since string
}

// heatString is one string's cell temperatures, a row per module.
type heatString struct {
	UPS, String string
	Median      string
	Rows        []heatRow
}

type heatRow struct {
	Module string
	Cells  []heatCell
}

type heatCell struct {
	Cell, Title string
	Color       template.CSS // computed here, never from input
	Alert       bool
}

type battery struct {
	UPS, String, Installed, EndOfLife, Age, State string
	// Ack says who acknowledged the finding and the planned replacement
	// ("facilities-dc1, replacement planned 2026-05-15, until 2026-05-31").
	Ack  string
	days float64
}

// serveStatus renders the status page from the metrics registry (the same
// values /metrics exports) and the active alerts.
func (d *daemon) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	fams, err := prometheus.Gatherers{d.prom, d.store}.Gather()
	if err != nil && len(fams) == 0 {
		http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	p := d.buildPage(fams, time.Now())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTmpl.Execute(w, p); err != nil {
		d.log.Sugar().Warnf("status page: %v", err)
	}
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return math.NaN()
}

type cellKey struct{ ups, str, mod, cell string }

func (d *daemon) buildPage(fams []*dto.MetricFamily, now time.Time) page {
	s := d.status
	s.mu.Lock()
	p := page{Now: now.UTC().Format(time.RFC3339), Config: s.source, Shard: s.shard, ReloadErr: s.reloadErr,
		Uptime: now.Sub(s.started).Truncate(time.Second).String()}
	for l, a := range s.active {
		ent := telemetry.Entity{UPS: l.UPS, String: l.String, Module: l.Module, Cell: l.Cell}
		p.Alerts = append(p.Alerts, pageAlert{Name: l.Alertname, Severity: l.Severity, Entity: ent.Path(),
			Summary: a.Annotations.Summary, Since: s.since[l].UTC().Format(time.RFC3339)})
		if l.Severity == "critical" {
			p.Critical++
		} else {
			p.Warning++
		}
	}
	for _, w := range s.maint {
		pw := pageWindow{UPS: w.UPS, String: w.String, By: w.By, Reason: w.Reason,
			Started: w.Started.UTC().Format(time.RFC3339), Until: w.Until.UTC().Format(time.RFC3339)}
		if pw.String == "" {
			pw.String = "whole UPS"
		}
		p.Maintenance = append(p.Maintenance, pw)
	}
	acks := s.acks
	s.mu.Unlock()
	slices.SortFunc(p.Alerts, func(a, b pageAlert) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.Entity, b.Entity), cmp.Compare(a.Name, b.Name))
	})
	temps := map[cellKey]float64{}
	ratio := map[cellKey]float64{}
	installed := map[[2]string]float64{}
	eol := map[[2]string]float64{}
	verdict := map[[2]string]string{}
	acked := map[[2]string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := labels(m)
			k := cellKey{l["ups"], l["string"], l["module"], l["cell"]}
			switch f.GetName() {
			case "cellwarden_cell_temperature_celsius":
				temps[k] = value(m)
			case "cellwarden_cell_temperature_deviation_ratio":
				ratio[k] = value(m)
			case "cellwarden_collector_up":
				p.Collectors++
				if value(m) == 1 {
					p.CollectorsUp++
				}
			case "cellwarden_battery_installed_timestamp_seconds":
				installed[[2]string{k.ups, k.str}] = value(m)
			case "cellwarden_battery_end_of_life_timestamp_seconds":
				eol[[2]string{k.ups, k.str}] = value(m)
			case "cellwarden_battery_lifecycle_state":
				if value(m) == 1 {
					verdict[[2]string{k.ups, k.str}] = l["state"]
				}
			case "cellwarden_battery_lifecycle_acknowledged":
				if value(m) == 1 {
					acked[[2]string{k.ups, k.str}] = true
				}
			}
		}
	}
	p.Heat = heatMap(temps, ratio)
	p.Cells = len(temps)
	upss := map[string]bool{}
	for _, h := range p.Heat {
		upss[h.UPS] = true
	}
	p.UPSs, p.Strings = len(upss), len(p.Heat)
	p.Batteries = batteries(installed, eol, verdict, now)
	for i := range p.Batteries {
		b := &p.Batteries[i]
		k := [2]string{b.UPS, b.String}
		if acked[k] {
			b.State += " (acknowledged)"
		}
		if a, ok := acks[k]; ok {
			b.Ack = fmt.Sprintf("%s, replacement planned %s, until %s", a.Owner, a.Planned, a.Expires)
		}
	}
	p.NoTemperatures, p.NoBattery = len(temps) == 0, len(p.Batteries) == 0
	return p
}

// heatMap lays out every string's cell temperatures, coloured by their
// distance from the string's median (blue below, red above; ±5 °C is full
// colour), marking cells at or past their deviation threshold.
func heatMap(temps, ratio map[cellKey]float64) []heatString {
	type strKey struct{ ups, str string }
	byStr := map[strKey][]cellKey{}
	for k := range temps {
		sk := strKey{k.ups, k.str}
		byStr[sk] = append(byStr[sk], k)
	}
	var out []heatString
	for sk, cells := range byStr {
		slices.SortFunc(cells, func(a, b cellKey) int {
			return cmp.Or(natural(a.mod, b.mod), natural(a.cell, b.cell))
		})
		vals := make([]float64, 0, len(cells))
		for _, c := range cells {
			vals = append(vals, temps[c])
		}
		slices.Sort(vals)
		med := vals[len(vals)/2]
		h := heatString{UPS: sk.ups, String: sk.str, Median: strconv.FormatFloat(med, 'f', 1, 64)}
		for _, c := range cells {
			if len(h.Rows) == 0 || h.Rows[len(h.Rows)-1].Module != c.mod {
				h.Rows = append(h.Rows, heatRow{Module: c.mod})
			}
			t := temps[c]
			row := &h.Rows[len(h.Rows)-1]
			row.Cells = append(row.Cells, heatCell{Cell: c.cell, Color: colour(t - med), Alert: ratio[c] >= 1,
				Title: fmt.Sprintf("%s/%s/%s/%s: %.1f °C (%+.1f from the string's median)", c.ups, c.str, c.mod, c.cell, t, t-med)})
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b heatString) int { return cmp.Or(cmp.Compare(a.UPS, b.UPS), natural(a.String, b.String)) })
	return out
}

// natural orders numeric identifiers by number, others as text.
func natural(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

// colour maps a temperature difference to a CSS colour.
func colour(delta float64) template.CSS {
	x := math.Max(-1, math.Min(1, delta/5))
	if math.IsNaN(x) {
		x = 0
	}
	if x >= 0 {
		return template.CSS(fmt.Sprintf("rgb(255,%d,%d)", int(235-200*x), int(220-200*x)))
	}
	return template.CSS(fmt.Sprintf("rgb(%d,%d,255)", int(220+200*x), int(235+150*x)))
}

// verdictNames say the detector's battery-age verdicts for people.
var verdictNames = map[string]string{"end_of_life": "past end of life", "soon": "end of life soon", "ok": "ok", "unknown": "unknown age"}

// batteries lists every string with a battery date or an age verdict, the
// most urgent first; the state is the detector's verdict (the one its
// alerts follow), not worked out again here.
func batteries(installed, eol map[[2]string]float64, verdict map[[2]string]string, now time.Time) []battery {
	keys := map[[2]string]bool{}
	for k := range installed {
		keys[k] = true
	}
	for k := range eol {
		keys[k] = true
	}
	for k := range verdict {
		keys[k] = true
	}
	var out []battery
	for k := range keys {
		b := battery{UPS: k[0], String: k[1], Installed: "unknown", EndOfLife: "unknown", Age: "unknown", State: "unknown age", days: math.Inf(1)}
		if v, ok := verdictNames[verdict[k]]; ok {
			b.State = v
		}
		if v, ok := installed[k]; ok {
			t := time.Unix(int64(v), 0).UTC()
			b.Installed = t.Format(time.DateOnly)
			b.Age = fmt.Sprintf("%.1f years", now.Sub(t).Hours()/24/365.25)
		}
		if v, ok := eol[k]; ok {
			t := time.Unix(int64(v), 0).UTC()
			b.EndOfLife = t.Format(time.DateOnly)
			b.days = t.Sub(now).Hours() / 24
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b battery) int {
		return cmp.Or(cmp.Compare(a.days, b.days), cmp.Compare(a.UPS, b.UPS), natural(a.String, b.String))
	})
	return out
}
