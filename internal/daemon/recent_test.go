package daemon

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
)

var recentBase = time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)

func runaway(ups, cell string) alerting.Labels {
	return alerting.Labels{Alertname: "ThermalRunawayRisk", Severity: "critical", UPS: ups, String: "1", Module: "3", Cell: cell}
}

func change(status string, l alerting.Labels, at time.Duration, summary string, v float64) alerting.Alert {
	return alerting.Alert{Time: recentBase.Add(at), Status: status, Labels: l, Annotations: alerting.Annotations{Summary: summary}, Value: v}
}

// describe lists alerts as "state alertname ups/cell startsAt..endsAt".
func describe(as []loggedAlert) []string {
	out := []string{}
	for _, a := range as {
		s := fmt.Sprintf("%s %s %s/%s %s..%s", a.State, a.Labels.Alertname, a.Labels.UPS, a.Labels.Cell,
			a.StartsAt.Format("15:04"), a.EndsAt.Format("15:04"))
		out = append(out, s)
	}
	return out
}

// The log lists the firing alerts, newest first, then the resolved ones,
// most recent first, each with when it fired and when it resolved, the
// evidence it fired with and the summary it resolved with; since and ups
// narrow it.
func TestAlertLogListsFiringAndResolvedAlerts(t *testing.T) {
	l := newAlertLog(maxResolved)
	l.record([]alerting.Alert{
		change("firing", runaway("ups-a", "7"), 0, "cell 7 is 9 °C hotter than its peers and its voltage sags", 71),
		change("firing", runaway("ups-b", "1"), time.Minute, "cell 1 heading for runaway", math.NaN()),
	})
	l.record([]alerting.Alert{change("firing", runaway("ups-a", "8"), 2*time.Hour, "cell 8 heading for runaway", 70)})
	l.record([]alerting.Alert{change("resolved", runaway("ups-a", "7"), time.Hour, "cell 7 back among its peers", 40)})
	l.record([]alerting.Alert{change("resolved", runaway("ups-b", "1"), 3*time.Hour, "cell 1 back among its peers", 40)})
	// Fired again while firing: the first start is kept.
	l.record([]alerting.Alert{change("firing", runaway("ups-a", "8"), 4*time.Hour, "again", 72)})

	tests := []struct {
		name  string
		since time.Time
		ups   string
		want  []string
	}{
		{"everything", time.Time{}, "", []string{
			"firing ThermalRunawayRisk ups-a/8 08:00..00:00",
			"resolved ThermalRunawayRisk ups-b/1 06:01..09:00",
			"resolved ThermalRunawayRisk ups-a/7 06:00..07:00"}},
		{"resolved since 07:00, inclusive", recentBase.Add(time.Hour), "", []string{
			"firing ThermalRunawayRisk ups-a/8 08:00..00:00",
			"resolved ThermalRunawayRisk ups-b/1 06:01..09:00",
			"resolved ThermalRunawayRisk ups-a/7 06:00..07:00"}},
		{"resolved since 07:01", recentBase.Add(time.Hour + time.Minute), "", []string{
			"firing ThermalRunawayRisk ups-a/8 08:00..00:00",
			"resolved ThermalRunawayRisk ups-b/1 06:01..09:00"}},
		{"one UPS", time.Time{}, "ups-a", []string{
			"firing ThermalRunawayRisk ups-a/8 08:00..00:00",
			"resolved ThermalRunawayRisk ups-a/7 06:00..07:00"}},
		{"a UPS without alerts", time.Time{}, "ups-z", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(l.query(tt.since, tt.ups)); !slices.Equal(got, tt.want) {
				t.Errorf("query(%s, %q):\n%q\nwant\n%q", tt.since, tt.ups, got, tt.want)
			}
		})
	}
	got := l.query(time.Time{}, "ups-a")[1]
	if got.Annotations.Summary != "cell 7 is 9 °C hotter than its peers and its voltage sags" || got.Resolution != "cell 7 back among its peers" ||
		got.Value == nil || *got.Value != 71 || got.Labels != runaway("ups-a", "7") {
		t.Errorf("the resolved alert is %+v, want the evidence it fired with, its value and the summary it resolved with", got)
	}
	if v := l.query(time.Time{}, "ups-b")[0].Value; v != nil {
		t.Errorf("an alert without a value (NaN) has value %v, want none", *v)
	}
}

// The log keeps the last resolved alerts, the newest once it is full.
func TestAlertLogIsBounded(t *testing.T) {
	l := newAlertLog(3)
	for i := range 7 {
		l.record([]alerting.Alert{
			change("firing", runaway("ups-a", fmt.Sprint(i)), time.Duration(i)*time.Hour, "hot", 70),
			change("resolved", runaway("ups-a", fmt.Sprint(i)), time.Duration(i)*time.Hour+time.Minute, "cool", 30),
		})
	}
	want := []string{"resolved ThermalRunawayRisk ups-a/6 12:00..12:01", "resolved ThermalRunawayRisk ups-a/5 11:00..11:01",
		"resolved ThermalRunawayRisk ups-a/4 10:00..10:01"}
	if got := describe(l.query(time.Time{}, "")); !slices.Equal(got, want) {
		t.Errorf("a log of 3 after 7 resolutions holds\n%q\nwant\n%q", got, want)
	}
}

// The resolved alerts are saved beside the alerts file and read back by
// the next run; an unchanged log is not written again; a damaged file is
// reported and nothing is read from it.
func TestAlertLogSavedAndLoaded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, resolvedFile)
	l := newAlertLog(3)
	for i := range 4 {
		l.record([]alerting.Alert{
			change("firing", runaway("ups-a", fmt.Sprint(i)), time.Duration(i)*time.Hour, "hot", 70),
			change("resolved", runaway("ups-a", fmt.Sprint(i)), time.Duration(i)*time.Hour+time.Minute, "cool", 30),
		})
	}
	l.record([]alerting.Alert{change("firing", runaway("ups-b", "1"), 0, "hot", 70)})
	if err := l.save(path); err != nil {
		t.Fatal(err)
	}
	next := newAlertLog(3)
	if err := next.load(path); err != nil {
		t.Fatal(err)
	}
	// The firing alert is the detector snapshot's business (alerts.json).
	want := describe(l.query(time.Time{}, "ups-a"))
	if got := describe(next.query(time.Time{}, "")); !slices.Equal(got, want) {
		t.Errorf("read back:\n%q\nwant\n%q", got, want)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := next.save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a log unchanged since it was read was written again (%v)", err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 1, "resolved": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := newAlertLog(3)
	if err := damaged.load(path); err == nil || len(damaged.query(time.Time{}, "")) != 0 {
		t.Errorf("a damaged file: %v, %d alerts read", err, len(damaged.query(time.Time{}, "")))
	}
	if err := newAlertLog(3).load(filepath.Join(dir, "missing.json")); err != nil {
		t.Errorf("a missing file: %v, want none (a first start)", err)
	}
}

// GET /api/v1/alerts answers the log in the API's envelope; since takes
// RFC 3339 or Unix seconds; ups narrows it; bad or unknown parameters are
// refused with 400 naming them, other methods with 405.
func TestAlertsEndpoint(t *testing.T) {
	f := newAPIFixture(t, "", false)
	f.api.alerts.record([]alerting.Alert{
		change("firing", runaway("ups-a", "7"), 0, "hot", 71),
		change("firing", runaway("ups-b", "1"), 0, "hot", 71),
	})
	f.api.alerts.record([]alerting.Alert{change("resolved", runaway("ups-a", "7"), time.Hour, "cool", 40)})
	get := func(target string) apiAnswer {
		t.Helper()
		return apiRequest{method: http.MethodGet, target: target}.serve(t, f.mux)
	}
	list := func(a apiAnswer) []string {
		t.Helper()
		var d alertsData
		if err := json.Unmarshal(a.Data, &d); err != nil {
			t.Fatalf("data %s: %v", a.Data, err)
		}
		out := []string{}
		for _, x := range d.Alerts {
			out = append(out, fmt.Sprintf("%s %s %s/%s", x.State, x.Labels.Alertname, x.Labels.UPS, x.Labels.Cell))
		}
		return out
	}
	for _, c := range []struct {
		name, target string
		want         []string
	}{
		{"all", "/api/v1/alerts", []string{"firing ThermalRunawayRisk ups-b/1", "resolved ThermalRunawayRisk ups-a/7"}},
		{"since, RFC 3339", "/api/v1/alerts?since=2026-03-04T07:00:00Z", []string{"firing ThermalRunawayRisk ups-b/1", "resolved ThermalRunawayRisk ups-a/7"}},
		{"since, in another zone", "/api/v1/alerts?since=2026-03-04T08:00:01%2B01:00", []string{"firing ThermalRunawayRisk ups-b/1"}},
		{"since, Unix seconds", fmt.Sprintf("/api/v1/alerts?since=%d.5", recentBase.Add(time.Hour).Unix()-1), []string{"firing ThermalRunawayRisk ups-b/1", "resolved ThermalRunawayRisk ups-a/7"}},
		{"one UPS", "/api/v1/alerts?ups=ups-a", []string{"resolved ThermalRunawayRisk ups-a/7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := get(c.target)
			if a.code != http.StatusOK || a.Status != "success" {
				t.Fatalf("%d %s, want 200", a.code, a.raw)
			}
			if got := list(a); !slices.Equal(got, c.want) {
				t.Errorf("GET %s lists\n%q\nwant\n%q", c.target, got, c.want)
			}
		})
	}
	a := get("/api/v1/alerts")
	var raw struct {
		Alerts []map[string]any `json:"alerts"`
	}
	if err := json.Unmarshal(a.Data, &raw); err != nil || len(raw.Alerts) != 2 {
		t.Fatalf("data %s: %v", a.Data, err)
	}
	if r := raw.Alerts[1]; r["startsAt"] != "2026-03-04T06:00:00Z" || r["endsAt"] != "2026-03-04T07:00:00Z" || r["state"] != "resolved" ||
		r["resolution"] != "cool" || r["value"] != 71.0 {
		t.Errorf("the resolved alert is answered as %v", r)
	}
	if _, ok := raw.Alerts[0]["endsAt"]; ok {
		t.Errorf("a firing alert has an endsAt: %v", raw.Alerts[0])
	}

	for _, c := range []struct {
		name, method, target string
		code                 int
		err                  string
	}{
		{"a since that is no time", http.MethodGet, "/api/v1/alerts?since=yesterday", 400,
			`query: since "yesterday" must be an RFC 3339 time (2026-03-04T09:00:00Z) or Unix seconds`},
		{"a since out of range", http.MethodGet, "/api/v1/alerts?since=1e300", 400, `query: since "1e300" is out of range`},
		{"NaN", http.MethodGet, "/api/v1/alerts?since=NaN", 400, `query: since "NaN" is out of range`},
		{"misspelt", http.MethodGet, "/api/v1/alerts?sinse=0", 400, `query: unknown parameter "sinse" (want since, ups)`},
		{"twice", http.MethodGet, "/api/v1/alerts?ups=a&ups=b", 400, "query: ups given 2 times"},
		{"a change", http.MethodPost, "/api/v1/alerts", 405, "POST is not allowed: GET, HEAD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := apiRequest{method: c.method, target: c.target}.serve(t, f.mux)
			if a.code != c.code || a.Error != c.err {
				t.Errorf("%d %s, want %d with error %q", a.code, a.raw, c.code, c.err)
			}
			if c.code == 405 && a.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", a.header.Get("Allow"))
			}
		})
	}
}

// The running daemon: a cell that overheats and cools is listed by GET
// /api/v1/alerts as resolved with the times it fired and resolved, and
// still after a restart (resolved.json in the state directory).
func TestAlertsAPIListsResolvedAlertsAcrossRestarts(t *testing.T) {
	bms := startBMS(t, 1, 1)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	config := testConfig{bmsAddr: bms.addr, modules: 1, units: []modbusUnit{{"rack-1", "ups-a", 1}}}.write(t, dir)
	d := start(t, config, state, Shard{})
	alerts := func(d *instance) []loggedAlert {
		a := apiRequest{method: http.MethodGet, target: "/api/v1/alerts?ups=ups-a"}.send(t, d.url)
		var data alertsData
		if a.code != http.StatusOK || json.Unmarshal(a.Data, &data) != nil {
			t.Fatalf("GET /api/v1/alerts: %d %s", a.code, a.raw)
		}
		return data.Alerts
	}
	hot := hotAlert("ups-a", "1", "4")
	waitFor(t, "the cells' readings", func() bool { return upss(d.scrape())["ups-a"] == cellsPerModule })
	before := time.Now().Add(-time.Second)
	bms.heat(t, d, 1, "ups-a", "1", "4", 25, 66)
	waitFor(t, "CellOverTemperature firing", func() bool { v, _ := d.scrape().Value("cellwarden_alerts", hot); return v == 1 })
	bms.heat(t, d, 1, "ups-a", "1", "4", 66, 25)
	var resolved loggedAlert
	waitFor(t, "the resolved alert in /api/v1/alerts", func() bool {
		for _, a := range alerts(d) {
			if a.State == "resolved" && a.Labels == labelsOf(hot) {
				resolved = a
				return true
			}
		}
		return false
	})
	if resolved.StartsAt.Before(before) || resolved.EndsAt.Before(resolved.StartsAt) || resolved.EndsAt.After(time.Now()) || resolved.Labels.Severity != "critical" {
		t.Errorf("resolved alert %+v: want it to have fired after %s and resolved since", resolved, before)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	d = start(t, config, state, Shard{})
	found := false
	for _, a := range alerts(d) {
		found = found || (a.Labels == resolved.Labels && a.State == "resolved" && a.EndsAt.Equal(resolved.EndsAt) && a.StartsAt.Equal(resolved.StartsAt))
	}
	if !found {
		t.Errorf("after a restart /api/v1/alerts lists %+v, want the resolved alert %+v", alerts(d), resolved)
	}
}

// labelsOf turns the labels of a series into an alert's.
func labelsOf(m map[string]string) alerting.Labels {
	return alerting.Labels{Alertname: m["alertname"], Severity: m["severity"], UPS: m["ups"], String: m["string"], Module: m["module"], Cell: m["cell"]}
}
