package detector

import (
	"math"
	"strings"
	"testing"
)

// Physics the standard simulator suite does not have, each of which made
// the default rules cry wolf in the robustness study (docs/detection.md,
// "Beyond the standard suite"): heat shared with a runaway cell's
// neighbours, coarse sensors next to a module that really moves, cells
// heating and cooling at their own pace under load, quiet voltage sensors
// after a recharge ramp, and a stuck sensor whose peers come back.

// runawayHeat is a cell's own heat in a runaway from hour 2: slow,
// quadratic precursors over two hours (to +12 °C) with a sag growing to
// 10 mV, then self-heating that doubles every 5 min up to +200 °C.
func runawayHeat(sec int) (heat, sag float64) {
	start, accel := 2*hour, 4*hour
	switch {
	case sec < start:
		return 0, 0
	case sec < accel:
		x := float64(sec-start) / float64(accel-start)
		return 12 * x * x, 0.010 * x
	}
	return math.Min(200, 12*math.Exp2(float64(sec-accel)/300)), 0.010 + 0.002*float64(sec-accel)/60
}

// sharedRunaway: target runs away and every other cell of its module gets
// share of its heat (they touch it).
func sharedRunaway(target peerCell, share float64) func(int, peerCell, *peerReading) {
	return func(sec int, c peerCell, r *peerReading) {
		heat, sag := runawayHeat(sec)
		switch {
		case c == target:
			r.temp += heat
			r.volt -= sag
		case c.str == target.str && c.mod == target.mod:
			r.temp += share * heat
		}
	}
}

// unevenDischarge: string 1 discharges for 30 min from hour 2 (2 C); each
// cell warms by 10 °C ±30 % (its internal resistance and heat capacity)
// and cools back with its own time constant (20 to 50 min), as cells at
// the edge of a rack and in its middle do.
func unevenDischarge(sec int, c peerCell, r *peerReading) {
	k := 1 + 0.3*math.Sin(float64(7*c.mod+c.idx))
	tau := 35 + 15*math.Cos(float64(5*c.mod+3*c.idx))
	start, end := 2*hour, 2*hour+hour/2
	switch {
	case sec >= start && sec < end:
		r.temp += 10 * k * ramp(sec, start, end-start)
		r.volt -= 0.05 + 0.05*k*ramp(sec, start, end-start)
	case sec >= end:
		r.temp += 10 * k * math.Exp(-float64(sec-end)/(tau*60))
	}
}

// hotModuleWithNeighbour: module 2 heats 8 °C over 30 min from hour 2,
// module 3 beside it 30 % as much.
func hotModuleWithNeighbour(sec int, c peerCell, r *peerReading) {
	heat := 8 * ramp(sec, 2*hour, hour/2)
	switch c.mod {
	case 2:
		r.temp += heat
	case 3:
		r.temp += 0.3 * heat
	}
}

func TestRobustnessToOtherPhysics(t *testing.T) {
	hot := peerCell{1, 2, 3}
	runRegCases(t, []regCase{{
		// The neighbours of a cell in runaway heat for real; their own
		// alerts would tell the one incident many times over, critical
		// ones included.
		name: "a runaway cell sharing 30 % of its heat with its module-mates",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 30, voltEvery: 30,
			physics: sharedRunaway(hot, 0.3)},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 4*hour, 60, "ThermalRunawayRisk critical "+hot.path())
			expectNone(t, cs.firings(), "alerts for the runaway cell's neighbours", func(c regChange) bool {
				return strings.Count(c.path, "/") == 3 && c.path != hot.path() // any other cell
			})
		},
	}, {
		// Behind 1 °C sensors a module's median moves by whole steps; the
		// mean of its middle half sees the climb earlier (20 min here; 23
		// with the median and its two-quanta bar).
		name: "1 °C sensors, a module warming 6 °C an hour",
		rig: regRig{strings: 1, modules: 8, cells: 12, secs: 4 * hour, tempEvery: 30, voltEvery: 30, tempStep: 1,
			physics: func(sec int, c peerCell, r *peerReading) {
				if c.mod == 5 {
					r.temp += 6 * ramp(sec, 2*hour, hour)
				}
			}},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 2*hour+21*60, math.Inf(1), "ModuleTemperatureRising warning ups-a/1/5", "ModuleTemperatureDeviation warning ups-a/1/5")
		},
	}, {
		// Every cell of a module just below a step of its 1 °C sensors:
		// 0.3 °C of warming flips them all at once.
		name: "1 °C sensors, a module whose cells all sit just below a step warms 0.3 °C",
		rig: regRig{strings: 1, modules: 8, cells: 12, secs: 5 * hour, tempEvery: 30, voltEvery: 30, tempStep: 1,
			physics: func(sec int, c peerCell, r *peerReading) {
				if c.mod == 5 {
					r.temp = 25.35 + 0.3*ramp(sec, 2*hour, hour/2)
				}
			}},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "alerts", func(regChange) bool { return true })
		},
	}, {
		// A quarter of the string warming on its own moves the peers'
		// common movement; the still modules' sensors did not move, and
		// are not stuck.
		name: "a module of four heating 8 °C: the sensors of the still modules are not stuck",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 5 * hour, tempEvery: 30, voltEvery: 30,
			physics: hotModuleWithNeighbour},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "sensor faults", func(c regChange) bool { return c.name == AlertSensorFault })
		},
	}, {
		// A hot module warms its neighbour for real; the neighbour's own
		// warming alert would be the same incident again.
		name: "a module heating 8 °C, its neighbour warming 30 % as much",
		rig: regRig{strings: 1, modules: 8, cells: 4, secs: 5 * hour, tempEvery: 30, voltEvery: 30,
			physics: hotModuleWithNeighbour},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 2*hour+15*60, math.Inf(1), "ModuleTemperatureRising warning ups-a/1/2")
			expectNone(t, cs.firings(), "alerts for the neighbouring module", func(c regChange) bool {
				return strings.HasPrefix(c.path, "ups-a/1/3")
			})
		},
	}, {
		// With 1 °C sensors most readings of a still string never change;
		// a module warming for real must not make its still peers' sensors
		// look stuck.
		name: "1 °C sensors in a room swinging ±1.5 °C a day, a module warming 8 °C while the others follow the room",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 30 * hour, tempEvery: 30, voltEvery: 30, tempStep: 1, noise: 1.6,
			room: func(sec int) float64 { return dailyRoom(sec) - 2 },
			physics: func(sec int, c peerCell, r *peerReading) {
				if c.mod == 3 {
					r.temp += 8 * ramp(sec, 20*hour, hour)
				}
			}},
		check: func(t *testing.T, cs regChanges) {
			expectFiring(t, cs, 22*hour, math.Inf(1), "ModuleTemperatureDeviation warning ups-a/1/3")
			expectNone(t, cs.firings(), "sensor faults", func(c regChange) bool { return c.name == AlertSensorFault })
		},
	}, {
		name: "1 °C sensors, a 2 C discharge: cells warm 7 to 13 °C and cool back each at its own pace",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 30, voltEvery: 30, tempStep: 1,
			current: func(sec, str int) float64 { return -200 * boolf(during(sec, 2*hour, 2*hour+hour/2)) },
			physics: unevenDischarge},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "alerts", func(regChange) bool { return true })
		},
	}, {
		name: "a 2 C discharge: cells warm 7 to 13 °C and cool back each at its own pace",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 6 * hour, tempEvery: 30, voltEvery: 30,
			current: func(sec, str int) float64 { return -200 * boolf(during(sec, 2*hour, 2*hour+hour/2)) },
			physics: unevenDischarge},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "alerts", func(regChange) bool { return true })
		},
	}, {
		// During a recharge every voltage reading changes; afterwards
		// quiet 1 mV sensors repeat their value for hours. The change rate
		// learned on the ramp must not make them "stuck".
		name: "quiet voltage sensors (0.3 mV noise) at rest after a one-hour recharge",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 12 * hour, tempEvery: 30, voltEvery: 30, noise: 0.6,
			current: func(sec, str int) float64 { return 30 * boolf(during(sec, 2*hour, 3*hour)) },
			physics: func(sec int, c peerCell, r *peerReading) {
				r.volt += 0.040*ramp(sec, 2*hour, hour) - 0.030*ramp(sec, 3*hour, 10*60)
			}},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "sensor faults", func(c regChange) bool { return c.name == AlertSensorFault })
		},
	}, {
		// A UPS self-test: a one-minute discharge, then two minutes of
		// charge. Each cell's voltage steps by its own internal
		// resistance, an aged cell's three times as far, so its residual jumps
		// for a few polls.
		name: "voltage steps of a one-minute self-test, an aged cell's three times as large, 1 mV noise",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 8 * hour, tempEvery: 30, voltEvery: 30, noise: 2,
			current: selfTest,
			physics: func(sec int, c peerCell, r *peerReading) {
				k := 1 + 0.1*math.Sin(float64(7*c.mod+c.idx))
				if c == hot {
					k = 3 // an aged cell: three times the internal resistance
				}
				r.volt += k * 0.0004 * selfTest(sec, 1)
			}},
		check: func(t *testing.T, cs regChanges) {
			expectNone(t, cs.firings(), "alerts", func(regChange) bool { return true })
		},
	}, {
		// A stuck sensor is found when its peers move; it is no less stuck
		// when they come back to where they were.
		name: "a stuck sensor while the room warms 3 °C for two hours and cools back",
		rig: regRig{strings: 1, modules: 4, cells: 8, secs: 10 * hour, tempEvery: 30, voltEvery: 30, tempStep: 1,
			room:   func(sec int) float64 { return 23 + 3*ramp(sec, 3*hour, hour) - 3*ramp(sec, 5*hour, hour) },
			sensor: stuckFrom(hot, 2*hour)},
		check: func(t *testing.T, cs regChanges) {
			key := "SensorFault warning " + hot.path()
			expectFiring(t, cs, 5*hour, math.Inf(1), key)
			expectNone(t, cs, "the stuck sensor's fault resolved", func(c regChange) bool {
				return c.key == key && c.status == StatusResolved
			})
		},
	}})
}

// selfTest is a string's current in a UPS self-test every two hours from
// hour 2: -60 A for a minute, then +20 A for two.
func selfTest(sec, _ int) float64 {
	at := sec % (2 * hour)
	switch {
	case sec < 2*hour:
		return 0
	case at < 60:
		return -60
	case at < 180:
		return 20
	}
	return 0
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
