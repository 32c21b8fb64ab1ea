package csvfile

import "fmt"

// Reason classifies a row that was skipped. The zero value is invalid.
type Reason uint8

// Reasons a row is skipped. Their String forms are the values of the
// "reason" label of bad-input counters.
const (
	ReasonColumns   Reason = iota + 1 // not exactly 7 columns, or broken quoting
	ReasonTooLong                     // longer than MaxLineBytes
	ReasonTime                        // time is not RFC 3339 or out of range
	ReasonBackwards                   // time earlier than the previous accepted row
	ReasonIdentity                    // ups / string / module / cell do not name a node of the hierarchy
	ReasonMetric                      // not a name of the metric catalogue
	ReasonLevel                       // the entity's level does not match the metric's
	ReasonValue                       // not a decimal number, or infinite

	// NumReasons is one more than the largest Reason.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonColumns:   "wrong_column_count",
	ReasonTooLong:   "line_too_long",
	ReasonTime:      "bad_time",
	ReasonBackwards: "time_backwards",
	ReasonIdentity:  "bad_identity",
	ReasonMetric:    "unknown_metric",
	ReasonLevel:     "wrong_level",
	ReasonValue:     "bad_value",
}

// String returns the reason's snake_case name, e.g. "unknown_metric".
func (r Reason) String() string {
	if r == 0 || r >= NumReasons {
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
	return reasonNames[r]
}

// Reasons returns every reason in declaration order, for pre-initialising
// counters.
func Reasons() []Reason {
	rs := make([]Reason, 0, NumReasons-1)
	for r := Reason(1); r < NumReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// BadRow describes a skipped row.
type BadRow struct {
	Source string // file name, or "-" for standard input
	Line   int    // 1-based line number in the file
	Reason Reason
	Detail string // human-readable explanation naming the offending field
}

// String renders the row as "FILE:LINE: DETAIL".
func (b BadRow) String() string {
	return fmt.Sprintf("%s:%d: %s", b.Source, b.Line, b.Detail)
}

// Stats counts what a Reader has seen. Rows counts every non-blank data
// line (header excluded); Rows = Samples + the sum of Skipped.
type Stats struct {
	Rows      int64
	Samples   int64
	NoReading int64 // accepted samples whose value was empty or NaN
	Skipped   [NumReasons]int64
}

// SkippedTotal returns the number of rows skipped for any reason.
func (s *Stats) SkippedTotal() int64 {
	var n int64
	for _, c := range s.Skipped {
		n += c
	}
	return n
}
