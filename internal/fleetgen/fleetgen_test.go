package fleetgen_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/internal/fleetgen"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// spec is a small fleet: two UPSs of different chemistries, two hours at
// one-minute resolution.
func spec(seed uint64, faults ...fleetgen.Fault) fleetgen.Spec {
	return fleetgen.Spec{
		Fleet: []fleetgen.UPS{
			{Name: "ups-a", Chemistry: fleetgen.NMC, Strings: 2, Modules: 3, Cells: 4},
			{Name: "ups-b", Chemistry: fleetgen.LFP, Strings: 1, Modules: 2, Cells: 3},
		},
		Start:    start,
		Duration: 2 * time.Hour,
		Interval: time.Minute,
		Seed:     seed,
		Faults:   faults,
	}
}

func generate(t *testing.T, sp fleetgen.Spec) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	n, err := fleetgen.Write(&buf, sp)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.String(), n
}

func TestDeterministic(t *testing.T) {
	a, na := generate(t, spec(42))
	b, nb := generate(t, spec(42))
	if a != b || na != nb {
		t.Errorf("same spec and seed gave different output (%d and %d rows)", na, nb)
	}
	c, _ := generate(t, spec(43))
	if a == c {
		t.Errorf("seeds 42 and 43 gave identical output")
	}
}

// TestReadable reads the output with the real CSV reader: every row must
// be accepted and the counts must agree with Write's.
func TestReadable(t *testing.T) {
	tests := []struct {
		name string
		sp   fleetgen.Spec
	}{
		{"no faults", spec(1)},
		{"every fault kind", spec(2,
			fleetgen.Fault{Kind: fleetgen.Overheat, UPS: "ups-a", String: "1", Module: "2", Cell: "3", From: 10 * time.Minute, To: 70 * time.Minute, Magnitude: 8},
			fleetgen.Fault{Kind: fleetgen.Overvoltage, UPS: "ups-b", String: "1", Module: "1", Cell: "1", From: 0, To: time.Hour, Magnitude: 0.3},
			fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-a", String: "2", Module: "1", From: 20 * time.Minute, To: 40 * time.Minute},
			fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-a", String: "1", From: 50 * time.Minute, To: 55 * time.Minute},
			fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-b", From: 90 * time.Minute, To: 100 * time.Minute},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, n := generate(t, tt.sp)
			r, err := csvfile.NewReader(strings.NewReader(out), "gen.csv", telemetry.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			var bad []string
			r.OnBadRow = func(b csvfile.BadRow) { bad = append(bad, b.String()) }
			for {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			st := r.Stats()
			if len(bad) != 0 || st.SkippedTotal() != 0 {
				t.Errorf("%d bad rows, first: %v", st.SkippedTotal(), bad[:min(len(bad), 3)])
			}
			if st.Rows != int64(n) || st.Samples != int64(n) || st.NoReading != 0 {
				t.Errorf("reader saw %d rows, %d samples, %d without reading; Write returned %d rows",
					st.Rows, st.Samples, st.NoReading, n)
			}
		})
	}
}

// row is one parsed data row of generated output.
type row struct {
	time                      time.Time
	ups, str, mod, cell, name string
	value                     float64
}

// key identifies a row without its value.
func (r row) key() string {
	return r.time.Format(time.RFC3339) + "," + r.ups + "," + r.str + "," + r.mod + "," + r.cell + "," + r.name
}

func parse(t *testing.T, out string) []row {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	rows := make([]row, 0, len(lines)-1)
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 7 {
			t.Fatalf("row %q has %d fields", l, len(f))
		}
		ts, err := time.Parse(time.RFC3339, f[0])
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseFloat(f[6], 64)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{ts, f[1], f[2], f[3], f[4], f[5], v})
	}
	return rows
}

func keys(rows []row) map[string]bool {
	m := make(map[string]bool, len(rows))
	for _, r := range rows {
		m[r.key()] = true
	}
	return m
}

// TestSilence checks that a Silence fault removes exactly the rows of its
// entity during [From, To) and nothing else.
func TestSilence(t *testing.T) {
	from, to := 20*time.Minute, 40*time.Minute
	tests := []struct {
		name   string
		fault  fleetgen.Fault
		silent func(r row) bool // rows the fault's entity owns
	}{
		{
			name:   "module",
			fault:  fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-a", String: "2", Module: "3", From: from, To: to},
			silent: func(r row) bool { return r.ups == "ups-a" && r.str == "2" && r.mod == "3" },
		},
		{
			name:   "string",
			fault:  fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-a", String: "1", From: from, To: to},
			silent: func(r row) bool { return r.ups == "ups-a" && r.str == "1" },
		},
		{
			name:   "ups",
			fault:  fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-b", From: from, To: to},
			silent: func(r row) bool { return r.ups == "ups-b" },
		},
	}
	base := parse(t, must(generate(t, spec(7))))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keys(parse(t, must(generate(t, spec(7, tt.fault)))))
			want := map[string]bool{}
			removed := 0
			for _, r := range base {
				off := r.time.Sub(start)
				gone := tt.silent(r) && off >= from && off < to
				want[r.key()] = !gone
				removed += b2i(gone)
			}
			if removed == 0 {
				t.Fatal("the fault's entity has no rows in the window; the test checks nothing")
			}
			for k, keep := range want {
				if got[k] != keep {
					t.Errorf("row %s: present %v, want %v", k, got[k], keep)
				}
			}
			if len(got) != len(base)-removed {
				t.Errorf("got %d rows, want %d (%d removed)", len(got), len(base)-removed, removed)
			}
		})
	}
}

func must(out string, _ int) string { return out }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestOverheat compares a run with an Overheat fault with the same run
// without it: only the faulted cell's temperature changes, by Magnitude
// while the fault holds at its plateau and not at all outside the fault.
func TestOverheat(t *testing.T) {
	const magnitude = 8.0
	f := fleetgen.Fault{
		Kind: fleetgen.Overheat, UPS: "ups-a", String: "2", Module: "3", Cell: "4",
		From: 30 * time.Minute, To: 90 * time.Minute, Magnitude: magnitude,
	}
	base := parse(t, must(generate(t, spec(9))))
	hot := parse(t, must(generate(t, spec(9, f))))
	if len(base) != len(hot) {
		t.Fatalf("Overheat changed the number of rows: %d, want %d", len(hot), len(base))
	}
	plateau := 0
	for i, b := range base {
		h := hot[i]
		if h.key() != b.key() {
			t.Fatalf("row %d is %s, want %s", i, h.key(), b.key())
		}
		off := b.time.Sub(start)
		faulted := b.ups == f.UPS && b.str == f.String && b.mod == f.Module && b.cell == f.Cell &&
			b.name == "cell_temperature_celsius"
		atPlateau := faulted && off >= f.From+(f.To-f.From)/2 && off < f.To
		outside := !faulted || off < f.From || off >= f.To
		plateau += b2i(atPlateau)
		// Values are quantised to 0.1 °C, so the rise is Magnitude within
		// one quantum.
		if diff := h.value - b.value; atPlateau && math.Abs(diff-magnitude) > 0.1+1e-9 {
			t.Errorf("%s: rose by %.2f, want %.1f at the plateau", b.key(), diff, magnitude)
		}
		if outside && h.value != b.value {
			t.Errorf("%s: %v with the fault, %v without; want no change", b.key(), h.value, b.value)
		}
	}
	if plateau != 30 {
		t.Errorf("%d plateau readings of the faulted cell, want 30 (one a minute for 30 minutes)", plateau)
	}
}

// Silencing one module removes its rows and changes nothing else: every
// row written with the fault is written, byte for byte, without it.
func TestSilenceLeavesOtherRowsUnchanged(t *testing.T) {
	clean, _ := generate(t, spec(7))
	silent, _ := generate(t, spec(7, fleetgen.Fault{Kind: fleetgen.Silence, UPS: "ups-a", String: "2", Module: "3",
		From: 20 * time.Minute, To: 40 * time.Minute}))
	all := map[string]bool{}
	for _, l := range strings.Split(clean, "\n") {
		all[l] = true
	}
	lines := strings.Split(silent, "\n")
	changed := 0
	for _, l := range lines {
		if !all[l] {
			changed++
		}
	}
	if changed != 0 || len(lines) >= len(strings.Split(clean, "\n")) {
		t.Errorf("%d rows differ from the fault-free run; %d rows with the fault", changed, len(lines))
	}
}

func TestZeroIntervalIsAnError(t *testing.T) {
	sp := spec(1)
	sp.Interval = 0
	if _, err := fleetgen.Write(io.Discard, sp); err == nil {
		t.Error("Write with a zero interval: no error")
	}
}
