package detector

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// harness feeds samples and records changes as compact strings.
type harness struct {
	t   *testing.T
	reg *telemetry.Registry
	eng *Engine
	got []string
}

func newHarness(t *testing.T, cfg Config, inv *inventory.Inventory) *harness {
	reg := telemetry.NewRegistry()
	return &harness{t: t, reg: reg, eng: New(cfg, reg, inv)}
}

func (h *harness) id(path string) telemetry.EntityID {
	p := strings.Split(path, "/")
	for len(p) < 4 {
		p = append(p, "")
	}
	id, err := h.reg.Intern(telemetry.Entity{UPS: p[0], String: p[1], Module: p[2], Cell: p[3]})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) record(cs []Change) {
	for _, c := range cs {
		h.got = append(h.got, fmt.Sprintf("+%ds %s %s %s %s",
			(c.Time-base)/int64(time.Second), c.Status, c.Name, c.Severity, h.reg.Info(c.Entity).Entity.Path()))
	}
}

func (h *harness) observe(sec int, path string, m telemetry.Metric, v float64) {
	h.record(h.eng.Observe(telemetry.Sample{Time: base + int64(sec)*int64(time.Second), Entity: h.id(path), Metric: m, Value: v}, nil))
}

func (h *harness) tick(sec int) {
	h.record(h.eng.Tick(base+int64(sec)*int64(time.Second), nil))
}

func (h *harness) check(want []string) {
	h.t.Helper()
	if !slices.Equal(h.got, want) {
		h.t.Errorf("changes:\n got  %q\n want %q", h.got, want)
	}
}

func TestCellOverTemperature(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil) // warning 50, critical 60, hysteresis 2, for 20s, clear_for 2m
	temps := []float64{40, 51, 52, 53, 61, 62, 63, 59, 55, 49, 47}
	for len(temps) < 24 {
		temps = append(temps, 47)
	}
	for i, v := range temps {
		h.observe(i*10, "ups-a/1/3/7", telemetry.CellTemperatureCelsius, v)
	}
	h.check([]string{
		"+30s firing CellOverTemperature warning ups-a/1/3/7",     // above 50 since +10s
		"+60s firing CellOverTemperature critical ups-a/1/3/7",    // above 60 since +40s
		"+200s resolved CellOverTemperature critical ups-a/1/3/7", // 59 holds (> 58); clear from 55 at +80s
		"+220s resolved CellOverTemperature warning ups-a/1/3/7",  // 49 holds (> 48); clear from 47 at +100s
	})
}

func TestOverTemperatureIgnoresImplausibleAndMissing(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	for i, v := range []float64{30, 6553.5, math.NaN(), 6553.5, 30} {
		h.observe(i*10, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, v)
	}
	h.check(nil)
	if st := h.eng.Stats(); st.Implausible != 2 || st.NoReading != 1 {
		t.Errorf("stats = %+v, want 2 implausible and 1 no-reading", st)
	}
}

func TestModuleOverTemperature(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ModuleOverTemperature.For = 0
	h := newHarness(t, cfg, nil)
	h.observe(0, "ups-a/1/3", telemetry.ModuleTemperatureCelsius, 52)
	h.check([]string{"+0s firing ModuleOverTemperature warning ups-a/1/3"})
}

// A module's own temperature sensor has the checks that need no peers: a
// sentinel, a spike, or a jump to an error code it then repeats raise
// SensorFault on the module and never page as a hot module.
func TestModuleSensorFaults(t *testing.T) {
	cases := []struct {
		name string
		read func(sec int) float64 // the sensor's reading; its module sits at 25-25.2 °C
		want []string
	}{{
		name: "jumps to 127 °C for half an hour, then back",
		read: func(sec int) float64 {
			if sec >= 3600 && sec < 5400 {
				return 127
			}
			return 25 + float64(sec/30%3)/10
		},
		want: []string{
			"+3780s firing SensorFault warning ups-a/1/3",   // 127 repeated for 2 min: +3720s, then 1 min
			"+9930s resolved SensorFault warning ups-a/1/3", // back at +5400s: a spike, flagged while within spike_window (1 h), then 15 min clear
		},
	}, {
		name: "reports the sentinel 6553.5 for half an hour",
		read: func(sec int) float64 {
			if sec >= 3600 && sec < 5400 {
				return 6553.5
			}
			return 25 + float64(sec/30%3)/10
		},
		want: []string{
			"+3660s firing SensorFault warning ups-a/1/3",
			"+6300s resolved SensorFault warning ups-a/1/3",
		},
	}, {
		name: "one reading 40 °C off",
		read: func(sec int) float64 {
			if sec == 3600 {
				return 65
			}
			return 25 + float64(sec/30%3)/10
		},
		want: []string{
			"+3690s firing SensorFault warning ups-a/1/3",   // confirmed by the next reading (+3630s), then 1 min
			"+8160s resolved SensorFault warning ups-a/1/3", // flagged while within spike_window (1 h), then 15 min clear
		},
	}, {
		// Already above its warning limit: a jump to a repeated reading is
		// the module (a sensor topping out), not an error code.
		name: "a module at 55 °C whose sensor then reads 85 °C",
		read: func(sec int) float64 {
			if sec >= 5400 {
				return 85
			}
			return min(55, 25+float64(max(0, sec-3600))/60)
		},
		want: []string{
			"+5160s firing ModuleOverTemperature warning ups-a/1/3",  // above 50 °C from +5130s
			"+5430s firing ModuleOverTemperature critical ups-a/1/3", // 85 taken as real at +5430s, counted from +5400s
		},
	}, {
		name: "a module warming fast for real",
		read: func(sec int) float64 {
			if sec < 3600 {
				return 25
			}
			return 25 + float64(sec-3600)/60 // 1 °C a minute: no jump
		},
		want: []string{
			"+5160s firing ModuleOverTemperature warning ups-a/1/3",  // above 50 °C from +5130s
			"+5760s firing ModuleOverTemperature critical ups-a/1/3", // above 60 °C from +5730s
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig(), nil)
			for sec := 0; sec < 3*3600; sec += 30 {
				h.observe(sec, "ups-a/1/3", telemetry.ModuleTemperatureCelsius, tc.read(sec))
			}
			h.check(tc.want)
		})
	}
}

// A temperature that jumps to a reading it then repeats is held as a
// broken sensor only when nothing says the cell could really be that hot:
// after a gap in its readings it may have heated that far meanwhile, and
// with SensorFault disabled nothing would say why a reading was held.
func TestFrozenJumpIsHeldOnlyWhenItMustBeTheSensor(t *testing.T) {
	cases := []struct {
		name     string
		disabled bool
		every    int                   // seconds between polls; 0: 30
		read     func(sec int) float64 // NaN: no reading
		want     []string
	}{{
		name: "jumps to 127 °C within a poll and repeats it: a broken sensor",
		read: func(sec int) float64 { return map[bool]float64{true: 127, false: 25}[sec >= 600] },
		want: []string{"+780s firing SensorFault warning ups-a/1/1/1"},
	}, {
		name:     "the same with sensor_fault disabled: it pages, as before",
		disabled: true,
		read:     func(sec int) float64 { return map[bool]float64{true: 127, false: 25}[sec >= 600] },
		want: []string{
			"+630s firing CellOverTemperature warning ups-a/1/1/1", // taken as real at +630s: the held +600s reading counts from +600s
			"+630s firing CellOverTemperature critical ups-a/1/1/1",
		},
	}, {
		name: "silent for an hour, back 45 °C hotter and steady: it pages",
		read: func(sec int) float64 {
			switch {
			case sec < 600:
				return 25
			case sec < 4200:
				return math.NaN()
			}
			return 70
		},
		want: []string{
			"+4230s firing CellOverTemperature warning ups-a/1/1/1", // the same, from +4200s
			"+4230s firing CellOverTemperature critical ups-a/1/1/1",
		},
	}, {
		// Polls further apart than frozen_for (2 min): the jump still
		// follows the last reading by one poll interval.
		name:  "polled every 5 min, jumps to 127 °C and repeats it: a broken sensor",
		every: 300,
		read:  func(sec int) float64 { return map[bool]float64{true: 127, false: 25}[sec >= 1200] },
		want:  []string{"+2100s firing SensorFault warning ups-a/1/1/1"},
	}, {
		name:  "polled every 5 min, one reading missing before the 127 °C: a broken sensor",
		every: 300,
		read: func(sec int) float64 {
			switch {
			case sec == 1200:
				return math.NaN()
			case sec > 1200:
				return 127
			}
			return 25
		},
		want: []string{"+2400s firing SensorFault warning ups-a/1/1/1"},
	}, {
		name:  "polled every 5 min, silent for an hour, back 45 °C hotter and steady: it pages",
		every: 300,
		read: func(sec int) float64 {
			switch {
			case sec < 1200:
				return 25
			case sec < 4800:
				return math.NaN()
			}
			return 70
		},
		want: []string{
			"+5100s firing CellOverTemperature warning ups-a/1/1/1",
			"+5100s firing CellOverTemperature critical ups-a/1/1/1",
		},
	}, {
		// Two intervals are 30 min, more than maxFrozenGap (10 min): in
		// that long a cell may really have heated so far.
		name:  "polled every 15 min, 45 °C hotter and steady at the next poll: it pages",
		every: 900,
		read:  func(sec int) float64 { return map[bool]float64{true: 70, false: 25}[sec >= 3600] },
		want: []string{
			"+4500s firing CellOverTemperature warning ups-a/1/1/1", // the second reading confirms the first
			"+4500s firing CellOverTemperature critical ups-a/1/1/1",
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SensorFault.Enabled = !tc.disabled
			h := newHarness(t, cfg, nil)
			for sec := 0; sec < 2*3600; sec += cmp.Or(tc.every, 30) {
				if v := tc.read(sec); !math.IsNaN(v) {
					h.observe(sec, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, v)
				}
			}
			h.check(tc.want)
		})
	}
}

func TestOutOfOrderSampleIsDroppedAndCounted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CellOverTemperature.For = 0
	h := newHarness(t, cfg, nil)
	h.observe(100, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 30)
	h.observe(50, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 70)
	h.check(nil)
	if got := h.eng.Stats().OutOfOrder; got != 1 {
		t.Errorf("OutOfOrder = %d, want 1", got)
	}
}

func TestCellVoltageOutOfRangeUsesInventoryChemistry(t *testing.T) {
	inv, err := inventory.Parse([]byte(`batteries:
  - ups: ups-a
    chemistry: LFP
  - ups: ups-b
    string: "2"
    chemistry: NMC
`), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.CellVoltageOutOfRange.For = 0
	cfg.CellVoltageOutOfRange.ClearFor = 0
	h := newHarness(t, cfg, inv)
	// 3.70 V is overcharge for LFP (warning above 3.65) but normal for NMC.
	h.observe(0, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.70)
	h.observe(0, "ups-b/2/1/1", telemetry.CellVoltageVolts, 3.70)
	// Unknown chemistry: the all-chemistry envelope, no alert at 3.70.
	h.observe(0, "ups-c/1/1/1", telemetry.CellVoltageVolts, 3.70)
	// LFP above critical (3.80), then back inside with hysteresis.
	h.observe(10, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.85)
	h.observe(20, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.79) // within 0.02 of 3.80: critical holds
	h.observe(30, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.60)
	// NMC under-voltage: a sudden 1.3 V drop is held back as a possible
	// spike until the next reading confirms it.
	h.observe(40, "ups-b/2/1/1", telemetry.CellVoltageVolts, 2.4)
	h.observe(50, "ups-b/2/1/1", telemetry.CellVoltageVolts, 2.41)
	h.check([]string{
		"+0s firing CellVoltageOutOfRange warning ups-a/1/1/1",
		"+10s firing CellVoltageOutOfRange critical ups-a/1/1/1",
		"+30s resolved CellVoltageOutOfRange warning ups-a/1/1/1",
		"+30s resolved CellVoltageOutOfRange critical ups-a/1/1/1",
		"+40s firing CellVoltageOutOfRange warning ups-b/2/1/1",
		"+40s firing CellVoltageOutOfRange critical ups-b/2/1/1",
	})
}

func TestTelemetryStale(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil) // multiple 3, min_age 30s
	all := []string{"1/1", "1/2", "2/1"}
	poll := func(sec int, modules ...string) {
		for _, m := range modules {
			h.observe(sec, "ups-a/"+m+"/1", telemetry.CellTemperatureCelsius, 25)
		}
		h.tick(sec)
	}
	for s := 0; s <= 60; s += 30 { // learn: every 30 s, stale after 90 s
		poll(s, all...)
	}
	for s := 90; s <= 180; s += 30 { // module 1/2 goes quiet
		poll(s, "1/1", "2/1")
	}
	poll(210, all...)
	for s := 240; s <= 330; s += 30 { // string 1 goes quiet: one alert, not one per module
		poll(s, "2/1")
	}
	poll(360, all...)
	for s := 390; s <= 480; s += 30 { // the whole UPS goes quiet
		poll(s)
	}
	poll(510, all...)
	h.check([]string{
		"+180s firing TelemetryStale warning ups-a/1/2",
		"+210s resolved TelemetryStale warning ups-a/1/2",
		"+330s firing TelemetryStale warning ups-a/1",
		"+360s resolved TelemetryStale warning ups-a/1",
		"+480s firing TelemetryStale warning ups-a",
		"+510s resolved TelemetryStale warning ups-a",
	})
}

func TestTelemetryStaleNeedsALearnedInterval(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	h.observe(0, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 25)
	h.observe(30, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 25)
	h.tick(3600) // one interval seen: not enough to call anything late
	h.check(nil)
}

// Module-level readings arrive before any reading of their string: the
// string's alert must still cover its modules.
func TestTelemetryStaleModuleReadingsFirst(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	poll := func(sec int, modules ...string) {
		for _, m := range modules {
			h.observe(sec, "ups-a/"+m, telemetry.ModuleTemperatureCelsius, 25)
		}
		h.tick(sec)
	}
	for s := 0; s <= 60; s += 30 {
		poll(s, "1/1", "2/1", "2/2")
	}
	for s := 90; s <= 180; s += 30 {
		poll(s, "1/1")
	}
	h.check([]string{"+180s firing TelemetryStale warning ups-a/2"})
}

// A slow bus: each module's cells arrive 0.1 s apart and the modules of a
// string one after another, 0.6 s apart, every 60 s. Nothing is stale.
func TestTelemetryStaleSpreadOutPolls(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	ms := int64(time.Millisecond)
	for poll := 0; poll < 120; poll++ {
		at := base + int64(poll)*60*int64(time.Second)
		for m := 1; m <= 10; m++ {
			for c := 1; c <= 8; c++ {
				ts := at + int64(m-1)*600*ms + int64(c-1)*100*ms
				h.record(h.eng.Observe(telemetry.Sample{Time: ts, Entity: h.id(fmt.Sprintf("ups-a/1/%d/%d", m, c)),
					Metric: telemetry.CellTemperatureCelsius, Value: 25}, nil))
				h.record(h.eng.Tick(ts, nil))
			}
		}
	}
	h.check(nil)
}

// The string's own readings (current, voltage) stop while its modules go on:
// one alert for the string's own readings, resolved when they return.
func TestTelemetryStaleOwnReadings(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	for s := 0; s <= 600; s += 30 {
		h.observe(s, "ups-a/1/1/1", telemetry.CellVoltageVolts, 4.0)
		if s < 120 || s >= 450 {
			h.observe(s, "ups-a/1", telemetry.StringCurrentAmperes, 0.5)
		}
		h.tick(s)
	}
	h.check([]string{
		"+210s firing TelemetryStale warning ups-a/1",
		"+450s resolved TelemetryStale warning ups-a/1",
	})
	if got := h.eng.Stats(); got.Samples == 0 {
		t.Error("no samples observed")
	}
}

// A source whose cadence changes for good from 30 s to 5 min stops being
// reported once the new cadence is learned.
func TestTelemetryStaleLearnsANewCadence(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	s := 0
	for ; s <= 300; s += 30 {
		h.observe(s, "ups-a/1/1/1", telemetry.CellVoltageVolts, 4.0)
		h.tick(s)
	}
	for ; s <= 300+20*300; s += 30 { // the clock ticks every 30 s
		if s%300 == 0 {
			h.observe(s, "ups-a/1/1/1", telemetry.CellVoltageVolts, 4.0)
		}
		h.tick(s)
	}
	fired := 0
	for _, c := range h.got {
		if strings.Contains(c, "firing") {
			fired++
		}
	}
	if fired == 0 || fired > outageRun+1 {
		t.Errorf("fired %d times over 20 polls at the new cadence, want 1 to %d: %q", fired, outageRun+1, h.got)
	}
}

func TestReversedCellIsCriticalAndZeroVoltsIsASentinel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CellVoltageOutOfRange.For = 0
	h := newHarness(t, cfg, nil)
	h.observe(0, "ups-a/1/1/1", telemetry.CellVoltageVolts, 0)      // absent sensor
	h.observe(0, "ups-a/1/1/2", telemetry.CellVoltageVolts, 65.535) // wrapped register
	h.observe(0, "ups-a/1/1/3", telemetry.CellVoltageVolts, -0.4)   // reversed cell
	h.check([]string{
		"+0s firing CellVoltageOutOfRange warning ups-a/1/1/3",
		"+0s firing CellVoltageOutOfRange critical ups-a/1/1/3",
	})
	if st := h.eng.Stats(); st.Implausible != 2 {
		t.Errorf("Implausible = %d, want 2", st.Implausible)
	}
}

func TestEnvelopeCellsAreCounted(t *testing.T) {
	inv, err := inventory.Parse([]byte("batteries:\n  - ups: ups-a\n    chemistry: NMC\n  - ups: ups-b\n    serial: X\n"), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultConfig(), inv)
	for _, p := range []string{"ups-a/1/1/1", "ups-b/1/1/1", "ups-b/1/1/2", "ups-c/1/1/1"} {
		h.observe(0, p, telemetry.CellVoltageVolts, 3.9)
		h.observe(10, p, telemetry.CellVoltageVolts, 3.9)
	}
	if got := h.eng.Stats().EnvelopeCells; got != 3 {
		t.Errorf("EnvelopeCells = %d, want 3 (ups-b has no chemistry, ups-c no entry)", got)
	}
}

// A string entry without a chemistry inherits the UPS-wide one.
func TestStringEntryInheritsChemistry(t *testing.T) {
	inv, err := inventory.Parse([]byte(`batteries:
  - ups: ups-a
    chemistry: LFP
  - ups: ups-a
    string: "2"
    serial: S-2
`), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.CellVoltageOutOfRange.For = 0
	h := newHarness(t, cfg, inv)
	h.observe(0, "ups-a/2/1/1", telemetry.CellVoltageVolts, 3.9)
	h.check([]string{
		"+0s firing CellVoltageOutOfRange warning ups-a/2/1/1",
		"+0s firing CellVoltageOutOfRange critical ups-a/2/1/1",
	})
}

func TestStaticBaselineFiresOnASingleReading(t *testing.T) {
	h := newHarness(t, StaticBaselineConfig(), nil)
	h.observe(0, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 50.5)
	h.observe(10, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, 49.9)
	h.check([]string{
		"+0s firing CellOverTemperature warning ups-a/1/1/1",
		"+10s resolved CellOverTemperature warning ups-a/1/1/1",
	})
}

// A module read every 200 ms never pauses long enough to tell its polls
// apart; its silence is still reported.
func TestTelemetryStaleOfAFastStream(t *testing.T) {
	h := newHarness(t, DefaultConfig(), nil)
	for ms := 0; ms <= 180_000; ms += 200 {
		h.record(h.eng.Observe(telemetry.Sample{Time: base + int64(ms)*int64(time.Millisecond), Entity: h.id("ups-f/1/1/1"),
			Metric: telemetry.CellVoltageVolts, Value: 3.9}, nil))
		if ms%1000 == 0 {
			h.tick(ms / 1000)
		}
	}
	if len(h.got) != 0 {
		t.Fatalf("alerts while the stream flows: %q", h.got)
	}
	for sec := 181; sec <= 400; sec++ {
		h.tick(sec)
	}
	if len(h.got) == 0 || !strings.Contains(h.got[0], "firing TelemetryStale warning ups-f") {
		t.Errorf("the silent fast stream was not reported stale: %q", h.got)
	}
}
