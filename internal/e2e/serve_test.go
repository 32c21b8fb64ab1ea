//go:build integration

package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"github.com/cellwarden/cellwarden/internal/promtest"
)

// The real binary's serve: polling `sim serve` over Modbus, subscribed to
// `sim publish` through Debian's mosquitto, paging a webhook; its
// reload, shutdown, restart after SIGKILL and sharding; its status page
// in headless Chromium.

// The fault: runaway_nmc_slow at 600x runs away within a minute of wall
// time; ups-r1 has 2 strings of 6 modules of 12 cells, one Soltaro unit
// per string.
const (
	faultScenario = "runaway_nmc_slow"
	faultUPS      = "ups-r1"
	faultCells    = 144
)

// waitLong is waitFor with a bound of three minutes, for the simulated
// fault (a bound, not a timing assertion).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// simProc runs `cellwarden sim serve` or `sim publish` until the test ends.
func simProc(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(build(t), append([]string{"sim"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("sim %s output:\n%s", args[0], out.String())
		}
	})
	return out
}

// simModbus serves the fault scenario over Modbus TCP (Soltaro layout) and
// returns its address once its unit map is printed.
func simModbus(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	out := simProc(t, "serve", "--modbus", addr, "--scenario", faultScenario, "--speed", "600")
	waitFor(t, "sim serve's unit map", func() bool { return strings.Contains(out.String(), "unit 2: ups "+faultUPS+" string 2") })
	return addr
}

// webhook is a receiver that checks each request's HMAC signature and
// answers 503 while down.
type webhook struct {
	srv    *httptest.Server
	secret []byte

	mu       sync.Mutex
	down     bool
	requests []hookRequest
}

// hookRequest is one request the webhook got.
type hookRequest struct {
	status int // what it answered
	key    string
	msg    notify.WebhookMessage
}

func startWebhook(t *testing.T, secret string) *webhook {
	w := &webhook{secret: []byte(secret)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, w.secret)
		mac.Write(body)
		req := hookRequest{status: http.StatusOK, key: r.Header.Get("Idempotency-Key")}
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case !hmac.Equal([]byte(r.Header.Get("X-Cellwarden-Signature")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))):
			req.status = http.StatusUnauthorized
		case json.Unmarshal(body, &req.msg) != nil:
			req.status = http.StatusBadRequest
		case w.down:
			req.status = http.StatusServiceUnavailable
		}
		w.requests = append(w.requests, req)
		rw.WriteHeader(req.status)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) setDown(down bool) {
	w.mu.Lock()
	w.down = down
	w.mu.Unlock()
}

// all returns the requests answered with status (0: every request).
func (w *webhook) all(status int) []hookRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []hookRequest
	for _, r := range w.requests {
		if status == 0 || r.status == status {
			out = append(out, r)
		}
	}
	return out
}

// hot reports whether req carries a critical CellOverTemperature of the
// fault UPS.
func hot(a notify.WebhookAlert) bool {
	return a.Labels["alertname"] == "CellOverTemperature" && a.Labels["severity"] == "critical" && a.Labels["ups"] == faultUPS
}

// delivered returns the critical CellOverTemperature alerts of the fault
// UPS in delivered (200) requests, with each request's idempotency key.
func (w *webhook) delivered() (alerts []notify.WebhookAlert, keys []string) {
	for _, r := range w.all(http.StatusOK) {
		for _, a := range r.msg.Alerts {
			if hot(a) {
				alerts = append(alerts, a)
				keys = append(keys, r.key)
			}
		}
	}
	return alerts, keys
}

// serveConfig writes a configuration: the fault scenario's two Soltaro
// units polled every 200 ms, optionally an MQTT collector on mosquitto
// (receive time: sim publish stamps its payloads with the scenario's
// clock), and a signed webhook; cells learn in 5 polls.
// CellOverTemperature fires on the first reading past its limit instead
// of holding 20 s: at 600x the runaway cell jumps from about 64 °C to
// about 190 °C between two polls and the sensor checks then exclude its
// readings, so with a 1 s hold only the warning fired (measured).
func serveConfig(t *testing.T, dir, modbusAddr, mqttPort, hookURL string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("detector:\n  peers: {warmup_polls: 5}\n  cell_over_temperature: {for: 0s}\ncollectors:\n")
	if modbusAddr != "" {
		b.WriteString("  modbus:\n")
		for i := 1; i <= 2; i++ {
			fmt.Fprintf(&b, "    - {name: sim-bms-%d, address: %q, unit: %d, profile: soltaro_single_rack_vc, modules: 6, ups: %s, string: \"%d\", interval: 200ms, timeout: 150ms}\n",
				i, modbusAddr, i, faultUPS, i)
		}
	}
	if mqttPort != "" {
		fmt.Fprintf(&b, `  mqtt:
    - name: mosquitto
      broker: tcp://127.0.0.1:%s
      client_id: cellwarden-e2e-%d
      max_reconnect_interval: 1s
      subscriptions:
        - topic: bms/{ups}/{string}/{module}
          fields:
            - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
            - {path: module_temperature_celsius, metric: module_temperature_celsius}
`, mqttPort, time.Now().UnixNano())
	}
	if hookURL != "" {
		os.WriteFile(filepath.Join(dir, "hook.key"), []byte("e2e-secret\n"), 0o600)
		fmt.Fprintf(&b, `alerting:
  outbox: {path: outbox.db}
  receivers:
    - name: oncall
      match: {severity: [critical]}
      retry: {min_backoff: 100ms, max_backoff: 500ms}
      webhook: {url: %q, hmac_secret_file: hook.key, group_interval: 1s}
`, hookURL)
	}
	path := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveProc is one `cellwarden serve`.
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	log  *syncBuffer
	done chan struct{}
}

// startServe runs serve on a free loopback port until the test ends
// (killed by PID if still running) and waits until it is ready.
func startServe(t *testing.T, config, stateDir string, args ...string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	s := &serveProc{url: "http://" + addr, log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(build(t), append([]string{"serve", "--config", config, "--state.dir", stateDir,
		"--web.listen-address", addr}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("serve %s log:\n%s", strings.Join(args, " "), s.log.String())
		}
	})
	waitFor(t, "serve to be ready", func() bool {
		if s.exited() {
			t.Fatalf("serve exited: %v\n%s", s.cmd.ProcessState, s.log.String())
		}
		resp, err := http.Get(s.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (s *serveProc) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (s *serveProc) kill() {
	if !s.exited() {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// scrape reads /metrics (nil when it cannot).
func (s *serveProc) scrape() promtest.Exposition {
	m, err := promtest.Scrape(nil, s.url+"/metrics")
	if err != nil {
		return nil
	}
	return m
}

// firing reports whether cellwarden_alerts has a critical
// CellOverTemperature of the fault UPS.
func firing(m promtest.Exposition) bool {
	return len(m.Find("cellwarden_alerts", map[string]string{"alertname": "CellOverTemperature", "severity": "critical", "ups": faultUPS})) > 0
}

// serve polls the simulator over Modbus and takes the other simulated
// fleet from mosquitto; the injected runaway pages the webhook with a
// valid signature and shows on the status page (checked in headless
// Chromium); SIGHUP with a bad configuration keeps the process and its
// polling up and says so in the metric; SIGTERM drains, writes the
// snapshot and exits 0.
func TestServeModbusAndMQTTPagesReloadsAndStops(t *testing.T) {
	broker := mosquittotest.Start(t, "")
	simProc(t, "publish", "--mqtt", "tcp://127.0.0.1:"+broker.Port, "--scenario", "module_hotspot", "--speed", "600")
	modbusAddr := simModbus(t)
	hook := startWebhook(t, "e2e-secret")
	dir := t.TempDir()
	config := serveConfig(t, dir, modbusAddr, broker.Port, hook.srv.URL+"/hook")
	state := filepath.Join(dir, "state")
	s := startServe(t, config, state)

	waitFor(t, "both fleets' cells in /metrics with their collectors up", func() bool {
		m := s.scrape()
		up := func(name string) bool {
			v, ok := m.Value("cellwarden_collector_up", map[string]string{"collector": name})
			return ok && v == 1
		}
		n := m.Count("cellwarden_cell_temperature_celsius", "ups")
		return n[faultUPS] == faultCells && n["ups-h"] == 192 && up("sim-bms-1") && up("sim-bms-2") && up("mosquitto")
	})
	// serve sets the garbage collector's target (--runtime.gogc) unless
	// GOGC in its environment says otherwise.
	wantGOGC := 25.0
	if v, err := strconv.ParseFloat(os.Getenv("GOGC"), 64); err == nil {
		wantGOGC = v
	}
	if v, ok := s.scrape().Value("go_gc_gogc_percent", nil); !ok || v != wantGOGC {
		t.Errorf("go_gc_gogc_percent = %v (present: %v), want %v", v, ok, wantGOGC)
	}
	waitLong(t, "the runaway's CellOverTemperature at the webhook", func() bool {
		a, _ := hook.delivered()
		return len(a) > 0
	})
	if n := len(hook.all(http.StatusUnauthorized)); n != 0 {
		t.Errorf("%d webhook requests had a wrong signature", n)
	}
	a, _ := hook.delivered()
	if a[0].Status != "firing" || a[0].Fingerprint == "" || a[0].Annotations["summary"] == "" {
		t.Errorf("webhook got %+v", a[0])
	}
	if !firing(s.scrape()) {
		t.Error("cellwarden_alerts lacks the alert the webhook got")
	}
	t.Run("StatusPageInChromium", func(t *testing.T) { statusInChromium(t, s.url+"/", a[0]) })

	// SIGHUP with a configuration that does not validate.
	good, _ := os.ReadFile(config)
	os.WriteFile(config, bytes.Replace(good, []byte("interval: 200ms"), []byte("interval: -1s"), 1), 0o600)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "cellwarden_config_last_reload_successful 0", func() bool {
		v, ok := s.scrape().Value("cellwarden_config_last_reload_successful", nil)
		return ok && v == 0
	})
	polls := func() float64 {
		v, _ := s.scrape().Value("cellwarden_collector_polls_total", map[string]string{"collector": "sim-bms-1"})
		return v
	}
	from := polls()
	waitFor(t, "polling to go on under the old configuration", func() bool { return polls() > from+3 })
	if s.exited() {
		t.Fatal("serve exited after a bad reload")
	}
	if !strings.Contains(s.log.String(), "configuration reload failed") {
		t.Error("the log does not say the reload failed")
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "serve to exit after SIGTERM", s.exited)
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("serve exited with %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(filepath.Join(state, "detector.snapshot")); err != nil {
		t.Errorf("no detector snapshot after SIGTERM: %v", err)
	}
}

// statusInChromium loads the status page in headless Chromium: the
// screenshot is a real rendering (not blank), the DOM has the heat-map
// and the firing alert. The screenshot becomes docs/status-page.png.
func statusInChromium(t *testing.T, url string, a notify.WebhookAlert) {
	chromium := tool(t, "chromium", "chromium", "chromium-browser")
	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + filepath.Join(dir, "profile")}
	run := func(args ...string) []byte {
		cmd := exec.Command(chromium, append(common, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	run("--screenshot="+shot, "--window-size=1280,1600", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1280x1600", b.Dx(), b.Dy())
	}
	if n := colours(img); n < 8 {
		t.Errorf("the screenshot has %d colours: nothing rendered", n)
	}

	dom := string(run("--dump-dom", url))
	heat := regexp.MustCompile(`<div class="strings">(?s:.*?)<h2>`).FindString(dom)
	if n := strings.Count(heat, `class="c`); n != faultCells+192 {
		t.Errorf("the heat-map has %d cell squares, want %d", n, faultCells+192)
	}
	hotCell := fmt.Sprintf("%s/%s/%s/%s: ", faultUPS, a.Labels["string"], a.Labels["module"], a.Labels["cell"])
	if !strings.Contains(heat, hotCell) {
		t.Errorf("the heat-map has no square titled %q", hotCell)
	}
	table := regexp.MustCompile(`<table id="alerts">(?s:.*?)</table>`).FindString(dom)
	for _, want := range []string{"CellOverTemperature", "critical", fmt.Sprintf("%s/%s/%s/%s", faultUPS, a.Labels["string"], a.Labels["module"], a.Labels["cell"])} {
		if !strings.Contains(table, want) {
			t.Errorf("table#alerts in Chromium's DOM lacks %q:\n%s", want, table)
		}
	}
	if !t.Failed() {
		png, _ := os.ReadFile(shot)
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// colours counts the distinct colours of an image (up to 1000).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < 1000; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}

// The webhook is down (503) while the runaway pages; serve is killed with
// SIGKILL and restarted with the receiver up. Every (alert, state)
// arrives exactly once: the one firing notification is delivered once,
// under the Idempotency-Key its refused attempts carried (the outbox
// entry survived the kill). The restarted detector is not blind: at the
// first scrape with the cells' readings none of the cells learned before
// the kill is learning again, and the alert is still shown as firing.
func TestServeRestartAfterSIGKILLPagesOnceAndIsNotBlind(t *testing.T) {
	modbusAddr := simModbus(t)
	hook := startWebhook(t, "e2e-secret")
	hook.setDown(true)
	dir := t.TempDir()
	config := serveConfig(t, dir, modbusAddr, "", hook.srv.URL)
	state := filepath.Join(dir, "state")
	s := startServe(t, config, state, "--snapshot.interval", "1s")

	var learned map[string]bool
	waitLong(t, "the alert firing, refused by the webhook, and every cell learned", func() bool {
		m := s.scrape()
		learned = map[string]bool{}
		for _, c := range m.Find("cellwarden_cell_learning", map[string]string{"ups": faultUPS}) {
			if c.Value == 0 {
				learned[c.Labels["string"]+"/"+c.Labels["module"]+"/"+c.Labels["cell"]] = true
			}
		}
		refused := 0
		for _, r := range hook.all(http.StatusServiceUnavailable) {
			for _, a := range r.msg.Alerts {
				if hot(a) {
					refused++
				}
			}
		}
		return firing(m) && refused > 0 && len(learned) == faultCells
	})
	// The periodic snapshot after that moment has it all.
	seen := time.Now()
	waitFor(t, "a snapshot after the alert fired", func() bool {
		st, err := os.Stat(filepath.Join(state, "detector.snapshot"))
		return err == nil && st.ModTime().After(seen)
	})
	s.kill()
	refusedKeys := map[string]bool{}
	for _, r := range hook.all(http.StatusServiceUnavailable) {
		refusedKeys[r.key] = true
	}

	hook.setDown(false)
	s = startServe(t, config, state)
	var m promtest.Exposition
	waitFor(t, "the first scrape with the cells' readings after the restart", func() bool {
		m = s.scrape()
		return m.Count("cellwarden_cell_temperature_celsius", "ups")[faultUPS] == faultCells
	})
	relearning := 0
	for _, c := range m.Find("cellwarden_cell_learning", map[string]string{"ups": faultUPS}) {
		if learned[c.Labels["string"]+"/"+c.Labels["module"]+"/"+c.Labels["cell"]] && c.Value != 0 {
			relearning++
		}
	}
	if n := len(m.Find("cellwarden_cell_learning", map[string]string{"ups": faultUPS})); relearning > 0 || n != faultCells {
		t.Errorf("first scrape after the restart: %d of %d cells learning again (%d exported)", relearning, len(learned), n)
	}
	if !firing(m) {
		t.Error("the alert firing before the kill is not in cellwarden_alerts after the restart")
	}

	waitFor(t, "the firing notification delivered after the restart", func() bool {
		a, _ := hook.delivered()
		return len(a) > 0
	})
	// Let the restarted daemon run on: another notification of the alert
	// would come within the group interval (1s) of a change.
	polls := func() float64 {
		v, _ := s.scrape().Value("cellwarden_collector_polls_total", map[string]string{"collector": "sim-bms-1"})
		return v
	}
	from := polls()
	waitFor(t, "10 more polls", func() bool { return polls() > from+10 })
	alerts, keys := hook.delivered()
	states := map[string]int{}
	for i, a := range alerts {
		states[a.Fingerprint+" "+a.Status+" "+a.StartsAt.String()]++
		if !refusedKeys[keys[i]] {
			t.Errorf("delivered under Idempotency-Key %s, which no refused attempt carried (refused: %v)", keys[i], refusedKeys)
		}
	}
	for st, n := range states {
		if n != 1 {
			t.Errorf("(fingerprint, status, startsAt) %s delivered %d times", st, n)
		}
	}
	if len(states) != 1 {
		t.Errorf("delivered %d states of the alert, want the one firing: %v", len(states), states)
	}
}

// Three instances, --shard 0/3, 1/3 and 2/3, subscribed to one mosquitto
// carrying a two-UPS fleet: every cell is in exactly one instance's
// /metrics. The fleet comes from `sim serve --mqtt --modbus`, which
// publishes it and serves it over Modbus TCP at once.
func TestServeThreeShardsCoverEveryCellOnce(t *testing.T) {
	broker := mosquittotest.Start(t, "")
	modbusAddr := freeAddr(t)
	out := simProc(t, "serve", "--mqtt", "tcp://127.0.0.1:"+broker.Port, "--modbus", modbusAddr, "--scenario", "healthy_fleet", "--speed", "60")
	waitFor(t, "sim serve to publish and serve", func() bool {
		return strings.Contains(out.String(), "publishing scenario healthy_fleet") && strings.Contains(out.String(), "over Modbus TCP on "+modbusAddr)
	})
	link := modbus.NewTCPLink(modbusAddr, 5*time.Second)
	defer link.Close()
	m, err := modbus.Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	if regs, rerr := link.Read(context.Background(), 1, false, m.Plan(0)[0]); rerr != nil || len(regs) == 0 {
		t.Fatalf("the Modbus side of sim serve --mqtt --modbus: %v", rerr)
	}
	const cells = 512 // healthy_fleet: dc1-ups-a and dc1-ups-b, 2 strings of 8 modules of 16 cells each
	var shards []*serveProc
	for i := range 3 {
		dir := t.TempDir()
		config := serveConfig(t, dir, "", broker.Port, "")
		shards = append(shards, startServe(t, config, filepath.Join(dir, "state"), "--shard", fmt.Sprintf("%d/3", i)))
	}
	var owner map[string][]int
	waitFor(t, "every cell in some instance", func() bool {
		owner = map[string][]int{}
		for i, s := range shards {
			for _, c := range s.scrape()["cellwarden_cell_temperature_celsius"] {
				l := c.Labels
				k := l["ups"] + "/" + l["string"] + "/" + l["module"] + "/" + l["cell"]
				owner[k] = append(owner[k], i)
			}
		}
		return len(owner) == cells
	})
	for k, is := range owner {
		if len(is) != 1 {
			t.Errorf("cell %s is in instances %v", k, is)
		}
	}
	upsShard := map[string]int{}
	for k, is := range owner {
		ups, _, _ := strings.Cut(k, "/")
		if prev, ok := upsShard[ups]; ok && prev != is[0] {
			t.Errorf("UPS %s is split between instances %d and %d", ups, prev, is[0])
		}
		upsShard[ups] = is[0]
	}
	t.Logf("UPS by instance: %v", upsShard)
}
