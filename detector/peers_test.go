package detector

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// The peer-relative rules, tested on synthetic strings: a UPS "ups-a" with
// an ambient sensor and one or two strings of 4 modules x 8 cells, polled
// every 30 s. Every cell sits at a fixed offset from its peers (position,
// sensor calibration) and reads with a little noise, quantised to 0.1 °C
// and 1 mV, as a BMS reports it. Faults start at hour 2, after two hours of
// normal readings from which the detector learns the cells.

// peerCell is one cell of the synthetic UPS; all numbers are 1-based.
type peerCell struct{ str, mod, idx int }

func (c peerCell) path() string { return fmt.Sprintf("ups-a/%d/%d/%d", c.str, c.mod, c.idx) }

// peerReading is a cell's temperature (°C) and voltage (V) at one poll.
type peerReading struct{ temp, volt float64 }

// peerRig describes a synthetic UPS and what happens to it.
type peerRig struct {
	strings int // strings of 4 x 8 cells
	hours   int // length of the run
	// room is the room temperature at second sec: the ambient sensor reads
	// it, and the cells rest 2 °C above it. nil: dailyRoom.
	room func(sec int) float64
	// current is string str's current (A) at second sec. nil: idle.
	current func(sec, str int) float64
	// physics changes a cell's true temperature and voltage, before sensor
	// noise and quantisation. nil: none.
	physics func(sec int, c peerCell, r *peerReading)
	// sensor changes what the BMS reports, after noise and quantisation.
	// nil: none.
	sensor func(sec int, c peerCell, r *peerReading)
	// noAmbient: the UPS reports no ambient temperature.
	noAmbient bool
	// ambEvery: seconds between ambient readings (0: every poll).
	ambEvery int
	// noCurrent: the BMS reports no string current (current only shapes
	// the physics, through physics). currentUntil, when set, is the second
	// from which it reports none.
	noCurrent    bool
	currentUntil int
	// voltageOnly: the BMS reports its cells' voltages and no cell
	// temperatures.
	voltageOnly bool
	// modules per string; 0: 4.
	modules int
	// config changes the default configuration. nil: none.
	config func(*Config)
}

const (
	pollEvery = 30 // seconds
	hour      = 3600
)

// dailyRoom is a room at 25 °C ± 1.5 °C over the day.
func dailyRoom(sec int) float64 { return 25 + 1.5*math.Sin(2*math.Pi*float64(sec)/(24*hour)) }

func idle(int, int) float64 { return 0 }

// ramp goes from 0 at second from to 1 at from+over, and stays at 1.
func ramp(sec, from, over int) float64 {
	return math.Max(0, math.Min(1, float64(sec-from)/float64(over)))
}

// quantise rounds v to a multiple of q (0.1, 0.001), as a BMS's decimal
// register reads.
func quantise(v, q float64) float64 { return math.Round(v/q) / math.Round(1/q) }

// peerAlert is one alert that fired.
type peerAlert struct {
	name    string
	sev     Severity
	path    string // the entity
	summary string
	sec     int // when it fired, seconds after base
}

// key is "Name severity entity", how the tests name an alert.
func (a peerAlert) key() string { return fmt.Sprintf("%s %s %s", a.name, a.sev, a.path) }

// run feeds the rig's readings to an engine with the default configuration
// and returns the alerts that fired, in order, and the engine's counts.
func (r peerRig) run(t *testing.T) ([]peerAlert, Stats) {
	t.Helper()
	room, current, physics, sensor := r.room, r.current, r.physics, r.sensor
	if room == nil {
		room = dailyRoom
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
	cfg := DefaultConfig()
	if r.config != nil {
		r.config(&cfg)
	}
	h := newHarness(t, cfg, nil)
	rng := rand.New(rand.NewPCG(4, 2026))
	cells, strs := layoutRig(h, rng, r.strings, cmp.Or(r.modules, 4), 8)
	ups := h.id("ups-a")
	var fired []peerAlert
	var st Stats
	record, observe := h.recorder(t, &fired)
	for sec := 0; sec < r.hours*hour; sec += pollEvery {
		amb := quantise(room(sec)+0.05*rng.NormFloat64(), 0.1)
		if !r.noAmbient && (r.ambEvery == 0 || sec%r.ambEvery == 0) {
			observe(sec, ups, telemetry.AmbientTemperatureCelsius, amb)
		}
		for s, id := range strs {
			if i := quantise(current(sec, s+1)+0.1*rng.NormFloat64(), 0.1); !r.noCurrent && (r.currentUntil == 0 || sec < r.currentUntil) {
				observe(sec, id, telemetry.StringCurrentAmperes, i)
			}
		}
		for _, cs := range cells {
			rd := peerReading{temp: room(sec) + 2 + cs.offT, volt: 3.95 + cs.offV}
			physics(sec, cs.c, &rd)
			rd.temp = quantise(rd.temp+0.05*rng.NormFloat64(), 0.1)
			rd.volt = quantise(rd.volt+0.0005*rng.NormFloat64(), 0.001)
			sensor(sec, cs.c, &rd)
			if !r.voltageOnly {
				observe(sec, cs.id, telemetry.CellTemperatureCelsius, rd.temp)
			}
			observe(sec, cs.id, telemetry.CellVoltageVolts, rd.volt)
		}
		record(h.eng.Tick(base+int64(sec+10)*int64(time.Second), nil))
		st = h.eng.Stats()
	}
	return fired, st
}

// rigCell is one cell of a synthetic rig with its fixed offsets from the
// rig's nominal temperature and voltage.
type rigCell struct {
	c          peerCell
	id         telemetry.EntityID
	offT, offV float64
}

// layoutRig registers strings of modules x cells under ups-a, drawing each
// cell's offsets from rng in path order, and returns the cells and the
// strings' ids.
func layoutRig(h *harness, rng *rand.Rand, strings, modules, cells int) ([]rigCell, []telemetry.EntityID) {
	var cs []rigCell
	var strs []telemetry.EntityID
	for s := 1; s <= strings; s++ {
		strs = append(strs, h.id(fmt.Sprintf("ups-a/%d", s)))
		for m := 1; m <= modules; m++ {
			for i := 1; i <= cells; i++ {
				c := peerCell{s, m, i}
				cs = append(cs, rigCell{c: c, id: h.id(c.path()), offT: rng.Float64()*2 - 1, offV: rng.Float64()*0.01 - 0.005})
			}
		}
	}
	return cs, strs
}

// recorder returns record, which logs every change (resolutions included,
// shown when a case fails: the whole story) and appends the alerts that
// fired to *fired, and observe, which feeds a sample sec seconds after base
// and records what it changes.
func (h *harness) recorder(t *testing.T, fired *[]peerAlert) (record func([]Change),
	observe func(sec int, id telemetry.EntityID, m telemetry.Metric, v float64)) {
	record = func(cs []Change) {
		for _, c := range cs {
			path := h.reg.Info(c.Entity).Entity.Path()
			t.Logf("%6ds %s %s %s %s: %s", (c.Time-base)/int64(time.Second), c.Status, c.Name, c.Severity, path, c.Summary)
			if c.Status == StatusFiring {
				*fired = append(*fired, peerAlert{c.Name, c.Severity, path, c.Summary, int((c.Time - base) / int64(time.Second))})
			}
		}
	}
	observe = func(sec int, id telemetry.EntityID, m telemetry.Metric, v float64) {
		record(h.eng.Observe(telemetry.Sample{Time: base + int64(sec)*int64(time.Second), Entity: id, Metric: m, Value: v}, nil))
	}
	return record, observe
}

// checkAlerts asserts that the alerts of want fired once each, in that
// order, those of may at most once each, and nothing else.
func checkAlerts(t *testing.T, fired []peerAlert, want, may []string) {
	t.Helper()
	var got, other []string
	count := map[string]int{}
	for _, a := range fired {
		k := a.key()
		count[k]++
		switch {
		case slices.Contains(want, k):
			got = append(got, k)
		case !slices.Contains(may, k):
			other = append(other, k)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("fired %q, want %q", got, want)
	}
	if len(other) > 0 {
		t.Errorf("unexpected alerts fired: %q", other)
	}
	for _, k := range may {
		if count[k] > 1 {
			t.Errorf("%s fired %d times, want at most once", k, count[k])
		}
	}
}

// checkSummaries asserts that the summary of every firing of an alert in
// want contains the given phrases.
func checkSummaries(t *testing.T, fired []peerAlert, want map[string][]string) {
	t.Helper()
	for _, a := range fired {
		for _, phrase := range want[a.key()] {
			if !strings.Contains(a.summary, phrase) {
				t.Errorf("%s: summary %q does not say %q", a.key(), a.summary, phrase)
			}
		}
	}
}

// healthyDischarge is a 30 min discharge at 50 A from hour 5, then a
// recharge at 25 A for an hour.
func healthyDischarge(sec, _ int) float64 {
	switch {
	case sec >= 5*hour && sec < 5*hour+hour/2:
		return -50
	case sec >= 5*hour+hour/2 && sec < 6*hour+hour/2:
		return 25
	}
	return 0
}

// dischargePhysics: during healthyDischarge every cell warms 5 °C, each at
// a slightly different rate (±10 %), and cools back with a 35 min time
// constant; the voltage sags with the load (each cell's internal resistance
// a little different) and rises while charging.
func dischargePhysics(sec int, c peerCell, r *peerReading) {
	k := 1 + 0.1*math.Sin(float64(7*c.mod+c.idx+3*c.str))
	start, end := 5*hour, 5*hour+hour/2
	switch {
	case sec >= start && sec < end:
		r.temp += 5 * k * ramp(sec, start, end-start)
		r.volt -= k * (0.03 + 0.08*ramp(sec, start, end-start))
	case sec >= end:
		r.temp += 5 * k * math.Exp(-float64(sec-end)/(35*60))
		r.volt += k * 0.03 * (1 - ramp(sec, end, hour)) * (1 - ramp(sec, end+hour, 60))
	}
}

// only applies f to cell target.
func only(target peerCell, f func(sec int, r *peerReading)) func(int, peerCell, *peerReading) {
	return func(sec int, c peerCell, r *peerReading) {
		if c == target {
			f(sec, r)
		}
	}
}

func TestPeerRules(t *testing.T) {
	drifting := peerCell{1, 2, 3}
	lowVolt := peerCell{1, 3, 5}
	hotSag := peerCell{1, 1, 4}
	sentinel := peerCell{1, 1, 5}
	spiky := peerCell{1, 4, 2}
	stuck := peerCell{1, 2, 6}
	cases := []struct {
		name    string
		rig     peerRig
		want    []string // fire once each, in this order
		may     []string // fire at most once each
		summary map[string][]string
		spikes  int64 // Stats().Spikes at the end
	}{{
		name: "healthy strings over 12 h with a daily cycle, a discharge and its recharge",
		rig:  peerRig{strings: 2, hours: 12, current: healthyDischarge, physics: dischargePhysics},
	}, {
		// Nothing says the string carries load: its cells' median voltage
		// drops at the discharge's start and stays low through the
		// recharge, and the recharge's 30 mV above float is not an
		// overcharge.
		name: "no string current: the same discharge and recharge page nothing",
		rig:  peerRig{strings: 2, hours: 12, current: healthyDischarge, physics: dischargePhysics, noCurrent: true},
	}, {
		name: "no string current, 10 mV voltage sensors: the same discharge and recharge page nothing",
		rig: peerRig{strings: 2, hours: 12, current: healthyDischarge, physics: dischargePhysics, noCurrent: true,
			sensor: func(_ int, _ peerCell, r *peerReading) { r.volt = quantise(r.volt, 0.01) }},
	}, {
		// With load never inferred, the normal still does not learn the
		// discharge: the recharge, 15 mV above float, pages nothing.
		name: "no string current, load_step_volts 0: a discharge and a recharge 15 mV above float page no overcharge",
		rig: peerRig{strings: 2, hours: 12, current: healthyDischarge, noCurrent: true,
			config: func(c *Config) { c.Peers.LoadStepVolts = 0 },
			physics: func(sec int, c peerCell, r *peerReading) {
				if start, end := 5*hour, 5*hour+hour/2; sec >= start && sec < end {
					r.volt -= 0.03 + 0.15*ramp(sec, start, end-start)
				} else if sec >= end && sec < end+hour {
					r.volt += 0.015
				}
			}},
	}, {
		// Its normal does not learn while the string counts as under
		// load, so a low voltage may keep it so only for a while after
		// the drop (inferredLowMax): otherwise the precursor's sag and
		// warming would not count, for good.
		name: "no string current: a float lowered 40 mV for good does not hide a runaway precursor 6 h later",
		rig:  peerRig{strings: 1, hours: 12, noCurrent: true, physics: loweredFloat(hotSag, 0, 8*hour)},
		want: []string{"ThermalRunawayRisk critical ups-a/1/1/4"},
		may:  []string{"CellTemperatureRising warning ups-a/1/1/4"},
	}, {
		// A current register that stops answering: 15 min later the
		// load is inferred (currentFresh), in time for a discharge an
		// hour later.
		// (The strings' own readings stop: that is TelemetryStale.)
		name: "string current reported until hour 4 only: a discharge and recharge at hour 5 page no overcharge",
		rig:  peerRig{strings: 2, hours: 12, current: healthyDischarge, physics: dischargePhysics, currentUntil: 4 * hour},
		may:  []string{"TelemetryStale warning ups-a/1", "TelemetryStale warning ups-a/2"},
	}, {
		// Dips from a lowered float start no load of their own.
		name: "no string current: a float lowered 40 mV, dipping 8 mV for a poll every 3 h, does not hide a runaway precursor",
		rig:  peerRig{strings: 1, hours: 14, noCurrent: true, physics: loweredFloat(hotSag, 3*hour, 11*hour)},
		want: []string{"ThermalRunawayRisk critical ups-a/1/1/4"},
		may:  []string{"CellTemperatureRising warning ups-a/1/1/4"},
	}, {
		// A dip from above the normal is no discharge: it must not hold
		// back the overcharge it interrupts.
		name: "no string current: a string 50 mV high, dipping 8 mV for a poll every 2 h, is found",
		rig: peerRig{strings: 2, hours: 12, noCurrent: true, physics: func(sec int, c peerCell, r *peerReading) {
			if c.str == 2 {
				r.volt += 0.050 * ramp(sec, 4*hour, 30*60)
				if sec >= 4*hour && (sec-4*hour-600)%(2*hour) == 0 {
					r.volt -= 0.008
				}
			}
		}},
		want: []string{"ChargeVoltageHigh warning ups-a/2"},
	}, {
		// A charger's constant-voltage phase above float, long after the
		// discharge (rechargeHold).
		name: "no string current: a recharge that holds the cells 35 mV above float for 2.5 h pages nothing",
		rig: peerRig{strings: 2, hours: 12, noCurrent: true, physics: func(sec int, c peerCell, r *peerReading) {
			start, end := 5*hour, 5*hour+hour/2
			switch {
			case sec >= start && sec < end:
				r.volt -= 0.03 + 0.08*ramp(sec, start, end-start)
			case sec >= end && sec < end+hour:
				r.volt += -0.08 + 0.115*ramp(sec, end, hour)
			case sec >= end+hour && sec < 8*hour:
				r.volt += 0.035
			}
		}},
	}, {
		name: "one cell drifting +0.5 °C per 10 min from hour 2",
		rig: peerRig{strings: 1, hours: 5, physics: only(drifting, func(sec int, r *peerReading) {
			r.temp += 0.5 * math.Max(0, float64(sec-2*hour)/600)
		})},
		want: []string{"CellTemperatureDeviation warning ups-a/1/2/3"},
		may:  []string{"CellTemperatureRising warning ups-a/1/2/3", "ThermalRunawayRisk critical ups-a/1/2/3"},
	}, {
		name: "cell voltage drifting 30 mV below its peers over 30 min",
		rig: peerRig{strings: 1, hours: 4, physics: only(lowVolt, func(sec int, r *peerReading) {
			r.volt -= 0.030 * ramp(sec, 2*hour, hour/2)
		})},
		want: []string{"CellVoltageDeviation warning ups-a/1/3/5"},
	}, {
		name: "voltages only: a cell drifting 30 mV below its peers is found",
		rig: peerRig{strings: 1, hours: 4, voltageOnly: true, physics: only(lowVolt, func(sec int, r *peerReading) {
			r.volt -= 0.030 * ramp(sec, 2*hour, hour/2)
		})},
		want: []string{"CellVoltageDeviation warning ups-a/1/3/5"},
	}, {
		// Readings near a step flip between its neighbours, which is
		// neither noise nor, for readings that never leave their step,
		// a stuck sensor.
		name: "10 mV voltage sensors over a discharge and its recharge: nothing pages",
		rig: peerRig{strings: 2, hours: 12, current: healthyDischarge, physics: dischargePhysics,
			sensor: func(_ int, _ peerCell, r *peerReading) { r.volt = quantise(r.volt, 0.01) }},
	}, {
		name: "5 mV voltage sensors at rest: nothing pages",
		rig: peerRig{strings: 2, hours: 6,
			sensor: func(_ int, _ peerCell, r *peerReading) { r.volt = quantise(r.volt, 0.005) }},
	}, {
		name: "10 mV voltage sensors: a cell drifting 60 mV below its peers is found",
		rig: peerRig{strings: 1, hours: 4, physics: only(lowVolt, func(sec int, r *peerReading) {
			r.volt -= 0.060 * ramp(sec, 2*hour, hour/2)
		}), sensor: func(_ int, _ peerCell, r *peerReading) { r.volt = quantise(r.volt, 0.01) }},
		want: []string{"CellVoltageDeviation warning ups-a/1/3/5"},
	}, {
		name: "hot cell (+4 °C) that sags 20 mV",
		rig: peerRig{strings: 1, hours: 4, physics: only(hotSag, func(sec int, r *peerReading) {
			r.temp += 4 * ramp(sec, 2*hour, 15*60)
			r.volt -= 0.020 * ramp(sec, 2*hour, 15*60)
		})},
		want: []string{
			"ThermalRunawayRisk critical ups-a/1/1/4",
			"CellTemperatureDeviation warning ups-a/1/1/4",
			"CellVoltageDeviation warning ups-a/1/1/4",
		},
		may: []string{"CellTemperatureRising warning ups-a/1/1/4"},
		summary: map[string][]string{
			"ThermalRunawayRisk critical ups-a/1/1/4": {"hotter than its peers", "mV below its peers"},
		},
	}, {
		// Monitoring begins on a string whose cell is already hot: its
		// offset must not become its normal. Its peers sit within 0.2 °C
		// of each other, so it may learn at most the 3 °C threshold.
		name: "a cell 8 °C hotter than its peers from the first poll",
		rig:  peerRig{strings: 1, hours: 2, physics: only(drifting, func(_ int, r *peerReading) { r.temp += 8 })},
		want: []string{"CellTemperatureDeviation warning ups-a/1/2/3"},
	}, {
		name: "a cell 50 mV below its peers from the first poll",
		rig:  peerRig{strings: 1, hours: 2, physics: only(lowVolt, func(_ int, r *peerReading) { r.volt -= 0.050 })},
		want: []string{"CellVoltageDeviation warning ups-a/1/3/5"},
	}, {
		name: "a module 8 °C hotter than the others from the first poll",
		rig: peerRig{strings: 1, hours: 2, physics: func(_ int, c peerCell, r *peerReading) {
			if c.mod == 3 {
				r.temp += 8
			}
		}},
		want: []string{"ModuleTemperatureDeviation warning ups-a/1/3"},
	}, {
		// Sound cells far apart by position (±4 °C, ±40 mV, evenly
		// spread): the bounds follow their peers' offsets.
		name: "cells sitting up to 4 °C and 40 mV apart by position page nothing",
		rig: peerRig{strings: 2, hours: 4, physics: func(_ int, c peerCell, r *peerReading) {
			k := float64((c.mod*8+c.idx)%9-4) / 4 // -1 .. 1
			r.temp += 4 * k
			r.volt += 0.040 * k
		}},
	}, {
		name: "a whole module 8 °C hotter than the others",
		rig: peerRig{strings: 1, hours: 4, physics: func(sec int, c peerCell, r *peerReading) {
			if c.mod == 3 {
				r.temp += 8 * ramp(sec, 2*hour, hour/2)
			}
		}},
		want: []string{"ModuleTemperatureRising warning ups-a/1/3", "ModuleTemperatureDeviation warning ups-a/1/3"},
	}, {
		name: "a whole module warming slowly to 8 °C hotter than the others over 2 h",
		rig: peerRig{strings: 1, hours: 5, physics: func(sec int, c peerCell, r *peerReading) {
			if c.mod == 3 {
				r.temp += 8 * ramp(sec, 2*hour, 2*hour)
			}
		}},
		want: []string{"ModuleTemperatureRising warning ups-a/1/3", "ModuleTemperatureDeviation warning ups-a/1/3"},
	}, {
		name: "the room (ambient and all cells of two strings) warming 15 °C over 30 min",
		rig: peerRig{strings: 2, hours: 4, room: func(sec int) float64 {
			return dailyRoom(sec) + 15*ramp(sec, 2*hour, hour/2)
		}},
		want: []string{"CoolingFailure warning ups-a", "CoolingFailure critical ups-a"},
	}, {
		name: "temperature sentinel 6553.5 held for 5 min",
		rig: peerRig{strings: 1, hours: 3, sensor: only(sentinel, func(sec int, r *peerReading) {
			if during(sec, 2*hour, 2*hour+300) {
				r.temp = 6553.5
			}
		})},
		want: []string{"SensorFault warning ups-a/1/1/5"},
	}, {
		name: "voltage sentinel 65.535 V held for 5 min",
		rig: peerRig{strings: 1, hours: 3, sensor: only(sentinel, func(sec int, r *peerReading) {
			if during(sec, 2*hour, 2*hour+300) {
				r.volt = 65.535
			}
		})},
		want: []string{"SensorFault warning ups-a/1/1/5"},
	}, {
		name: "four single-reading spikes of +30 °C, 10 min apart",
		rig: peerRig{strings: 1, hours: 4, sensor: only(spiky, func(sec int, r *peerReading) {
			if during(sec, 2*hour, 2*hour+1801) && sec%600 == 0 {
				r.temp += 30
			}
		})},
		want:   []string{"SensorFault warning ups-a/1/4/2"},
		spikes: 4,
	}, {
		// A jump of 30 °C and back within a poll is physically impossible:
		// the sensor is at fault, and the reading never pages as a fire.
		name: "one single-reading spike of +30 °C",
		rig: peerRig{strings: 1, hours: 3, sensor: only(spiky, func(sec int, r *peerReading) {
			if sec == 2*hour {
				r.temp += 30
			}
		})},
		want:   []string{"SensorFault warning ups-a/1/4/2"},
		spikes: 1,
	}, {
		// Three readings at +15 °C look like a real step until the sensor
		// jumps back: no cell cools 15 °C in a poll.
		name: "an excursion of +15 °C over three readings, then back",
		rig: peerRig{strings: 1, hours: 3, sensor: only(spiky, func(sec int, r *peerReading) {
			if during(sec, 2*hour, 2*hour+3*pollEvery) {
				r.temp += 15
			}
		})},
		want:   []string{"SensorFault warning ups-a/1/4/2"},
		spikes: 1,
	}, {
		// An open thermistor or a BMS's error code: a reading 100 °C
		// above the cell's, repeated exactly. No cell heats that fast and
		// then holds still, so it pages no fire (the critical limit is
		// 60 °C).
		name: "a temperature sensor that jumps to 127 °C and stays there",
		rig: peerRig{strings: 1, hours: 3, sensor: only(spiky, func(sec int, r *peerReading) {
			if sec >= 2*hour {
				r.temp = 127
			}
		})},
		want: []string{"SensorFault warning ups-a/1/4/2"},
	}, {
		// The DS18B20's power-on value, for an hour; back to its
		// cell's temperature in a poll, which no cell does either.
		name: "a temperature sensor that reads 85 °C for an hour, then its cell again",
		rig: peerRig{strings: 1, hours: 4, sensor: only(spiky, func(sec int, r *peerReading) {
			if during(sec, 2*hour, 3*hour) {
				r.temp = 85
			}
		})},
		want:   []string{"SensorFault warning ups-a/1/4/2"},
		spikes: 1,
	}, {
		// A cell whose reading jumps 15 °C a poll and goes on moving is
		// hot for real (an internal short): it pages.
		name: "a cell jumping 15 °C a poll to 85 °C and moving on from there",
		rig: peerRig{strings: 1, hours: 3, sensor: only(spiky, func(sec int, r *peerReading) {
			if k := (sec - 2*hour) / pollEvery; k >= 0 {
				r.temp = min(25+15*float64(k+1), 85+0.5*float64(k))
			}
		})},
		want: []string{"CellOverTemperature warning ups-a/1/4/2", "CellOverTemperature critical ups-a/1/4/2"},
		may:  []string{"ThermalRunawayRisk critical ups-a/1/4/2", "CellTemperatureDeviation warning ups-a/1/4/2", "CellTemperatureRising warning ups-a/1/4/2"},
	}, {
		// A BMS that updates its registers every 90 s, polled every 30 s,
		// repeats each reading: a cell whose reading jumps 15 °C an update
		// is released by the next update, and pages as hot. (The staircase
		// of 15 °C steps may also read as a noisy sensor.)
		name: "a cell jumping 15 °C every 90 s, each reading repeated three times",
		rig: peerRig{strings: 1, hours: 3, sensor: only(spiky, func(sec int, r *peerReading) {
			if k := (sec - 2*hour) / 90; k >= 0 {
				r.temp = min(25+15*float64(k+1), 85+0.5*float64(k))
			}
		})},
		want: []string{"CellOverTemperature warning ups-a/1/4/2", "CellOverTemperature critical ups-a/1/4/2"},
		may: []string{"ThermalRunawayRisk critical ups-a/1/4/2", "CellTemperatureDeviation warning ups-a/1/4/2", "CellTemperatureRising warning ups-a/1/4/2",
			"SensorFault warning ups-a/1/4/2"},
	}, {
		// A cell already 20 °C hotter than its peers whose thermistor then
		// tops out at 127 °C as it vents: the cell, not the sensor.
		name: "a cell heating 20 °C above its peers whose sensor then reads 127 °C",
		rig: peerRig{strings: 1, hours: 4, sensor: only(spiky, func(sec int, r *peerReading) {
			r.temp += 20 * ramp(sec, 2*hour, hour/2)
			if sec >= 2*hour+45*60 {
				r.temp = 127
			}
		})},
		want: []string{"CellOverTemperature warning ups-a/1/4/2", "CellOverTemperature critical ups-a/1/4/2"},
		may: []string{"ThermalRunawayRisk critical ups-a/1/4/2", "CellTemperatureDeviation warning ups-a/1/4/2", "CellTemperatureRising warning ups-a/1/4/2",
			"SensorFault warning ups-a/1/4/2"},
	}, {
		// Nothing raises one cell of a series string 1 V above its peers
		// within a poll: a voltage sensor reading an error code.
		name: "a voltage sensor that jumps to 5.0 V and stays there",
		rig: peerRig{strings: 1, hours: 3, sensor: only(lowVolt, func(sec int, r *peerReading) {
			if sec >= 2*hour {
				r.volt = 5.0
			}
		})},
		want: []string{"SensorFault warning ups-a/1/3/5"},
	}, {
		// Under a room's cooling failure every cell is warm and none
		// stands out from its peers, and the warning is held back; a cell
		// above its warning limit whose thermistor tops out as it vents
		// is still the cell.
		name: "a room at 57 °C whose one cell's sensor then reads 127 °C",
		rig: peerRig{strings: 1, hours: 5, room: func(sec int) float64 { return dailyRoom(sec) + 30*ramp(sec, 2*hour, hour/2) },
			sensor: only(spiky, func(sec int, r *peerReading) {
				if sec >= 4*hour {
					r.temp = 127
				}
			})},
		want: []string{"CoolingFailure warning ups-a", "CoolingFailure critical ups-a", "CellOverTemperature critical ups-a/1/4/2"},
		may: []string{"ThermalRunawayRisk critical ups-a/1/4/2", "CellTemperatureDeviation warning ups-a/1/4/2", "CellTemperatureRising warning ups-a/1/4/2",
			"SensorFault warning ups-a/1/4/2"},
	}, {
		// While a string charges, a full cell whose balancing failed can
		// climb its knee fast: a jump up then is not held.
		name: "a cell voltage jumping to 4.45 V and staying there while its string charges",
		rig: peerRig{strings: 1, hours: 3,
			current: func(sec, _ int) float64 { return map[bool]float64{true: 40, false: 0}[sec >= 2*hour-600] },
			sensor: only(lowVolt, func(sec int, r *peerReading) {
				if sec >= 2*hour {
					r.volt = 4.45
				}
			})},
		want: []string{"CellVoltageOutOfRange warning ups-a/1/3/5", "CellVoltageOutOfRange critical ups-a/1/3/5"},
		may:  []string{"CellVoltageDeviation warning ups-a/1/3/5", "SensorFault warning ups-a/1/3/5"},
	}, {
		// A voltage can collapse at once and stay there (an internal
		// short): a jump to a repeated reading is not a sensor fault.
		name: "a cell voltage collapsing to 1.2 V, staying there for five polls, then falling",
		rig: peerRig{strings: 1, hours: 3, sensor: only(lowVolt, func(sec int, r *peerReading) {
			if k := (sec - 2*hour) / pollEvery; k >= 0 {
				r.volt = 1.2 - 0.001*float64(max(0, k-5))
			}
		})},
		want: []string{"CellVoltageOutOfRange warning ups-a/1/3/5", "CellVoltageOutOfRange critical ups-a/1/3/5"},
		may:  []string{"CellVoltageDeviation warning ups-a/1/3/5", "ThermalRunawayRisk critical ups-a/1/3/5"},
	}, {
		name: "a temperature sensor stuck while its peers warm 3 °C",
		rig: peerRig{strings: 1, hours: 4,
			room:   func(sec int) float64 { return dailyRoom(sec) + 3*ramp(sec, 2*hour, hour) },
			sensor: stuckFrom(stuck, 2*hour)},
		want: []string{"SensorFault warning ups-a/1/2/6"},
	}, {
		name: "a temperature sensor stuck in a still room, while its peers' readings dither",
		rig: peerRig{strings: 1, hours: 3,
			room:   func(int) float64 { return 25 },
			sensor: stuckFrom(stuck, 2*hour)},
		want: []string{"SensorFault warning ups-a/1/2/6"},
	}, {
		name: "1 °C sensors in a still room: readings that rarely change are not stuck",
		rig: peerRig{strings: 1, hours: 4, room: func(int) float64 { return 25 },
			sensor: func(_ int, _ peerCell, r *peerReading) { r.temp = math.Round(r.temp) }},
	}, {
		name: "0.5 °C sensors over a warming and cooling day: nothing pages",
		rig: peerRig{strings: 2, hours: 8, room: func(sec int) float64 { return 25 + 3*math.Sin(2*math.Pi*float64(sec)/(8*hour)) },
			sensor: func(_ int, _ peerCell, r *peerReading) { r.temp = math.Round(r.temp*2) / 2 }},
	}, {
		name: "0.5 °C sensors: one stuck while its peers warm 3 °C is found",
		rig: peerRig{strings: 1, hours: 4,
			room: func(sec int) float64 { return dailyRoom(sec) + 3*ramp(sec, 2*hour, hour) },
			sensor: func(sec int, c peerCell, r *peerReading) {
				r.temp = math.Round(r.temp*2) / 2
				stuckHalf(sec, c, r)
			}},
		want: []string{"SensorFault warning ups-a/1/2/6"},
	}, {
		// Down 1 °C and up 2 °C: 1 °C net, short of the 1.5 °C a stuck 1 °C
		// sensor's peers must move, but a sound sensor that swept 2 °C
		// must have changed its reading.
		name: "1 °C sensors: one stuck while its peers cool 1 °C, then warm 2 °C, is found",
		rig: peerRig{strings: 1, hours: 5,
			room: func(sec int) float64 { return 25.3 - ramp(sec, 2*hour, hour) + 2*ramp(sec, 3*hour, hour) },
			sensor: func(sec int, c peerCell, r *peerReading) {
				r.temp = math.Round(r.temp)
				stuckWhole(sec, c, r)
			}},
		want: []string{"SensorFault warning ups-a/1/2/6"},
	}, {
		name: "1 °C sensors: peers cooling 1 °C and warming back page nothing",
		rig: peerRig{strings: 1, hours: 5,
			room:   func(sec int) float64 { return 25.3 - ramp(sec, 2*hour, hour) + ramp(sec, 3*hour, hour) },
			sensor: func(_ int, _ peerCell, r *peerReading) { r.temp = math.Round(r.temp) }},
	}, {
		name: "a cell 2 °C warmer than its peers that sags 10 mV (each alone below its bar)",
		rig: peerRig{strings: 1, hours: 4, physics: only(hotSag, func(sec int, r *peerReading) {
			r.temp += 2 * ramp(sec, 2*hour, 30*60)
			r.volt -= 0.010 * ramp(sec, 2*hour, 30*60)
		})},
		want: []string{"ThermalRunawayRisk critical ups-a/1/1/4"},
		may:  []string{"CellTemperatureRising warning ups-a/1/1/4"},
		summary: map[string][]string{
			"ThermalRunawayRisk critical ups-a/1/1/4": {"°C hotter than its peers", "mV below its peers"},
		},
	}, {
		name: "a cell 2 °C warmer than its peers without sagging is no runaway",
		rig: peerRig{strings: 1, hours: 4, physics: only(hotSag, func(sec int, r *peerReading) {
			r.temp += 2 * ramp(sec, 2*hour, 30*60)
		})},
		may: []string{"CellTemperatureRising warning ups-a/1/1/4"},
	}, {
		name: "a charger holding every cell of a string 80 mV above its float voltage",
		rig: peerRig{strings: 2, hours: 5, physics: func(sec int, c peerCell, r *peerReading) {
			if c.str == 2 {
				r.volt += 0.080 * ramp(sec, 3*hour, 30*60)
			}
		}},
		want: []string{"ChargeVoltageHigh warning ups-a/2"},
		summary: map[string][]string{
			"ChargeVoltageHigh warning ups-a/2": {"mV above their normal 3.9", "while idle"},
		},
	}, {
		// A charger's rise is no load, even with nothing to say there is
		// none.
		name: "no string current: a charger holding a string 80 mV high after a discharge test is found",
		rig: peerRig{strings: 2, hours: 12, current: healthyDischarge, noCurrent: true, physics: func(sec int, c peerCell, r *peerReading) {
			dischargePhysics(sec, c, r)
			if c.str == 2 {
				r.volt += 0.080 * ramp(sec, 9*hour, 30*60)
			}
		}},
		want: []string{"ChargeVoltageHigh warning ups-a/2"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fired, st := tc.rig.run(t)
			checkAlerts(t, fired, tc.want, tc.may)
			checkSummaries(t, fired, tc.summary)
			if st.Spikes != tc.spikes {
				t.Errorf("Stats().Spikes = %d, want %d", st.Spikes, tc.spikes)
			}
		})
	}
}

// loweredFloat: every cell's float voltage is lowered 40 mV for good at
// hour 2, dipping 8 mV more for one poll every dipEvery seconds after that
// (0: never); from second precursor, target warms 2 °C and sags 10 mV over
// 30 min.
func loweredFloat(target peerCell, dipEvery, precursor int) func(int, peerCell, *peerReading) {
	return func(sec int, c peerCell, r *peerReading) {
		r.volt -= 0.040 * ramp(sec, 2*hour, 1)
		if dipEvery > 0 && sec > 2*hour && sec%dipEvery == 0 {
			r.volt -= 0.008
		}
		if c == target {
			r.temp += 2 * ramp(sec, precursor, 30*60)
			r.volt -= 0.010 * ramp(sec, precursor, 30*60)
		}
	}
}

// stuckHalf is a 0.5 °C sensor of cell 2/6 of string 1 stuck from hour 2.
var stuckHalf = stuckFrom(peerCell{1, 2, 6}, 2*hour)

// stuckWhole is a 1 °C sensor of cell 2/6 of string 1 stuck from hour 2.
var stuckWhole = stuckFrom(peerCell{1, 2, 6}, 2*hour)

// during reports whether from <= sec < to.
func during(sec, from, to int) bool { return sec >= from && sec < to }

// stuckFrom makes target's temperature sensor repeat, from second from on,
// the value it reported then.
func stuckFrom(target peerCell, from int) func(int, peerCell, *peerReading) {
	stuckAt := math.NaN()
	return only(target, func(sec int, r *peerReading) {
		if sec >= from && math.IsNaN(stuckAt) {
			stuckAt = r.temp
		}
		if sec >= from {
			r.temp = stuckAt
		}
	})
}

// A cell in thermal runaway, polled coarsely, leaps by tens of degrees from
// one poll to the next, faster and faster. Its readings may look like a
// faulty sensor's, but the critical over-temperature alarm must fire: a
// fire must never hide behind a sensor fault.
func TestRunawayBetweenCoarsePollsPagesCritical(t *testing.T) {
	hot := peerCell{1, 1, 4}
	rig := peerRig{strings: 1, hours: 3, physics: only(hot, func(sec int, r *peerReading) {
		if sec >= 2*hour {
			// Doubling every poll from +0.5 °C, up to 600 °C.
			r.temp = math.Min(600, r.temp+0.5*math.Pow(2, float64(sec-2*hour)/30))
		}
	})}
	fired, _ := rig.run(t)
	var got []string
	for _, a := range fired {
		got = append(got, a.key())
		if a.key() == "CellOverTemperature critical ups-a/1/1/4" {
			return
		}
	}
	t.Errorf("no critical over-temperature alarm for the runaway cell; fired: %v", got)
}

// A sensor far noisier than its peers is flagged and its single readings
// are not judged against the absolute limits, so its noise never pages a
// fire; but its level is: it does not page at 25 °C.
func TestNoisySensorAtNormalLevelPagesNoFire(t *testing.T) {
	noisy := peerCell{1, 2, 2}
	rng := rand.New(rand.NewPCG(9, 9))
	rig := peerRig{strings: 1, hours: 4, sensor: only(noisy, func(sec int, r *peerReading) {
		if sec >= 2*hour {
			r.temp += 12 * rng.NormFloat64()
		}
	})}
	fired, _ := rig.run(t)
	for _, a := range fired {
		if a.name == AlertCellOverTemperature || a.name == AlertThermalRunawayRisk {
			t.Errorf("a noisy sensor at a normal level paged %s", a.key())
		}
	}
}

// A sensor already flagged noisy whose cell then really heats to 80 °C: its
// level, the median of its last readings, still pages the critical alarm.
func TestNoisySensorOfAHeatingCellStillPages(t *testing.T) {
	cell := peerCell{1, 2, 2}
	rng := rand.New(rand.NewPCG(7, 7))
	rig := peerRig{strings: 1, hours: 4,
		physics: only(cell, func(sec int, r *peerReading) { r.temp += 55 * ramp(sec, 3*hour, 20*60) }),
		sensor: only(cell, func(sec int, r *peerReading) {
			if sec >= 2*hour {
				r.temp += 6 * rng.NormFloat64()
			}
		})}
	fired, _ := rig.run(t)
	noisyFirst := false
	for _, a := range fired {
		if a.key() == "SensorFault warning ups-a/1/2/2" {
			noisyFirst = true
		}
		if a.key() == "CellOverTemperature critical ups-a/1/2/2" {
			if !noisyFirst {
				t.Error("the critical alarm came before the sensor was flagged: the test does not test a flagged sensor")
			}
			return
		}
	}
	t.Error("a really hot cell behind a noisy sensor raised no critical over-temperature alarm")
}

// A module whose cells all warm 0.2 °C/min from hour 2 for 30 min (a
// failed module fan): ModuleTemperatureRising fires within 10 minutes, long
// before the module is 3 °C hotter than the others, and no cell of it
// raises a cell alert.
func TestModuleWarmingAlertsWithinMinutes(t *testing.T) {
	rig := peerRig{strings: 1, hours: 3, physics: func(sec int, c peerCell, r *peerReading) {
		if c.mod == 2 {
			r.temp += 6 * ramp(sec, 2*hour, 30*60)
		}
	}}
	fired, _ := rig.run(t)
	checkAlerts(t, fired, []string{"ModuleTemperatureRising warning ups-a/1/2", "ModuleTemperatureDeviation warning ups-a/1/2"}, nil)
	if len(fired) == 0 || fired[0].name != AlertModuleTemperatureRising {
		return
	}
	if d := fired[0].sec - 2*hour; d > 10*60 {
		t.Errorf("ModuleTemperatureRising fired %d s after the module began warming, want at most 600 s", d)
	}
	if !strings.Contains(fired[0].summary, "°C/h faster than the other modules") {
		t.Errorf("summary %q does not give the rate", fired[0].summary)
	}
}

// Discharges and recharges warm modules at their own pace: here each module
// of two strings warms by 4 to 7 °C with its own time constant (15 to 40
// min) and cools back at its own pace, so some modules run ahead of their
// string for a while and others catch up after the load. None of it is a
// fault: nothing may fire.
func TestModulesWarmingAtTheirOwnPaceUnderLoadPageNothing(t *testing.T) {
	rig := peerRig{strings: 2, hours: 10, current: healthyDischarge, physics: func(sec int, c peerCell, r *peerReading) {
		amp := 4 + float64((c.mod*3+c.str)%4)
		tau := float64(15+(c.mod*7+c.str*3)%26) * 60
		start, end := 5*hour, 5*hour+hour/2
		switch {
		case sec >= start && sec < end:
			r.temp += amp * (1 - math.Exp(-float64(sec-start)/tau))
		case sec >= end:
			peak := amp * (1 - math.Exp(-float64(end-start)/tau))
			r.temp += peak * math.Exp(-float64(sec-end)/tau)
		}
	}}
	fired, _ := rig.run(t)
	checkAlerts(t, fired, nil, nil)
}

// An HVAC setpoint step of +2 °C that the modules follow with different
// time constants (20 to 50 min, top modules closer to the air): for half
// an hour the fast modules lead their string, which is no fault.
func TestModulesFollowingAnHVACStepAtTheirOwnPacePageNothing(t *testing.T) {
	step := 3 * hour
	rig := peerRig{strings: 1, hours: 5,
		room: func(sec int) float64 { return dailyRoom(sec) + 2*ramp(sec, step, 1) },
		physics: func(sec int, c peerCell, r *peerReading) {
			// The rig's cells follow the room at once; hold them back by
			// their module's lag.
			if sec >= step {
				tau := float64(20+10*(c.mod-1)) * 60
				r.temp -= 2 * math.Exp(-float64(sec-step)/tau)
			}
		}}
	fired, _ := rig.run(t)
	checkAlerts(t, fired, nil, nil)
}

// A slope ring keeps its times exact past the 49 days its millisecond
// offsets span, and a point from before a silence that long stays out of
// the window.
func TestSlopeRingTimesPast49Days(t *testing.T) {
	const w = int64(16 * time.Minute)
	var r slopeRing
	at := base + 123*int64(time.Millisecond)
	for k := 0; at < base+int64(60*24*time.Hour); k++ {
		if !r.push(at, float64(k%50), w) {
			t.Fatalf("push %d at %d not taken", k, at)
		}
		for j := range min(int(r.n), ringSize) {
			age := int64(j) * w / ringSize
			if got, want := r.time(int((r.n-1-uint32(j))%ringSize)), at-age; got != want {
				t.Fatalf("after %d pushes point %d is at %d, want %d", r.n, j, got, want)
			}
		}
		at += w / ringSize
	}
	// Two days of points 1 °C/h apart, a silence of 50 days, then a rise
	// of 2 °C/h: only the new points make the slope.
	r = slopeRing{}
	at = base
	for k := range 20 {
		r.push(at, float64(k), w)
		at += w / ringSize
	}
	at += int64(50 * 24 * time.Hour)
	for k := range 8 {
		r.push(at, 2*float64(k)*float64(w/ringSize)/float64(time.Hour), w)
		at += w / ringSize
	}
	at -= w / ringSize
	if slope, _ := r.theilSen(at-w, at); math.Abs(slope-2) > 1e-3 {
		t.Errorf("slope after the silence = %v °C/h, want 2", slope)
	}
}
