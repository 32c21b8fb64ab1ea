package daemon

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/promtest"
)

// cellLabels selects one cell's series.
func cellLabels(ups, module, cell string) map[string]string {
	return map[string]string{"ups": ups, "string": "1", "module": module, "cell": cell}
}

// hotAlert selects the critical CellOverTemperature of a cell in
// cellwarden_alerts.
func hotAlert(ups, module, cell string) map[string]string {
	return map[string]string{"alertname": "CellOverTemperature", "severity": "critical", "ups": ups, "string": "1", "module": module, "cell": cell}
}

// The daemon polls a Modbus BMS and subscribes to a broker: both sources'
// cells are in /metrics with their collectors up; a cell heated past 60 °C
// fires CellOverTemperature in cellwarden_alerts, on the status page and
// at a webhook whose signature checks out; a configuration that does not
// validate is refused (the old one keeps running, the metric and the page
// say so); a valid one that drops a Modbus unit stops polling it; the
// drain ends Run with nil.
func TestServePollsSubscribesAlertsAndReloads(t *testing.T) {
	bms := startBMS(t, 2, 1, 2)
	brk := startBroker(t, 2, "ups-m")
	hk := startHook(t, "s3cret")
	dir := t.TempDir()
	cfg := testConfig{bmsAddr: bms.addr, modules: 2, brokerAddr: brk.addr, hookURL: hk.srv.URL + "/hook",
		units: []modbusUnit{{"rack-1", "ups-a", 1}, {"rack-2", "ups-b", 2}}}
	path := cfg.write(t, dir)
	d := start(t, path, filepath.Join(dir, "state"), Shard{})

	var m promtest.Exposition
	waitFor(t, "every cell of both sources in /metrics with their collectors up", func() bool {
		m = d.scrape()
		up := func(name, source string) bool {
			v, ok := m.Value("cellwarden_collector_up", map[string]string{"collector": name, "source": source})
			return ok && v == 1
		}
		u := upss(m)
		return u["ups-a"] == 24 && u["ups-b"] == 24 && u["ups-m"] == 24 && up("rack-1", "modbus") && up("rack-2", "modbus") && up("broker", "mqtt")
	})
	for _, c := range []struct {
		metric string
		ups    string
		want   float64
	}{
		{"cellwarden_cell_temperature_celsius", "ups-a", 25.1},
		{"cellwarden_cell_voltage_volts", "ups-a", 3.301},
		{"cellwarden_cell_temperature_celsius", "ups-m", 24.1},
		{"cellwarden_cell_voltage_volts", "ups-m", 3.301},
	} {
		if v, ok := m.Value(c.metric, cellLabels(c.ups, "2", "1")); !ok || v != c.want {
			t.Errorf("%s of %s/1/2/1 = %v (present %v), want %v", c.metric, c.ups, v, ok, c.want)
		}
	}
	if v, ok := m.Value("cellwarden_mqtt_connected", map[string]string{"collector": "broker"}); !ok || v != 1 {
		t.Errorf("cellwarden_mqtt_connected = %v (present %v), want 1", v, ok)
	}
	// By topic template and by source: which gateway sends what, and
	// when each string last spoke.
	const tmpl = "bms/{ups}/{string}/{module}"
	waitFor(t, "messages by topic template and the last message per string", func() bool {
		m := d.scrape()
		n, ok := m.Value("cellwarden_mqtt_topic_messages_total", map[string]string{"collector": "broker", "topic": tmpl})
		last, ok2 := m.Value("cellwarden_mqtt_last_message_timestamp_seconds", map[string]string{"collector": "broker", "source": "ups-m/1"})
		return ok && n >= 2 && ok2 && time.Since(time.Unix(int64(last), 0)) < time.Hour
	})
	brk.srv.Publish("bms/ups-m/1/1", []byte("{not json"), false, 1)
	waitFor(t, "the bad payload counted by topic template and reason", func() bool {
		v, ok := d.scrape().Value("cellwarden_mqtt_decode_errors_total", map[string]string{"collector": "broker", "topic": tmpl, "reason": "invalid_json"})
		return ok && v >= 1
	})

	// The injected fault: cell 1/7 of ups-a at 65 °C.
	bms.heat(t, d, 1, "ups-a", "1", "7", 25, 65)
	waitFor(t, "CellOverTemperature in cellwarden_alerts", func() bool {
		v, ok := d.scrape().Value("cellwarden_alerts", hotAlert("ups-a", "1", "7"))
		return ok && v == 1
	})
	waitFor(t, "the firing alert at the webhook", func() bool { return len(hk.alerts("CellOverTemperature", "7")) > 0 })
	a := hk.alerts("CellOverTemperature", "7")[0]
	if a.Status != "firing" || a.Labels["ups"] != "ups-a" || a.Labels["module"] != "1" || a.Labels["severity"] != "critical" ||
		a.Annotations["value"] != "65" || a.Fingerprint == "" {
		t.Errorf("webhook got %+v", a)
	}
	if n := hk.signatureFailures(); n != 0 {
		t.Errorf("%d webhook requests had a wrong signature", n)
	}
	_, page := get(d.url + "/")
	alerts := regexp.MustCompile(`(?s)<table id="alerts">.*?</table>`).FindString(page)
	for _, want := range []string{"CellOverTemperature", "ups-a/1/1/7", "critical", a.Annotations["summary"]} {
		if !strings.Contains(alerts, want) {
			t.Errorf("table#alerts lacks %q:\n%s", want, alerts)
		}
	}
	if !strings.Contains(page, `<table id="batteries">`) && !strings.Contains(page, "No battery inventory") {
		t.Error("the status page has no battery section")
	}
	if !strings.Contains(page, "ups-a/1/1/7: 65.0 °C") {
		t.Error("the heat-map has no square for the hot cell with its temperature")
	}

	// A configuration that does not validate: refused, the old one runs on.
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(good), "interval: 200ms", "interval: soon", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.reload <- struct{}{}
	waitFor(t, "cellwarden_config_last_reload_successful 0", func() bool {
		v, ok := d.scrape().Value("cellwarden_config_last_reload_successful", nil)
		return ok && v == 0
	})
	if code, body := post(d.url + "/-/reload"); code != http.StatusInternalServerError || !strings.Contains(body, "interval") {
		t.Errorf("POST /-/reload of a bad configuration: %d %q, want 500 naming the bad field", code, body)
	}
	before := bms.requests(2)
	waitFor(t, "rack-2 still polled under the old configuration", func() bool { return bms.requests(2) > before+3 })
	if _, page := get(d.url + "/"); !strings.Contains(page, "The last configuration reload failed") {
		t.Error("the status page does not say the reload failed")
	}

	// A valid configuration without rack-2: it is no longer polled.
	cfg.units = cfg.units[:1]
	cfg.write(t, dir)
	if code, body := post(d.url + "/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload of a good configuration: %d %q", code, body)
	}
	m = d.scrape()
	if v, ok := m.Value("cellwarden_config_last_reload_successful", nil); !ok || v != 1 {
		t.Errorf("cellwarden_config_last_reload_successful = %v after a good reload", v)
	}
	if s := m.Find("cellwarden_collector_up", map[string]string{"collector": "rack-2"}); len(s) != 0 {
		t.Errorf("rack-2 still has cellwarden_collector_up after its removal: %v", s)
	}
	stopped := bms.requests(2)
	from1 := bms.requests(1)
	waitFor(t, "rack-1 to be polled 5 more times", func() bool { return bms.requests(1) > from1+5 })
	if n := bms.requests(2); n != stopped {
		t.Errorf("rack-2 got %d requests after it was removed", n-stopped)
	}
	waitFor(t, "MQTT cells after the reload", func() bool { return upss(d.scrape())["ups-m"] == 24 })

	if err := d.stop(t); err != nil {
		t.Errorf("Run returned %v after the drain, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "detector.snapshot")); err != nil {
		t.Errorf("no snapshot after shutdown: %v", err)
	}
}

func post(u string) (int, string) {
	resp, err := http.Post(u, "", nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// A shard keeps only the UPSs whose hash it owns: Modbus units of other
// UPSs are not polled, MQTT messages of other UPSs are dropped.
func TestShardKeepsOnlyItsUPSs(t *testing.T) {
	const count = 2
	var mine, theirs []string
	for i := 0; len(mine) < 2 || len(theirs) < 2; i++ {
		ups := "ups-" + string(rune('a'+i))
		if Of(ups, count) == 0 {
			mine = append(mine, ups)
		} else {
			theirs = append(theirs, ups)
		}
	}
	// Modbus: mine[0] and theirs[0]; MQTT: mine[1] and theirs[1].
	bms := startBMS(t, 1, 1, 2)
	brk := startBroker(t, 1, mine[1], theirs[1])
	dir := t.TempDir()
	path := testConfig{bmsAddr: bms.addr, modules: 1, brokerAddr: brk.addr,
		units: []modbusUnit{{"mine", mine[0], 1}, {"theirs", theirs[0], 2}}}.write(t, dir)
	d := start(t, path, filepath.Join(dir, "state"), Shard{Index: 0, Count: count})

	var got map[string]int
	waitFor(t, "the shard's cells from both sources", func() bool {
		got = upss(d.scrape())
		return got[mine[0]] == 12 && got[mine[1]] == 12
	})
	from := bms.requests(1)
	waitFor(t, "5 more polls of the owned unit", func() bool { return bms.requests(1) > from+5 })
	got = upss(d.scrape())
	if got[theirs[0]] != 0 || got[theirs[1]] != 0 || len(got) != 2 {
		t.Errorf("shard 0/%d exports cells of %v, want only %v", count, got, mine)
	}
	if n := bms.requests(2); n != 0 {
		t.Errorf("the unit of %s (another shard's) got %d requests", theirs[0], n)
	}
	if s := d.scrape().Find("cellwarden_collector_up", map[string]string{"collector": "theirs"}); len(s) != 0 {
		t.Errorf("another shard's Modbus unit has a collector_up: %v", s)
	}
}

// The snapshot written on shutdown is restored by the next Run: the cells
// are not learning again at the first scrape that has their readings, and
// the alert that was firing is still shown as firing, without a second
// page.
func TestSnapshotRestoredOnRestart(t *testing.T) {
	bms := startBMS(t, 2, 1)
	hk := startHook(t, "s3cret")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	path := testConfig{bmsAddr: bms.addr, modules: 2, hookURL: hk.srv.URL, units: []modbusUnit{{"rack-1", "ups-a", 1}}}.write(t, dir)

	d := start(t, path, state, Shard{})
	learned := func(m promtest.Exposition) bool {
		s := m.Find("cellwarden_cell_learning", map[string]string{"ups": "ups-a"})
		for _, x := range s {
			if x.Value != 0 {
				return false
			}
		}
		return len(s) == 24
	}
	waitFor(t, "every cell learned (cellwarden_cell_learning 0)", func() bool { return learned(d.scrape()) })
	bms.heat(t, d, 1, "ups-a", "2", "3", 25, 66)
	waitFor(t, "the page for cell 2/3", func() bool { return len(hk.alerts("CellOverTemperature", "3")) == 1 })
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "detector.snapshot")); err != nil {
		t.Fatal(err)
	}

	d = start(t, path, state, Shard{})
	var m promtest.Exposition
	waitFor(t, "the first scrape with the cells' readings", func() bool {
		m = d.scrape()
		return upss(m)["ups-a"] == 24
	})
	if !learned(m) {
		t.Errorf("the first scrape with readings after the restart has cells learning (or none): %v", m.Find("cellwarden_cell_learning", nil))
	}
	if v, ok := m.Value("cellwarden_alerts", hotAlert("ups-a", "2", "3")); !ok || v != 1 {
		t.Errorf("after the restart the firing alert is not in cellwarden_alerts (%v, present %v)", v, ok)
	}
	if _, page := get(d.url + "/"); !strings.Contains(page, `<table id="alerts">`) || !strings.Contains(page, "ups-a/1/2/3") {
		t.Error("after the restart the status page does not show the firing alert")
	}
	from := bms.requests(1)
	waitFor(t, "5 more polls", func() bool { return bms.requests(1) > from+5 })
	if got := hk.alerts("CellOverTemperature", "3"); len(got) != 1 {
		t.Errorf("the webhook got %d notifications for the alert, want the 1 from before the restart: %+v", len(got), got)
	}
}
