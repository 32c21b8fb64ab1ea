package detector

import (
	"math"
	"math/rand/v2"
	"testing"
)

// A string of only three modules still has a module peer group: a module
// whose fan fails is found by the module rules, once, rather than by each
// of its cells' deviations hours later.
func TestThreeModuleStringHotModule(t *testing.T) {
	fan := func(sec int, c peerCell, r *peerReading) {
		if c.mod == 2 {
			r.temp += 6 * ramp(sec, 2*hour, hour/3)
		}
	}
	fired, _ := peerRig{strings: 1, hours: 4, modules: 3, physics: fan}.run(t)
	checkAlerts(t, fired, []string{"ModuleTemperatureRising warning ups-a/1/2", "ModuleTemperatureDeviation warning ups-a/1/2"},
		[]string{"CellTemperatureDeviation warning ups-a/1/2/1"})
	for _, a := range fired {
		if a.key() == "ModuleTemperatureRising warning ups-a/1/2" && a.sec-2*hour > 20*60 {
			t.Errorf("ModuleTemperatureRising %d s after the fan failed, want at most 1200 s", a.sec-2*hour)
		}
	}
}

// Under load the modules of a string warm at their own pace. With three
// modules the spread of those paces is too rough to judge by, so a module
// that warms 30 % faster than the other two through a short, heavy
// discharge test (10 min: 7 °C against their 5.4 °C), and cools back
// after it, pages nothing.
func TestThreeModuleStringUnderLoad(t *testing.T) {
	const from, over = 2 * hour, 10 * 60
	heat := func(sec int) float64 { // Joule heat of the test, °C
		switch {
		case sec < from:
			return 0
		case sec < from+over:
			return 27 * (1 - math.Exp(-float64(sec-from)/(45*60)))
		default:
			peak := 27 * (1 - math.Exp(-float64(over)/(45*60)))
			return peak * math.Exp(-float64(sec-from-over)/(45*60))
		}
	}
	pace := func(sec int, c peerCell, r *peerReading) {
		f := 1.0
		if c.mod == 1 {
			f = 1.3
		}
		r.temp += f * heat(sec)
	}
	test := func(sec, _ int) float64 {
		if sec >= from && sec < from+over {
			return -200
		}
		return 0
	}
	fired, _ := peerRig{strings: 1, hours: 5, modules: 3, physics: pace, current: test}.run(t)
	checkAlerts(t, fired, nil, nil)
}

// A voltage sensor gone noisy (σ 15 mV, some twenty-five times its
// peers') is flagged; one five times as noisy as its peers (σ 3 mV, which
// cheap healthy BMS channels show) is not.
func TestNoisyVoltageSensor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sigma float64
		want  []string
	}{
		{"σ 15 mV", 0.015, []string{"SensorFault warning ups-a/1/2/2"}},
		{"σ 3 mV", 0.003, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			rig := peerRig{strings: 1, hours: 4, sensor: only(peerCell{1, 2, 2}, func(sec int, r *peerReading) {
				if sec >= 2*hour {
					r.volt = quantise(r.volt+tc.sigma*rng.NormFloat64(), 0.001)
				}
			})}
			fired, _ := rig.run(t)
			checkAlerts(t, fired, tc.want, nil)
		})
	}
}
