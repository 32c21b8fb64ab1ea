// Package inventory loads the battery inventory of interfaces.md §2: what
// facilities teams keep about each installed battery string (vendor,
// chemistry, dates of manufacture and installation, design life, warranty).
//
// The file is strict YAML: unknown keys and invalid values are errors, and
// every problem of a file is reported at once, one per line, as
//
//	FILE: PATH: "VALUE" MESSAGE (line N)
//
// for example
//
//	inv.yaml: batteries[1].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 9)
//
// The value is left out when there is none, and the "FILE: " prefix when
// the source has no name.
package inventory

import (
	"fmt"
	"os"

	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// maxDesignLifeYears is the longest design life the inventory accepts.
const maxDesignLifeYears = 50

// Battery is one entry of the inventory: one battery string of a UPS, or
// every string of a UPS when String is empty. Fields the file leaves out
// are zero.
type Battery struct {
	// UPS is the UPS identifier, as in telemetry. Required.
	UPS string `yaml:"ups"`
	// String is the battery string identifier, compared byte for byte
	// ("07" is not "7"). Empty when the entry describes every string of
	// the UPS.
	String string `yaml:"string"`
	// Vendor, Model and Serial are free text.
	Vendor string `yaml:"vendor"`
	// Model is the vendor's model name.
	Model string `yaml:"model"`
	// Serial is the serial number.
	Serial string `yaml:"serial"`
	// Chemistry is the cell chemistry, 0 when not given.
	Chemistry Chemistry `yaml:"chemistry"`
	// Manufactured is the date of manufacture.
	Manufactured Date `yaml:"manufactured"`
	// Installed is the date of installation.
	Installed Date `yaml:"installed"`
	// DesignLifeYears is the vendor's design life in years, 0 when not
	// given; otherwise more than 0 and at most 50.
	DesignLifeYears float64 `yaml:"design_life_years"`
	// WarrantyUntil is the last day of the warranty.
	WarrantyUntil Date `yaml:"warranty_until"`
	// ReplaceBy is the vendor's advised replacement date.
	ReplaceBy Date `yaml:"replace_by"`
	// Line is the line of the entry in the file, for messages.
	Line int `yaml:"-"`
}

// Inventory is a loaded, valid inventory. It is not modified after Parse
// returns it and may be read concurrently.
type Inventory struct {
	// Batteries holds the entries in file order.
	Batteries []Battery
	// Source is the name of the file the inventory was read from.
	Source string
}

// file is the document of an inventory file.
type file struct {
	Batteries []Battery `yaml:"batteries"`
}

// Load reads and parses the inventory file at path. A read error names the
// file; problems in it are reported as Parse does, prefixed with path.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and validates an inventory document; source names it in
// messages and in Inventory.Source. An empty document is a valid inventory
// without batteries. On failure the error lists every problem, one per
// line (see the package documentation); it is a *yamlstrict.SourceErrors
// and errors.As finds the yamlstrict.Errors in it.
func Parse(data []byte, source string) (*Inventory, error) {
	var f file
	doc, errs := yamlstrict.Decode(data, &f)
	p := doc.Problems()
	p.Append(errs...)
	type key struct{ ups, str string }
	first := make(map[key]int) // entry → its line
	for i := range f.Batteries {
		b := &f.Batteries[i]
		path := yamlstrict.Index("batteries", i)
		b.Line = doc.Line(path)
		validate(p, doc, path, b)
		if !telemetry.ValidUPS(b.UPS) {
			continue
		}
		k := key{b.UPS, b.String}
		if line, dup := first[k]; dup {
			p.Add(path, nil, "repeats the entry at line %d for %s", line, describe(b))
			continue
		}
		first[k] = b.Line
	}
	if err := p.Errs().In(source); err != nil {
		return nil, err
	}
	return &Inventory{Batteries: f.Batteries, Source: source}, nil
}

// describe names what an entry is about, for messages.
func describe(b *Battery) string {
	if b.String == "" {
		return fmt.Sprintf("all strings of ups %q", b.UPS)
	}
	return fmt.Sprintf("ups %q string %q", b.UPS, b.String)
}

// validate checks one entry at path.
func validate(p *yamlstrict.Problems, doc *yamlstrict.Doc, path string, b *Battery) {
	at := func(field string) string { return yamlstrict.Key(path, field) }
	switch {
	case b.UPS == "":
		p.Add(at("ups"), nil, "is required")
	case !telemetry.ValidUPS(b.UPS):
		p.Add(at("ups"), b.UPS, "must match [A-Za-z0-9_.:-]+")
	}
	if b.String == "" && doc.Has(at("string")) {
		p.Add(at("string"), nil, "must not be empty (leave it out to describe every string of the UPS)")
	}
	if doc.Has(at("design_life_years")) && !(b.DesignLifeYears > 0 && b.DesignLifeYears <= maxDesignLifeYears) {
		p.Add(at("design_life_years"), b.DesignLifeYears, "must be more than 0 and at most %d", maxDesignLifeYears)
	}
	if !b.Manufactured.IsZero() && !b.Installed.IsZero() && b.Installed.Before(b.Manufactured) {
		p.Add(at("installed"), b.Installed, "is before manufactured (%s)", b.Manufactured)
	}
	if !b.Installed.IsZero() && !b.WarrantyUntil.IsZero() && b.WarrantyUntil.Before(b.Installed) {
		p.Add(at("warranty_until"), b.WarrantyUntil, "is before installed (%s)", b.Installed)
	}
}

// Lookup returns the entry that describes string str of UPS ups: the entry
// for exactly that string if there is one, else the entry for every string
// of the UPS, else false. With str empty it returns the UPS-wide entry. The
// result points into inv.Batteries. Lookup scans the inventory; callers on
// a hot path should keep the result. A nil Inventory has no entries.
func (inv *Inventory) Lookup(ups, str string) (*Battery, bool) {
	if inv == nil {
		return nil, false
	}
	var wide *Battery
	for i := range inv.Batteries {
		b := &inv.Batteries[i]
		switch {
		case b.UPS != ups:
		case b.String == str:
			return b, true
		case b.String == "" && wide == nil:
			wide = b
		}
	}
	return wide, wide != nil
}

// Effective returns what the inventory says about string str of UPS ups:
// the string's own entry, with every field it leaves out taken from the
// UPS-wide entry (a string entry that gives only a serial still has the
// UPS's chemistry and dates). Line is the line of the most specific entry.
func (inv *Inventory) Effective(ups, str string) (Battery, bool) {
	own, ok := inv.Lookup(ups, str)
	if !ok {
		return Battery{}, false
	}
	b := *own
	if own.String == "" {
		return b, true
	}
	wide, ok := inv.Lookup(ups, "")
	if !ok || wide.String != "" {
		return b, true
	}
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&b.Vendor, wide.Vendor)
	fill(&b.Model, wide.Model)
	fill(&b.Serial, wide.Serial)
	if b.Chemistry == 0 {
		b.Chemistry = wide.Chemistry
	}
	for _, d := range []struct{ dst, src *Date }{
		{&b.Manufactured, &wide.Manufactured}, {&b.Installed, &wide.Installed},
		{&b.WarrantyUntil, &wide.WarrantyUntil}, {&b.ReplaceBy, &wide.ReplaceBy},
	} {
		if d.dst.IsZero() {
			*d.dst = *d.src
		}
	}
	if b.DesignLifeYears == 0 {
		b.DesignLifeYears = wide.DesignLifeYears
	}
	return b, true
}
