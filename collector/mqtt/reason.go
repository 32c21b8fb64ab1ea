package mqtt

import "fmt"

// Reason classifies a message, or a part of one, that produced no sample.
// The zero value is invalid.
type Reason uint8

// Reasons a message (or one of its readings) is rejected. Their String
// forms are the values of the "reason" label of bad-input counters.
const (
	ReasonTooLarge      Reason = iota + 1 // payload above max_payload_bytes
	ReasonEmpty                           // empty payload (a retained message being cleared)
	ReasonInvalidJSON                     // not one well-formed JSON value
	ReasonWrongType                       // a configured field is not a number (or not an array/object where [*] needs one)
	ReasonMissingField                    // a configured field is absent
	ReasonNotFinite                       // NaN, ±Inf or a number beyond float64
	ReasonBadValue                        // a plain-value payload that is not a decimal number
	ReasonBadTime                         // the payload timestamp is missing or unreadable
	ReasonBadIdentity                     // the topic or payload names no valid UPS/string/module/cell, or the registry is full
	ReasonUnknownMetric                   // a {metric} topic level that is not a catalogue name
	ReasonWrongLevel                      // a {metric} whose level does not match the identity the topic binds
	ReasonNoMatch                         // a topic no subscription template matches
	ReasonBadDate                         // a configured date is not a date (or names an invalid UPS or string)

	// NumReasons is one more than the largest Reason.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonTooLarge:      "too_large",
	ReasonEmpty:         "empty_payload",
	ReasonInvalidJSON:   "invalid_json",
	ReasonWrongType:     "wrong_type",
	ReasonMissingField:  "missing_field",
	ReasonNotFinite:     "not_finite",
	ReasonBadValue:      "bad_value",
	ReasonBadTime:       "bad_time",
	ReasonBadIdentity:   "bad_identity",
	ReasonUnknownMetric: "unknown_metric",
	ReasonWrongLevel:    "wrong_level",
	ReasonNoMatch:       "no_matching_template",
	ReasonBadDate:       "bad_date",
}

// String returns the reason's snake_case name, e.g. "invalid_json".
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

// Drop reasons: why a well-formed message never reached the consumer.
const (
	// DropQueueFull: the bounded queue to the consumer was full (the
	// consumer is slower than the broker delivers).
	DropQueueFull = "queue_full"
	// DropShutdown: the message arrived while the collector was stopping.
	DropShutdown = "shutdown"
)

// DecodeError says why a message, or one reading of it, was rejected.
type DecodeError struct {
	Reason Reason
	Detail string // names the field or topic level, never the whole payload
}

func (e *DecodeError) Error() string { return e.Reason.String() + ": " + e.Detail }

func decodeErr(r Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
