// Package sunspec discovers and decodes SunSpec devices over Modbus.
//
// SunSpec is an open standard for the register maps of distributed energy
// devices. A device marks the start of its SunSpec map with the two
// registers "SunS" (0x5375 0x6E53), usually at address 40000 (or 0 or
// 50000), followed by a chain of models. Every model starts with a header
// of two registers, its ID and its length L (the registers after the
// header); the next model starts right after it, and ID 0xFFFF with L 0
// ends the chain. Inside a model, points are big-endian integers, strings
// or bitfields; a numeric point may name a sunssf point holding its
// power-of-ten scale factor, and every type has a raw value that means
// "not implemented".
//
// This package knows the common model (1) and the battery models 802
// (battery base), 803 (lithium-ion bank), 804 (lithium-ion string) and 805
// (lithium-ion module, with one repeating group per cell). Their
// definitions are the official JSON files of github.com/sunspec/models,
// embedded unmodified (Apache License 2.0, see models/LICENSE and
// models/SOURCE.txt). Discover walks a device's model chain, Decode turns
// one model's registers into named values, and Readings maps decoded
// models to cellwarden's telemetry.
//
// Everything here is pure: Discover does I/O only through the read function
// its caller passes, and nothing keeps state between calls.
package sunspec

import (
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
)

// Model IDs of the models this package decodes.
const (
	// ModelCommon is the common model (manufacturer, model, serial) that
	// every SunSpec device puts first.
	ModelCommon uint16 = 1
	// ModelBattery is the battery base model (ratings, state of charge,
	// warranty date, bank voltage and current).
	ModelBattery uint16 = 802
	// ModelLithiumIonBank is the lithium-ion bank model (extremes over
	// strings, one repeating group per string).
	ModelLithiumIonBank uint16 = 803
	// ModelLithiumIonString is the lithium-ion string model (one per
	// string, one repeating group per module).
	ModelLithiumIonString uint16 = 804
	// ModelLithiumIonModule is the lithium-ion module model (one per
	// module, one repeating group per cell).
	ModelLithiumIonModule uint16 = 805
)

//go:embed models/*.json
var modelFiles embed.FS

// modelDef is one parsed model definition.
type modelDef struct {
	id    uint16
	group groupDef
}

// groupDef is a group of points, possibly repeated.
type groupDef struct {
	name string
	// count is the fixed number of repeats; 0 with countPoint empty means
	// "derive the repeats from the model length L" (the legacy rule of the
	// 805 cell group).
	count int
	// countPoint names the point (of this group's ancestors) holding the
	// number of repeats.
	countPoint string
	points     []pointDef
	groups     []groupDef
}

// pointDef is one point of a group.
type pointDef struct {
	name  string
	typ   string
	size  int
	units string
	// sf names the sunssf point holding the scale factor; when sfConst is
	// set the scale factor is the constant sfValue instead.
	sf      string
	sfConst bool
	sfValue int
	// symbols name the values of an enum or the bits of a bitfield.
	symbols []symbolDef
}

// symbolDef is one named value of an enum or bit of a bitfield.
type symbolDef struct {
	name  string
	value int
}

// jsonModel, jsonGroup and jsonPoint mirror the parts of the SunSpec model
// JSON schema that decoding needs.
type jsonModel struct {
	ID    int       `json:"id"`
	Group jsonGroup `json:"group"`
}

type jsonGroup struct {
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Count  json.RawMessage `json:"count"`
	Points []jsonPoint     `json:"points"`
	Groups []jsonGroup     `json:"groups"`
}

type jsonPoint struct {
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Size    int             `json:"size"`
	Count   *int            `json:"count"`
	SF      json.RawMessage `json:"sf"`
	Units   string          `json:"units"`
	Symbols []jsonSymbol    `json:"symbols"`
}

type jsonSymbol struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

// typeSize returns the register count of a fixed-size point type this
// package decodes. Strings take their size from the definition; pad
// registers are skipped.
func typeSize(typ string) (int, bool) {
	switch typ {
	case "int16", "uint16", "acc16", "enum16", "bitfield16", "sunssf":
		return 1, true
	case "int32", "uint32", "acc32", "enum32", "bitfield32", "float32":
		return 2, true
	case "int64", "uint64", "acc64", "bitfield64", "float64":
		return 4, true
	}
	return 0, false
}

// definitions parses the embedded model files once. The result is never
// modified after parsing.
var definitions = sync.OnceValues(func() (map[uint16]*modelDef, error) {
	defs := map[uint16]*modelDef{}
	for _, id := range []uint16{ModelCommon, ModelBattery, ModelLithiumIonBank, ModelLithiumIonString, ModelLithiumIonModule} {
		name := fmt.Sprintf("models/model_%d.json", id)
		data, err := modelFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("sunspec: %w", err)
		}
		def, err := parseModel(data)
		if err != nil {
			return nil, fmt.Errorf("sunspec: %s: %w", name, err)
		}
		if def.id != id {
			return nil, fmt.Errorf("sunspec: %s defines model %d", name, def.id)
		}
		defs[id] = def
	}
	return defs, nil
})

// lookup returns the definition of a model.
func lookup(id uint16) (*modelDef, error) {
	defs, err := definitions()
	if err != nil {
		return nil, err
	}
	def, ok := defs[id]
	if !ok {
		return nil, fmt.Errorf("sunspec: model %d is not supported (known: 1, 802, 803, 804, 805)", id)
	}
	return def, nil
}

// parseModel parses one SunSpec model JSON file.
func parseModel(data []byte) (*modelDef, error) {
	var jm jsonModel
	if err := json.Unmarshal(data, &jm); err != nil {
		return nil, err
	}
	if jm.ID < 1 || jm.ID > 0xFFFE {
		return nil, fmt.Errorf("model id %d out of range", jm.ID)
	}
	g, err := parseGroup(&jm.Group, true)
	if err != nil {
		return nil, err
	}
	if len(g.points) < 2 || g.points[0].name != "ID" || g.points[1].name != "L" {
		return nil, fmt.Errorf("model %d: the first points must be ID and L", jm.ID)
	}
	return &modelDef{id: uint16(jm.ID), group: g}, nil
}

func parseGroup(jg *jsonGroup, top bool) (groupDef, error) {
	g := groupDef{name: jg.Name, count: 1}
	if len(jg.Count) > 0 {
		var n int
		var s string
		switch {
		case json.Unmarshal(jg.Count, &n) == nil:
			if n < 0 {
				return g, fmt.Errorf("group %s: negative count %d", jg.Name, n)
			}
			g.count = n
		case json.Unmarshal(jg.Count, &s) == nil:
			g.countPoint, g.count = s, 0
		default:
			return g, fmt.Errorf("group %s: count %s is neither a number nor a point name", jg.Name, jg.Count)
		}
	}
	if top && (g.count != 1 || g.countPoint != "") {
		return g, fmt.Errorf("group %s: the model's top group cannot repeat", jg.Name)
	}
	for i := range jg.Points {
		p, err := parsePoint(&jg.Points[i])
		if err != nil {
			return g, fmt.Errorf("group %s: %w", jg.Name, err)
		}
		g.points = append(g.points, p)
	}
	for i := range jg.Groups {
		sub, err := parseGroup(&jg.Groups[i], false)
		if err != nil {
			return g, fmt.Errorf("group %s: %w", jg.Name, err)
		}
		if sub.count == 0 && sub.countPoint == "" {
			// Deriving the repeats from L only works for the last group of
			// the model, with nothing repeating inside it.
			if !top || i != len(jg.Groups)-1 || len(sub.groups) > 0 {
				return g, fmt.Errorf("group %s: group %s: count 0 (derived from L) is only supported for the model's last group", jg.Name, sub.name)
			}
		}
		g.groups = append(g.groups, sub)
	}
	return g, nil
}

func parsePoint(jp *jsonPoint) (pointDef, error) {
	p := pointDef{name: jp.Name, typ: jp.Type, size: jp.Size, units: jp.Units}
	for _, sym := range jp.Symbols {
		p.symbols = append(p.symbols, symbolDef{name: sym.Name, value: sym.Value})
	}
	if jp.Count != nil && *jp.Count != 1 {
		return p, fmt.Errorf("point %s: count %d is not supported", jp.Name, *jp.Count)
	}
	switch jp.Type {
	case "string":
		if jp.Size < 1 {
			return p, fmt.Errorf("point %s: string size %d", jp.Name, jp.Size)
		}
	case "pad":
		if jp.Size < 1 {
			return p, fmt.Errorf("point %s: pad size %d", jp.Name, jp.Size)
		}
	default:
		want, ok := typeSize(jp.Type)
		if !ok {
			return p, fmt.Errorf("point %s: type %q is not supported", jp.Name, jp.Type)
		}
		if jp.Size != want {
			return p, fmt.Errorf("point %s: type %s has size %d, not %d", jp.Name, jp.Type, want, jp.Size)
		}
	}
	if len(jp.SF) > 0 {
		var s string
		var n int
		switch {
		case json.Unmarshal(jp.SF, &s) == nil:
			if v, err := strconv.Atoi(s); err == nil {
				p.sfConst, p.sfValue = true, v
			} else {
				p.sf = s
			}
		case json.Unmarshal(jp.SF, &n) == nil:
			p.sfConst, p.sfValue = true, n
		default:
			return p, fmt.Errorf("point %s: sf %s is neither a number nor a point name", jp.Name, jp.SF)
		}
	}
	return p, nil
}

// fixedSize returns the registers one repeat of g takes, or false if that
// depends on values read from the device.
func (g *groupDef) fixedSize() (int, bool) {
	n := 0
	for i := range g.points {
		n += g.points[i].size
	}
	for i := range g.groups {
		sub := &g.groups[i]
		if sub.countPoint != "" || sub.count == 0 {
			return 0, false
		}
		s, ok := sub.fixedSize()
		if !ok {
			return 0, false
		}
		n += sub.count * s
	}
	return n, true
}
