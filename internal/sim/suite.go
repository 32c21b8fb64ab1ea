package sim

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// suiteStart is when every standard scenario starts.
var suiteStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// ups builds a UPS of healthy, mid-life batteries.
func ups(name string, chem inventory.Chemistry, strings, modules, cells int, quantum float64) UPSSpec {
	return UPSSpec{
		Name: name, Chemistry: chem, Strings: strings, Modules: modules, Cells: cells, TempQuantum: quantum,
		Vendor: "Simulated Energy", Model: "SIM-" + chem.String(),
		Manufactured: date(2021, 5, 1), Installed: date(2021, 8, 16), DesignLifeYears: 10,
		WarrantyUntil: date(2031, 8, 16), SOH: 0.94,
	}
}

// picker chooses fault targets from the seed, so that each seed places the
// faults on other cells.
type picker struct{ rng *rand.Rand }

func (p picker) n(max int) string { return strconv.Itoa(1 + p.rng.IntN(max)) }

// Suite returns the standard scenarios for a seed: a long healthy fleet for
// false-alarm rates and fault scenarios covering every class several times
// with varied parameters.
func Suite(seed uint64) []*Scenario {
	p := picker{rand.New(rand.NewPCG(seed, 0x5eed))}
	h := time.Hour
	m := time.Minute
	sc := func(name, desc string, dur, interval time.Duration, fleet []UPSSpec, events []EventSpec, faults ...FaultSpec) *Scenario {
		return &Scenario{Name: name, Description: desc, Seed: seed, Start: suiteStart, Duration: dur, Interval: interval,
			Fleet: fleet, Events: events, Faults: faults, MissingRate: 0.0002, GapRate: 0.0005}
	}
	discharge := func(ups string, at, dur time.Duration, c float64) EventSpec {
		return EventSpec{Kind: EventDischargeTest, UPS: ups, At: at, Duration: dur, CRate: c}
	}
	blip := func(ups string, at, dur time.Duration) EventSpec {
		return EventSpec{Kind: EventUtilityBlip, UPS: ups, At: at, Duration: dur, CRate: 0.6}
	}
	return []*Scenario{
		sc("healthy_fleet", "two days of 512 healthy cells with discharge tests, utility blips and an HVAC setpoint change",
			48*h, 30*time.Second,
			[]UPSSpec{ups("dc1-ups-a", inventory.NMC, 2, 8, 16, 0.1), ups("dc1-ups-b", inventory.LFP, 2, 8, 16, 1)},
			[]EventSpec{
				discharge("dc1-ups-a", 10*h, 30*m, 0.5), discharge("dc1-ups-b", 11*h, 20*m, 0.8),
				blip("dc1-ups-a", 20*h+7*m, 90*time.Second), blip("dc1-ups-b", 31*h+41*m, 40*time.Second),
				{Kind: EventHVACSetpoint, UPS: "dc1-ups-a", At: 36 * h, Delta: 2},
				{Kind: EventHVACSetpoint, UPS: "dc1-ups-b", At: 40 * h, Delta: -1.5},
			}),
		sc("runaway_nmc_slow", "an internal short heats an NMC cell slowly for six hours, then runs away; a discharge test during the precursor",
			12*h, 10*time.Second, []UPSSpec{ups("ups-r1", inventory.NMC, 2, 6, 12, 0.1)},
			[]EventSpec{discharge("ups-r1", 3*h, 20*m, 0.5)},
			FaultSpec{Class: ClassThermalRunaway, UPS: "ups-r1", String: p.n(2), Module: p.n(6), Cell: p.n(12),
				At: 2 * h, Duration: 6 * h, Magnitude: 9, SagVolts: 0.02, Rate: 25}),
		sc("runaway_lfp_fast", "an LFP cell behind 1 °C sensors: a two-hour precursor and a fast runaway",
			8*h, 30*time.Second, []UPSSpec{ups("ups-r2", inventory.LFP, 1, 8, 16, 1)}, nil,
			FaultSpec{Class: ClassThermalRunaway, UPS: "ups-r2", String: "1", Module: p.n(8), Cell: p.n(16),
				At: 3 * h, Duration: 2 * h, Magnitude: 6, SagVolts: 0.01, Rate: 12}),
		sc("runaway_nmc_voltage", "a precursor seen mostly as voltage sag, with little heat, polled every minute",
			16*h, time.Minute, []UPSSpec{ups("ups-r3", inventory.NMC, 2, 8, 12, 0.1)}, nil,
			FaultSpec{Class: ClassThermalRunaway, UPS: "ups-r3", String: p.n(2), Module: p.n(8), Cell: p.n(12),
				At: 4 * h, Duration: 8 * h, Magnitude: 4, SagVolts: 0.06, Rate: 20}),
		sc("module_hotspot", "two modules heat: a loose busbar (+6 °C) and a failed module fan (+10 °C)",
			10*h, 15*time.Second, []UPSSpec{ups("ups-h", inventory.NMC, 2, 8, 12, 0.1)}, nil,
			FaultSpec{Class: ClassModuleHotspot, UPS: "ups-h", String: "1", Module: p.n(8), At: 2 * h, Duration: 3 * h, Magnitude: 6},
			FaultSpec{Class: ClassModuleHotspot, UPS: "ups-h", String: "2", Module: p.n(8), At: 6 * h, Duration: 3 * h, Magnitude: 10}),
		sc("cooling_failure", "the HVAC of one room fails twice (+14 °C, then +20 °C); the UPS in the other room is fine",
			14*h, 30*time.Second, []UPSSpec{ups("room1-ups", inventory.NMC, 3, 8, 12, 0.1), ups("room2-ups", inventory.LFP, 2, 8, 12, 1)},
			[]EventSpec{discharge("room2-ups", 5*h, 20*m, 0.5)},
			FaultSpec{Class: ClassCoolingFailure, UPS: "room1-ups", At: 2 * h, Duration: 3 * h, Magnitude: 14},
			FaultSpec{Class: ClassCoolingFailure, UPS: "room1-ups", At: 8 * h, Duration: 4 * h, Magnitude: 20}),
		sensorScenario(sc, p, "sensor_faults_a", "ups-s1", 0.1, 10*time.Second, 0.03, 2),
		sensorScenario(sc, p, "sensor_faults_b", "ups-s2", 1, 30*time.Second, 0.08, 3),
		sc("weak_cell", "two self-discharging cells drift low at 3 and 8 mV per hour",
			24*h, 30*time.Second, []UPSSpec{ups("ups-w", inventory.NMC, 2, 8, 12, 0.1)}, nil,
			FaultSpec{Class: ClassWeakCell, UPS: "ups-w", String: "1", Module: p.n(8), Cell: p.n(12), At: 2 * h, Rate: 3},
			FaultSpec{Class: ClassWeakCell, UPS: "ups-w", String: "2", Module: p.n(8), Cell: p.n(12), At: 6 * h, Rate: 8}),
		sc("overcharge", "a charger holds one NMC string and one LFP string above their limits",
			8*h, 20*time.Second, []UPSSpec{ups("ups-oa", inventory.NMC, 2, 6, 12, 0.1), ups("ups-ob", inventory.LFP, 2, 6, 12, 0.1)}, nil,
			FaultSpec{Class: ClassOvercharge, UPS: "ups-oa", String: p.n(2), At: 2 * h, Duration: 2 * h, Magnitude: 0.16},
			FaultSpec{Class: ClassOvercharge, UPS: "ups-ob", String: p.n(2), At: 4 * h, Duration: 2 * h, Magnitude: 0.35}),
		sc("lost_telemetry", "a module, a string and a whole UPS stop reporting, one after another",
			10*h, 15*time.Second, []UPSSpec{ups("ups-l1", inventory.NMC, 2, 6, 12, 0.1), ups("ups-l2", inventory.LFP, 2, 6, 12, 1)}, nil,
			FaultSpec{Class: ClassLostTelemetry, UPS: "ups-l1", String: "1", Module: p.n(6), At: 2 * h, Duration: 20 * m},
			FaultSpec{Class: ClassLostTelemetry, UPS: "ups-l1", String: "2", At: 4 * h, Duration: 30 * m},
			FaultSpec{Class: ClassLostTelemetry, UPS: "ups-l2", At: 7 * h, Duration: 15 * m}),
		agesScenario(sc),
	}
}

func sensorScenario(sc func(string, string, time.Duration, time.Duration, []UPSSpec, []EventSpec, ...FaultSpec) *Scenario,
	p picker, name, u string, quantum float64, interval time.Duration, spikeRate, noise float64) *Scenario {
	h := time.Hour
	return sc(name, fmt.Sprintf("stuck, spiking (%.0f %% of readings), sentinel (6553.5 °C and 65.535 V) and noisy (sigma %.0f °C) sensors behind %.1f °C resolution",
		spikeRate*100, noise, quantum),
		12*h, interval, []UPSSpec{ups(u, inventory.NMC, 2, 8, 12, quantum)},
		[]EventSpec{{Kind: EventDischargeTest, UPS: u, At: 5 * h, Duration: 30 * time.Minute, CRate: 0.5}},
		FaultSpec{Class: ClassSensorStuck, UPS: u, String: "1", Module: p.n(8), Cell: p.n(12), At: 2 * h, Duration: 6 * h},
		FaultSpec{Class: ClassSensorSpikes, UPS: u, String: "1", Module: p.n(8), Cell: p.n(12), At: 3 * h, Duration: 2 * h, Rate: spikeRate},
		FaultSpec{Class: ClassSensorSentinel, UPS: u, String: "2", Module: p.n(8), Cell: p.n(12), At: 4 * h, Duration: 2 * h},
		FaultSpec{Class: ClassSensorSentinel, UPS: u, String: "2", Module: p.n(8), Cell: p.n(12), At: 7 * h, Duration: 2 * h, Volts: true},
		FaultSpec{Class: ClassSensorNoisy, UPS: u, String: "1", Module: p.n(8), Cell: p.n(12), At: 8 * h, Duration: 3 * h, Magnitude: noise})
}

// agesScenario has batteries past their design life and warranty, one whose
// warranty ends within the horizon, healthy ones, and a string whose state
// of health falls below 80 %.
func agesScenario(sc func(string, string, time.Duration, time.Duration, []UPSSpec, []EventSpec, ...FaultSpec) *Scenario) *Scenario {
	old := ups("ups-2014", inventory.NMC, 2, 4, 12, 0.1)
	old.Manufactured, old.Installed, old.WarrantyUntil, old.ReplaceBy = date(2014, 6, 1), date(2014, 9, 15), date(2024, 9, 15), date(2024, 6, 30)
	soon := ups("ups-2016", inventory.NMC, 1, 4, 12, 0.1)
	soon.Manufactured, soon.Installed, soon.WarrantyUntil = date(2016, 3, 1), date(2016, 6, 1), date(2026, 6, 1)
	soon.DesignLifeYears = 12
	fine := ups("ups-2023", inventory.LFP, 2, 4, 12, 1)
	fine.Manufactured, fine.Installed, fine.WarrantyUntil, fine.DesignLifeYears = date(2023, 1, 10), date(2023, 4, 3), date(2033, 4, 3), 15
	fine.SOHFall = &SOHFall{String: "2", From: 0.81, To: 0.79}
	return sc("battery_ages", "batteries past design life, warranty and replace-by; one within 180 days of its warranty end; one healthy UPS with a string whose SOH falls below 80 %",
		48*time.Hour, time.Minute, []UPSSpec{old, soon, fine}, nil)
}

// Files names the files Generate writes for a scenario.
const (
	TelemetryFile = "telemetry.csv.gz"
	InventoryFile = "inventory.yaml"
	LabelsFile    = "labels.json"
)

// Generate runs sc and writes DIR/<name>/{telemetry.csv.gz, inventory.yaml,
// labels.json}. The gzip stream carries no name or time, so the same
// scenario gives the same bytes.
func Generate(dir string, sc *Scenario) (*Labels, error) {
	out := filepath.Join(dir, sc.Name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(out, TelemetryFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	labels, inv, err := Run(sc, zw)
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := WriteInventory(&b, inv); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, InventoryFile), b.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return labels, WriteLabels(filepath.Join(out, LabelsFile), labels)
}
