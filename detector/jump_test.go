package detector

import (
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// A sensor holds jump-filter state only from a jump until its spikes leave
// the spike window: a fleet whose sensors spike now and then, one after
// another, needs states for the few spiking at once, not for every sensor,
// and each spike is still caught and flagged.
func TestJumpStatesAreHeldOnlyWhileTheyMatter(t *testing.T) {
	reg := telemetry.NewRegistry()
	cfg := DefaultConfig()
	eng := New(cfg, reg, nil)
	const cells, every = 32, 20 * time.Minute // one spike every 20 minutes
	var ids []telemetry.EntityID
	for i := range cells {
		id, err := reg.Intern(telemetry.Entity{UPS: "u", String: "1", Module: itoa(1 + i/8), Cell: itoa(1 + i%8)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	faults := 0
	end := time.Hour + cells*every + 2*cfg.SensorFault.SpikeWindow.Duration()
	for at := time.Duration(0); at < end; at += 30 * time.Second {
		now := base + at.Nanoseconds()
		for i, id := range ids {
			v := 25 + float64(i%5)/10
			if spikeAt := time.Hour + time.Duration(i)*every; at == spikeAt {
				v += 30
			}
			for _, c := range eng.Observe(telemetry.Sample{Time: now, Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: v}, nil) {
				if c.Name == AlertSensorFault && c.Status == StatusFiring {
					faults++
				}
			}
		}
		eng.Tick(now+int64(10*time.Second), nil)
	}
	if got := eng.Stats().Spikes; got != cells {
		t.Errorf("%d spikes caught, want %d", got, cells)
	}
	if faults != cells {
		t.Errorf("SensorFault fired %d times, want once for each of the %d spiking sensors", faults, cells)
	}
	// A state lives from the spike until it leaves the window.
	atOnce := int(cfg.SensorFault.SpikeWindow.Duration()/every) + 1
	if n := eng.jumps.table.len(); n > atOnce {
		t.Errorf("%d jump states allocated for %d sensors spiking one every %s, want at most %d", n, cells, every, atOnce)
	}
	if held := eng.jumps.table.len() - len(eng.jumps.free); held != 0 {
		t.Errorf("%d jump states still held after the last spike left the window", held)
	}
}
