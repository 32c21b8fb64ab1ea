package detector

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Regression tests for the defects a review found in the peer-relative
// rules. Each case replays a synthetic UPS "ups-a" the way the replay
// driver does (samples in time order, Tick with the previous event time
// whenever time advances, a last Tick at the end) and asserts on the alert
// changes a user would see. Cells rest 2 °C above the room with a fixed
// offset each, read with a little seeded noise, quantised to 0.1 °C and
// 1 mV; faults start after at least two hours of normal readings.

// regRig describes a synthetic UPS and what happens to it. Cells are the
// peerCell of peers_test.go; their paths are ups-a/<str>/<mod>/<idx>.
type regRig struct {
	strings, modules, cells int // strings of modules x cells
	secs                    int // length of the run, seconds
	// tempEvery and voltEvery are the seconds between temperature and
	// between voltage readings; the string currents come with the
	// voltages, the ambient with the temperatures.
	tempEvery, voltEvery int
	noAmbient            bool // the UPS has no ambient sensor
	// tempStep is the temperature sensors' resolution (0: 0.1 °C);
	// noise scales the sensors' noise (0: 1, that is 0.05 °C and 0.5 mV).
	tempStep, noise float64
	room            func(sec int) float64 // nil: 23 °C
	// current is string str's current (A). nil: idle.
	current func(sec, str int) float64
	// physics changes a cell's true readings, before noise and
	// quantisation; sensor changes what the BMS reports (NaN: nothing is
	// reported). nil: none.
	physics, sensor func(sec int, c peerCell, r *peerReading)
}

// regChange is one alert change as a user sees it.
type regChange struct {
	sec    int // seconds since the start of the run
	status Status
	key    string // "Name severity entity", as peerAlert.key
	name   string
	sev    Severity
	path   string
	value  float64
}

type regChanges []regChange

// run replays the rig through an engine with the default configuration
// and returns every alert change, resolutions included.
func (r regRig) run(t *testing.T) regChanges {
	t.Helper()
	room, current, physics, sensor := r.room, r.current, r.physics, r.sensor
	if room == nil {
		room = func(int) float64 { return 23 }
	}
	if current == nil {
		current = idle
	}
	if physics == nil {
		physics = func(int, peerCell, *peerReading) {}
	}
	if sensor == nil {
		sensor = func(int, peerCell, *peerReading) {}
	}
	tempStep, noise := cmp.Or(r.tempStep, 0.1), cmp.Or(r.noise, 1)
	h := newHarness(t, DefaultConfig(), nil)
	rng := rand.New(rand.NewPCG(45, 2026))
	cells, strs := layoutRig(h, rng, r.strings, r.modules, r.cells)
	ups := h.id("ups-a")
	var got regChanges
	record := func(cs []Change) {
		for _, c := range cs {
			rc := regChange{sec: int((c.Time - base) / int64(time.Second)), status: c.Status, name: c.Name, sev: c.Severity,
				path: h.reg.Info(c.Entity).Entity.Path(), value: c.Value}
			rc.key = fmt.Sprintf("%s %s %s", c.Name, c.Severity, rc.path)
			// Shown when a case fails: the whole story.
			t.Logf("%6ds %s %s (value %.3f): %s", rc.sec, c.Status, rc.key, c.Value, c.Summary)
			got = append(got, rc)
		}
	}
	// feed is the replay driver's loop body.
	var watermark int64
	started := false
	feed := func(sec int, id telemetry.EntityID, m telemetry.Metric, v float64) {
		ts := base + int64(sec)*int64(time.Second)
		if started && ts > watermark {
			record(h.eng.Tick(watermark, nil))
		}
		watermark, started = ts, true
		record(h.eng.Observe(telemetry.Sample{Time: ts, Entity: id, Metric: m, Value: v}, nil))
	}
	step := gcd(r.tempEvery, r.voltEvery)
	for sec := 0; sec < r.secs; sec += step {
		temps, volts := sec%r.tempEvery == 0, sec%r.voltEvery == 0
		amb := quantise(room(sec)+0.05*rng.NormFloat64(), 0.1)
		if temps && !r.noAmbient {
			feed(sec, ups, telemetry.AmbientTemperatureCelsius, amb)
		}
		for s, id := range strs {
			a := quantise(current(sec, s+1)+0.1*rng.NormFloat64(), 0.1)
			if volts {
				feed(sec, id, telemetry.StringCurrentAmperes, a)
			}
		}
		for _, cs := range cells {
			rd := peerReading{temp: room(sec) + 2 + cs.offT, volt: 3.95 + cs.offV}
			physics(sec, cs.c, &rd)
			rd.temp = quantise(rd.temp+noise*0.05*rng.NormFloat64(), tempStep)
			rd.volt = quantise(rd.volt+noise*0.0005*rng.NormFloat64(), 0.001)
			sensor(sec, cs.c, &rd)
			if temps && !math.IsNaN(rd.temp) {
				feed(sec, cs.id, telemetry.CellTemperatureCelsius, rd.temp)
			}
			if volts && !math.IsNaN(rd.volt) {
				feed(sec, cs.id, telemetry.CellVoltageVolts, rd.volt)
			}
		}
	}
	if started {
		record(h.eng.Tick(watermark, nil))
	}
	return got
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// firings are the changes that start an alert.
func (cs regChanges) firings() regChanges {
	return cs.where(func(c regChange) bool { return c.status == StatusFiring })
}

// where returns the changes keep accepts.
func (cs regChanges) where(keep func(regChange) bool) regChanges {
	var out regChanges
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// keys lists the changes as "+<sec>s <status> <key>".
func (cs regChanges) keys() []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("+%ds %s %s", c.sec, c.status, c.key))
	}
	return out
}

// firingAt lists the alerts firing at second sec.
func (cs regChanges) firingAt(sec int) []string {
	state := map[string]bool{}
	for _, c := range cs.where(func(c regChange) bool { return c.sec <= sec }) {
		state[c.key] = c.status == StatusFiring
	}
	var out []string
	for k, on := range state {
		if on {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// expectFiring asserts that one of keys fires no later than second by,
// with a value below maxValue (the reading, for the temperature alerts).
func expectFiring(t *testing.T, cs regChanges, by int, maxValue float64, keys ...string) {
	t.Helper()
	hit := cs.firings().where(func(c regChange) bool {
		return slices.Contains(keys, c.key) && c.sec <= by && c.value < maxValue
	})
	if len(hit) == 0 {
		t.Errorf("none of %q fired by +%ds with a value below %g; changes: %q", keys, by, maxValue, cs.keys())
	}
}

// expectNone asserts that no change is one of the kind what describes.
func expectNone(t *testing.T, cs regChanges, what string, bad func(regChange) bool) {
	t.Helper()
	if hit := cs.where(bad); len(hit) > 0 {
		t.Errorf("%s: %q", what, hit.keys())
	}
}

// heatingWithSag: from hour 2 the cell warms 0.1 °C/min and its voltage
// sags, growing to 10 mV over the first hour.
func heatingWithSag(sec int, r *peerReading) {
	r.temp += 0.1 * math.Max(0, float64(sec-2*hour)/60)
	r.volt -= 0.010 * ramp(sec, 2*hour, hour)
}

// heatingDeadline is the earliest second heatingWithSag can bring a cell
// (at most 26 °C before) to 60 °C.
const heatingDeadline = 2*hour + 340*60

// discharge is -100 A on string 1 for 30 min from hour 2.
func discharge(sec, str int) float64 {
	if str == 1 && during(sec, 2*hour, 2*hour+hour/2) {
		return -100
	}
	return 0
}

// loadHeat is a cell's warming by the discharge: rising linearly to rise
// °C at the end of the load, then cooling back with a 35 min time
// constant.
func loadHeat(sec int, rise float64) float64 {
	start, end := 2*hour, 2*hour+hour/2
	switch {
	case sec >= start && sec < end:
		return rise * ramp(sec, start, end-start)
	case sec >= end:
		return rise * math.Exp(-float64(sec-end)/(35*60))
	}
	return 0
}

// expectNotFiringAt asserts that no alert called name is firing at
// second sec.
func expectNotFiringAt(t *testing.T, cs regChanges, sec int, name string) {
	t.Helper()
	firing := cs.where(func(c regChange) bool { return c.name == name }).firingAt(sec)
	if len(firing) > 0 {
		t.Errorf("still firing at +%ds: %q", sec, firing)
	}
}

// highIRCell: string 1 discharges; every cell warms about warm °C (±5 %)
// and sags 50 to 100 mV, target warms 35 % more and sags 20 mV more.
func highIRCell(target peerCell, warm float64) func(int, peerCell, *peerReading) {
	return func(sec int, c peerCell, r *peerReading) {
		k := 1 + 0.05*math.Sin(float64(7*c.mod+c.idx))
		heat, sag := k, 0.0
		if c == target {
			heat, sag = 1.35, 0.020
		}
		r.temp += loadHeat(sec, warm*heat)
		if during(sec, 2*hour, 2*hour+hour/2) {
			r.volt -= k*(0.05+0.05*ramp(sec, 2*hour, hour/2)) + sag
		}
	}
}

// neighbourHeat: string 1 warms 15 °C with its discharge, string 2 by
// neighbour °C with it.
func neighbourHeat(neighbour float64) func(int, peerCell, *peerReading) {
	return func(sec int, c peerCell, r *peerReading) {
		rise := map[int]float64{1: 15, 2: neighbour}[c.str]
		r.temp += loadHeat(sec, rise)
	}
}

func noCritical(t *testing.T, cs regChanges) {
	t.Helper()
	expectNone(t, cs.firings(), "critical alerts", func(c regChange) bool { return c.sev == SeverityCritical })
}

func noCooling(t *testing.T, cs regChanges) {
	t.Helper()
	expectNone(t, cs, "cooling failures", func(c regChange) bool { return c.name == AlertCoolingFailure })
}

// regCase is a rig and what a user must see from it.
type regCase struct {
	name  string
	rig   regRig
	check func(t *testing.T, cs regChanges)
}

// runRegCases runs each case as a subtest.
func runRegCases(t *testing.T, cases []regCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, tc.rig.run(t))
		})
	}
}

func TestReviewRegressions(t *testing.T) {
	hot := peerCell{1, 2, 3}
	hotPath := hot.path()
	runaway := "ThermalRunawayRisk critical " + hotPath
	runRegCases(t, []regCase{{
		// Rules stepped on every poll, so a voltage-only poll reset the
		// runaway rule's hold before it could fire.
		name: "mixed cadence: voltages every 10 s, temperatures every 60 s, one cell heating and sagging",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 60, voltEvery: 10,
			physics: only(hot, heatingWithSag)},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, heatingDeadline, 60, runaway)
			expectNone(t, cs.firings(), "alerts for other entities", func(c regChange) bool { return c.path != hotPath })
		},
	}, {
		// A rise of more than max_jump_celsius per reading was held back
		// as a possible spike for ever.
		name: "fast real rise: 7 °C every 10 s from hour 2 up to 300 °C, read every 30 s",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 3 * hour, tempEvery: 30, voltEvery: 30,
			physics: only(hot, func(sec int, r *peerReading) {
				if sec >= 2*hour {
					r.temp = math.Min(300, r.temp+0.7*float64(sec-2*hour))
				}
			})},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 2*hour+3*60, math.Inf(1), runaway, "CellOverTemperature critical "+hotPath)
			expectNone(t, cs, "runaway risk resolved while the cell is hot", func(c regChange) bool {
				return c.key == runaway && c.status == StatusResolved
			})
		},
	}, {
		// A step sat in the last third of the window and looked like an
		// accelerating rise.
		name: "a temperature sensor's offset shifts by +4 °C at once",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 5 * hour, tempEvery: 10, voltEvery: 10,
			sensor: only(hot, func(sec int, r *peerReading) {
				if sec >= 2*hour {
					r.temp += 4
				}
			})},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs, "runaway risk for an offset step", func(c regChange) bool { return c.name == AlertThermalRunawayRisk })
		},
	}, {
		// Under load a cell with a higher internal resistance sags and
		// warms faster than its peers by nature. At ~5 °C its extra
		// 1.75 °C stays under the runaway rule's "somewhat hotter" bar (0.7
		// x 3 °C), so only the ~7 °C discharge tells the old rule (sag
		// counted under load) from the fixed one.
		name:  "discharge warming the cells ~5 °C, a higher-internal-resistance cell 35 % more",
		rig:   regRig{strings: 1, modules: 4, cells: 8, secs: 5 * hour, tempEvery: 10, voltEvery: 10, current: discharge, physics: highIRCell(hot, 5)},
		check: noCritical,
	}, {
		name:  "discharge warming the cells ~7 °C, a higher-internal-resistance cell 35 % more",
		rig:   regRig{strings: 1, modules: 4, cells: 8, secs: 5 * hour, tempEvery: 10, voltEvery: 10, current: discharge, physics: highIRCell(hot, 7)},
		check: noCritical,
	}, {
		// A loaded string counted in the room's verdict: its rise made the
		// strings' median, while the resting string alone made the
		// "half of the strings warming" quorum.
		name:  "UPS without an ambient sensor, one string discharging while the other rests",
		rig:   regRig{strings: 2, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 10, voltEvery: 10, noAmbient: true, current: discharge, physics: neighbourHeat(0)},
		check: noCooling,
	}, {
		name:  "UPS without an ambient sensor, one string discharging while the other rests, warmed 4 °C by its neighbour",
		rig:   regRig{strings: 2, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 10, voltEvery: 10, noAmbient: true, current: discharge, physics: neighbourHeat(4)},
		check: noCooling,
	}, {
		// A firing CoolingFailure froze its normal for ever: a new
		// setpoint was a failure for ever, inhibiting the cell rules.
		name: "a permanent HVAC setpoint change: ambient and cells +6 °C at hour 12",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 60 * hour, tempEvery: 30, voltEvery: 30,
			room: func(sec int) float64 { return 23 + 6*ramp(sec, 12*hour, 10*60) },
			physics: only(hot, func(sec int, r *peerReading) {
				r.temp += 4 * ramp(sec, 48*hour, hour/2)
			})},
		check: func(t *testing.T, cs regChanges) {
			cooling := func(c regChange) bool { return c.name == AlertCoolingFailure }
			expectNotFiringAt(t, cs, 28*hour, AlertCoolingFailure) // 16 h after the change
			expectNone(t, cs.firings(), "cooling failures after hour 28", func(c regChange) bool { return cooling(c) && c.sec > 28*hour })
			expectNone(t, cs.firings(), "string-level cooling failures", func(c regChange) bool { return cooling(c) && c.path == "ups-a/1" })
			expectFiring(t, cs.where(func(c regChange) bool { return c.sec >= 48*hour }), 50*hour, math.Inf(1),
				"CellTemperatureDeviation warning "+hotPath)
		},
	}, {
		// A one-cell module is "hot as a whole" with its cell, so the cell
		// never stood out from its module.
		name: "modules of one cell each: one cell heating and sagging",
		rig: regRig{strings: 1, modules: 16, cells: 1, secs: 6 * hour, tempEvery: 10, voltEvery: 10,
			physics: only(peerCell{1, 5, 1}, heatingWithSag)},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, heatingDeadline, 60, "ThermalRunawayRisk critical ups-a/1/5/1")
		},
	}, {
		// A poll without enough peers left the last residual in place,
		// and the rules judged it again and again.
		name: "fewer than min_peers temperatures after a deviation, then the string warms evenly to 60 °C",
		rig: regRig{strings: 1, modules: 1, cells: 4, secs: 8 * hour, tempEvery: 10, voltEvery: 10,
			physics: func(sec int, c peerCell, r *peerReading) {
				r.temp += 35 * ramp(sec, 4*hour+hour/2, 2*hour)
				if c.idx == 2 {
					r.temp += 5 * ramp(sec, 2*hour, 90*60) // slowly: no acceleration
				}
			},
			sensor: only(peerCell{1, 1, 4}, func(sec int, r *peerReading) {
				if sec >= 4*hour {
					r.temp = math.NaN()
				}
			})},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 4*hour, math.Inf(1), "CellTemperatureDeviation warning ups-a/1/1/2")
			expectNone(t, cs, "runaway risk", func(c regChange) bool { return c.name == AlertThermalRunawayRisk })
		},
	}})
}
