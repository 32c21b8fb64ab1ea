// Package fleetgen writes deterministic synthetic fleet telemetry in the
// long-format CSV of interfaces.md §1: a daily ambient cycle, fixed
// per-cell and per-position offsets, sensor noise and quantisation, and a
// few injected faults. It feeds the demo, the replay benchmark and tests;
// it is not a battery model (the simulator is).
package fleetgen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Chemistry selects nominal cell voltages.
type Chemistry uint8

// Chemistries the generator knows.
const (
	NMC Chemistry = iota + 1
	LFP
)

// UPS describes one UPS of the fleet.
type UPS struct {
	Name      string
	Chemistry Chemistry
	Strings   int
	Modules   int // per string
	Cells     int // per module
}

// FaultKind is what goes wrong.
type FaultKind uint8

// Faults the generator can inject.
const (
	// Overheat ramps a cell's temperature up by Magnitude °C over the
	// first half of the fault, holds it, and drops back at the end.
	Overheat FaultKind = iota + 1
	// Overvoltage ramps a cell's voltage up by Magnitude volts.
	Overvoltage
	// Silence drops every row of the entity (UPS, string or module).
	Silence
)

// Fault is one injected fault. String, Module and Cell narrow the target;
// empty means the whole level above.
type Fault struct {
	Kind                FaultKind
	UPS, String, Module string
	Cell                string
	From, To            time.Duration // offsets from Spec.Start
	Magnitude           float64
}

// Spec is a whole scenario.
type Spec struct {
	Fleet    []UPS
	Start    time.Time
	Duration time.Duration
	Interval time.Duration
	Seed     uint64
	Faults   []Fault
}

// Write writes the scenario as CSV and returns the number of data rows.
func Write(w io.Writer, sp Spec) (int, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString("time,ups,string,module,cell,metric,value\n"); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(sp.Seed, sp.Seed^0x9e3779b97f4a7c15))
	type cellKey struct{ u, s, m, c int }
	offT := map[cellKey]float64{}
	offV := map[cellKey]float64{}
	for ui, u := range sp.Fleet {
		for s := 0; s < u.Strings; s++ {
			for m := 0; m < u.Modules; m++ {
				for c := 0; c < u.Cells; c++ {
					k := cellKey{ui, s, m, c}
					offT[k] = rng.NormFloat64() * 0.5
					offV[k] = rng.NormFloat64() * 0.004
				}
			}
		}
	}
	if sp.Interval <= 0 {
		return 0, fmt.Errorf("fleetgen: interval must be positive, got %v", sp.Interval)
	}
	var line []byte
	rows := 0
	// Every value is computed (and draws its noise) whether or not its row
	// is written, so silencing one entity leaves every other row unchanged.
	row := func(emit bool, ts []byte, ups, str, mod, cell, metric string, v float64, prec int) {
		if !emit {
			return
		}
		line = append(line[:0], ts...)
		for _, f := range [...]string{ups, str, mod, cell, metric} {
			line = append(line, ',')
			line = append(line, f...)
		}
		line = append(line, ',')
		line = strconv.AppendFloat(line, v, 'f', prec, 64)
		line = append(line, '\n')
		bw.Write(line)
		rows++
	}
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strconv.Itoa(i + 1)
		}
		return out
	}
	var ts []byte
	for off := time.Duration(0); off <= sp.Duration; off += sp.Interval {
		t := sp.Start.Add(off)
		ts = t.UTC().AppendFormat(ts[:0], time.RFC3339)
		day := 2 * math.Pi * float64(t.Unix()%86400) / 86400
		hvac := 2 * math.Pi * float64(t.Unix()%1200) / 1200
		for ui, u := range sp.Fleet {
			upsOn := !silenced(sp.Faults, off, u.Name, "", "")
			ambient := 23 + 1.5*math.Sin(day) + 0.4*math.Sin(hvac) + float64(ui)*0.7
			row(upsOn, ts, u.Name, "", "", "", "ambient_temperature_celsius", ambient+rng.NormFloat64()*0.05, 1)
			nominal := 4.05
			if u.Chemistry == LFP {
				nominal = 3.34
			}
			strIDs, modIDs, cellIDs := ids(u.Strings), ids(u.Modules), ids(u.Cells)
			for s, sid := range strIDs {
				strOn := upsOn && !silenced(sp.Faults, off, u.Name, sid, "")
				sum := 0.0
				for m, mid := range modIDs {
					modOn := strOn && !silenced(sp.Faults, off, u.Name, sid, mid)
					modT := ambient + 1.5 + 0.4*float64(m) // top modules run warmer
					row(modOn, ts, u.Name, sid, mid, "", "module_temperature_celsius", modT+rng.NormFloat64()*0.1, 1)
					for c, cid := range cellIDs {
						k := cellKey{ui, s, m, c}
						temp := modT + 0.8 + offT[k] + rng.NormFloat64()*0.1
						volt := nominal + offV[k] + rng.NormFloat64()*0.002
						for _, f := range sp.Faults {
							if f.UPS == u.Name && f.String == sid && f.Module == mid && f.Cell == cid {
								switch f.Kind {
								case Overheat:
									temp += f.Magnitude * ramp(off, f)
								case Overvoltage:
									volt += f.Magnitude * ramp(off, f)
								}
							}
						}
						sum += volt
						row(modOn, ts, u.Name, sid, mid, cid, "cell_temperature_celsius", temp, 1)
						row(modOn, ts, u.Name, sid, mid, cid, "cell_voltage_volts", volt, 3)
					}
				}
				row(strOn, ts, u.Name, sid, "", "", "string_voltage_volts", sum, 1)
				row(strOn, ts, u.Name, sid, "", "", "string_current_amperes", 0.4+rng.NormFloat64()*0.05, 2)
				row(strOn, ts, u.Name, sid, "", "", "string_soc_ratio", 1, 2)
				row(strOn, ts, u.Name, sid, "", "", "string_soh_ratio", 0.93, 2)
			}
		}
	}
	return rows, bw.Flush()
}

// ramp is 0 outside the fault, rises linearly to 1 over its first half and
// holds 1 for the second half.
func ramp(off time.Duration, f Fault) float64 {
	if off < f.From || off >= f.To {
		return 0
	}
	half := (f.To - f.From) / 2
	if half <= 0 {
		return 1
	}
	return math.Min(1, float64(off-f.From)/float64(half))
}

func silenced(faults []Fault, off time.Duration, ups, str, mod string) bool {
	for _, f := range faults {
		if f.Kind == Silence && off >= f.From && off < f.To && f.UPS == ups && f.String == str && f.Module == mod {
			return true
		}
	}
	return false
}
