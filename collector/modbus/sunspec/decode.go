package sunspec

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Value is one decoded point of a model.
type Value struct {
	// Type is the point's SunSpec type ("uint16", "int16", "sunssf",
	// "enum16", "bitfield32", "string", ...).
	Type string
	// Units is the point's unit as the model defines it ("V", "A", "C",
	// "%", ...), empty for unitless points.
	Units string
	// Offset is the point's first register counted from the model's ID
	// register (the ID itself is at offset 0, L at 1).
	Offset uint16
	// Present is false when the device does not implement the point: its
	// raw value is the type's "not implemented" value, or the point's
	// scale factor is not implemented or outside -10..10. Num is NaN and
	// Str empty then.
	Present bool
	// Num is the numeric value with the scale factor applied (Raw ×
	// 10^Scale); for enums and bitfields the raw value, for sunssf points
	// the exponent. NaN for strings and absent values.
	Num float64
	// Scale is the power-of-ten exponent applied to Num (0 for points
	// without a scale factor).
	Scale int
	// Raw holds the point's register bits, most significant register
	// first, zero-extended (an int16 of -1 is 0xFFFF).
	Raw uint64
	// Str is the value of a string point, trailing NULs and spaces
	// removed.
	Str string
}

// Group is one instance of a group of points: a model's top-level group or
// one repeat of a repeating group.
type Group struct {
	// Points maps point names to values. Pad registers are left out.
	Points map[string]Value
	// Groups maps the names of nested groups to their instances, one
	// element per repeat in register order (the cells of model 805, the
	// modules of model 804, the strings of model 803).
	Groups map[string][]Group
}

// Model is one decoded model instance.
type Model struct {
	// ID is the model's ID (1, 802, 803, 804 or 805).
	ID uint16
	// Name is the name of the model's top-level group, e.g.
	// "lithium-ion-module".
	Name string
	// Addr is the address of the model's ID register. Decode does not know
	// it and leaves it 0; callers copy it from the ModelRef so that
	// Readings can name the registers of each value.
	Addr uint16
	// L is the model's length: the number of registers after the header.
	L uint16
	// Group holds the model's points and nested groups.
	Group
}

// Decode decodes one model instance. regs starts at the model's ID
// register and holds at least the 2+L registers of the instance (more are
// ignored). Point values come out with their scale factors applied and
// "not implemented" values marked absent; repeating groups are decoded
// once per repeat, their count taken from the point the model names or,
// for a count of 0 (the cell group of model 805), derived from L.
//
// It returns an error for a model ID this package does not know (naming
// the ID), an ID register that does not hold id, registers shorter than
// 2+L, and an L too short for the points the model defines. It never
// panics, whatever the registers hold. The returned Model does not refer
// to regs.
func Decode(id uint16, regs []uint16) (Model, error) {
	def, err := lookup(id)
	if err != nil {
		return Model{}, err
	}
	if len(regs) < 2 {
		return Model{}, fmt.Errorf("sunspec: model %d: %d registers, the header alone needs 2", id, len(regs))
	}
	if regs[0] != id {
		return Model{}, fmt.Errorf("sunspec: model %d: the ID register holds %d", id, regs[0])
	}
	l := int(regs[1])
	if len(regs) < 2+l {
		return Model{}, fmt.Errorf("sunspec: model %d: L is %d but only %d registers follow the header", id, l, len(regs)-2)
	}
	d := decoder{id: id, regs: regs[:2+l]}
	top, _, err := d.group(&def.group, 0, nil)
	if err != nil {
		return Model{}, err
	}
	return Model{ID: id, Name: def.group.name, L: uint16(l), Group: top}, nil
}

// decoder decodes the registers of one model instance.
type decoder struct {
	id   uint16
	regs []uint16 // exactly the 2+L registers of the instance
}

// scope is a group instance being decoded, for looking up scale factors and
// counts by name in it and its ancestors.
type scope struct {
	parent *scope
	points map[string]Value
}

func (s *scope) find(name string) (Value, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.points[name]; ok {
			return v, true
		}
	}
	return Value{}, false
}

// group decodes one instance of g starting at register offset off and
// returns it with the offset after it.
func (d *decoder) group(g *groupDef, off int, parent *scope) (Group, int, error) {
	out := Group{Points: make(map[string]Value, len(g.points))}
	for i := range g.points {
		p := &g.points[i]
		if off+p.size > len(d.regs) {
			if p.typ == "pad" {
				// Some devices leave out a trailing pad (model 1 with
				// L 65); nothing is lost.
				off += p.size
				continue
			}
			return out, off, fmt.Errorf("sunspec: model %d: L %d is too short: point %s at offset %d runs past the model's end",
				d.id, len(d.regs)-2, p.name, off)
		}
		if p.typ != "pad" {
			out.Points[p.name] = decodeValue(p, d.regs[off:off+p.size], off)
		}
		off += p.size
	}
	sc := &scope{parent: parent, points: out.Points}
	// Scale factors may follow the points they scale, so scale once the
	// whole group is read.
	for i := range g.points {
		p := &g.points[i]
		if p.sf == "" && !p.sfConst {
			continue
		}
		v, ok := out.Points[p.name]
		if !ok || !v.Present {
			continue
		}
		exp := p.sfValue
		if !p.sfConst {
			sf, ok := sc.find(p.sf)
			if !ok || !sf.Present {
				out.Points[p.name] = absent(v)
				continue
			}
			exp = int(int16(sf.Raw))
		}
		if exp < -10 || exp > 10 {
			out.Points[p.name] = absent(v)
			continue
		}
		v.Num, v.Scale = scale(v.Num, exp), exp
		out.Points[p.name] = v
	}
	for i := range g.groups {
		sub := &g.groups[i]
		n, err := d.repeats(sub, off, sc)
		if err != nil {
			return out, off, err
		}
		if out.Groups == nil {
			out.Groups = make(map[string][]Group, len(g.groups))
		}
		insts := make([]Group, 0, n)
		for range n {
			var inst Group
			inst, off, err = d.group(sub, off, sc)
			if err != nil {
				return out, off, err
			}
			insts = append(insts, inst)
		}
		out.Groups[sub.name] = insts
	}
	return out, off, nil
}

// repeats returns how many times the group sub repeats at offset off.
func (d *decoder) repeats(sub *groupDef, off int, sc *scope) (int, error) {
	size, fixed := sub.fixedSize()
	left := len(d.regs) - off
	switch {
	case sub.countPoint != "":
		v, ok := sc.find(sub.countPoint)
		if !ok {
			return 0, fmt.Errorf("sunspec: model %d: group %s: count point %s is not defined", d.id, sub.name, sub.countPoint)
		}
		// Lenient on purpose: a device whose count disagrees with its
		// length (an 804 announcing modules it does not lay out) still
		// gives the fixed part and the repeats that are really there.
		if !v.Present || !fixed || size == 0 {
			return 0, nil
		}
		return min(int(min(v.Raw, math.MaxUint16)), left/size), nil
	case sub.count == 0:
		// The legacy rule: the group repeats to the end of the model.
		// Registers left over after the last whole repeat are ignored.
		if !fixed || size == 0 {
			return 0, fmt.Errorf("sunspec: model %d: group %s: cannot derive the count from L", d.id, sub.name)
		}
		n := left / size
		// A module says how many cells it has: never more cells than
		// that, however long the model is.
		if c, ok := sc.find("NCell"); ok && c.Present && int(c.Raw) < n {
			n = int(c.Raw)
		}
		return n, nil
	}
	return sub.count, nil
}

// absent marks v as not implemented.
func absent(v Value) Value {
	v.Present, v.Num, v.Str = false, math.NaN(), ""
	return v
}

// scale returns x × 10^exp for exp in -10..10. Negative exponents divide
// by the power of ten (exact in a float64 up to 10^22), which gives the correctly rounded decimal: 3312 × 10^-3 is 3.312,
// not 3.3120000000000003.
func scale(x float64, exp int) float64 {
	if exp < 0 {
		return x / math.Pow10(-exp)
	}
	return x * math.Pow10(exp)
}

// decodeValue decodes the registers w of point p (before scaling).
func decodeValue(p *pointDef, w []uint16, off int) Value {
	v := Value{Type: p.typ, Units: p.units, Offset: uint16(off), Num: math.NaN()}
	if p.typ == "string" {
		b := make([]byte, 0, 2*len(w))
		for _, x := range w {
			b = append(b, byte(x>>8), byte(x))
		}
		if len(bytes.Trim(b, "\x00")) == 0 {
			return v // all zero: not implemented
		}
		v.Present = true
		v.Str = strings.TrimRight(string(b), "\x00 ")
		if !utf8.ValidString(v.Str) {
			v.Str = strings.ToValidUTF8(v.Str, "\uFFFD")
		}
		return v
	}
	var raw uint64
	for _, x := range w {
		raw = raw<<16 | uint64(x)
	}
	v.Raw = raw
	var num float64
	impl := true
	switch p.typ {
	case "int16", "sunssf":
		impl, num = raw != 0x8000, float64(int16(raw))
	case "uint16", "enum16", "bitfield16":
		impl, num = raw != 0xFFFF, float64(raw)
	case "int32":
		impl, num = raw != 0x80000000, float64(int32(raw))
	case "uint32", "enum32", "bitfield32":
		impl, num = raw != 0xFFFFFFFF, float64(raw)
	case "int64":
		impl, num = raw != 1<<63, float64(int64(raw))
	case "uint64", "bitfield64":
		impl, num = raw != math.MaxUint64, float64(raw)
	case "acc16", "acc32", "acc64":
		// Accumulators mark "not implemented" with 0 (SunSpec, and the
		// reference implementation pysunspec2).
		impl, num = raw != 0, float64(raw)
	case "float32":
		num = float64(math.Float32frombits(uint32(raw)))
		impl = !math.IsNaN(num)
	case "float64":
		num = math.Float64frombits(raw)
		impl = !math.IsNaN(num)
	}
	if impl {
		v.Present, v.Num = true, num
	}
	return v
}
