package detector

import (
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
func TestCoolingSetpointChangesPageNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delta float64
		over  int // seconds the change takes
	}{
		{"step of +4.5 °C", 4.5, 1},
		{"+3.5 °C ramped over 10 min", 3.5, 600},
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
	t.Run("setpoint step of +4 °C", func(t *testing.T) {
		room := func(sec int) float64 { return dailyRoom(sec) + 4*ramp(sec, from, 1) }
		lag := func(sec int, _ peerCell, r *peerReading) {
			if sec >= from {
				r.temp -= 4 * math.Exp(-float64(sec-from)/(45*60))
			}
		}
		fired, _ := peerRig{strings: 2, hours: 20, room: room, physics: lag, noAmbient: true}.run(t)
		checkAlerts(t, fired, nil, nil)
	})
}
