package daemon

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/promtest"
)

// A warranty date a BMS gateway publishes over MQTT reaches the battery-age
// rules: the string's warranty end is in /metrics, for the string the
// topic names.
func TestServeTakesBatteryDatesFromMQTT(t *testing.T) {
	brk := startBroker(t, 1, "ups-m")
	brk.srv.Publish("info/ups-m/1", []byte(`{"warranty":"09/15/2030"}`), true, 1)
	dir := t.TempDir()
	cfg := testConfig{brokerAddr: brk.addr, modules: 1, mqttExtra: `        - topic: info/{ups}/{string}
          dates:
            - {path: warranty, field: warranty_until}
`}
	d := start(t, cfg.write(t, dir), filepath.Join(dir, "state"), Shard{})
	want := float64(time.Date(2030, 9, 15, 0, 0, 0, 0, time.UTC).Unix())
	var m promtest.Exposition
	waitFor(t, "ups-m/1's warranty end from MQTT in /metrics", func() bool {
		m = d.scrape()
		v, ok := m.Value("cellwarden_battery_warranty_until_timestamp_seconds", map[string]string{"ups": "ups-m", "string": "1"})
		return ok && v == want
	})
	if err := d.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}
