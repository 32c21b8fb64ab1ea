package sim

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// series is what a scenario's telemetry says: path -> metric -> readings.
type reading struct {
	t time.Time
	v float64
}
type series map[string]map[telemetry.Metric][]reading

func simulate(t *testing.T, sc *Scenario) (series, *Labels, *inventory.Inventory) {
	t.Helper()
	var buf bytes.Buffer
	labels, inv, err := Run(sc, &buf)
	if err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	r, err := csvfile.NewReader(&buf, sc.Name, reg)
	if err != nil {
		t.Fatal(err)
	}
	r.OnBadRow = func(b csvfile.BadRow) { t.Errorf("bad row: %s", b) }
	out := series{}
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := reg.Info(s.Entity).Entity.Path()
		if out[p] == nil {
			out[p] = map[telemetry.Metric][]reading{}
		}
		out[p][s.Metric] = append(out[p][s.Metric], reading{s.Timestamp(), s.Value})
	}
	return out, labels, inv
}

func at(rs []reading, t time.Time) float64 {
	i := slices.IndexFunc(rs, func(r reading) bool { return !r.t.Before(t) })
	if i < 0 {
		return math.NaN()
	}
	return rs[i].v
}

func small(name string, dur, interval time.Duration, fleet []UPSSpec, events []EventSpec, faults ...FaultSpec) *Scenario {
	return &Scenario{Name: name, Seed: 7, Start: suiteStart, Duration: dur, Interval: interval, Fleet: fleet, Events: events, Faults: faults}
}

func TestDeterministicBytes(t *testing.T) {
	gen := func(seed uint64) []byte {
		sc := Suite(seed)[1] // runaway_nmc_slow
		sc.Duration = 30 * time.Minute
		var b bytes.Buffer
		if _, _, err := Run(sc, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if !bytes.Equal(gen(1), gen(1)) {
		t.Error("the same seed gave different bytes")
	}
	if bytes.Equal(gen(1), gen(2)) {
		t.Error("different seeds gave the same bytes")
	}
}

// A discharge test moves every cell of the UPS together: all voltages sag
// and all temperatures rise, and the cells stay close to each other.
func TestDischargeMovesAllCellsTogether(t *testing.T) {
	sc := small("discharge", 4*time.Hour, 30*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 4, 8, 0.1)},
		[]EventSpec{{Kind: EventDischargeTest, UPS: "u", At: time.Hour, Duration: 30 * time.Minute, CRate: 0.8}})
	s, labels, _ := simulate(t, sc)
	before, end := suiteStart.Add(55*time.Minute), suiteStart.Add(89*time.Minute)
	var dV, dT []float64
	for m := 1; m <= 4; m++ {
		for c := 1; c <= 8; c++ {
			p := "u/1/" + itoa(m) + "/" + itoa(c)
			dV = append(dV, at(s[p][telemetry.CellVoltageVolts], end)-at(s[p][telemetry.CellVoltageVolts], before))
			dT = append(dT, at(s[p][telemetry.CellTemperatureCelsius], end)-at(s[p][telemetry.CellTemperatureCelsius], before))
		}
	}
	if slices.Max(dV) > -0.05 || slices.Max(dV)-slices.Min(dV) > 0.04 {
		t.Errorf("voltage changes %v: want every cell to sag by more than 50 mV, within 40 mV of each other", dV)
	}
	if slices.Min(dT) < 3 || slices.Max(dT)-slices.Min(dT) > 2 {
		t.Errorf("temperature changes %v: want every cell to warm by 3 °C or more, within 2 °C of each other", dT)
	}
	cur := at(s["u/1"][telemetry.StringCurrentAmperes], end)
	if cur > -70 {
		t.Errorf("string current during the test = %v A, want about -80 A (0.8C of 100 Ah)", cur)
	}
	if after := at(s["u/1"][telemetry.StringSOCRatio], labels.End); math.Abs(after-floatSOC) > 0.01 {
		t.Errorf("SOC at the end = %v, want recharged to %v", after, floatSOC)
	}
}

// The label's critical time is when the cell's readings cross 80 °C.
func TestRunawayCriticalTimeMatchesTheCrossing(t *testing.T) {
	sc := small("runaway", 6*time.Hour, 10*time.Second, []UPSSpec{ups("u", inventory.NMC, 1, 3, 6, 0.1)}, nil,
		FaultSpec{Class: ClassThermalRunaway, UPS: "u", String: "1", Module: "2", Cell: "3", At: time.Hour, Duration: 2 * time.Hour,
			Magnitude: 8, SagVolts: 0.03, Rate: 15})
	s, labels, _ := simulate(t, sc)
	ct := labels.Faults[0].CriticalTime
	if ct == nil {
		t.Fatal("no critical time: the cell never reached 80 °C")
	}
	rs := s["u/1/2/3"][telemetry.CellTemperatureCelsius]
	i := slices.IndexFunc(rs, func(r reading) bool { return r.v >= criticalCelsius-0.5 })
	if i < 0 || rs[i].t.Sub(*ct).Abs() > 20*time.Second {
		t.Errorf("critical time %v; readings first reach 80 °C at %v", ct, rs[i].t)
	}
	if !ct.After(suiteStart.Add(3 * time.Hour)) {
		t.Errorf("critical time %v falls inside the precursor", ct)
	}
	// During the precursor the cell is warmer than its peers and its
	// voltage sags; its peers stay put.
	mid := suiteStart.Add(170 * time.Minute)
	hot := at(rs, mid) - at(s["u/1/2/4"][telemetry.CellTemperatureCelsius], mid)
	sag := at(s["u/1/2/4"][telemetry.CellVoltageVolts], mid) - at(s["u/1/2/3"][telemetry.CellVoltageVolts], mid)
	if hot < 2 || sag < 0.015 {
		t.Errorf("late precursor: %.1f °C hotter and %.0f mV lower than a peer; want >= 2 °C and >= 15 mV", hot, sag*1000)
	}
}

func TestCoolingFailureWarmsOneRoom(t *testing.T) {
	sc := small("cooling", 6*time.Hour, time.Minute,
		[]UPSSpec{ups("a", inventory.NMC, 1, 2, 4, 0.1), ups("b", inventory.NMC, 1, 2, 4, 0.1)}, nil,
		FaultSpec{Class: ClassCoolingFailure, UPS: "a", At: time.Hour, Duration: 3 * time.Hour, Magnitude: 15})
	s, _, _ := simulate(t, sc)
	before, during := suiteStart.Add(55*time.Minute), suiteStart.Add(4*time.Hour)
	rise := func(p string, m telemetry.Metric) float64 { return at(s[p][m], during) - at(s[p][m], before) }
	if r := rise("a", telemetry.AmbientTemperatureCelsius); r < 11 {
		t.Errorf("failed room warmed by %.1f °C, want > 11", r)
	}
	if r := rise("a/1/2/4", telemetry.CellTemperatureCelsius); r < 8 {
		t.Errorf("cells in the failed room warmed by %.1f °C, want > 8", r)
	}
	if r := rise("b/1/2/4", telemetry.CellTemperatureCelsius); math.Abs(r) > 2 {
		t.Errorf("cells in the other room changed by %.1f °C, want < 2", r)
	}
}

func TestLostTelemetryAndSentinelsKeepTheirWindows(t *testing.T) {
	sc := small("sensors", 3*time.Hour, 30*time.Second, []UPSSpec{ups("u", inventory.NMC, 2, 2, 4, 0.1)}, nil,
		FaultSpec{Class: ClassLostTelemetry, UPS: "u", String: "1", Module: "2", At: time.Hour, Duration: 20 * time.Minute},
		FaultSpec{Class: ClassSensorSentinel, UPS: "u", String: "2", Module: "1", Cell: "1", At: 2 * time.Hour, Duration: 10 * time.Minute},
		FaultSpec{Class: ClassSensorSentinel, UPS: "u", String: "2", Module: "1", Cell: "2", At: 2 * time.Hour, Duration: 10 * time.Minute, Volts: true})
	s, _, _ := simulate(t, sc)
	from, to := suiteStart.Add(time.Hour), suiteStart.Add(80*time.Minute)
	for _, r := range s["u/1/2/1"][telemetry.CellVoltageVolts] {
		if !r.t.Before(from) && r.t.Before(to) {
			t.Fatalf("lost module reported at %v", r.t)
		}
	}
	if n := len(s["u/1/2/1"][telemetry.CellVoltageVolts]); n != 361-40 {
		t.Errorf("lost module has %d readings, want 321 (361 polls less 40 lost)", n)
	}
	count := func(p string, m telemetry.Metric, v float64) int {
		n := 0
		for _, r := range s[p][m] {
			if r.v == v {
				n++
			}
		}
		return n
	}
	if n := count("u/2/1/1", telemetry.CellTemperatureCelsius, 6553.5); n != 20 {
		t.Errorf("6553.5 °C reported %d times, want 20 (10 minutes at 30 s)", n)
	}
	if n := count("u/2/1/2", telemetry.CellVoltageVolts, 65.535); n != 20 {
		t.Errorf("65.535 V reported %d times, want 20", n)
	}
}

func TestBatteryAgesAndInventory(t *testing.T) {
	sc := Suite(1)[len(Suite(1))-1]
	sc.Duration = 6 * time.Hour // the verdicts need the SOH fall to end below 80 %
	sc.Fleet[2].SOHFall.To = 0.79
	var buf bytes.Buffer
	labels, inv, err := Run(sc, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range labels.Batteries {
		got = append(got, b.UPS+"/"+b.String+" "+b.State+" "+strings.Join(b.Reasons, ","))
	}
	want := []string{
		"ups-2014/1 end_of_life design_life,warranty,replace_by",
		"ups-2014/2 end_of_life design_life,warranty,replace_by",
		"ups-2016/1 soon warranty",
		"ups-2023/1 ok ",
		"ups-2023/2 end_of_life soh",
	}
	if !slices.Equal(got, want) {
		t.Errorf("battery labels:\n got  %q\n want %q", got, want)
	}
	var y bytes.Buffer
	if err := WriteInventory(&y, inv); err != nil {
		t.Fatal(err)
	}
	parsed, err := inventory.Parse(y.Bytes(), "inventory.yaml")
	if err != nil {
		t.Fatalf("written inventory does not load: %v\n%s", err, y.String())
	}
	if b, ok := parsed.Effective("ups-2014", "1"); !ok || b.ReplaceBy.String() != "2024-06-30" || b.Chemistry != inventory.NMC {
		t.Errorf("inventory round trip: %+v", b)
	}
}

// Every scenario of the suite, shortened, is valid telemetry with labels
// that name entities of its fleet.
func TestSuiteIsValid(t *testing.T) {
	for _, sc := range Suite(3) {
		t.Run(sc.Name, func(t *testing.T) {
			sc.Duration = min(sc.Duration, 3*time.Hour)
			s, labels, _ := simulate(t, sc)
			for _, f := range labels.Faults {
				p := strings.TrimRight(strings.Join([]string{f.UPS, f.String, f.Module, f.Cell}, "/"), "/")
				if s[p] == nil {
					t.Errorf("fault %s names %s, which has no telemetry", f.ID, p)
				}
				if f.End.Before(f.Onset) {
					t.Errorf("fault %s ends before its onset", f.ID)
				}
			}
			if labels.Cells != sc.Cells() || labels.CellDays <= 0 {
				t.Errorf("cells %d, cell-days %v", labels.Cells, labels.CellDays)
			}
		})
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
