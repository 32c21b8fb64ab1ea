package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	gb "github.com/goburrow/modbus"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/cputime"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The simulator's fleet for the Modbus runs: `sim serve` plays
// healthy_fleet (2 UPSs x 2 strings x 8 modules x 16 cells) in the
// soltaro_single_rack_vc layout, one unit per string.
const (
	modbusScenario = "healthy_fleet"
	modbusProfile  = "soltaro_single_rack_vc"
	modbusUnits    = 4
	modbusModules  = 8
)

// modbusRow is one client's figures against the simulator.
type modbusRow struct {
	Client       string
	Conns        int
	Polls        int     // target polls (every planned block of one unit once)
	Registers    int     // registers read
	Errors       int     // failed requests
	Seconds      float64 // wall
	CPUSeconds   float64 // this process's CPU (the client side only)
	SimCPU       float64 // the simulator's CPU
	RegsPerPoll  int
	BlocksPerPol int
}

func (r modbusRow) regsPerSecond() float64 { return float64(r.Registers) / r.Seconds }

// cpuPer100 is the client's CPU per 100 registers read, the size of the
// modbus_exporter target poll quoted in the issue.
func (r modbusRow) cpuPer100() time.Duration {
	return time.Duration(r.CPUSeconds / float64(r.Registers) * 100 * float64(time.Second))
}

func selfCPU() float64 { return cputime.Process().Seconds() }

// modbusRuns starts `cellwarden sim serve` and, for 1 and 4 connections,
// polls it as hard as it answers for a few seconds, first with
// cellwarden's collector (link, device, decoding and Samples), then with
// bare goburrow clients reading the same blocks in a loop.
func (h *harness) modbusRuns() ([]modbusRow, error) {
	addr := freeAddr()
	sim, err := startProc(h.dir, "sim-serve", nil, h.cellwarden, "sim", "serve", "--modbus", addr,
		"--scenario", modbusScenario, "--profile", modbusProfile, "--log.level", "warn")
	if err != nil {
		return nil, err
	}
	defer sim.stop()
	if err := waitFor("sim serve", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, sim.tail())
	}
	m, err := modbus.Profile(modbusProfile)
	if err != nil {
		return nil, err
	}
	m.SetModules(modbusModules)
	blocks := m.Plan(0)
	perPoll := 0
	for _, b := range blocks {
		perPoll += int(b.Count)
	}
	d := 6 * time.Second
	if h.quick {
		d = 2 * time.Second
	}
	var rows []modbusRow
	for _, conns := range []int{1, 4} {
		for _, client := range []string{"cellwarden", "goburrow"} {
			row := modbusRow{Client: client, Conns: conns, RegsPerPoll: perPoll, BlocksPerPol: len(blocks)}
			var mu sync.Mutex
			var wg sync.WaitGroup
			simU := startUsage(sim.pid())
			cpu0, start := selfCPU(), time.Now()
			deadline := start.Add(d)
			for c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					polls, errs := 0, 0
					if client == "cellwarden" {
						polls, errs = collectorLoop(addr, m, c, deadline)
					} else {
						polls, errs = goburrowLoop(addr, blocks, c, deadline)
					}
					mu.Lock()
					row.Polls += polls
					row.Errors += errs
					mu.Unlock()
				}()
			}
			wg.Wait()
			row.Seconds = time.Since(start).Seconds()
			row.CPUSeconds = selfCPU() - cpu0
			row.SimCPU, _ = simU.since(sim.pid())
			row.Registers = row.Polls * perPoll
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// collectorLoop polls unit (c mod 4)+1 through its own link until the
// deadline, turning each poll into Samples as the daemon does.
func collectorLoop(addr string, m *modbus.Map, c int, deadline time.Time) (polls, errs int) {
	link := modbus.NewTCPLink(addr, time.Second)
	defer link.Close()
	unit := byte(c%modbusUnits + 1)
	dev := modbus.NewDevice(modbus.DeviceConfig{Name: fmt.Sprint(unit), UPS: "bench", String: fmt.Sprint(unit),
		Unit: unit, Map: m, Interval: time.Second}, link)
	reg := telemetry.NewRegistry()
	var out []telemetry.Sample
	for time.Now().Before(deadline) {
		p := dev.Poll(context.Background())
		out, _ = dev.Samples(p, reg, out[:0])
		if len(p.Errors) > 0 {
			errs += len(p.Errors)
			continue
		}
		polls++
	}
	return polls, errs
}

// goburrowLoop reads the same blocks with a bare goburrow client on one
// persistent connection: the ceiling of that connection.
func goburrowLoop(addr string, blocks []modbus.Block, c int, deadline time.Time) (polls, errs int) {
	h := gb.NewTCPClientHandler(addr)
	h.Timeout = time.Second
	h.SlaveId = byte(c%modbusUnits + 1)
	defer h.Close()
	client := gb.NewClient(h)
	for time.Now().Before(deadline) {
		ok := true
		for _, b := range blocks {
			if _, err := client.ReadHoldingRegisters(b.Start, b.Count); err != nil {
				errs++
				ok = false
			}
		}
		if ok {
			polls++
		}
	}
	return polls, errs
}
