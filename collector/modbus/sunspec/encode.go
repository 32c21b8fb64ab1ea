package sunspec

import (
	"fmt"
	"math"
)

// Instance is one group instance to lay out with Encode: engineering values
// (before scaling) by point name, including the scale factors' exponents
// (e.g. "V_SF": -2); strings; raw register values that bypass scaling; and
// the instances of nested repeating groups by group name. Points left out
// are laid out with their type's "not implemented" value, as a device that
// lacks them would; a count point left out gets the number of instances
// given for its group.
type Instance struct {
	Values  map[string]float64
	Strings map[string]string
	Raw     map[string]uint64
	Groups  map[string][]Instance
}

// Encode lays out one instance of model id like a device would: every
// point at its offset, scaled values divided by 10^sf and rounded,
// big-endian words, the ID and L registers filled in. The simulator serves
// its fleet in the SunSpec layout with it, and tests build device images.
func Encode(id uint16, in Instance) ([]uint16, error) {
	def, err := lookup(id)
	if err != nil {
		return nil, err
	}
	regs, err := encodeGroup(&def.group, in, nil)
	if err != nil {
		return nil, fmt.Errorf("model %d: %w", id, err)
	}
	regs[0], regs[1] = id, uint16(len(regs)-2)
	return regs, nil
}

func encodeGroup(g *groupDef, in Instance, parent []Instance) ([]uint16, error) {
	scopes := append([]Instance{in}, parent...)
	var missing error
	// sf finds a scale factor's exponent in this instance or its ancestors.
	sf := func(name string) int {
		for _, s := range scopes {
			if v, ok := s.Values[name]; ok {
				return int(v)
			}
		}
		missing = fmt.Errorf("scale factor %s has no value", name)
		return 0
	}
	var regs []uint16
	for i := range g.points {
		p := &g.points[i]
		var raw uint64
		v, ok := in.Values[p.name]
		_, isRaw := in.Raw[p.name]
		switch {
		case p.name == "ID" || p.name == "L":
			// Filled in by Encode.
		case p.typ == "pad":
			raw = 0x8000
		case p.typ == "string":
			b := make([]byte, 2*p.size)
			copy(b, in.Strings[p.name])
			for j := 0; j < len(b); j += 2 {
				regs = append(regs, uint16(b[j])<<8|uint16(b[j+1]))
			}
			continue
		case isRaw:
			raw = in.Raw[p.name]
		case ok && !math.IsNaN(v):
			raw = encodeNumber(p, v, p.sf, sf)
		case !ok && countOf(g, p.name, in) >= 0:
			raw = uint64(countOf(g, p.name, in))
		default:
			raw = notImplemented(p.typ)
		}
		for j := p.size - 1; j >= 0; j-- {
			regs = append(regs, uint16(raw>>(16*j)))
		}
	}
	if missing != nil {
		return nil, missing
	}
	for i := range g.groups {
		for _, sub := range in.Groups[g.groups[i].name] {
			r, err := encodeGroup(&g.groups[i], sub, scopes)
			if err != nil {
				return nil, err
			}
			regs = append(regs, r...)
		}
	}
	return regs, nil
}

// countOf returns the number of instances given for the nested group
// whose count point is name, or -1.
func countOf(g *groupDef, name string, in Instance) int {
	for i := range g.groups {
		if g.groups[i].countPoint == name {
			return len(in.Groups[g.groups[i].name])
		}
	}
	return -1
}

// encodeNumber turns an engineering value into the point's raw bits.
func encodeNumber(p *pointDef, v float64, sfName string, sf func(string) int) uint64 {
	if p.typ == "float32" {
		return uint64(math.Float32bits(float32(v)))
	}
	if sfName != "" {
		if exp := sf(sfName); exp < 0 {
			v *= math.Pow10(-exp)
		} else {
			v /= math.Pow10(exp)
		}
	}
	r := int64(math.Round(v))
	return uint64(r) & (1<<(16*p.size) - 1)
}

// notImplemented is the raw value a device reports for a point it lacks.
func notImplemented(typ string) uint64 {
	switch typ {
	case "int16", "sunssf":
		return 0x8000
	case "int32":
		return 0x80000000
	case "uint32", "enum32", "bitfield32":
		return 0xFFFFFFFF
	case "acc16", "acc32", "acc64":
		return 0
	}
	return 0xFFFF
}
