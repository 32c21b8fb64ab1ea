package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statuses returns the states in which the webhook got alertname for
// ups/str, in order of delivery.
func (h *hook) statuses(alertname, ups, str string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range h.deliveries {
		for _, a := range d.msg.Alerts {
			if a.Labels["alertname"] == alertname && a.Labels["ups"] == ups && a.Labels["string"] == str {
				out = append(out, a.Status)
			}
		}
	}
	return out
}

// "Until the battery is replaced": a string past its design life pages
// BatteryEndOfLife; the batteries are replaced, the inventory is given
// the new installation date and the configuration is reloaded (SIGHUP, or
// POST /-/reload): the alert resolves, at the webhook (once firing, once
// resolved), in cellwarden_alerts and in /api/v1/alerts, and the string's
// age state is ok, with its new installation date exported. The other
// string, not replaced, keeps firing.
func TestReplacedBatteryResolvesBatteryEndOfLife(t *testing.T) {
	for _, how := range []string{"SIGHUP", "POST /-/reload"} {
		t.Run(how, func(t *testing.T) {
			bms := startBMS(t, 1, 1, 2)
			hk := startHook(t, "s3cret")
			dir := t.TempDir()
			config := testConfig{bmsAddr: bms.addr, modules: 1, hookURL: hk.srv.URL + "/hook",
				units: []modbusUnit{{"rack-1", "ups-a", 1}, {"rack-2", "ups-b", 2}}}.write(t, dir)
			cfg, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(cfg, "inventory: inventory.yaml")
			cfg.Close()
			inventory := func(installedA string) {
				t.Helper()
				body := fmt.Sprintf(`batteries:
  - {ups: ups-a, string: "1", vendor: LG Energy Solution, chemistry: NMC, installed: %s, design_life_years: 10}
  - {ups: ups-b, string: "1", vendor: LG Energy Solution, chemistry: NMC, installed: 2012-09-15, design_life_years: 10}
`, installedA)
				if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			inventory("2012-09-15")
			d := start(t, config, filepath.Join(dir, "state"), Shard{})
			eol := func(ups string) map[string]string {
				return map[string]string{"alertname": "BatteryEndOfLife", "severity": "warning", "ups": ups, "string": "1"}
			}
			firing := func(ups string) bool { v, _ := d.scrape().Value("cellwarden_alerts", eol(ups)); return v == 1 }
			waitFor(t, "BatteryEndOfLife for both strings", func() bool { return firing("ups-a") && firing("ups-b") })
			waitFor(t, "the page for ups-a/1", func() bool { return len(hk.statuses("BatteryEndOfLife", "ups-a", "1")) == 1 })

			replaced := time.Now().UTC().AddDate(0, -1, 0)
			inventory(replaced.Format(time.DateOnly))
			switch how {
			case "SIGHUP":
				d.reload <- struct{}{}
			case "POST /-/reload":
				if code, body := post(d.url + "/-/reload"); code != http.StatusOK {
					t.Fatalf("POST /-/reload: %d %s", code, body)
				}
			}
			waitFor(t, "BatteryEndOfLife of ups-a/1 to resolve", func() bool { return !firing("ups-a") })
			waitFor(t, "the resolution at the webhook", func() bool {
				return strings.Join(hk.statuses("BatteryEndOfLife", "ups-a", "1"), " ") == "firing resolved"
			})
			// The exported findings follow within their 5 s refresh.
			day := time.Date(replaced.Year(), replaced.Month(), replaced.Day(), 0, 0, 0, 0, time.UTC)
			waitFor(t, "the replaced string exported as ok, installed on "+day.Format(time.DateOnly), func() bool {
				m := d.scrape()
				ok, _ := m.Value("cellwarden_battery_lifecycle_state", map[string]string{"ups": "ups-a", "string": "1", "state": "ok"})
				installed, _ := m.Value("cellwarden_battery_installed_timestamp_seconds", map[string]string{"ups": "ups-a", "string": "1"})
				return ok == 1 && installed == float64(day.Unix())
			})
			if !firing("ups-b") {
				t.Error("BatteryEndOfLife of ups-b/1, not replaced, resolved too")
			}
			a := apiRequest{method: http.MethodGet, target: "/api/v1/alerts?ups=ups-a"}.send(t, d.url)
			var data alertsData
			if err := json.Unmarshal(a.Data, &data); err != nil || len(data.Alerts) != 1 || data.Alerts[0].State != "resolved" ||
				data.Alerts[0].Labels != labelsOf(eol("ups-a")) {
				t.Errorf("/api/v1/alerts?ups=ups-a: %s, want BatteryEndOfLife resolved", a.raw)
			}
			// No second page: it stays resolved.
			from := bms.requests(1)
			waitFor(t, "5 more polls", func() bool { return bms.requests(1) > from+5 })
			if got := hk.statuses("BatteryEndOfLife", "ups-a", "1"); len(got) != 2 {
				t.Errorf("the webhook got BatteryEndOfLife of ups-a/1 as %v, want firing then resolved", got)
			}
		})
	}
}
