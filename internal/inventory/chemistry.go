package inventory

import (
	"errors"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Chemistry is the cell chemistry of a battery. The zero value means that
// the inventory does not say.
type Chemistry uint8

// The chemistries of interfaces.md §2.
const (
	// NMC is lithium nickel manganese cobalt oxide.
	NMC Chemistry = iota + 1
	// LFP is lithium iron phosphate.
	LFP
	// LTO is lithium titanate.
	LTO
	// NCA is lithium nickel cobalt aluminium oxide.
	NCA
)

var chemistryNames = [...]string{NMC: "NMC", LFP: "LFP", LTO: "LTO", NCA: "NCA"}

var errChemistry = errors.New("must be one of NMC, LFP, LTO, NCA")

// String returns the name of c as the inventory writes it ("NMC"), "" for
// the zero value and "Chemistry(N)" for an unknown value.
func (c Chemistry) String() string {
	switch {
	case c == 0:
		return ""
	case int(c) < len(chemistryNames):
		return chemistryNames[c]
	}
	return "Chemistry(" + strconv.Itoa(int(c)) + ")"
}

// ParseChemistry returns the chemistry named s: NMC, LFP, LTO or NCA, in
// upper case as the inventory format writes them or all in lower case.
func ParseChemistry(s string) (Chemistry, bool) {
	for c := NMC; c <= NCA; c++ {
		name := chemistryNames[c]
		if s == name || s == lower(name) {
			return c, true
		}
	}
	return 0, false
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// UnmarshalYAML implements yaml.Unmarshaler; see ParseChemistry.
func (c *Chemistry) UnmarshalYAML(n *yaml.Node) error {
	v, ok := ParseChemistry(n.Value)
	if n.Kind != yaml.ScalarNode || !ok {
		return errChemistry
	}
	*c = v
	return nil
}
