package e2e

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/promtest"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Battery lifecycle in the real binary's serve, against an in-process
// Modbus TCP gateway with three Soltaro BMSs (one per string of ups-old;
// string 1 is past end of life): the end-of-life alert, its
// acknowledgement, a maintenance window that holds TelemetryStale for the
// string worked on while another silent string still pages, and the
// pre-maintenance check.

const (
	lcUPS   = "ups-old"
	lcCells = 12 // one Soltaro module per string
)

// lcGateway serves Soltaro units from a modbus.Bank; a silenced unit
// answers "gateway target device failed to respond", as a gateway does
// when the BMS behind it is unplugged.
type lcGateway struct {
	bank *modbus.Bank

	mu     sync.Mutex
	silent map[uint8]bool
	reads  map[uint8]int
}

func (g *lcGateway) HandleCoils(r *sv.CoilsRequest) ([]bool, error) { return g.bank.HandleCoils(r) }
func (g *lcGateway) HandleDiscreteInputs(r *sv.DiscreteInputsRequest) ([]bool, error) {
	return g.bank.HandleDiscreteInputs(r)
}
func (g *lcGateway) HandleInputRegisters(r *sv.InputRegistersRequest) ([]uint16, error) {
	return g.bank.HandleInputRegisters(r)
}
func (g *lcGateway) HandleHoldingRegisters(r *sv.HoldingRegistersRequest) ([]uint16, error) {
	g.mu.Lock()
	silent := g.silent[r.UnitId]
	g.reads[r.UnitId]++
	g.mu.Unlock()
	if silent {
		return nil, sv.ErrGWTargetFailedToRespond
	}
	return g.bank.HandleHoldingRegisters(r)
}

func (g *lcGateway) silence(units ...uint8) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range units {
		g.silent[u] = true
	}
}

func (g *lcGateway) requests(unit uint8) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads[unit]
}

// startLCGateway serves healthy strings (25 °C, 30 % state of charge) on
// units 1..n and returns the gateway and its address.
func startLCGateway(t *testing.T, n int) (*lcGateway, string) {
	t.Helper()
	g := &lcGateway{bank: modbus.NewBank(false), silent: map[uint8]bool{}, reads: map[uint8]int{}}
	for u := uint8(1); u <= uint8(n); u++ {
		m, err := modbus.Profile("soltaro_single_rack_vc")
		if err != nil {
			t.Fatal(err)
		}
		m.SetModules(1)
		g.bank.Fill(u, m)
		set := func(metric telemetry.Metric, module, cell string, v float64) {
			addr, words, ok := m.Encode(metric, module, cell, v)
			if !ok {
				t.Fatalf("no register for %s", metric)
			}
			g.bank.Set(u, addr, words)
		}
		set(telemetry.StringVoltageVolts, "", "", 3.3*lcCells)
		set(telemetry.StringSOCRatio, "", "", 0.3)
		set(telemetry.StringSOHRatio, "", "", 0.95)
		for c := 1; c <= lcCells; c++ {
			set(telemetry.CellVoltageVolts, "1", fmt.Sprint(c), 3.300+0.001*float64(c%4))
			set(telemetry.CellTemperatureCelsius, "1", fmt.Sprint(c), 25+0.1*float64(c%3))
		}
	}
	addr := freeAddr(t)
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 8,
		Logger: log.New(io.Discard, "", 0)}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return g, addr
}

// lcServe is one `cellwarden serve` of the test, stopped by PID.
type lcServe struct {
	url  string
	log  *lockedBuffer
	done chan struct{}
}

func startLCServe(t *testing.T, config, state string) *lcServe {
	t.Helper()
	addr := freeAddr(t)
	s := &lcServe{url: "http://" + addr, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(build(t), "serve", "--config", config, "--state.dir", state, "--web.listen-address", addr)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", s.log.String())
		}
	})
	lcWait(t, "serve to be ready", func() bool {
		select {
		case <-s.done:
			t.Fatalf("serve exited:\n%s", s.log.String())
		default:
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

// alert reports whether cellwarden_alerts has the alert for ups-old/str.
func (s *lcServe) alert(name, str string) bool {
	m, err := promtest.Scrape(nil, s.url+"/metrics")
	if err != nil {
		return false
	}
	v, ok := m.Value("cellwarden_alerts", map[string]string{"alertname": name, "ups": lcUPS, "string": str, "module": "", "cell": ""})
	return ok && v == 1
}

// lcWait polls cond for up to two minutes: a bound, not a timing
// assertion.
func lcWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(2*time.Minute, cond) {
		t.Fatalf("gave up waiting for %s", what)
	}
}

// tableRow returns the row of the HTML table with id whose cells start
// with cells (the first match), "" when there is none.
func tableRow(page, id string, cells ...string) string {
	table := regexp.MustCompile(`(?s)<table id="` + id + `">.*?</table>`).FindString(page)
	var b strings.Builder
	for _, c := range cells {
		b.WriteString("<td>" + regexp.QuoteMeta(c) + "</td>")
	}
	return regexp.MustCompile(`<tr>` + b.String() + `.*?</tr>`).FindString(table)
}

func TestServeBatteryLifecycleAcknowledgeMaintenanceAndPreCheck(t *testing.T) {
	gw, addr := startLCGateway(t, 3)
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(`batteries:
  - {ups: ups-old, string: "1", vendor: LG Energy Solution, chemistry: NMC, installed: 2012-09-15, design_life_years: 10}
  - {ups: ups-old, string: "2", vendor: CATL, chemistry: LFP, installed: 2024-05-01, design_life_years: 15}
  - {ups: ups-old, string: "3", vendor: CATL, chemistry: LFP, installed: 2024-05-01, design_life_years: 15}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Polls 1 s apart: readings less than 500 ms apart count as one poll
	// to the stale check, which then never learns an interval.
	var cfg strings.Builder
	cfg.WriteString("inventory: inventory.yaml\ndetector:\n  telemetry_stale: {min_age: 1s}\ncollectors:\n  modbus:\n")
	for u := 1; u <= 3; u++ {
		fmt.Fprintf(&cfg, "    - {name: bms-%d, address: %q, unit: %d, profile: soltaro_single_rack_vc, modules: 1, ups: %s, string: \"%d\", interval: 1s, timeout: 500ms}\n",
			u, addr, u, lcUPS, u)
	}
	config := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	s := startLCServe(t, config, state)

	// The old string pages BatteryEndOfLife; the young ones do not.
	lcWait(t, "BatteryEndOfLife for ups-old/1 in cellwarden_alerts", func() bool { return s.alert("BatteryEndOfLife", "1") })
	if s.alert("BatteryEndOfLife", "2") || s.alert("BatteryEndOfLife", "3") {
		t.Error("a string within its design life has BatteryEndOfLife")
	}
	// The status page reads the detector's verdict from its own scrape
	// of the metrics, which may come a moment after the alert's.
	var row string
	eventually(time.Minute, func() bool {
		row = tableRow(get(s.url+"/"), "batteries", lcUPS, "1")
		return strings.Contains(row, "past end of life")
	})
	if !strings.Contains(row, "past end of life") || strings.Contains(row, "acknowledged") {
		t.Errorf("the status page's battery row of ups-old/1 = %q, want past end of life, unacknowledged", row)
	}

	// Acknowledged with an owner and a plan: the alert resolves and the
	// status page says who owns it.
	planned := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
	expires := time.Now().AddDate(0, 2, 0).Format(time.DateOnly)
	r := cellwarden(t, nil, "acknowledge", "--state.dir", state, "--ups", lcUPS, "--string", "1", "--state", "end_of_life",
		"--owner", "facilities-dc1", "--planned", planned, "--expires", expires, "--note", "CHG-1042")
	if r.code != 0 {
		t.Fatalf("acknowledge: exit %d: %s", r.code, r.stderr)
	}
	lcWait(t, "BatteryEndOfLife of ups-old/1 to resolve", func() bool { return !s.alert("BatteryEndOfLife", "1") })
	lcWait(t, "the status page to show the acknowledgement", func() bool {
		row := tableRow(get(s.url+"/"), "batteries", lcUPS, "1")
		return strings.Contains(row, "past end of life (acknowledged)") &&
			strings.Contains(row, "facilities-dc1, replacement planned "+planned+", until "+expires)
	})

	// The pre-maintenance check of the UPS, once its cells report: the old
	// string makes it CAUTION (exit 1), nothing makes it NO-GO.
	lcWait(t, "every cell of ups-old in /metrics", func() bool {
		m, err := promtest.Scrape(nil, s.url+"/metrics")
		return err == nil && m.Count("cellwarden_cell_temperature_celsius", "ups")[lcUPS] == 3*lcCells
	})
	r = cellwarden(t, nil, "audit", "--pre-maintenance", lcUPS, "--url", s.url, "--inventory", inv)
	if r.code != 1 || !strings.Contains(r.stdout, "VERDICT: CAUTION\n") ||
		!strings.Contains(r.stdout, "ups-old/1 is past end of life (2022-09-15): handle and move it with extra care") ||
		strings.Contains(r.stdout, "NO-GO  ") {
		t.Errorf("audit --pre-maintenance: exit %d (want 1, CAUTION for the old string)\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Maintenance on string 1; its BMS and that of string 2 go silent.
	r = cellwarden(t, nil, "maintenance", "start", "--state.dir", state, "--ups", lcUPS, "--string", "1", "--by", "alice", "--reason", "PTW-7")
	if r.code != 0 {
		t.Fatalf("maintenance start: exit %d: %s", r.code, r.stderr)
	}
	lcWait(t, "the status page to list the maintenance window", func() bool {
		return tableRow(get(s.url+"/"), "maintenance", lcUPS, "1", "alice", "PTW-7") != ""
	})
	gw.silence(1, 2)
	lcWait(t, "TelemetryStale for ups-old/2, not under maintenance", func() bool { return s.alert("TelemetryStale", "2") })
	from := gw.requests(3)
	lcWait(t, "5 more polls of string 3", func() bool { return gw.requests(3) > from+5 })
	if s.alert("TelemetryStale", "1") || s.alert("TelemetryStale", "") {
		t.Error("TelemetryStale pages for ups-old/1 (or the whole UPS) while string 1 is under maintenance")
	}
	if !strings.Contains(s.log.String(), "maintenance started") {
		t.Error(`the log does not say "maintenance started"`)
	}

	// Maintenance over: the silent string pages.
	r = cellwarden(t, nil, "maintenance", "stop", "--state.dir", state, "--ups", lcUPS, "--string", "1")
	if r.code != 0 {
		t.Fatalf("maintenance stop: exit %d: %s", r.code, r.stderr)
	}
	lcWait(t, "TelemetryStale for ups-old/1 after the maintenance", func() bool { return s.alert("TelemetryStale", "1") })
	if !strings.Contains(s.log.String(), "maintenance ended") {
		t.Error(`the log does not say "maintenance ended"`)
	}
	if page := get(s.url + "/"); !strings.Contains(page, "Nothing is under maintenance.") {
		t.Error("the status page still lists a maintenance window after the stop")
	}
}
