package modbus

import (
	"math"
	"strconv"
	"sync"

	sv "github.com/simonvetter/modbus"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Encode is the inverse of Decode for one reading: it finds the map's point
// for the metric (and, for arrays, the module and cell) and returns the
// registers that hold the value. ok is false when the map has no place for
// it. A NaN value is written as the point's first sentinel.
func (m *Map) Encode(metric telemetry.Metric, module, cell string, value float64) (addr uint16, words []uint16, ok bool) {
	for i := range m.Points {
		p := &m.Points[i]
		if p.Metric != metric.String() {
			continue
		}
		n := 0
		if p.Array != nil {
			mi, err1 := strconv.Atoi(module)
			ci, err2 := strconv.Atoi(cell)
			if err1 != nil || mi < 1 || mi > p.Array.Modules {
				continue
			}
			n = mi - 1
			if metric.Level() == telemetry.LevelCell {
				if err2 != nil || ci < 1 || ci > p.Array.PerModule {
					continue
				}
				n = (mi-1)*p.Array.PerModule + ci - 1
			}
		}
		var raw float64
		switch {
		case math.IsNaN(value) && len(p.Sentinels) > 0:
			raw = p.Sentinels[0]
		case !math.IsNaN(value):
			scale := p.Scale
			if scale == 0 {
				scale = 1
			}
			raw = math.Round((value - p.Offset) / scale)
			if p.Type == "float32" {
				raw = (value - p.Offset) / scale
			}
		default:
			return 0, nil, false
		}
		bo, wo := orders(m, p)
		return uint16(int(p.Address) + n*p.stride()), encodeNumber(p.Type, raw, bo, wo), true
	}
	return 0, nil, false
}

func encodeNumber(typ string, raw float64, byteOrder, wordOrder string) []uint16 {
	var u uint32
	switch typ {
	case "int16":
		return []uint16{swapBytes(uint16(int16(clamp(raw, math.MinInt16, math.MaxInt16))), byteOrder)}
	case "uint16":
		return []uint16{swapBytes(uint16(clamp(raw, 0, math.MaxUint16)), byteOrder)}
	case "int32":
		u = uint32(int32(clamp(raw, math.MinInt32, math.MaxInt32)))
	case "uint32":
		u = uint32(clamp(raw, 0, math.MaxUint32))
	case "float32":
		u = math.Float32bits(float32(raw))
	}
	hi, lo := uint16(u>>16), uint16(u)
	if wordOrder == "lsw_first" {
		hi, lo = lo, hi
	}
	return []uint16{swapBytes(hi, byteOrder), swapBytes(lo, byteOrder)}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// Bank is a set of register banks, one per unit id, served over Modbus TCP
// by Server: the simulator's devices, and tests' fake BMSs. Writes are
// refused (illegal function) and counted; cellwarden never sends any.
type Bank struct {
	mu     sync.RWMutex
	input  bool // serve the registers as input registers (FC 4) instead of holding (FC 3)
	units  map[uint8]Registers
	reads  map[byte]uint64 // function code → requests
	writes uint64
}

// NewBank returns an empty bank serving holding registers (input when
// input is set).
func NewBank(input bool) *Bank {
	return &Bank{input: input, units: map[uint8]Registers{}, reads: map[byte]uint64{}}
}

// Fill makes every register of m readable for a unit, zero until Set: a
// simulated device answers for its whole map, as a real one does.
func (b *Bank) Fill(unit uint8, m *Map) {
	for _, blk := range m.Plan(0) {
		b.Set(unit, blk.Start, make([]uint16, blk.Count))
	}
}

// Set stores words at addr for a unit. Words past register 65535 are not
// stored (a register address does not wrap around); Set reports whether
// every word fitted.
func (b *Bank) Set(unit uint8, addr uint16, words []uint16) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	regs := b.units[unit]
	if regs == nil {
		regs = Registers{}
		b.units[unit] = regs
	}
	for i, w := range words {
		if int(addr)+i > 0xFFFF {
			return false
		}
		regs[addr+uint16(i)] = w
	}
	return true
}

// Requests returns the read requests served by function code, and the
// refused writes.
func (b *Bank) Requests() (reads map[byte]uint64, writes uint64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	reads = make(map[byte]uint64, len(b.reads))
	for k, v := range b.reads {
		reads[k] = v
	}
	return reads, b.writes
}

var errIllegalFunction = sv.ErrIllegalFunction

func (b *Bank) refuse() error {
	b.mu.Lock()
	b.writes++
	b.mu.Unlock()
	return errIllegalFunction
}

// HandleCoils implements sv.RequestHandler: no coils.
func (b *Bank) HandleCoils(req *sv.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, b.refuse()
	}
	return nil, sv.ErrIllegalFunction
}

// HandleDiscreteInputs implements sv.RequestHandler: none.
func (b *Bank) HandleDiscreteInputs(*sv.DiscreteInputsRequest) ([]bool, error) {
	return nil, sv.ErrIllegalFunction
}

// HandleHoldingRegisters implements sv.RequestHandler.
func (b *Bank) HandleHoldingRegisters(req *sv.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, b.refuse()
	}
	if b.input {
		return nil, sv.ErrIllegalFunction
	}
	return b.read(3, req.UnitId, req.Addr, req.Quantity)
}

// HandleInputRegisters implements sv.RequestHandler.
func (b *Bank) HandleInputRegisters(req *sv.InputRegistersRequest) ([]uint16, error) {
	if !b.input {
		return nil, sv.ErrIllegalFunction
	}
	return b.read(4, req.UnitId, req.Addr, req.Quantity)
}

func (b *Bank) read(fc byte, unit uint8, addr, n uint16) ([]uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads[fc]++
	regs, ok := b.units[unit]
	if !ok {
		return nil, sv.ErrGWTargetFailedToRespond
	}
	out := make([]uint16, n)
	for i := range out {
		v, ok := regs[addr+uint16(i)]
		if !ok {
			return nil, sv.ErrIllegalDataAddress
		}
		out[i] = v
	}
	return out, nil
}
