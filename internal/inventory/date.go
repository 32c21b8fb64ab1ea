package inventory

import (
	"cmp"
	"errors"
	"time"

	"go.yaml.in/yaml/v3"
)

// dateLayout is how inventories write dates.
const dateLayout = "2006-01-02"

var errDate = errors.New("is not a date (YYYY-MM-DD)")

// Date is a civil date, without a time of day or a time zone. The zero
// value means that the inventory does not say. Dates are comparable with ==.
type Date struct {
	year  int
	month time.Month
	day   int
}

// ParseDate parses a date written exactly as YYYY-MM-DD: "2014-06-01".
// Dates that do not exist ("2014-02-30"), missing leading zeros
// ("2014-6-1") and the year 0000 are rejected.
func ParseDate(s string) (Date, error) {
	if len(s) != len(dateLayout) {
		return Date{}, errDate
	}
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Year() < 1 {
		return Date{}, errDate
	}
	return DateOf(t), nil
}

// DateOf returns the date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{year: y, month: m, day: d}
}

// Time returns the start of d (midnight) in UTC; the zero time for the zero
// Date.
func (d Date) Time() time.Time {
	if d.IsZero() {
		return time.Time{}
	}
	return time.Date(d.year, d.month, d.day, 0, 0, 0, 0, time.UTC)
}

// String formats d as YYYY-MM-DD, or returns "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Time().Format(dateLayout)
}

// IsZero reports whether d is the zero Date, meaning "not given".
func (d Date) IsZero() bool { return d == Date{} }

// Compare returns -1, 0 or +1 as d is before, equal to or after e. The zero
// Date is before every other date.
func (d Date) Compare(e Date) int {
	return cmp.Or(cmp.Compare(d.year, e.year), cmp.Compare(d.month, e.month), cmp.Compare(d.day, e.day))
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// UnmarshalYAML implements yaml.Unmarshaler; see ParseDate. It reads the
// text as written, so an unquoted date works although YAML resolves it as
// a timestamp.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errDate
	}
	v, err := ParseDate(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
