package detector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// scenarioSamples simulates a small fleet with a cell heading for runaway,
// a module going silent and a module sensor reading an error code (127 °C)
// from 3 h to 5 h, and returns its samples as entity paths (so
// they can be fed to fresh registries).
func scenarioSamples(t *testing.T) []pathSample {
	t.Helper()
	sc := &sim.Scenario{
		Name: "snap", Seed: 3, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Duration: 7 * time.Hour, Interval: 30 * time.Second,
		Fleet: []sim.UPSSpec{{Name: "u", Chemistry: inventory.NMC, Strings: 2, Modules: 4, Cells: 6, TempQuantum: 0.1, SOH: 0.95}},
		Faults: []sim.FaultSpec{
			{Class: sim.ClassThermalRunaway, UPS: "u", String: "1", Module: "2", Cell: "3", At: 2 * time.Hour, Duration: 3 * time.Hour,
				Magnitude: 8, SagVolts: 0.03, Rate: 15},
			{Class: sim.ClassLostTelemetry, UPS: "u", String: "2", Module: "4", At: 3 * time.Hour, Duration: 20 * time.Minute},
			// Spikes on both sides of the cut, so that the snapshot holds
			// jump-filter states in use.
			{Class: sim.ClassSensorSpikes, UPS: "u", String: "2", Module: "1", Cell: "2", At: 2 * time.Hour, Duration: 3 * time.Hour, Rate: 0.1},
		},
	}
	var buf bytes.Buffer
	if _, _, err := sim.Run(sc, &buf); err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	rd, err := csvfile.NewReader(&buf, "snap.csv", reg)
	if err != nil {
		t.Fatal(err)
	}
	var out []pathSample
	for {
		s, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		ent := reg.Info(s.Entity).Entity
		if at := time.Duration(s.Time - sc.Start.UnixNano()); ent.Path() == "u/1/3" && s.Metric == telemetry.ModuleTemperatureCelsius &&
			at >= 3*time.Hour && at < 5*time.Hour {
			s.Value = 127
		}
		out = append(out, pathSample{ent, s})
	}
}

type pathSample struct {
	ent telemetry.Entity
	s   telemetry.Sample
}

// run feeds samples[from:to] as the replay driver does and returns the
// changes as text.
func run(t *testing.T, eng *Engine, reg *telemetry.Registry, samples []pathSample, from, to int) []string {
	t.Helper()
	var got []string
	var wm int64
	for i := from; i < to; i++ {
		s := samples[i].s
		id, err := reg.Intern(samples[i].ent)
		if err != nil {
			t.Fatal(err)
		}
		s.Entity = id
		var cs []Change
		if i > from && s.Time > wm {
			cs = eng.Tick(wm, cs)
		}
		wm = s.Time
		cs = eng.Observe(s, cs)
		for _, c := range cs {
			got = append(got, fmt.Sprintf("%s %s %s %s %s", time.Unix(0, c.Time).UTC().Format(time.TimeOnly),
				c.Status, c.Name, c.Severity, reg.Info(c.Entity).Entity.Path()))
		}
	}
	return got
}

// A daemon restarted from a snapshot carries on exactly as if it had never
// stopped: the same alerts at the same times, none repeated.
func TestSnapshotRestoreContinuesExactly(t *testing.T) {
	samples := scenarioSamples(t)
	reg := telemetry.NewRegistry()
	whole := run(t, New(DefaultConfig(), reg, nil), reg, samples, 0, len(samples))
	if len(whole) == 0 {
		t.Fatal("the scenario raised no alert; the test would prove nothing")
	}
	// Cut at a poll boundary in the middle of the runaway's precursor.
	cut := len(samples) / 2
	for samples[cut].s.Time == samples[cut-1].s.Time {
		cut++
	}
	reg1 := telemetry.NewRegistry()
	eng1 := New(DefaultConfig(), reg1, nil)
	first := run(t, eng1, reg1, samples, 0, cut)
	first = append(first, changesText(eng1.Tick(samples[cut-1].s.Time, nil), reg1)...)
	if eng1.jumps.table.len() == len(eng1.jumps.free) || eng1.Stats().Spikes == 0 {
		t.Fatal("no jump state in use at the cut; the test would not cover the jump filter's state")
	}
	mid, ok := reg1.Lookup(telemetry.Entity{UPS: "u", String: "1", Module: "3"})
	if !ok {
		t.Fatal("no module u/1/3")
	}
	if m := &eng1.mods[eng1.modOf(mid)-1]; m.sensorJump == 0 || !m.sensor.firing() {
		t.Fatal("module u/1/3's sensor is not frozen at the cut; the test would not cover a module sensor's state")
	}
	var snap bytes.Buffer
	if err := eng1.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	reg2 := telemetry.NewRegistry()
	eng2 := New(DefaultConfig(), reg2, nil)
	if err := eng2.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	second := run(t, eng2, reg2, samples, cut, len(samples))
	if got := append(first, second...); fmt.Sprint(got) != fmt.Sprint(whole) {
		t.Errorf("restored run differs:\n got  %q\n want %q", got, whole)
	}
}

func changesText(cs []Change, reg *telemetry.Registry) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", time.Unix(0, c.Time).UTC().Format(time.TimeOnly),
			c.Status, c.Name, c.Severity, reg.Info(c.Entity).Entity.Path()))
	}
	return out
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	samples := scenarioSamples(t)[:5000]
	reg := telemetry.NewRegistry()
	eng := New(DefaultConfig(), reg, nil)
	run(t, eng, reg, samples, 0, len(samples))
	var snap bytes.Buffer
	if err := eng.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name string
		data []byte
		used bool // restore into an engine that has seen data
		want string
	}{
		{"not a snapshot", []byte("hello"), false, "not a detector snapshot"},
		{"corrupt", corrupt, false, "snapshot is corrupt (checksum mismatch)"},
		{"truncated", good[:len(good)-10], false, "snapshot is corrupt (checksum mismatch)"},
		{"engine in use", good, true, "restore needs a fresh engine and registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := telemetry.NewRegistry()
			e := New(DefaultConfig(), r, nil)
			if tt.used {
				run(t, e, r, samples, 0, 10)
			}
			before := r.Len()
			err := e.Restore(bytes.NewReader(tt.data))
			if err == nil || err.Error() != tt.want || r.Len() != before {
				t.Errorf("Restore = %v (registry %d -> %d), want %q and nothing changed", err, before, r.Len(), tt.want)
			}
		})
	}
}

// A snapshot with a valid checksum whose tables contradict its entities
// (a disk or an editor altered it before it was sealed) is refused with the
// part that is wrong, and the registry stays empty; it never panics or
// loops later.
func TestRestoreRefusesInconsistentTables(t *testing.T) {
	id := func(e *Engine, path string) telemetry.EntityID {
		for i := 1; i <= e.reg.Len(); i++ {
			if e.reg.Info(telemetry.EntityID(i)).Entity.Path() == path {
				return telemetry.EntityID(i)
			}
		}
		t.Fatalf("no entity %s", path)
		return 0
	}
	tests := []struct {
		name  string
		alter func(e *Engine)
		want  string
	}{
		{"module's parent out of range", func(e *Engine) { e.ents[id(e, "u/1/2")-1].parent = 1677721600 }, "entity structure"},
		{"string is its own parent", func(e *Engine) { s := id(e, "u/1"); e.ents[s-1].parent = s }, "entity structure"},
		{"cell claims another cell's peer state", func(e *Engine) {
			e.ents[id(e, "u/1/1/1")-1].aux = e.ents[id(e, "u/1/1/2")-1].aux
		}, "peer state"},
		{"cell peer names the wrong module", func(e *Engine) {
			e.cells.at(e.ents[id(e, "u/1/1/1")-1].aux - 1).mod = e.ents[id(e, "u/1/2")-1].aux
		}, "cell peers"},
		{"two cells share a track", func(e *Engine) {
			cell := func(path string) *cellPeer { return e.cells.at(e.ents[id(e, path)-1].aux - 1) }
			cell("u/1/1/1").volt = cell("u/1/1/2").volt
		}, "cell tracks"},
		{"track out of range", func(e *Engine) { e.cells.at(0).temp = uint32(e.tracks.len()) + 1 }, "cell tracks"},
		{"track without its cell", func(e *Engine) { e.cells.at(0).temp = 0 }, "track without its cell"},
		{"two tracks share a jump state", func(e *Engine) {
			a, b := e.trackOf(e.cells.at(0).volt), e.trackOf(e.cells.at(1).volt)
			e.jumps.take(&a.jump)
			b.jump = a.jump
		}, "jump states"},
		{"a jump state both used and free", func(e *Engine) {
			a := e.trackOf(e.cells.at(0).volt)
			e.jumps.take(&a.jump)
			e.jumps.free = append(e.jumps.free, a.jump-1)
		}, "jump states"},
		{"a module sensor and a track share a jump state", func(e *Engine) {
			a := e.trackOf(e.cells.at(0).volt)
			e.jumps.take(&a.jump)
			e.mods[0].sensorJump = a.jump
		}, "jump states"},
		{"a jump state neither used nor free", func(e *Engine) {
			e.jumps.take(&e.trackOf(e.cells.at(0).volt).jump).held = 1
			e.trackOf(e.cells.at(0).volt).jump = 0
		}, "jump state neither used nor free"},
		{"module forgotten under its cells", func(e *Engine) {
			m := id(e, "u/1/2")
			e.mods[e.ents[m-1].aux-1].id = 0
		}, "peer state"},
		{"cell with a stale state", func(e *Engine) { e.ents[id(e, "u/1/1/1")-1].src = 1 }, "stale state of a cell"},
		{"two sources share a stale state", func(e *Engine) { e.ents[id(e, "u/1/2")-1].src = e.ents[id(e, "u/1/1")-1].src }, "stale state"},
		{"negative stale history", func(e *Engine) { e.stale.states[0].own.nout = -1 }, "stale history"},
		{"state for an entity not in the snapshot", func(e *Engine) { e.ents[len(e.ents)-1].known = true }, "state for an unknown entity"},
		{"a flag that is neither true nor false", func(e *Engine) {
			*(*uint8)(unsafe.Pointer(&e.ents[0].known)) = 2
		}, "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, reg := seedEngine()
			if len(eng.ents) <= reg.Len() {
				t.Fatalf("the entity table has no spare rows (%d for %d entities)", len(eng.ents), reg.Len())
			}
			tt.alter(eng)
			var snap bytes.Buffer
			if err := eng.Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			r := telemetry.NewRegistry()
			err := New(DefaultConfig(), r, nil).Restore(&snap)
			if err == nil || !strings.Contains(err.Error(), "("+tt.want) || r.Len() != 0 {
				t.Errorf("Restore = %v with %d entities registered, want the %q part refused and none registered", err, r.Len(), tt.want)
			}
		})
	}
}

// The scores show the runaway cell standing out from its peers.
func TestCellScoresShowTheDriftingCell(t *testing.T) {
	samples := scenarioSamples(t)
	reg := telemetry.NewRegistry()
	eng := New(DefaultConfig(), reg, nil)
	// Up to 4 h: two hours into the precursor, before any 50 °C alarm.
	end := 0
	for end < len(samples) && samples[end].s.Time < samples[0].s.Time+int64(4*time.Hour) {
		end++
	}
	run(t, eng, reg, samples, 0, end)
	var hot CellScore
	var others []float64
	eng.CellScores(func(s CellScore) {
		if reg.Info(s.Entity).Entity.Path() == "u/1/2/3" {
			hot = s
		} else if s.Warm {
			others = append(others, s.TemperatureResidual)
		}
	})
	if !hot.Warm || hot.TemperatureResidual < 1 || hot.VoltageResidual > -0.005 || len(others) != 47 {
		t.Fatalf("runaway cell score %+v with %d warm peers: want a residual above 1 °C and a voltage sag", hot, len(others))
	}
	for _, r := range others {
		if r > hot.TemperatureResidual/3 {
			t.Errorf("a healthy cell's residual %.2f °C is close to the drifting cell's %.2f °C", r, hot.TemperatureResidual)
		}
	}
}

// FuzzRestore mutates a valid snapshot and re-seals its checksum, so that
// the mutations reach the parser: Restore must reject or accept, never
// panic or plant bad references.
func FuzzRestore(f *testing.F) {
	eng, _ := seedEngine()
	var snap bytes.Buffer
	if err := eng.Snapshot(&snap); err != nil {
		f.Fatal(err)
	}
	f.Add(snap.Bytes(), 100, byte(1))
	f.Fuzz(func(t *testing.T, data []byte, at int, x byte) {
		if len(data) < 4 {
			return
		}
		body := bytes.Clone(data[:len(data)-4])
		if len(body) > 0 {
			body[(at%len(body)+len(body))%len(body)] ^= x
		}
		sealed := binary.BigEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
		r := telemetry.NewRegistry()
		e := New(DefaultConfig(), r, nil)
		if err := e.Restore(bytes.NewReader(sealed)); err != nil {
			return
		}
		// A snapshot that restores must be usable.
		for id := 1; id <= r.Len(); id++ {
			e.Observe(telemetry.Sample{Time: 1e18, Entity: telemetry.EntityID(id), Metric: telemetry.CellTemperatureCelsius, Value: 25}, nil)
		}
		e.Tick(2e18, nil)
	})
}

// seedEngine is an engine that has seen snapshotSeedSamples.
func seedEngine() (*Engine, *telemetry.Registry) {
	reg := telemetry.NewRegistry()
	eng := New(DefaultConfig(), reg, nil)
	for _, s := range snapshotSeedSamples() {
		id, _ := reg.Intern(s.ent)
		s.s.Entity = id
		eng.Observe(s.s, nil)
	}
	return eng, reg
}

// snapshotSeedSamples is a small fleet's first polls.
func snapshotSeedSamples() []pathSample {
	var out []pathSample
	for p := 0; p < 30; p++ {
		for m := 1; m <= 2; m++ {
			for c := 1; c <= 4; c++ {
				ent := telemetry.Entity{UPS: "u", String: "1", Module: fmt.Sprint(m), Cell: fmt.Sprint(c)}
				out = append(out,
					pathSample{ent, telemetry.Sample{Time: int64(p) * 30e9, Metric: telemetry.CellTemperatureCelsius, Value: 25 + float64(c)/10}},
					pathSample{ent, telemetry.Sample{Time: int64(p) * 30e9, Metric: telemetry.CellVoltageVolts, Value: 4 + float64(c)/1000}})
			}
		}
	}
	return out
}

// A fleet whose cells fill several chunks of the cell table restores to
// the same state: its snapshot, taken again, is the same bytes.
func TestSnapshotOfManyCellsRoundTrips(t *testing.T) {
	reg := telemetry.NewRegistry()
	eng := New(DefaultConfig(), reg, nil)
	const cells = 2*tableChunk + 100
	for p := range 5 {
		at := base + int64(p)*int64(30*time.Second)
		for i := range cells {
			id, err := reg.Intern(telemetry.Entity{UPS: "u", String: itoa(1 + i/256), Module: itoa(1 + i/16%16), Cell: itoa(1 + i%16)})
			if err != nil {
				t.Fatal(err)
			}
			eng.Observe(telemetry.Sample{Time: at, Entity: id, Metric: telemetry.CellTemperatureCelsius, Value: 25 + float64(i%7)/10}, nil)
		}
		eng.Tick(at+int64(10*time.Second), nil)
	}
	var first, second bytes.Buffer
	if err := eng.Snapshot(&first); err != nil {
		t.Fatal(err)
	}
	restored := New(DefaultConfig(), telemetry.NewRegistry(), nil)
	if err := restored.Restore(bytes.NewReader(first.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := restored.Snapshot(&second); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Errorf("the snapshot of the restored engine differs (%d bytes, was %d)", second.Len(), first.Len())
	}
}

// A string's cached offset bounds come from the configuration in force:
// a reload or a restore makes every string work them out again.
func TestOffsetBoundsFollowTheConfiguration(t *testing.T) {
	samples := scenarioSamples(t)
	reg := telemetry.NewRegistry()
	eng := New(DefaultConfig(), reg, nil)
	run(t, eng, reg, samples, 0, len(samples)/4)
	cached := func(e *Engine) int {
		n := 0
		for i := range e.groups {
			for _, s := range e.groups[i].offSeq {
				if s != 0 {
					n++
				}
			}
		}
		return n
	}
	if cached(eng) == 0 {
		t.Fatal("no string has offset bounds after an hour; the test would prove nothing")
	}
	var snap bytes.Buffer
	if err := eng.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restored := New(DefaultConfig(), telemetry.NewRegistry(), nil)
	if err := restored.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if n := cached(restored); n != 0 {
		t.Errorf("%d offset bounds kept across a restore", n)
	}
	cfg := DefaultConfig()
	cfg.Peers.OffsetBoundZ = 3
	eng.Reconfigure(cfg, nil)
	if n := cached(eng); n != 0 {
		t.Errorf("%d offset bounds kept across a reload", n)
	}
}
