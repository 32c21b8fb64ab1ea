package modbus

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Candidate is one way to read a register range.
type Candidate struct {
	Type      string // int16, uint16, int32, uint32, float32
	ByteOrder string
	WordOrder string // 32-bit types only
	Scale     float64
	Values    []float64
	// Plausible is the share of values inside the metric's plausible
	// range (0..1), the ranking key.
	Plausible float64
	// Distance is the median distance of the values from a typical one for
	// the metric, relative to its plausible range: the tie-breaker,
	// smaller first.
	Distance float64
}

// Describe renders the candidate's decoding as a point's YAML settings.
func (c Candidate) Describe() string {
	s := fmt.Sprintf("type: %s, byte_order: %s", c.Type, c.ByteOrder)
	if c.WordOrder != "" {
		s += ", word_order: " + c.WordOrder
	}
	return s + fmt.Sprintf(", scale: %g", c.Scale)
}

// plausibleRange is what a metric's values can be, and a typical value,
// for ranking.
func plausibleRange(m telemetry.Metric) (lo, hi, typical float64) {
	switch m {
	case telemetry.CellVoltageVolts:
		return 1.5, 4.5, 3.6
	case telemetry.CellTemperatureCelsius, telemetry.ModuleTemperatureCelsius, telemetry.AmbientTemperatureCelsius:
		return -20, 80, 25
	case telemetry.StringVoltageVolts:
		return 20, 1500, 500
	case telemetry.StringCurrentAmperes:
		return -2000, 2000, 0
	case telemetry.StringSOCRatio, telemetry.StringSOHRatio:
		return 0, 1, 0.8
	}
	return -1e9, 1e9, 0
}

// Interpret decodes regs every way a BMS might mean them and ranks the
// readings by how plausible they are for metric: the share of values in
// the metric's range, then their closeness to a typical value. It is what
// `cellwarden modbus probe` shows a field engineer who does not know the
// byte order. Metrics with a narrow range (cell voltages, temperatures,
// ratios) rank the right decoding first; for currents, whose typical value
// is zero, read the list, not just its head.
func Interpret(regs []uint16, metric telemetry.Metric) []Candidate {
	lo, hi, typical := plausibleRange(metric)
	var out []Candidate
	scales := []float64{1, 0.1, 0.01, 0.001}
	add := func(typ, bo, wo string, words int) {
		n := len(regs) / words
		if n == 0 {
			return
		}
		raw := make([]float64, n)
		for i := range raw {
			raw[i] = decodeNumber(typ, regs[i*words:i*words+words], bo, wo)
		}
		for _, sc := range scales {
			c := Candidate{Type: typ, ByteOrder: bo, WordOrder: wo, Scale: sc, Values: make([]float64, n)}
			in := 0
			dist := make([]float64, n)
			for i, r := range raw {
				v := scaled(r, sc)
				c.Values[i] = v
				// A float32 of a denormal or astronomic size is two
				// integers misread.
				odd := typ == "float32" && v != 0 && (math.Abs(v) < 1e-6 || math.Abs(v) > 1e9)
				if v >= lo && v <= hi && !math.IsNaN(v) && !odd {
					in++
				}
				dist[i] = math.Abs(v-typical) / (hi - lo)
				if math.IsNaN(dist[i]) {
					dist[i] = math.Inf(1)
				}
			}
			c.Plausible = float64(in) / float64(n)
			c.Distance = median(dist)
			out = append(out, c)
		}
	}
	for _, bo := range []string{"big", "little"} {
		add("uint16", bo, "", 1)
		add("int16", bo, "", 1)
		for _, wo := range []string{"msw_first", "lsw_first"} {
			add("uint32", bo, wo, 2)
			add("int32", bo, wo, 2)
			add("float32", bo, wo, 2)
		}
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		if c := cmp.Compare(b.Plausible, a.Plausible); c != 0 {
			return c
		}
		return cmp.Compare(a.Distance, b.Distance)
	})
	return out
}

// median of v (sorting v); probes are rare, so no quickselect here.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
