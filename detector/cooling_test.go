package detector

import (
	"fmt"
	"math"
	"testing"
)

// failingRoom is a room following dailyRoom whose air conditioner fails at
// second from: the air heats towards +excess with a 30 min time constant.
// lagCells holds the cells back so that they follow the air with a 45 min
// time constant instead of at once.
func failingRoom(from int, excess float64) (room func(int) float64, lagCells func(int, peerCell, *peerReading)) {
	air := func(sec int) float64 {
		if sec < from {
			return 0
		}
		return excess * (1 - math.Exp(-float64(sec-from)/(30*60)))
	}
	cells := func(sec int) float64 {
		if sec < from {
			return 0
		}
		t := float64(sec - from)
		// First-order response (45 min) to the first-order rise (30 min).
		return excess * (1 - (45*math.Exp(-t/(45*60))-30*math.Exp(-t/(30*60)))/15)
	}
	return func(sec int) float64 { return dailyRoom(sec) + air(sec) },
		func(sec int, _ peerCell, r *peerReading) { r.temp -= air(sec) - cells(sec) }
}

// A room losing its cooling at the low of its daily swing (1.5 °C below
// its mean, about 1 °C below its learned normal) heats at about 28 °C/h at
// first: the warning comes from the ambient's steady climb, with the cells
// starting to follow, before the ambient has made up the daily low and
// risen warning_rise_celsius (5 °C) above normal (about 18 min after
// onset, plus the 3 min hold).
func TestCoolingFailureClimbWarnsEarly(t *testing.T) {
	from := 18 * hour
	room, lag := failingRoom(from, 14)
	rig := peerRig{strings: 2, hours: 20, room: room, physics: lag}
	fired, _ := rig.run(t)
	checkAlerts(t, fired, []string{"CoolingFailure warning ups-a", "CoolingFailure critical ups-a"}, nil)
	if len(fired) == 0 || fired[0].key() != "CoolingFailure warning ups-a" {
		return
	}
	if d := fired[0].sec - from; d > 15*60 {
		t.Errorf("CoolingFailure warning %d s after the cooling failed, want at most 900 s", d)
	}
}

// HVAC setpoint changes are not failures, even large ones: a +4.5 °C step
// (the ambient jumps, the cells follow over the next hour) is one jump, not
// a steady climb, and a +3.5 °C change ramped in over 10 min climbs less
// than fast_rise_celsius. Neither reaches warning_rise_celsius above normal.
// A +6 °C step does, but the room then stays where it went, while a room
// whose cooling failed goes on heating (level_climb_celsius). (A change
// that large ramped in over 20 min is, while it ramps, a failure's climb,
// and pages.)
func TestCoolingSetpointChangesPageNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delta float64
		over  int // seconds the change takes
	}{
		{"step of +4.5 °C", 4.5, 1},
		{"+3.5 °C ramped over 10 min", 3.5, 600},
		{"step of +6 °C", 6, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := 3 * hour
			room := func(sec int) float64 { return 25 + tc.delta*ramp(sec, from, tc.over) }
			lag := func(sec int, _ peerCell, r *peerReading) {
				if sec >= from {
					r.temp -= tc.delta * ramp(sec, from, tc.over) * math.Exp(-float64(sec-from)/(45*60))
				}
			}
			fired, _ := peerRig{strings: 2, hours: 5, room: room, physics: lag}.run(t)
			checkAlerts(t, fired, nil, nil)
		})
	}
}

// Without an ambient sensor the cells carry the evidence, and they lag the
// air: the warning comes from every string's cells climbing faster and
// faster, 2.5 °C within 30 min, well before they are warning_rise_celsius
// above normal (about 50 min into this failure). A +4 °C setpoint step
// warms the cells nearly as much, but ever more slowly: nothing fires.
func TestCoolingFailureWithoutAmbient(t *testing.T) {
	from := 18 * hour
	room, lag := failingRoom(from, 14)
	fired, _ := peerRig{strings: 2, hours: 20, room: room, physics: lag, noAmbient: true}.run(t)
	checkAlerts(t, fired, []string{"CoolingFailure warning ups-a"}, []string{"CoolingFailure critical ups-a"})
	if len(fired) > 0 && fired[0].key() == "CoolingFailure warning ups-a" {
		if d := fired[0].sec - from; d > 35*60 {
			t.Errorf("CoolingFailure warning %d s after the cooling failed, want at most 2100 s", d)
		}
	}
	for _, step := range []float64{4, 6} {
		t.Run(fmt.Sprintf("setpoint step of +%g °C at the daily low", step), func(t *testing.T) {
			room := func(sec int) float64 { return dailyRoom(sec) + step*ramp(sec, from, 1) }
			lag := func(sec int, _ peerCell, r *peerReading) {
				if sec >= from {
					r.temp -= step * math.Exp(-float64(sec-from)/(45*60))
				}
			}
			fired, _ := peerRig{strings: 2, hours: 20, room: room, physics: lag, noAmbient: true}.run(t)
			checkAlerts(t, fired, nil, nil)
		})
	}
}

// The same +6 °C step read by an ambient sensor every 15 min: two or three
// samples within the window, too few to tell a steady climb by, and the
// climb without its largest step (the setpoint's) is nothing. The string
// whose cells still shed a discharge's heat when its cooldown ends, in a
// room that settled 7 °C warmer before the discharge, is not warming
// either.
func TestCoolingSettledRoomPagesNothing(t *testing.T) {
	from := 20*hour + 7*60
	step := func(delta float64) (func(int) float64, func(int, peerCell, *peerReading)) {
		return func(sec int) float64 { return 25 + delta*ramp(sec, from, 1) },
			func(sec int, _ peerCell, r *peerReading) {
				if sec >= from {
					r.temp -= delta * math.Exp(-float64(sec-from)/(45*60))
				}
			}
	}
	t.Run("+6 °C step, ambient every 15 min", func(t *testing.T) {
		room, lag := step(6)
		fired, _ := peerRig{strings: 2, hours: 23, room: room, physics: lag, ambEvery: 900}.run(t)
		checkAlerts(t, fired, nil, nil)
	})
	t.Run("room +7 °C over 4 h, then a discharge heating the cells 10 °C, no ambient", func(t *testing.T) {
		room := func(sec int) float64 { return 25 + 7*ramp(sec, 20*hour, 4*hour) }
		start, end := 24*hour+hour/2, 25*hour
		test := func(sec, _ int) float64 {
			if sec >= start && sec < end {
				return -80
			}
			return 0
		}
		heat := func(sec int, _ peerCell, r *peerReading) {
			switch {
			case sec >= start && sec < end:
				r.temp += 10 * ramp(sec, start, end-start)
			case sec >= end:
				r.temp += 10 * math.Exp(-float64(sec-end)/(45*60))
			}
		}
		fired, _ := peerRig{strings: 2, hours: 28, room: room, physics: heat, current: test, noAmbient: true}.run(t)
		checkAlerts(t, fired, nil, nil)
	})
}

// A partial failure (one of two air conditioners lost) heats the room by
// 7 °C: too slowly at first for the climb rule, so the level pages, while
// the room is still heating: with an ambient sensor read every poll or
// every 15 min (two or three samples in the climb's window, so a steady
// climb comes in steps), and without one. Behind 1 °C cell sensors and
// without an ambient sensor the cells must climb two quanta within the
// window, which a +7 °C failure's do not by the time they are 5 °C up
// (a +5 °C setpoint step's cells nearly do): a +9 °C one pages. The room
// has no daily swing.
func TestPartialCoolingFailurePagesByItsLevel(t *testing.T) {
	from := 14 * hour
	whole := func(_ int, _ peerCell, r *peerReading) { r.temp = math.Round(r.temp) }
	for _, tc := range []struct {
		name   string
		excess float64
		rig    peerRig
	}{
		{"ambient every poll", 7, peerRig{}},
		{"ambient every 15 min", 7, peerRig{ambEvery: 900}},
		{"no ambient", 7, peerRig{noAmbient: true}},
		{"no ambient, 1 °C cell sensors, +9 °C", 9, peerRig{noAmbient: true, sensor: whole}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			swinging, lag := failingRoom(from, tc.excess)
			room := func(sec int) float64 { return 25 + swinging(sec) - dailyRoom(sec) }
			rig := tc.rig
			rig.strings, rig.hours, rig.room, rig.physics = 2, 18, room, lag
			fired, _ := rig.run(t)
			checkAlerts(t, fired, []string{"CoolingFailure warning ups-a"}, nil)
		})
	}
}

// A cooling fault while the batteries discharge (a power cut stops the air
// conditioners; a cabinet fan fails during a test) is over before the
// strings count again after their load: the climb that shows it went on
// was not sampled, and the warning by the level does not wait for one.
func TestCoolingFailureDuringADischargePagesAfterIt(t *testing.T) {
	test := func(sec, _ int) float64 {
		if sec >= 5*hour && sec < 5*hour+30*60 {
			return -50
		}
		return 0
	}
	fan := func(sec int, c peerCell, r *peerReading) {
		if c.str == 2 {
			r.temp += 7 * ramp(sec, 5*hour, hour)
		}
	}
	room, lag := failingRoom(5*hour, 9)
	for _, tc := range []struct {
		name string
		rig  peerRig
		want string
	}{
		{"a cabinet fan, with ambient", peerRig{physics: fan}, "CoolingFailure warning ups-a/2"},
		{"a cabinet fan, without ambient", peerRig{physics: fan, noAmbient: true}, "CoolingFailure warning ups-a/2"},
		{"the room, without ambient", peerRig{room: room, physics: lag, noAmbient: true}, "CoolingFailure warning ups-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := tc.rig
			rig.strings, rig.hours, rig.current = 2, 12, test
			fired, _ := rig.run(t)
			checkAlerts(t, fired, []string{tc.want}, []string{"CoolingFailure critical ups-a"})
		})
	}
}

// A string whose cabinet fan fails warms on its own: its cells climb 7 °C
// over an hour while the room and the other string stay as they were. The
// string's own CoolingFailure fires; the room's does not.
func TestCoolingFailureOfOneString(t *testing.T) {
	from := 3 * hour
	fan := func(sec int, c peerCell, r *peerReading) {
		if c.str == 2 {
			r.temp += 7 * ramp(sec, from, hour)
		}
	}
	fired, _ := peerRig{strings: 2, hours: 6, physics: fan}.run(t)
	checkAlerts(t, fired, []string{"CoolingFailure warning ups-a/2"}, []string{"CoolingFailure warning ups-a", "CoolingFailure critical ups-a/2"})
}

// A room whose ordinary daily swing is wide (±4 °C, 8 °C from its low in
// the night to its high in the afternoon) is not failing at its high, even
// when cellwarden first sees it at its low, and even for a string whose
// normal stood still during a discharge test while the room's went on
// learning. A real failure in that room still pages.
func TestCoolingWideDailySwing(t *testing.T) {
	wide := func(sec int) float64 { return 25 - 4*math.Cos(2*math.Pi*float64(sec)/(24*hour)) }
	// The cells follow the air with a 45-minute lag: for a sinusoid that is
	// an attenuation and a phase shift.
	w := 2 * math.Pi / (24 * hour)
	g := 1 / math.Sqrt(1+w*w*45*60*45*60)
	phi := math.Atan(w * 45 * 60)
	lag := func(sec int, _ peerCell, r *peerReading) {
		r.temp += -4*g*math.Cos(w*float64(sec)-phi) + 4*math.Cos(w*float64(sec))
	}
	test := func(sec, str int) float64 {
		if str == 1 && sec >= 4*hour && sec < 4*hour+30*60 {
			return -50 // a discharge test of string 1 at dawn
		}
		return 0
	}
	fired, _ := peerRig{strings: 2, hours: 24, room: wide, physics: lag, current: test}.run(t)
	checkAlerts(t, fired, nil, nil)

	t.Run("a failure in that room", func(t *testing.T) {
		from := 14 * hour // near the afternoon high
		_, failLag := failingRoom(from, 14)
		air := func(sec int) float64 {
			if sec < from {
				return 0
			}
			return 14 * (1 - math.Exp(-float64(sec-from)/(30*60)))
		}
		room := func(sec int) float64 { return wide(sec) + air(sec) }
		both := func(sec int, c peerCell, r *peerReading) { lag(sec, c, r); failLag(sec, c, r) }
		fired, _ := peerRig{strings: 2, hours: 16, room: room, physics: both}.run(t)
		checkAlerts(t, fired, []string{"CoolingFailure warning ups-a", "CoolingFailure critical ups-a"}, nil)
	})
}

// A cooling failure soon after cellwarden starts afresh (a new install,
// an upgrade that drops the snapshot) in a room that heats slowly (60-min
// time constant, so the climb rule's 4 °C in 15 min is never reached): the
// young normal must not chase the failure, nor learn it as ordinary
// spread. The warning comes from the level rule within 45 min.
func TestCoolingFailureSoonAfterStart(t *testing.T) {
	for _, from := range []int{20 * 60, 45 * 60, 3 * hour} {
		t.Run(fmt.Sprintf("failure %d min in", from/60), func(t *testing.T) {
			const ta, tc = 60 * 60.0, 45 * 60.0
			air := func(sec int) float64 {
				if sec < from {
					return 0
				}
				return 14 * (1 - math.Exp(-float64(sec-from)/ta))
			}
			cells := func(sec int) float64 {
				if sec < from {
					return 0
				}
				x := float64(sec - from)
				return 14 * (1 - (ta*math.Exp(-x/ta)-tc*math.Exp(-x/tc))/(ta-tc))
			}
			room := func(sec int) float64 { return 25 + air(sec) }
			lag := func(sec int, _ peerCell, r *peerReading) { r.temp -= air(sec) - cells(sec) }
			fired, _ := peerRig{strings: 2, hours: 6, room: room, physics: lag}.run(t)
			for _, a := range fired {
				if a.key() == "CoolingFailure warning ups-a" {
					if d := a.sec - from; d > 45*60 {
						t.Errorf("CoolingFailure warning %d s after the cooling failed, want at most 2700 s", d)
					}
					return
				}
			}
			t.Errorf("no CoolingFailure warning; fired %v", fired)
		})
	}
}

// A cabinet fan that fails slowly: its string heats towards +8 °C with a
// 2 h time constant and passes its limit when it has nearly stopped
// climbing (the room itself stays at 25 °C). Against a fresh ambient the room's own changes (a setpoint)
// are already taken out of the string's rise, so its warning needs no
// climb.
func TestSlowCabinetFanFailurePagesWithAnAmbient(t *testing.T) {
	from := 14 * hour
	fan := func(sec int, c peerCell, r *peerReading) {
		if c.str == 2 && sec >= from {
			r.temp += 8 * (1 - math.Exp(-float64(sec-from)/(2*3600)))
		}
	}
	flat := func(int) float64 { return 25 }
	fired, _ := peerRig{strings: 2, hours: 24, room: flat, physics: fan}.run(t)
	checkAlerts(t, fired, []string{"CoolingFailure warning ups-a/2"}, nil)
}
