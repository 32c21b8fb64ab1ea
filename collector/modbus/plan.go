package modbus

import (
	"embed"
	"fmt"
	"slices"
	"strings"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// MaxBlock is the most registers one Modbus read may ask for.
const MaxBlock = 125

// Block is one read request: Count registers from Start.
type Block struct {
	Start, Count uint16
}

// Plan coalesces the map's registers into as few reads as possible, each at
// most MaxBlock registers, joining ranges separated by at most maxGap
// unmapped registers (0 is safest: some devices answer "illegal data
// address" for registers they do not implement). Blocks are in address
// order; one bad block never costs the others.
func (m *Map) Plan(maxGap int) []Block {
	type span struct{ lo, hi int }
	var spans []span
	for i := range m.Points {
		p := &m.Points[i]
		for n := 0; n < p.count(); n++ {
			a := int(p.Address) + n*p.stride()
			spans = append(spans, span{a, a + p.words() - 1})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.lo - b.lo })
	var blocks []Block
	cur := span{-1, -1}
	flush := func() {
		if cur.lo >= 0 {
			blocks = append(blocks, Block{Start: uint16(cur.lo), Count: uint16(cur.hi - cur.lo + 1)})
		}
	}
	for _, s := range spans {
		switch {
		case cur.lo >= 0 && s.lo <= cur.hi+1+maxGap && max(cur.hi, s.hi)-cur.lo+1 <= MaxBlock:
			cur.hi = max(cur.hi, s.hi)
		case cur.lo >= 0 && s.hi <= cur.hi: // inside the current block already
		default:
			flush()
			cur = s
		}
	}
	flush()
	return blocks
}

// Check validates the map as it is now (after SetModules, say).
func (m *Map) Check() error {
	var d yamlstrict.Doc
	p := d.Problems()
	m.Validate(p, "")
	return p.Errs().In("register map " + m.Name)
}

// SetModules sets the number of modules of every array (the device's own
// count, from its configuration).
func (m *Map) SetModules(n int) {
	for i := range m.Points {
		if a := m.Points[i].Array; a != nil {
			c := *a
			c.Modules = n
			m.Points[i].Array = &c
		}
	}
}

//go:embed profiles/*.yaml
var profileFS embed.FS

// Profiles returns the names of the built-in register maps.
func Profiles() []string {
	entries, _ := profileFS.ReadDir("profiles")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// Profile returns a fresh copy of a built-in register map.
func Profile(name string) (*Map, error) {
	data, err := profileFS.ReadFile("profiles/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in register map %q (have %s)", name, strings.Join(Profiles(), ", "))
	}
	return ParseMap(data, "profile "+name)
}

// ParseMap decodes and validates a register map in YAML; errors name the
// source, field path and line.
func ParseMap(data []byte, source string) (*Map, error) {
	m := &Map{Function: "holding", ByteOrder: "big", WordOrder: "msw_first"}
	doc, errs := yamlstrict.Decode(data, m)
	p := doc.Problems()
	p.Append(errs...)
	m.Validate(p, "")
	if err := p.Errs().In(source); err != nil {
		return nil, err
	}
	return m, nil
}
