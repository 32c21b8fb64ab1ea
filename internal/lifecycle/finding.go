package lifecycle

import (
	"strconv"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// Field names a date of a battery record.
type Field uint8

// The dated fields of interfaces.md §2.
const (
	FieldManufactured Field = iota + 1
	FieldInstalled
	FieldWarrantyUntil
	FieldReplaceBy
	numFields
)

var fieldNames = [...]string{FieldManufactured: "manufactured", FieldInstalled: "installed", FieldWarrantyUntil: "warranty_until", FieldReplaceBy: "replace_by"}

// String returns the field's inventory key ("warranty_until").
func (f Field) String() string { return enumName(fieldNames[:], int(f), "Field") }

// ParseField returns the field of an inventory key.
func ParseField(s string) (Field, bool) {
	i, ok := enumParse(fieldNames[:], s)
	return Field(i), ok
}

// State is a battery's verdict.
type State uint8

// States, from least to most urgent except StateUnknown, which says that
// no life date could be worked out at all.
const (
	// StateOK: every life date is beyond the horizon.
	StateOK State = iota + 1
	// StateSoon: a life date falls within the horizon.
	StateSoon
	// StateEndOfLife: past design life, warranty or vendor replace-by,
	// or state of health below the limit.
	StateEndOfLife
	// StateUnknown: no life date can be worked out (no dates, no state
	// of health).
	StateUnknown
)

var stateNames = [...]string{StateOK: "ok", StateSoon: "soon", StateEndOfLife: "end_of_life", StateUnknown: "unknown"}

// String returns "ok", "soon", "end_of_life" or "unknown", the names of
// the simulator's labels.
func (s State) String() string { return enumName(stateNames[:], int(s), "State") }

// ParseState returns the state named s.
func ParseState(s string) (State, bool) {
	i, ok := enumParse(stateNames[:], s)
	return State(i), ok
}

// Reason is why a battery reaches end of life.
type Reason uint8

// Reasons, named as the simulator's labels name them.
const (
	ReasonDesignLife Reason = iota + 1
	ReasonWarranty
	ReasonReplaceBy
	// ReasonSOH: the state of health is below the limit.
	ReasonSOH
	// ReasonSOHTrend: the state-of-health trend reaches the limit on the
	// date. It makes a battery soon, never end of life by itself.
	ReasonSOHTrend
)

var reasonNames = [...]string{ReasonDesignLife: "design_life", ReasonWarranty: "warranty", ReasonReplaceBy: "replace_by", ReasonSOH: "soh", ReasonSOHTrend: "soh_trend"}

// String returns "design_life", "warranty", "replace_by", "soh" or
// "soh_trend".
func (r Reason) String() string { return enumName(reasonNames[:], int(r), "Reason") }

// ProblemKind classifies data-quality problems.
type ProblemKind uint8

// Problem kinds.
const (
	// ProblemPlaceholder: a date is a placeholder (1970-01-01,
	// 2001-09-25, ...) and was not used.
	ProblemPlaceholder ProblemKind = iota + 1
	// ProblemConflict: sources disagree about a value; the more cautious
	// one (the earlier date, the shorter design life) was used.
	ProblemConflict
	// ProblemFuture: an installed or manufactured date after the as-of
	// day; it was not used.
	ProblemFuture
	// ProblemOrder: dates in an impossible order (manufactured after
	// installed, warranty ending before installation).
	ProblemOrder
	// ProblemUnknownAge: neither installed nor manufactured is known.
	ProblemUnknownAge
)

var problemNames = [...]string{ProblemPlaceholder: "placeholder", ProblemConflict: "conflict", ProblemFuture: "future", ProblemOrder: "order", ProblemUnknownAge: "unknown_age"}

// String returns "placeholder", "conflict", "future", "order" or
// "unknown_age".
func (k ProblemKind) String() string { return enumName(problemNames[:], int(k), "ProblemKind") }

// enumName returns names[v], or "Type(v)" for a value without a name.
func enumName(names []string, v int, typ string) string {
	if v >= 1 && v < len(names) && names[v] != "" {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(v) + ")"
}

// enumParse returns the index of name in names; names[0] is never a
// match.
func enumParse(names []string, name string) (int, bool) {
	for i := 1; i < len(names); i++ {
		if names[i] == name && name != "" {
			return i, true
		}
	}
	return 0, false
}

// Problem is one data-quality finding about a battery's record.
type Problem struct {
	Kind ProblemKind
	// Field is the date concerned, 0 when the problem is not about one
	// date (chemistry, design life, unknown age).
	Field Field
	// Message says it for people, naming the values and their sources:
	// `installed 2014-09-15 (inventory.yaml:3) and 2015-01-10
	// (assets.csv:2) disagree; using 2014-09-15`.
	Message string
}

// Dated is a date and where it came from. Source names one or more
// places: "inventory.yaml:12", "assets.csv:4",
// "modbus rack-1 SunSpec 802 WarrDt", several joined with ", " when they
// agree, or the policy that derived it.
type Dated struct {
	Date   Date
	Source string
}

// Years is a number of years and where it came from ("inventory.yaml:3",
// "lifecycle.policies[0]", "default for NMC").
type Years struct {
	Years  float64
	Source string
}

// LifeDate is one date on which a battery reaches end of life.
type LifeDate struct {
	Reason Reason
	Date   Date
	// Source is where the date, or what it was computed from, came from.
	Source string
	// Detail says how it was worked out ("10 y from installed
	// 2014-09-15"); empty for dates taken as they are.
	Detail string
}

// Finding is the verdict on one battery string, or on a UPS whose strings
// are not known (String empty).
type Finding struct {
	UPS    string
	String string
	State  State
	// EndOfLife is the earliest life date, zero when there is none;
	// DaysLeft counts the days from the as-of day to it (negative when
	// it has passed).
	EndOfLife Date
	DaysLeft  int
	// Reasons say why the state is what it is, for people: the life
	// dates that have passed for end_of_life, those within the horizon
	// for soon ("past design life on 2024-09-15", "warranty ended
	// 2024-09-15", "vendor replace-by 2024-06-30 passed", "SoH 0.79
	// below 0.80").
	Reasons []string
	// LifeDates are every life date, earliest first.
	LifeDates []LifeDate

	Vendor, Model, Serial string
	Chemistry             inventory.Chemistry
	Manufactured          Dated
	Installed             Dated
	// AgeDays is the battery's age on the as-of day, from Installed, or
	// from Manufactured when installation is not known; AgeKnown is
	// false when neither is.
	AgeDays  int
	AgeKnown bool
	// DesignLife is the design life that applies, zero when none does.
	DesignLife Years
	// Warranty and ReplaceBy are the dates that apply, given or derived
	// from a policy.
	Warranty  Dated
	ReplaceBy Dated
	// SOH is the state of health and its trend; nil without readings.
	SOH *SOHStatus
	// Problems are the data-quality findings about the record.
	Problems []Problem
	// Ack is the acknowledgement that covers this finding, nil when none
	// is active.
	Ack *Ack
}

// AgeYears is the age in years of 365.25 days.
func (f *Finding) AgeYears() float64 { return float64(f.AgeDays) / 365.25 }

// urgency orders findings: end of life, soon, data problems, fine.
func (f *Finding) urgency() int {
	switch {
	case f.State == StateEndOfLife:
		return 0
	case f.State == StateSoon:
		return 1
	case f.State == StateUnknown || len(f.Problems) > 0:
		return 2
	}
	return 3
}

// NeedsAttention reports whether the finding is end of life or soon and
// not acknowledged.
func (f *Finding) NeedsAttention() bool {
	return (f.State == StateEndOfLife || f.State == StateSoon) && f.Ack == nil
}
