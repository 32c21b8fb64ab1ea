package sunspec

import (
	"errors"
	"fmt"
)

// MaxModels is the most models Discover walks before it gives up on a
// chain that does not end.
const MaxModels = 200

// ErrNoMarker is returned (wrapped, with the read errors met) by Discover
// when none of the base addresses 40000, 0 and 50000 holds the "SunS"
// marker: the device does not speak SunSpec, or not at a standard base.
var ErrNoMarker = errors.New(`sunspec: no "SunS" marker at 40000, 0 or 50000`)

// ErrModelLimit is returned (wrapped) by Discover when the model chain
// goes on past MaxModels models. The models found so far are returned with
// it and are valid.
var ErrModelLimit = errors.New("sunspec: model chain longer than the limit")

// ModelRef locates one model in a device's register space.
type ModelRef struct {
	// ID is the model's ID, known to this package or not.
	ID uint16
	// Addr is the address of the model's ID register.
	Addr uint16
	// L is the model's length: the registers after the ID and L registers.
	// The whole instance spans Addr .. Addr+2+L-1.
	L uint16
}

// marker is "SunS" in two big-endian registers.
const markerHi, markerLo = 0x5375, 0x6E53

// Discover finds a device's SunSpec map and walks its model chain. It looks
// for the "SunS" marker at 40000, then 0, then 50000 (a failed read there
// just moves on to the next candidate), and returns the marker's address
// as base. The first model header follows the marker; each next header
// sits 2+L registers after the previous one. The walk ends cleanly at the
// end model (ID 0xFFFF) or a header with L 0, neither of which is
// returned, and when the next header would lie beyond register 65535.
//
// read reads count holding registers starting at addr; Discover calls it
// with count 2 only, one header at a time, and does not keep the slices.
// On a read error or a malformed chain mid-walk, Discover returns the
// models found so far together with the error. Without a marker the error
// wraps ErrNoMarker and every read error met; past MaxModels models it
// wraps ErrModelLimit.
func Discover(read func(addr, count uint16) ([]uint16, error)) (base uint16, models []ModelRef, err error) {
	var readErrs []error
	found := false
	for _, b := range [...]uint16{40000, 0, 50000} {
		regs, err := readRegs(read, int(b), 2)
		if err != nil {
			readErrs = append(readErrs, err)
			continue
		}
		if regs[0] == markerHi && regs[1] == markerLo {
			base, found = b, true
			break
		}
	}
	if !found {
		format, args := "%w", []any{ErrNoMarker}
		for _, e := range readErrs {
			format += "; %w"
			args = append(args, e)
		}
		return 0, nil, fmt.Errorf(format, args...)
	}
	addr := int(base) + 2
	for addr+2 <= 0x10000 {
		h, err := readRegs(read, addr, 2)
		if err != nil {
			return base, models, fmt.Errorf("sunspec: model chain at base %d: header %d: %w", base, len(models)+1, err)
		}
		id, l := h[0], h[1]
		if id == 0xFFFF || l == 0 {
			return base, models, nil
		}
		if addr+2+int(l) > 0x10000 {
			return base, models, fmt.Errorf("sunspec: model chain at base %d: model %d at %d has L %d, running past register 65535", base, id, addr, l)
		}
		if len(models) == MaxModels {
			return base, models, fmt.Errorf("%w: more than %d models after base %d", ErrModelLimit, MaxModels, base)
		}
		models = append(models, ModelRef{ID: id, Addr: uint16(addr), L: l})
		addr += 2 + int(l)
	}
	return base, models, nil
}

// readRegs reads count registers at addr and checks the answer's length.
func readRegs(read func(addr, count uint16) ([]uint16, error), addr, count int) ([]uint16, error) {
	regs, err := read(uint16(addr), uint16(count))
	if err != nil {
		return nil, fmt.Errorf("read %d registers at %d: %w", count, addr, err)
	}
	if len(regs) != count {
		return nil, fmt.Errorf("read %d registers at %d: got %d", count, addr, len(regs))
	}
	return regs, nil
}
