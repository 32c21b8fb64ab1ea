package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noRecentAlerts is the answer of /api/v1/alerts without any alert.
const noRecentAlerts = `{"status":"success","data":{"alerts":[]}}`

// fakeServe is the /metrics of a serve watching ups-a (strings 1 and 2,
// two cells each) and ups-b, with extra lines appended, and an
// /api/v1/alerts without alerts.
func fakeServe(t *testing.T, soc1, hot float64, extra string) string {
	t.Helper()
	return fakeServeAlerts(t, soc1, hot, extra, noRecentAlerts, nil)
}

// fakeServeAlerts is fakeServe with alerts as the answer of /api/v1/alerts
// (404 when empty); the queries it gets are sent to queries when it is
// not nil.
func fakeServeAlerts(t *testing.T, soc1, hot float64, extra, alerts string, queries chan<- string) string {
	t.Helper()
	now := float64(time.Now().Unix())
	body := fmt.Sprintf(`# TYPE cellwarden_cell_temperature_celsius gauge
cellwarden_cell_temperature_celsius{ups="ups-a",string="1",module="1",cell="1"} 24.5
cellwarden_cell_temperature_celsius{ups="ups-a",string="1",module="1",cell="2"} %g
cellwarden_cell_temperature_celsius{ups="ups-a",string="2",module="1",cell="1"} 25
cellwarden_cell_temperature_celsius{ups="ups-a",string="2",module="1",cell="2"} 25.5
cellwarden_cell_temperature_celsius{ups="ups-b",string="1",module="1",cell="1"} 70
# TYPE cellwarden_string_soc_ratio gauge
cellwarden_string_soc_ratio{ups="ups-a",string="1"} %g
cellwarden_string_soc_ratio{ups="ups-a",string="2"} 0.3
# TYPE cellwarden_collector_up gauge
cellwarden_collector_up{collector="rack-a",source="modbus"} 1
# TYPE cellwarden_collector_last_success_timestamp_seconds gauge
cellwarden_collector_last_success_timestamp_seconds{collector="rack-a",source="modbus"} %g
%s`, hot, soc1, now, extra)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && (u != "ops" || p != "s3cret") {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/metrics":
			fmt.Fprint(w, body)
		case r.URL.Path == "/api/v1/alerts" && alerts != "":
			if queries != nil {
				queries <- r.URL.RawQuery
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, alerts)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const alertLines = `# TYPE cellwarden_alerts gauge
cellwarden_alerts{alertname="%[1]s",severity="%[2]s",ups="ups-a",string="2",module="",cell=""} 1
# TYPE cellwarden_alert_start_timestamp_seconds gauge
cellwarden_alert_start_timestamp_seconds{alertname="%[1]s",severity="%[2]s",ups="ups-a",string="2",module="",cell=""} 1.7725e+09
`

// checkPreMaintenance runs the check of ups-a with args and checks its
// exit status and that its report has every string of want and none of
// lacks.
func checkPreMaintenance(t *testing.T, args []string, wantCode int, want, lacks []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"audit", "--pre-maintenance", "ups-a"}, args...), nil, &stdout, &stderr)
	if code != wantCode {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr: %s", code, wantCode, stdout.String(), stderr.String())
	}
	for _, w := range want {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("the report lacks %q:\n%s", w, stdout.String())
		}
	}
	for _, w := range lacks {
		if strings.Contains(stdout.String(), w) {
			t.Errorf("the report has %q:\n%s", w, stdout.String())
		}
	}
}

func TestPreMaintenanceVerdicts(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(`batteries:
  - {ups: ups-a, string: "1", chemistry: NMC, installed: 2012-05-01, design_life_years: 10}
  - {ups: ups-a, string: "2", chemistry: NMC, installed: 2024-05-01, design_life_years: 10}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		soc1     float64
		hot      float64
		extra    string
		args     []string
		wantCode int
		want     []string
	}{
		{"all fine", 0.3, 25, "", nil, 0,
			[]string{"VERDICT: GO\n", "nothing stands against the work", "1       -          -            -        30 %  2      25.0    25.0       1/2"}},
		{"charged above 50 %", 0.9, 25, "", nil, 1,
			[]string{"VERDICT: CAUTION\n", "ups-a/1 is at 90 % state of charge, above 50 %: discharge it to the vendor's transport/storage state of charge (typically 30 %)"}},
		{"past end of life from the inventory", 0.3, 25, "", []string{"--inventory", inv, "--as-of", "2026-03-04"}, 1,
			[]string{"VERDICT: CAUTION\n", "ups-a/1 is past end of life (2022-05-01): handle and move it with extra care", "1       end_of_life  2022-05-01   13.8"}},
		{"past end of life from the serve's verdict", 0.3, 25,
			"# TYPE cellwarden_battery_lifecycle_state gauge\ncellwarden_battery_lifecycle_state{ups=\"ups-a\",string=\"1\",state=\"end_of_life\"} 1\n", nil, 1,
			[]string{"ups-a/1 is past end of life"}},
		{"a warning fires", 0.3, 25, fmt.Sprintf(alertLines, "CellTemperatureDeviation", "warning"), nil, 1,
			[]string{"CAUTION  warning CellTemperatureDeviation firing on ups-a/2 since 2026-03-03T01:06:40Z", "warning   CellTemperatureDeviation  ups-a/2  2026-03-03T01:06:40Z"}},
		{"a critical alert fires", 0.3, 25, fmt.Sprintf(alertLines, "CellOverTemperature", "critical"), nil, 2,
			[]string{"VERDICT: NO-GO\n", "NO-GO    critical alert CellOverTemperature firing on ups-a/2"}},
		{"a cell above 45 °C", 0.3, 45.5, "", nil, 2,
			[]string{"NO-GO    cell ups-a/1/1/2 is at 45.5 °C, above 45 °C"}},
		{"a cell above a lower limit", 0.3, 41, "", []string{"--max-cell-celsius", "40"}, 2,
			[]string{"cell ups-a/1/1/2 is at 41.0 °C, above 40 °C"}},
		{"stale telemetry", 0.3, 25, fmt.Sprintf(alertLines, "TelemetryStale", "warning"), nil, 2,
			[]string{"NO-GO    telemetry of ups-a/2 is stale"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fakeServe(t, tt.soc1, tt.hot, tt.extra)
			checkPreMaintenance(t, append([]string{"--url", url}, tt.args...), tt.wantCode, tt.want, nil)
		})
	}
}

func TestPreMaintenanceMissingData(t *testing.T) {
	tests := []struct {
		name, ups string
		args      []string
		wantCode  int
		want      string
	}{
		{"a UPS the serve does not know", "ups-z", nil, 2, "NO-GO    no telemetry of ups-z in "},
		{"a string the inventory names without readings", "ups-b", []string{"--inventory", "INV"}, 2, "NO-GO    no cell temperatures of ups-b/2: data missing"},
		{"a collector of the UPS silent for too long", "ups-a", []string{"--config", "CFG", "--max-data-age", "1ns"}, 2,
			"NO-GO    collector rack-a of ups-a has received nothing for more than 1ns: its data is stale"},
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	os.WriteFile(inv, []byte("batteries:\n  - {ups: ups-b, string: \"1\", installed: 2024-01-01}\n  - {ups: ups-b, string: \"2\", installed: 2024-01-01}\n"), 0o644)
	cfg := filepath.Join(dir, "cellwarden.yml")
	os.WriteFile(cfg, []byte("collectors:\n  modbus:\n    - {name: rack-a, address: \"127.0.0.1:1\", unit: 1, profile: soltaro_single_rack_vc, ups: ups-a, string: \"1\"}\n"), 0o644)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fakeServe(t, 0.3, 25, "")
			args := []string{"audit", "--pre-maintenance", tt.ups, "--url", url}
			for _, a := range tt.args {
				args = append(args, strings.NewReplacer("INV", inv, "CFG", cfg).Replace(a))
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, nil, &stdout, &stderr); code != tt.wantCode || !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("exit %d (want %d), report lacks %q?\n%s\nstderr: %s", code, tt.wantCode, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}

func TestPreMaintenanceCannotCheck(t *testing.T) {
	url := fakeServe(t, 0.3, 25, "")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"--pre-maintenance", "ups-a"}, "--url is required"},
		{"not an HTTP URL", []string{"--pre-maintenance", "ups-a", "--url", "ftp://ops:s3cret@host"}, `--url "ftp://ops:xxxxx@host" must be http(s)://[user:password@]host:port`},
		{"nobody listening", []string{"--pre-maintenance", "ups-a", "--url", closed.URL}, "connection refused"},
		{"a wrong password, not shown", []string{"--pre-maintenance", "ups-a", "--url", strings.Replace(url, "http://", "http://ops:wrong@", 1)}, "401 Unauthorized"},
		{"a bad UPS", []string{"--pre-maintenance", "ups a", "--url", url}, `--pre-maintenance "ups a" must be a UPS identifier`},
		{"--url without --pre-maintenance", []string{"--inventory", "x", "--url", url}, "--url is for --pre-maintenance U"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"audit"}, tt.args...), nil, &stdout, &stderr)
			if code != 3 || !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), "wrong") {
				t.Errorf("exit %d (want 3), stderr %q, want it to contain %q without the password", code, stderr.String(), tt.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"audit", "--pre-maintenance", "ups-a", "--url", strings.Replace(url, "http://", "http://ops:s3cret@", 1)}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("with the right password: exit %d, stderr %s", code, stderr.String())
	}
}

// recentAlert is one alert of an /api/v1/alerts answer.
func recentAlert(state, name, severity, str, cell string, fired, resolved time.Time) string {
	ends := ""
	if !resolved.IsZero() {
		ends = fmt.Sprintf(`,"endsAt":%q,"resolution":"back to normal"`, resolved.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf(`{"labels":{"alertname":%q,"severity":%q,"ups":"ups-a","string":%q,"module":"3","cell":%q},`+
		`"annotations":{"summary":"%s on cell %s"},"state":%q,"startsAt":%q%s}`, name, severity, str, cell, name, cell, state, fired.Format(time.RFC3339Nano), ends)
}

// The check asks the serve's /api/v1/alerts for the alerts of the UPS
// that resolved within --lookback (24 h by default): a thermal runaway
// risk or a temperature deviation that resolved an hour ago is listed as
// a recent anomaly with the times it fired and resolved, and calls for
// CAUTION; stale telemetry that came back is listed without; one that
// resolved before the lookback is not listed; a serve without the
// endpoint leaves the history unknown (CAUTION); --lookback 0 skips it.
func TestPreMaintenanceRecentAnomalies(t *testing.T) {
	now := time.Now().UTC()
	fired, resolved := now.Add(-2*time.Hour), now.Add(-time.Hour)
	old := now.Add(-30 * time.Hour)
	answer := func(alerts ...string) string {
		return `{"status":"success","data":{"alerts":[` + strings.Join(alerts, ",") + `]}}`
	}
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	runaway := recentAlert("resolved", "ThermalRunawayRisk", "critical", "1", "7", fired, resolved)
	deviation := recentAlert("resolved", "CellTemperatureDeviation", "warning", "2", "1", fired, resolved)
	stale := recentAlert("resolved", "TelemetryStale", "warning", "2", "", fired, resolved)
	tests := []struct {
		name     string
		alerts   string
		args     []string
		wantCode int
		want     []string
		lacks    []string
	}{
		{"a thermal runaway risk resolved an hour ago", answer(runaway), nil, 1, []string{
			"VERDICT: CAUTION\n",
			"CAUTION  critical alert ThermalRunawayRisk fired on ups-a/1/3/7 at " + at(fired) + " and resolved at " + at(resolved) + ": find out why before the work",
			"Recent anomalies (resolved in the last 24h)\nSEVERITY  ALERT               ENTITY       FIRED                 RESOLVED              SUMMARY\n",
			"critical  ThermalRunawayRisk  ups-a/1/3/7  " + at(fired) + "  " + at(resolved) + "  ThermalRunawayRisk on cell 7\n"}, nil},
		{"a temperature deviation resolved an hour ago, the most recent first", answer(
			recentAlert("resolved", "ThermalRunawayRisk", "critical", "1", "7", old, fired), deviation), nil, 1, []string{
			"CAUTION  warning CellTemperatureDeviation fired on ups-a/2/3/1 at " + at(fired) + " and resolved at " + at(resolved),
			"CAUTION  critical alert ThermalRunawayRisk fired on ups-a/1/3/7 at " + at(old) + " and resolved at " + at(fired),
			"warning   CellTemperatureDeviation  ups-a/2/3/1  " + at(fired) + "  " + at(resolved) + "  CellTemperatureDeviation on cell 1\ncritical  ThermalRunawayRisk"}, nil},
		{"stale telemetry that came back is listed, not held against the work", answer(stale), nil, 0, []string{
			"VERDICT: GO\n", "warning   TelemetryStale  ups-a/2/3  " + at(fired) + "  " + at(resolved)}, []string{"  CAUTION  "}},
		{"resolved before the lookback", answer(recentAlert("resolved", "ThermalRunawayRisk", "critical", "1", "7", old, old.Add(time.Hour))), nil, 0,
			[]string{"VERDICT: GO\n", "Recent anomalies (resolved in the last 24h)\n  none\n"}, []string{"ThermalRunawayRisk"}},
		{"a longer lookback", answer(recentAlert("resolved", "ThermalRunawayRisk", "critical", "1", "7", old, old.Add(time.Hour))), []string{"--lookback", "48h"}, 1,
			[]string{"VERDICT: CAUTION\n", "Recent anomalies (resolved in the last 48h)\n", "critical alert ThermalRunawayRisk fired on ups-a/1/3/7 at " + at(old)}, nil},
		{"a firing alert in the answer is /metrics' business", answer(recentAlert("firing", "ThermalRunawayRisk", "critical", "1", "7", fired, time.Time{})), nil, 0,
			[]string{"VERDICT: GO\n", "  none\n"}, nil},
		{"a serve without /api/v1/alerts", "", nil, 1, []string{
			"CAUTION  recent anomalies unknown: http://", "/api/v1/alerts?since=", " answers 404: this serve keeps no alert history (it predates /api/v1/alerts); read its log for the last 24h"}, nil},
		{"--lookback 0", answer(runaway), []string{"--lookback", "0"}, 0, []string{"VERDICT: GO\n"}, []string{"Recent anomalies", "ThermalRunawayRisk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fakeServeAlerts(t, 0.3, 25, "", tt.alerts, nil)
			checkPreMaintenance(t, append([]string{"--url", url}, tt.args...), tt.wantCode, tt.want, tt.lacks)
		})
	}
	// The serve is asked for the UPS's alerts since the lookback.
	queries := make(chan string, 1)
	url := fakeServeAlerts(t, 0.3, 25, "", answer(), queries)
	before := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	var stdout, stderr bytes.Buffer
	run([]string{"audit", "--pre-maintenance", "ups-a", "--url", url + "/metrics"}, nil, &stdout, &stderr)
	q, err := neturl.ParseQuery(<-queries)
	since, perr := time.Parse(time.RFC3339, q.Get("since"))
	if err != nil || perr != nil || q.Get("ups") != "ups-a" || since.Before(before) || since.After(time.Now().Add(-24*time.Hour)) {
		t.Errorf("the serve was asked %v (%v, %v), want ups=ups-a and since 24 h ago", q, err, perr)
	}
	if code := run([]string{"audit", "--pre-maintenance", "ups-a", "--url", url, "--lookback=-1h"}, nil, &stdout, &stderr); code != 3 ||
		!strings.Contains(stderr.String(), "--lookback -1h0m0s must not be negative (0 skips the recent anomalies)") {
		t.Errorf("a negative --lookback: exit %d, stderr %s", code, stderr.String())
	}
}
