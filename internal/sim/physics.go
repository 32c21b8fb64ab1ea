package sim

import (
	"math"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// Thermal model. A cell's temperature relaxes toward a target (room air
// plus its position and cell offsets plus Joule and fault heating) with
// time constant thermalTau. Joule heating at equilibrium is
// jouleCelsiusPerC2 × (C-rate)². Calibrated on the NASA PCoE traces in
// shared/data/nasa_pcoe_battery: a 2 Ah cell discharged at 0.5C at 4 °C
// rises about 6 °C in 100 min (B0047); at 2C it rises 15-26 °C in 16-25
// min (B0029, B0038). Large-format UPS modules behind forced air respond
// more slowly than a bare 18650, hence the longer time constant.
const (
	thermalTauSeconds = 45 * 60
	jouleCelsiusPerC2 = 20.0
	criticalCelsius   = 80.0  // a runaway label's critical time
	ventCelsius       = 200.0 // past this a cell's sensors are destroyed
)

// ocvPoint is one point of an open-circuit-voltage curve.
type ocvPoint struct{ soc, volts float64 }

// Open-circuit voltage by state of charge, piecewise linear.
var ocvCurves = map[inventory.Chemistry][]ocvPoint{
	inventory.NMC: {{0, 3.00}, {0.1, 3.45}, {0.3, 3.62}, {0.5, 3.72}, {0.7, 3.87}, {0.9, 4.05}, {0.95, 4.10}, {1, 4.18}},
	inventory.LFP: {{0, 2.80}, {0.1, 3.20}, {0.3, 3.26}, {0.5, 3.29}, {0.7, 3.31}, {0.9, 3.33}, {0.95, 3.34}, {1, 3.45}},
}

// internalVoltsPerC is the voltage drop per C of current.
var internalVoltsPerC = map[inventory.Chemistry]float64{inventory.NMC: 0.06, inventory.LFP: 0.04}

// floatSOC is where a UPS charger holds a string between events.
const floatSOC = 0.95

func ocv(chem inventory.Chemistry, soc float64) float64 {
	pts := ocvCurves[chem]
	if soc <= pts[0].soc {
		return pts[0].volts
	}
	for i := 1; i < len(pts); i++ {
		if soc <= pts[i].soc {
			a, b := pts[i-1], pts[i]
			return a.volts + (b.volts-a.volts)*(soc-a.soc)/(b.soc-a.soc)
		}
	}
	return pts[len(pts)-1].volts
}

// relax moves x toward target over dt seconds with time constant tau.
func relax(x, target, dt, tau float64) float64 {
	return target + (x-target)*math.Exp(-dt/tau)
}

// quantize rounds v to a multiple of q (q <= 0: unchanged).
func quantize(v, q float64) float64 {
	if q <= 0 {
		return v
	}
	return math.Round(v/q) * q
}
