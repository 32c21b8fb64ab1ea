package daemon

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/exporter-toolkit/web"
	sv "github.com/simonvetter/modbus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"github.com/cellwarden/cellwarden/internal/promtest"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The peers of the daemon's tests: an in-process Modbus TCP server with
// Soltaro-layout units (what `sim serve` serves), an embedded MQTT broker
// with a publisher of the reference JSON layout, a webhook receiver that
// checks signatures, and the daemon itself on a loopback listener.

// waitFor polls cond for up to a minute: a bound, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cellsPerModule is the Soltaro layout's array width.
const cellsPerModule = 12

// fakeBMS serves Soltaro single-rack vC units over Modbus TCP from a
// modbus.Bank and counts the read requests each unit gets.
type fakeBMS struct {
	addr string
	bank *modbus.Bank
	maps map[uint8]*modbus.Map

	mu    sync.Mutex
	reads map[uint8]int
}

func (b *fakeBMS) HandleCoils(r *sv.CoilsRequest) ([]bool, error) { return b.bank.HandleCoils(r) }
func (b *fakeBMS) HandleDiscreteInputs(r *sv.DiscreteInputsRequest) ([]bool, error) {
	return b.bank.HandleDiscreteInputs(r)
}
func (b *fakeBMS) HandleInputRegisters(r *sv.InputRegistersRequest) ([]uint16, error) {
	return b.bank.HandleInputRegisters(r)
}
func (b *fakeBMS) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	b.mu.Lock()
	b.reads[r.UnitId]++
	b.mu.Unlock()
	return b.bank.HandleHoldingRegisters(r)
}

// requests returns how many reads a unit got.
func (b *fakeBMS) requests(unit uint8) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads[unit]
}

// startBMS serves healthy strings of modules×12 cells on units.
func startBMS(t *testing.T, modules int, units ...uint8) *fakeBMS {
	t.Helper()
	b := &fakeBMS{bank: modbus.NewBank(false), maps: map[uint8]*modbus.Map{}, reads: map[uint8]int{}}
	for _, u := range units {
		m, err := modbus.Profile("soltaro_single_rack_vc")
		if err != nil {
			t.Fatal(err)
		}
		m.SetModules(modules)
		b.bank.Fill(u, m)
		b.maps[u] = m
		b.set(t, u, telemetry.StringVoltageVolts, "", "", 3.3*float64(modules*cellsPerModule))
		b.set(t, u, telemetry.StringSOCRatio, "", "", 0.9)
		b.set(t, u, telemetry.StringSOHRatio, "", "", 0.95)
		for mod := 1; mod <= modules; mod++ {
			for c := 1; c <= cellsPerModule; c++ {
				b.set(t, u, telemetry.CellVoltageVolts, fmt.Sprint(mod), fmt.Sprint(c), 3.300+0.001*float64(c%4))
				b.set(t, u, telemetry.CellTemperatureCelsius, fmt.Sprint(mod), fmt.Sprint(c), 25+0.1*float64(c%3))
			}
		}
	}
	b.addr = mosquittotest.FreeAddr(t)
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + b.addr, Timeout: time.Minute, MaxClients: 8,
		Logger: log.New(io.Discard, "", 0)}, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return b
}

// set lays out one reading in a unit's registers.
func (b *fakeBMS) set(t *testing.T, unit uint8, metric telemetry.Metric, module, cell string, v float64) {
	t.Helper()
	addr, words, ok := b.maps[unit].Encode(metric, module, cell, v)
	if !ok {
		t.Fatalf("unit %d has no register for %s of %s/%s", unit, metric, module, cell)
	}
	b.bank.Set(unit, addr, words)
}

// heat moves the temperature of cell module/cell of unit (ups's string 1)
// from one value to another in steps of at most 8 °C, as a cell heats or
// cools, and at each step waits until in shows it on /metrics. A
// temperature that jumps further than a cell can heat or cool in a poll
// (10 °C) and then holds still is a broken sensor to the detector
// (SensorFault), not a hot cell.
func (b *fakeBMS) heat(t *testing.T, in *instance, unit uint8, ups, module, cell string, from, to float64) {
	t.Helper()
	for v := from; v != to; {
		if to > v {
			v = min(to, v+8)
		} else {
			v = max(to, v-8)
		}
		b.set(t, unit, telemetry.CellTemperatureCelsius, module, cell, v)
		waitFor(t, fmt.Sprintf("cell %s/%s of %s at %g °C on /metrics", module, cell, ups, v), func() bool {
			got, ok := in.scrape().Value("cellwarden_cell_temperature_celsius", map[string]string{"ups": ups, "module": module, "cell": cell})
			return ok && got == v
		})
	}
}

// broker is an embedded MQTT broker with a publisher playing healthy
// modules of the given UPSs (string 1, modules×12 cells each) in the
// reference JSON layout, stamped with the wall clock, every 200 ms.
type broker struct {
	addr string
	srv  *mochi.Server
}

func startBroker(t *testing.T, modules int, upss ...string) *broker {
	t.Helper()
	b := &broker{addr: mosquittotest.FreeAddr(t)}
	b.srv = mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr})); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Serve(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			now := time.Now().UTC().Format(time.RFC3339Nano)
			for _, ups := range upss {
				for mod := 1; mod <= modules; mod++ {
					var volts, temps []string
					for c := 1; c <= cellsPerModule; c++ {
						volts = append(volts, fmt.Sprintf("%.3f", 3.300+0.001*float64(c%4)))
						temps = append(temps, fmt.Sprintf("%.1f", 24+0.1*float64(c%3)))
					}
					payload := fmt.Sprintf(`{"time":%q,"cell_voltage_volts":[%s],"cell_temperature_celsius":[%s]}`,
						now, strings.Join(volts, ","), strings.Join(temps, ","))
					b.srv.Publish(fmt.Sprintf("bms/%s/1/%d", ups, mod), []byte(payload), false, 1)
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		b.srv.Close()
	})
	return b
}

// hook is a webhook receiver that verifies every request's signature and
// answers with status (200 unless set).
type hook struct {
	srv    *httptest.Server
	secret []byte

	mu         sync.Mutex
	status     int
	deliveries []delivery
	badSig     int
}

type delivery struct {
	key string
	msg notify.WebhookMessage
}

func startHook(t *testing.T, secret string) *hook {
	h := &hook{secret: []byte(secret), status: http.StatusOK}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, h.secret)
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		h.mu.Lock()
		defer h.mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get("X-Cellwarden-Signature")), []byte(want)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.status != http.StatusOK {
			http.Error(w, "down", h.status)
			return
		}
		var m notify.WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.deliveries = append(h.deliveries, delivery{key: r.Header.Get("Idempotency-Key"), msg: m})
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// alerts returns the delivered critical alerts named alertname on cell (any
// status).
func (h *hook) alerts(alertname, cell string) []notify.WebhookAlert {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []notify.WebhookAlert
	for _, d := range h.deliveries {
		for _, a := range d.msg.Alerts {
			if a.Labels["alertname"] == alertname && a.Labels["severity"] == "critical" && a.Labels["cell"] == cell {
				out = append(out, a)
			}
		}
	}
	return out
}

func (h *hook) signatureFailures() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.badSig
}

// modbusUnit is one Modbus collector of a test configuration.
type modbusUnit struct {
	name, ups string
	unit      uint8
}

// testConfig builds a configuration file: Modbus units polled every
// 200 ms, an MQTT collector when brokerAddr is set, a signed webhook when
// hookURL is set; CellOverTemperature fires on the first hot reading and
// cells learn in 3 polls.
type testConfig struct {
	bmsAddr    string
	modules    int
	units      []modbusUnit
	brokerAddr string
	hookURL    string
	// mqttExtra is appended to the MQTT collector's subscriptions.
	mqttExtra string
}

func (c testConfig) write(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("detector:\n  cell_over_temperature: {for: 0s, clear_for: 0s}\n  peers: {warmup_polls: 3}\ncollectors:\n")
	if len(c.units) > 0 {
		b.WriteString("  modbus:\n")
		for _, u := range c.units {
			fmt.Fprintf(&b, "    - {name: %s, address: %q, unit: %d, profile: soltaro_single_rack_vc, modules: %d, ups: %s, string: \"1\", interval: 200ms, timeout: 150ms}\n",
				u.name, c.bmsAddr, u.unit, c.modules, u.ups)
		}
	}
	if c.brokerAddr != "" {
		fmt.Fprintf(&b, `  mqtt:
    - name: broker
      broker: tcp://%s
      client_id: cellwarden-daemon-test
      connect_timeout: 1s
      max_reconnect_interval: 500ms
      subscriptions:
        - topic: bms/{ups}/{string}/{module}
          time_field: time
          fields:
            - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
`, c.brokerAddr)
		b.WriteString(c.mqttExtra)
	}
	if c.hookURL != "" {
		if err := os.WriteFile(filepath.Join(dir, "hook.key"), []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, `alerting:
  outbox: {path: outbox.db}
  receivers:
    - name: oncall
      retry: {min_backoff: 50ms, max_backoff: 200ms}
      webhook: {url: %q, hmac_secret_file: hook.key, group_interval: 1s}
`, c.hookURL)
	}
	path := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// instance is one daemon.Run on a loopback listener.
type instance struct {
	url    string
	reload chan struct{}
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// start runs the daemon until the test ends (or stop) and waits until it
// is ready.
func start(t *testing.T, config, stateDir string, shard Shard) *instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	off, none := false, ""
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{url: "http://" + l.Addr().String(), reload: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	o := Options{ConfigPath: config, StateDir: stateDir, Shard: shard, SnapshotInterval: time.Hour, ShutdownTimeout: 10 * time.Second,
		Web:      &web.FlagConfig{WebListenAddresses: &[]string{l.Addr().String()}, WebSystemdSocket: &off, WebConfigFile: &none},
		Listener: l, Reload: in.reload, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	go func() { in.done <- Run(ctx, o) }()
	t.Cleanup(func() { in.stop(t) })
	waitFor(t, "/-/ready to answer 200", func() bool {
		select {
		case err := <-in.done:
			t.Fatalf("daemon.Run returned early: %v", err)
		default:
		}
		code, _ := get(in.url + "/-/ready")
		return code == http.StatusOK
	})
	return in
}

// stop ends the daemon as SIGTERM does and returns what Run returned.
func (in *instance) stop(t *testing.T) error {
	if !in.ended {
		in.cancel()
		in.err = <-in.done
		in.ended = true
	}
	return in.err
}

func get(u string) (int, string) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape reads /metrics; nil when it cannot.
func (in *instance) scrape() promtest.Exposition {
	m, err := promtest.Scrape(nil, in.url+"/metrics")
	if err != nil {
		return nil
	}
	return m
}

// upss returns how many cells with a temperature each UPS has.
func upss(m promtest.Exposition) map[string]int {
	return m.Count("cellwarden_cell_temperature_celsius", "ups")
}
