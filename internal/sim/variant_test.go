package sim

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

func TestParsePhysics(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Physics
	}{
		{"none", nil, Physics{}},
		{"empty", []string{""}, Physics{}},
		{"comma-separated", []string{"temp_quantum=1, noise_scale=2"}, Physics{TempQuantum: 1, NoiseScale: 2}},
		{"repeated", []string{"tau_spread=0.3", "neighbour_heat=0.3", "step_faults=true"}, Physics{TauSpread: 0.3, NeighbourHeat: 0.3, StepFaults: true}},
		{"durations", []string{"poll_seconds=10,hvac_step=6,hvac_step_hour=30"}, Physics{PollInterval: 10 * time.Second, HVACStep: 6, HVACStepAt: 30 * time.Hour}},
		{"topology", []string{"cells_per_module=6,modules_per_string=3"}, Physics{Cells: 6, Modules: 3}},
		{"sentinel", []string{"sentinel_celsius=127"}, Physics{SentinelCelsius: 127}},
		{"scales", []string{"tau_scale=2,joule_scale=2,discharge_c=2,missing_scale=10,precursor_speed=2,no_sag=true,wander_scale=3,offset_scale=2,daily_swing=3,hvac_cycle=1"},
			Physics{TauScale: 2, JouleScale: 2, DischargeC: 2, MissingScale: 10, PrecursorSpeed: 2, NoSag: true, WanderScale: 3, OffsetScale: 2, DailySwing: 3, HVACCycle: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePhysics(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			// String gives back what ParsePhysics reads.
			again, err := ParsePhysics([]string{got.String()})
			if err != nil || again != got {
				t.Errorf("ParsePhysics(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestParsePhysicsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"temp_quantun=1"}, `physics: unknown key "temp_quantun" (known: temp_quantum, volt_quantum, noise_scale, poll_seconds, tau_scale, tau_spread, joule_scale, discharge_c, neighbour_heat, step_faults, missing_scale, hvac_step, hvac_step_hour, precursor_speed, no_sag, wander_scale, offset_scale, daily_swing, hvac_cycle, resist_scale, room_tau_scale, sentinel_celsius, cells_per_module, modules_per_string)`},
		{"cells not whole", []string{"cells_per_module=1"}, `physics: cells_per_module: "1" must be a whole number from 2 to 64`},
		{"not a number", []string{"noise_scale=lots"}, `physics: noise_scale: "lots" must be a number from 0.001 to 100`},
		{"zero scale", []string{"tau_scale=0"}, `physics: tau_scale: "0" must be a number from 0.01 to 100`},
		{"share above 1", []string{"neighbour_heat=1.5"}, `physics: neighbour_heat: "1.5" must be a number from 0 to 1`},
		{"NaN", []string{"tau_spread=NaN"}, `physics: tau_spread: "NaN" must be a number from 0 to 0.95`},
		{"poll not whole", []string{"poll_seconds=2.5"}, `physics: poll_seconds: "2.5" must be a whole number of seconds from 1 to 60`},
		{"bad bool", []string{"step_faults=yes"}, `physics: step_faults: "yes" must be true or false`},
		{"no value", []string{"no_sag"}, `physics: no_sag: no value (want no_sag=VALUE)`},
		{"twice", []string{"temp_quantum=1", "temp_quantum=0.5"}, `physics: temp_quantum: given twice`},
		{"hour alone", []string{"hvac_step_hour=3"}, `physics: hvac_step_hour: needs hvac_step`},
		{"all at once", []string{"noise_scale=-1,discharge_c=x"}, "physics: noise_scale: \"-1\" must be a number from 0.001 to 100\nphysics: discharge_c: \"x\" must be a number from 0.01 to 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePhysics(tt.args)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
		})
	}
}

// defaultsScenario exercises every part of the physics a knob touches:
// discharge and blip, setpoint change, runaway, hot spot, weak cell,
// spikes, overcharge, missing values and gaps, 0.1 and 1 °C sensors.
func defaultsScenario() *Scenario {
	h, m := time.Hour, time.Minute
	sc := small("defaults", 5*h, 10*time.Second, []UPSSpec{ups("u", inventory.NMC, 2, 3, 4, 0.1), ups("v", inventory.LFP, 1, 2, 4, 1)},
		[]EventSpec{{Kind: EventDischargeTest, UPS: "u", At: 30 * m, Duration: 20 * m, CRate: 0.8},
			{Kind: EventUtilityBlip, UPS: "v", At: 40 * m, Duration: time.Minute, CRate: 0.6},
			{Kind: EventHVACSetpoint, UPS: "v", At: 3 * h, Delta: 2}},
		FaultSpec{Class: ClassThermalRunaway, UPS: "u", String: "1", Module: "2", Cell: "3", At: time.Hour, Duration: 90 * m, Magnitude: 8, SagVolts: 0.03, Rate: 10},
		FaultSpec{Class: ClassModuleHotspot, UPS: "u", String: "2", Module: "2", At: time.Hour, Duration: 2 * h, Magnitude: 6},
		FaultSpec{Class: ClassWeakCell, UPS: "v", String: "1", Module: "1", Cell: "2", At: time.Hour, Rate: 8},
		FaultSpec{Class: ClassSensorSpikes, UPS: "v", String: "1", Module: "2", Cell: "1", At: 2 * h, Duration: h, Rate: 0.05},
		FaultSpec{Class: ClassOvercharge, UPS: "v", String: "1", At: 3 * h, Duration: h, Magnitude: 0.2})
	sc.MissingRate, sc.GapRate = 0.01, 0.01
	return sc
}

// With the zero Physics the simulator writes the bytes it wrote before
// Physics existed (the hashes were taken from that code), so the standard
// suite is unchanged.
func TestDefaultPhysicsUnchanged(t *testing.T) {
	tests := []struct {
		sc   *Scenario
		want string
	}{
		{defaultsScenario(), "816bb9f5b2eb6fe3dd2815b2c60c170c16bd6c5cff565e147e7404fe57ae8080"},
		{Suite(2)[2], "2770556f64ed535f9ea4f165e3b7a1aaeefb8f18d9af366851b5679f1d34a7d6"}, // runaway_lfp_fast
	}
	for _, tt := range tests {
		t.Run(tt.sc.Name, func(t *testing.T) {
			h := sha256.New()
			labels, _, err := Run(tt.sc, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", h.Sum(nil)); got != tt.want {
				t.Errorf("telemetry sha256 %s, want %s", got, tt.want)
			}
			if labels.Physics != "" {
				t.Errorf("labels name physics %q, want none", labels.Physics)
			}
		})
	}
}

// A knob changes only what it is about: noise leaves the true temperatures
// (and so the critical time) alone, and the scenario passed in is not
// modified.
func TestPhysicsLeavesTheScenarioAlone(t *testing.T) {
	sc := defaultsScenario()
	sc.Physics = Physics{TempQuantum: 1, PollInterval: 30 * time.Second, DischargeC: 2, HVACStep: 6, PrecursorSpeed: 2, NoSag: true, MissingScale: 2}
	before := fmt.Sprintf("%+v", *sc)
	if _, _, err := Run(sc, io.Discard); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", *sc); after != before {
		t.Errorf("Run changed the scenario:\n%s\n%s", before, after)
	}
	ref, _, err := Run(defaultsScenario(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	noisy := defaultsScenario()
	noisy.Physics.NoiseScale = 3
	got, _, err := Run(noisy, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Faults[0].CriticalTime.Equal(*ref.Faults[0].CriticalTime) {
		t.Errorf("noise moved the critical time from %v to %v", ref.Faults[0].CriticalTime, got.Faults[0].CriticalTime)
	}
	if got.Physics != "noise_scale=3" {
		t.Errorf("labels name physics %q, want noise_scale=3", got.Physics)
	}
}

func TestTempQuantumPutsReadingsOnTheGrid(t *testing.T) {
	for _, q := range []float64{1, 0.5} {
		t.Run(fmt.Sprint(q), func(t *testing.T) {
			sc := defaultsScenario()
			sc.Duration = 2 * time.Hour
			sc.Physics.TempQuantum = q
			s, _, _ := simulate(t, sc)
			n := 0
			for p, ms := range s {
				for _, m := range []telemetry.Metric{telemetry.CellTemperatureCelsius, telemetry.ModuleTemperatureCelsius} {
					for _, r := range ms[m] {
						if k := r.v / q; k != math.Round(k) && !math.IsNaN(k) { // NaN: a missing value
							t.Fatalf("%s %v: %v is not on the %v °C grid", p, m, r.v, q)
						}
						n++
					}
				}
			}
			if n < 10000 {
				t.Errorf("only %d temperature readings", n)
			}
		})
	}
}

func TestVoltQuantumPutsVoltagesOnTheGrid(t *testing.T) {
	sc := defaultsScenario()
	sc.Duration = 2 * time.Hour
	sc.Physics.VoltQuantum = 0.01
	// A voltage sentinel is the register's raw value: it stays 65.535.
	sc.Faults = append(sc.Faults, FaultSpec{Class: ClassSensorSentinel, Volts: true, UPS: "v", String: "1", Module: "1", Cell: "1", At: time.Hour, Duration: time.Hour})
	s, _, _ := simulate(t, sc)
	n, sentinels := 0, 0
	for p, ms := range s {
		for _, r := range ms[telemetry.CellVoltageVolts] {
			switch k := r.v / 0.01; {
			case r.v == 65.535:
				sentinels++
			case math.Abs(k-math.Round(k)) > 1e-6 && !math.IsNaN(k): // NaN: a missing value
				t.Fatalf("%s: %v is not on the 10 mV grid", p, r.v)
			}
			n++
		}
	}
	if n < 10000 || sentinels == 0 {
		t.Errorf("%d voltage readings, %d sentinels", n, sentinels)
	}
}

// sentinel_celsius makes a temperature sentinel fault report an error code
// instead of 6553.5, and leaves a voltage sentinel the register's raw value.
func TestSentinelCelsius(t *testing.T) {
	sc := defaultsScenario()
	sc.Duration = 2 * time.Hour
	sc.Physics.SentinelCelsius = 127
	sc.Faults = append(sc.Faults,
		FaultSpec{Class: ClassSensorSentinel, UPS: "v", String: "1", Module: "1", Cell: "1", At: time.Hour, Duration: time.Hour},
		FaultSpec{Class: ClassSensorSentinel, Volts: true, UPS: "v", String: "1", Module: "1", Cell: "2", At: time.Hour, Duration: time.Hour})
	s, labels, _ := simulate(t, sc)
	temps, volts := 0, 0
	for p, ms := range s {
		for _, r := range ms[telemetry.CellTemperatureCelsius] {
			switch {
			case r.v == 6553.5:
				t.Fatalf("%s: a 6553.5 °C reading with sentinel_celsius=127", p)
			case r.v == 127:
				temps++
			}
		}
		for _, r := range ms[telemetry.CellVoltageVolts] {
			if r.v == 65.535 {
				volts++
			}
		}
	}
	if temps == 0 || volts == 0 {
		t.Errorf("%d readings of 127 °C and %d of 65.535 V, want both", temps, volts)
	}
	if d := labels.Faults[len(labels.Faults)-2].Detail; d != "temperature sensor reading 127 °C" {
		t.Errorf("the label's detail is %q", d)
	}
}

func TestNoiseScale(t *testing.T) {
	// The σ of unquantised readings from the step-to-step changes of
	// still cells (the true temperature hardly moves in 10 s).
	sigma := func(scale float64) float64 {
		sc := small("still", time.Hour, 10*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 2, 8, 0)}, nil)
		sc.Physics.NoiseScale = scale
		s, _, _ := simulate(t, sc)
		sum, n := 0.0, 0
		for c := 1; c <= 8; c++ {
			rs := s["u/1/1/"+itoa(c)][telemetry.CellTemperatureCelsius]
			for i := 1; i < len(rs); i++ {
				d := rs[i].v - rs[i-1].v
				sum, n = sum+d*d, n+1
			}
		}
		return math.Sqrt(sum / float64(n) / 2)
	}
	if a, b := sigma(1), sigma(4); b < 3*a || b > 5*a {
		t.Errorf("σ %.3f °C at noise_scale=1, %.3f at 4: want about 4 times", a, b)
	}
}

// Heat shared with neighbours warms a runaway cell's module-mates, not
// the cells of other modules.
func TestNeighbourHeatWarmsModuleMates(t *testing.T) {
	run := func(share float64) series {
		sc := small("neighbours", 3*time.Hour, 30*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 3, 4, 0.1)}, nil,
			FaultSpec{Class: ClassThermalRunaway, UPS: "u", String: "1", Module: "2", Cell: "3", At: 30 * time.Minute, Duration: time.Hour,
				Magnitude: 10, SagVolts: 0.02, Rate: 30})
		sc.Physics.NeighbourHeat = share
		s, _, _ := simulate(t, sc)
		return s
	}
	plain, shared := run(0), run(0.3)
	at2h := suiteStart.Add(2 * time.Hour)
	rise := func(p string) float64 {
		m := telemetry.CellTemperatureCelsius
		return at(shared[p][m], at2h) - at(plain[p][m], at2h)
	}
	if r := rise("u/1/2/1"); r < 1 {
		t.Errorf("a module-mate of the runaway cell warmed by %.2f °C, want >= 1", r)
	}
	for _, p := range []string{"u/1/1/1", "u/1/3/4"} {
		if r := rise(p); math.Abs(r) > 0.1 {
			t.Errorf("%s, in another module, changed by %.2f °C, want none", p, r)
		}
	}
	if r := rise("u/1/2/3"); math.Abs(r) > 0.1 {
		t.Errorf("the runaway cell itself changed by %.2f °C, want none", r)
	}
}

// Step faults: a hot spot has its heat at once, a weak cell its whole sag.
func TestStepFaults(t *testing.T) {
	run := func(step bool) series {
		sc := small("steps", 4*time.Hour, 30*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 3, 4, 0.1)}, nil,
			FaultSpec{Class: ClassModuleHotspot, UPS: "u", String: "1", Module: "1", At: time.Hour, Duration: 2 * time.Hour, Magnitude: 10},
			FaultSpec{Class: ClassWeakCell, UPS: "u", String: "1", Module: "3", Cell: "1", At: time.Hour, Rate: 6})
		sc.Physics.StepFaults = step
		s, _, _ := simulate(t, sc)
		return s
	}
	ramp, step := run(false), run(true)
	after := suiteStart.Add(time.Hour + 5*time.Minute)
	hot := func(s series) float64 { return at(s["u/1/1/2"][telemetry.CellTemperatureCelsius], after) }
	if d := hot(step) - hot(ramp); d < 0.5 {
		t.Errorf("5 min into a step hot spot the cell is %.2f °C warmer than with the ramp, want >= 0.5", d)
	}
	volt := func(s series) float64 { return at(s["u/1/3/1"][telemetry.CellVoltageVolts], after) }
	if d := volt(ramp) - volt(step); math.Abs(d-0.0175) > 0.002 {
		t.Errorf("5 min into a step weak cell it is %.1f mV lower than with the ramp, want about 17.5 (6 mV/h over 3 h)", d*1000)
	}
}

// Uneven time constants: with a spread, cells under the same load warm at
// different paces; the main random stream (offsets, noise) is unchanged.
func TestTauSpread(t *testing.T) {
	dischargeRise := func(spread float64) []float64 {
		sc := small("tau", 3*time.Hour, 30*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 1, 16, 0)},
			[]EventSpec{{Kind: EventDischargeTest, UPS: "u", At: time.Hour, Duration: 30 * time.Minute, CRate: 1}})
		sc.Physics.TauSpread = spread
		s, _, _ := simulate(t, sc)
		var out []float64
		for c := 1; c <= 16; c++ {
			rs := s["u/1/1/"+fmt.Sprint(c)][telemetry.CellTemperatureCelsius]
			out = append(out, at(rs, suiteStart.Add(80*time.Minute))-at(rs, suiteStart.Add(59*time.Minute)))
		}
		return out
	}
	rangeOf := func(xs []float64) float64 {
		lo, hi := xs[0], xs[0]
		for _, x := range xs {
			lo, hi = min(lo, x), max(hi, x)
		}
		return hi - lo
	}
	even, uneven := dischargeRise(0), dischargeRise(0.4)
	if rangeOf(uneven) < 2*rangeOf(even) || rangeOf(uneven) < 1 {
		t.Errorf("rise under load ranges over %.2f °C with tau_spread=0.4, %.2f without: want at least 1 °C and twice", rangeOf(uneven), rangeOf(even))
	}
}

func TestPhysicsChangesTheSpecification(t *testing.T) {
	sc := defaultsScenario()
	sc.Physics = Physics{PollInterval: 20 * time.Second, DischargeC: 1.6, HVACStep: 6, PrecursorSpeed: 3, NoSag: true}
	var b bytes.Buffer
	labels, _, err := Run(sc, &b)
	if err != nil {
		t.Fatal(err)
	}
	if labels.IntervalSeconds != 20 {
		t.Errorf("interval %v s, want 20", labels.IntervalSeconds)
	}
	var got []string
	for _, e := range labels.Events {
		got = append(got, fmt.Sprintf("%s %s %v", e.Kind, e.UPS, e.End.Sub(e.Start)))
	}
	want := "discharge_test u 10m0s|utility_blip v 1m0s|hvac_setpoint v 0s|hvac_setpoint u 0s|hvac_setpoint v 0s"
	if strings.Join(got, "|") != want {
		t.Errorf("events %q, want %q", strings.Join(got, "|"), want)
	}
	if d := labels.Faults[0].Detail; !strings.HasPrefix(d, "precursor 30m0s: +8 °C self-heating and 0 mV sag") {
		t.Errorf("runaway detail %q, want a 30 min precursor without sag", d)
	}
	if labels.Physics != "poll_seconds=20,discharge_c=1.6,hvac_step=6,precursor_speed=3,no_sag=true" {
		t.Errorf("labels name physics %q", labels.Physics)
	}
}

// The room and cell knobs change what they name: the ambient's daily range
// with daily_swing and hvac_cycle, the cells' spread of voltages with
// offset_scale, and how far a cell's voltage wanders over hours with
// wander_scale.
func TestRoomAndCellKnobs(t *testing.T) {
	run := func(p Physics) series {
		sc := small("knobs", 24*time.Hour, time.Minute, []UPSSpec{ups("u", inventory.NMC, 1, 2, 8, 0.1)}, nil)
		sc.Physics = p
		s, _, _ := simulate(t, sc)
		return s
	}
	ambientRange := func(s series) float64 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range s["u"][telemetry.AmbientTemperatureCelsius] {
			lo, hi = min(lo, r.v), max(hi, r.v)
		}
		return hi - lo
	}
	// The voltages' spread across the 16 cells at the start, and the mean
	// absolute change of each cell's voltage over 6 hours, in mV.
	volts := func(s series) (spread, wander float64) {
		var first []float64
		n := 0
		for m := 1; m <= 2; m++ {
			for c := 1; c <= 8; c++ {
				rs := s[fmt.Sprintf("u/1/%d/%d", m, c)][telemetry.CellVoltageVolts]
				first = append(first, rs[0].v)
				for i := 360; i < len(rs); i += 360 {
					wander += math.Abs(rs[i].v - rs[i-360].v)
					n++
				}
			}
		}
		lo, hi := slices.Min(first), slices.Max(first)
		return (hi - lo) * 1000, wander / float64(n) * 1000
	}
	std := run(Physics{})
	if r, w := ambientRange(std), ambientRange(run(Physics{DailySwing: 4})); w < 2*r || w < 7.5 {
		t.Errorf("ambient ranges over %.1f °C a day with daily_swing=4, %.1f by default: want 8 °C or so", w, r)
	}
	if r, c := ambientRange(std), ambientRange(run(Physics{HVACCycle: 3})); c < r+3 {
		t.Errorf("ambient ranges over %.1f °C a day with hvac_cycle=3, %.1f by default: want 4 °C more or so", c, r)
	}
	spread, wander := volts(std)
	if s, _ := volts(run(Physics{OffsetScale: 3})); s < 2*spread {
		t.Errorf("cell voltages spread over %.1f mV with offset_scale=3, %.1f by default: want about 3 times", s, spread)
	}
	if _, w := volts(run(Physics{WanderScale: 3})); w < 2*wander {
		t.Errorf("cell voltages move %.2f mV in 6 h with wander_scale=3, %.2f by default: want about 3 times", w, wander)
	}
}

// cells_per_module and modules_per_string reshape every UPS, and a fault on
// a cell or module beyond the new count wraps onto one that exists.
func TestTopologyKnobs(t *testing.T) {
	sc := small("shape", time.Hour, time.Minute, []UPSSpec{ups("u", inventory.NMC, 1, 8, 12, 0.1)}, nil,
		FaultSpec{Class: ClassSensorStuck, UPS: "u", String: "1", Module: "7", Cell: "10", At: 10 * time.Minute, Duration: 20 * time.Minute})
	sc.Physics = Physics{Cells: 4, Modules: 3}
	s, labels, _ := simulate(t, sc)
	cells := 0
	for p := range s {
		if strings.Count(p, "/") == 3 {
			cells++
		}
	}
	if cells != 12 {
		t.Errorf("%d cells reported, want 3 modules x 4 cells = 12", cells)
	}
	if labels.Cells != 12 {
		t.Errorf("labels count %d cells, want 12", labels.Cells)
	}
	if e := labels.Faults[0].Entity; e.Module != "1" || e.Cell != "2" {
		t.Errorf("the fault on module 7, cell 10 is on module %s, cell %s: want 1 and 2", e.Module, e.Cell)
	}
	if _, ok := s["u/1/1/2"]; !ok {
		t.Error("the faulty cell u/1/1/2 reports nothing")
	}
}

// room_tau_scale slows a room's heating when its cooling fails: 15 min
// into a +14 °C failure a room with twice the time constant has climbed
// about 3.1 °C instead of 5.5 °C.
func TestRoomTauScale(t *testing.T) {
	climb := func(scale float64) float64 {
		sc := small("room", 2*time.Hour, time.Minute, []UPSSpec{ups("u", inventory.NMC, 1, 1, 4, 0.1)}, nil,
			FaultSpec{Class: ClassCoolingFailure, UPS: "u", At: time.Hour, Duration: time.Hour, Magnitude: 14})
		sc.Physics.RoomTauScale = scale
		s, _, _ := simulate(t, sc)
		rs := s["u"][telemetry.AmbientTemperatureCelsius]
		return at(rs, suiteStart.Add(75*time.Minute)) - at(rs, suiteStart.Add(time.Hour))
	}
	if a, b := climb(1), climb(2); a < 4.5 || b > 4 || b < 2 {
		t.Errorf("15 min into the failure the room climbed %.1f °C, and %.1f with room_tau_scale=2: want about 5.5 and 3.1", a, b)
	}
}
