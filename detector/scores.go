package detector

import (
	"math"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// CellScore is what the detector currently makes of one cell, for people:
// the metrics side exports it so that Grafana shows how far each cell
// stands from its peers and how close it is to alerting.
type CellScore struct {
	Entity telemetry.EntityID
	// Warm is false while the cell's offsets are still being learned; the
	// residuals are NaN then.
	Warm bool
	// TemperatureResidual is how much hotter than its peers the cell was at
	// its last poll beyond its learned offset (°C), and
	// TemperatureThreshold the residual CellTemperatureDeviation fires at.
	TemperatureResidual, TemperatureThreshold float64
	// VoltageResidual (V, negative = below its peers) and the absolute
	// residual CellVoltageDeviation fires at.
	VoltageResidual, VoltageThreshold float64
	// TemperatureOffset and VoltageOffset are the learned normal offsets
	// from the peers (position, sensor offset).
	TemperatureOffset, VoltageOffset float64
	// RisingSlope is the Theil-Sen slope of the cell's temperature relative
	// to its string (°C/h).
	RisingSlope float64
	// TemperatureSensorFault and VoltageSensorFault say a sensor is judged
	// faulty; its readings are excluded.
	TemperatureSensorFault, VoltageSensorFault bool
}

// CellScores calls fn for every cell with a peer state, in ascending
// entity ID order. It reads the engine's state: call it from the goroutine
// that feeds the engine, between Observe calls.
func (e *Engine) CellScores(fn func(CellScore)) {
	warm := uint32(e.cfg.Peers.WarmupPolls)
	// A quantity a cell has not reported yet has no track: it reads as a
	// new one (zero offset, NaN residual, never warm).
	none := newTrack()
	for i := range e.ents {
		st := &e.ents[i]
		if st.level != telemetry.LevelCell || st.aux == 0 {
			continue
		}
		c := e.cells.at(st.aux - 1)
		tr, vr := e.trackOf(c.temp), e.trackOf(c.volt)
		if tr == nil {
			tr = &none
		}
		if vr == nil {
			vr = &none
		}
		s := CellScore{
			Entity: c.id, Warm: tr.n >= warm && vr.n >= warm,
			TemperatureResidual: math.NaN(), TemperatureThreshold: math.NaN(),
			VoltageResidual: math.NaN(), VoltageThreshold: math.NaN(),
			TemperatureOffset: tr.off, VoltageOffset: vr.off, RisingSlope: c.slope,
			TemperatureSensorFault: tr.fault != 0, VoltageSensorFault: vr.fault != 0,
		}
		if tr.n >= warm {
			s.TemperatureResidual, s.TemperatureThreshold = tr.res, tr.thr
		}
		if vr.n >= warm {
			s.VoltageResidual, s.VoltageThreshold = vr.res, vr.thr
		}
		fn(s)
	}
}
