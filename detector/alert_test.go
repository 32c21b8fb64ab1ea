package detector

import (
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

func TestAlertStateMachine(t *testing.T) {
	sec := int64(time.Second)
	type ev struct {
		at     int64 // seconds after base
		active bool
		want   Status
	}
	tests := []struct {
		name string
		hold Hold
		evs  []ev
	}{
		{
			name: "for 0 fires on first active sample and resolves on first clear one",
			hold: Hold{},
			evs:  []ev{{0, false, 0}, {10, true, StatusFiring}, {20, true, 0}, {30, false, StatusResolved}, {40, false, 0}},
		},
		{
			name: "pending until for has elapsed",
			hold: Hold{For: yamlstrict.Duration(30 * time.Second)},
			evs:  []ev{{0, true, 0}, {10, true, 0}, {20, true, 0}, {30, true, StatusFiring}, {40, true, 0}},
		},
		{
			name: "a clear sample while pending starts the hold again",
			hold: Hold{For: yamlstrict.Duration(30 * time.Second)},
			evs:  []ev{{0, true, 0}, {20, false, 0}, {30, true, 0}, {50, true, 0}, {60, true, StatusFiring}},
		},
		{
			name: "clear_for keeps firing through short clear spells",
			hold: Hold{ClearFor: yamlstrict.Duration(60 * time.Second)},
			evs: []ev{{0, true, StatusFiring}, {10, false, 0}, {40, true, 0}, {50, false, 0},
				{100, false, 0}, {110, false, StatusResolved}, {120, true, StatusFiring}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a alertState
			base := int64(1_700_000_000) * sec
			for _, e := range tt.evs {
				if got := a.step(base+e.at*sec, e.active, &tt.hold); got != e.want {
					t.Errorf("at +%ds active=%v: got %v, want %v", e.at, e.active, got, e.want)
				}
			}
		})
	}
}
