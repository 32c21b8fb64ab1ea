package detector

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// nasaPoint is one row of a NASA PCoE discharge trace (testdata/nasa,
// Saha & Goebel 2007; see SOURCE.txt there).
type nasaPoint struct{ t, volt, amps, temp float64 }

func loadNASA(t *testing.T, name string) []nasaPoint {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "nasa", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0]; !slices.Equal(got, []string{"time_s", "voltage_V", "current_A", "temperature_C"}) {
		t.Fatalf("%s: header %q", name, got)
	}
	var pts []nasaPoint
	for i, r := range rows[1:] {
		var v [4]float64
		for j := range v {
			if v[j], err = strconv.ParseFloat(r[j], 64); err != nil {
				t.Fatalf("%s:%d: %v", name, i+2, err)
			}
		}
		pts = append(pts, nasaPoint{v[0], v[1], v[2], v[3]})
	}
	return pts
}

// at interpolates the trace linearly at second s (0 <= s <= the last row's
// time).
func nasaAt(pts []nasaPoint, s float64) nasaPoint {
	i := max(1, min(len(pts)-1, sortSearch(pts, s)))
	a, b := pts[i-1], pts[i]
	f := (s - a.t) / (b.t - a.t)
	mix := func(x, y float64) float64 { return x + f*(y-x) }
	return nasaPoint{s, mix(a.volt, b.volt), mix(a.amps, b.amps), mix(a.temp, b.temp)}
}

// sortSearch returns the index of the first row later than s.
func sortSearch(pts []nasaPoint, s float64) int {
	i, _ := slices.BinarySearchFunc(pts, s, func(p nasaPoint, s float64) int {
		if p.t <= s {
			return -1
		}
		return 1
	})
	return i
}

// The acceptance: the NASA hot-room discharges (43-44 °C ambient,
// 4 A, cells warming from ~45 °C to 60-70 °C) replayed as a string of
// identical-behaving cells raise no ThermalRunawayRisk, and, since every
// cell does the same, no cell-level peer alert either.
//
// Each trace drives 16 cells in 4 modules of one string, polled every
// 10 s: each cell reads the trace's temperature plus a fixed offset of up to
// ±0.5 °C and a little noise, quantised to 0.1 °C, and the trace's voltage
// plus a fixed offset of up to ±3 mV. Two hours of rest at the trace's
// first temperature and voltage come first, so the detector has learned
// the cells; the string's current is the trace's scaled to a 100 Ah string
// (x50: 4 A -> 200 A), the ambient the trace's. After the trace, 15 minutes
// of rest (current 0, the cells cooling towards the ambient, the voltage
// held) let any alert pending at its end fire.
//
// CellOverTemperature is allowed and expected: the cells really do exceed
// its 50 °C warning limit (and B0038's the 60 °C critical one); that is the
// static limit doing its job, not a false alarm.
func TestNASAHotRoomDischargeIsNotRunaway(t *testing.T) {
	cases := []struct {
		file    string
		ambient float64
	}{
		{"B0029_discharge_last_op93.csv", 43},
		{"B0038_discharge_last_op120.csv", 44},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			pts := loadNASA(t, tc.file)
			fired := replayNASA(t, pts, tc.ambient)
			var other, overTemp []string
			for _, a := range fired {
				switch {
				case a.name == AlertCellOverTemperature && a.sev == SeverityWarning:
					overTemp = append(overTemp, a.path)
				case a.name != AlertCellOverTemperature:
					other = append(other, a.key())
				}
			}
			if len(other) > 0 {
				t.Errorf("alerts other than CellOverTemperature fired (no ThermalRunawayRisk nor peer alert may): %q", other)
			}
			// The trace did reach the engine: every cell passed 50 °C.
			if len(overTemp) != 16 {
				t.Errorf("CellOverTemperature warning fired for %d cells, want all 16: %q", len(overTemp), overTemp)
			}
		})
	}
}

// replayNASA feeds the string described above and returns the alerts that
// fired.
func replayNASA(t *testing.T, pts []nasaPoint, ambient float64) []peerAlert {
	t.Helper()
	h := newHarness(t, DefaultConfig(), nil)
	rng := rand.New(rand.NewPCG(29, 38))
	type cell struct {
		id         telemetry.EntityID
		offT, offV float64
	}
	var cells []cell
	for m := 1; m <= 4; m++ {
		for i := 1; i <= 4; i++ {
			cells = append(cells, cell{h.id(fmt.Sprintf("ups-a/1/%d/%d", m, i)), rng.Float64() - 0.5, rng.Float64()*0.006 - 0.003})
		}
	}
	ups, str := h.id("ups-a"), h.id("ups-a/1")
	const (
		step = 10          // seconds between polls
		rest = 2 * hour    // before the trace
		tail = 15 * 60     // after it
		tau  = 20 * 60.0   // cooling time constant after the trace, s
		gain = 100.0 / 2.0 // 2 Ah cell -> 100 Ah string
	)
	first, last := pts[0], pts[len(pts)-1]
	end := rest + int(last.t)
	var fired []peerAlert
	record, observe := h.recorder(t, &fired)
	for sec := 0; sec <= end+tail; sec += step {
		p := first
		p.amps = 0
		switch {
		case sec > end:
			p = last
			p.amps = 0
			p.temp = ambient + (last.temp-ambient)*math.Exp(-float64(sec-end)/tau)
		case sec >= rest:
			p = nasaAt(pts, float64(sec-rest))
		}
		observe(sec, ups, telemetry.AmbientTemperatureCelsius, quantise(ambient+0.05*rng.NormFloat64(), 0.1))
		observe(sec, str, telemetry.StringCurrentAmperes, quantise(p.amps*gain, 0.1))
		for _, c := range cells {
			observe(sec, c.id, telemetry.CellTemperatureCelsius, quantise(p.temp+c.offT+0.05*rng.NormFloat64(), 0.1))
			observe(sec, c.id, telemetry.CellVoltageVolts, quantise(p.volt+c.offV+0.0005*rng.NormFloat64(), 0.001))
		}
		record(h.eng.Tick(base+int64(sec+5)*int64(time.Second), nil))
	}
	return fired
}
