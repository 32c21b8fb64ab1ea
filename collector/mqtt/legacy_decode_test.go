package mqtt

// The encoding/json decoder the collector used before its own scanner
// (json.go), kept as the reference FuzzDecode compares the scanner with:
// the same readings, dates and reasons for every input. One fix was made
// in both: an empty object key bound by [*] is a bad_identity (it left
// the level empty, giving a cell's reading to its module).

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// decodeLegacy is decode with encoding/json. What comes before the JSON
// (an empty payload, an empty topic level, plain values) is decode's own.
func (s *subscription) decodeLegacy(b *[numSlots]string, payload []byte, recv int64,
	out []Reading, dates []DateReading, bad []*DecodeError) ([]Reading, []DateReading, []*DecodeError) {
	base := s.entity(b)
	if len(payload) == 0 || base.Level() != s.depth || s.format == formatValue {
		return s.decode(new(document), b, payload, recv, out, dates, bad)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return out, dates, append(bad, decodeErr(ReasonInvalidJSON, "%v", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, dates, append(bad, decodeErr(ReasonInvalidJSON, "data after the JSON value"))
	}
	dates, bad = s.decodeDatesLegacy(doc, truncate(base, telemetry.LevelString), dates, bad)
	if len(s.fields) == 0 {
		return out, dates, bad
	}
	t := recv
	if s.timePath != nil {
		var derr *DecodeError
		if t, derr = s.payloadTimeLegacy(doc); derr != nil {
			return out, dates, append(bad, derr)
		}
	}
	for i := range s.fields {
		f := &s.fields[i]
		l := min(s.depth, f.metric.Level())
		out, bad = s.walkLegacy(doc, f, f.path, truncate(base, l), l, t, out, bad)
	}
	return out, dates, bad
}

// decodeDates reads the subscription's dates from doc for the UPS and
// string of e. A null or empty value is "not set"; text is read by
// lifecycle.ParseDate, a number as seconds since the Unix epoch (the
// day in UTC).
func (s *subscription) decodeDatesLegacy(doc any, e telemetry.Entity, dates []DateReading, bad []*DecodeError) ([]DateReading, []*DecodeError) {
	if len(s.dates) > 0 && e.Validate() != nil {
		return dates, append(bad, decodeErr(ReasonBadDate, "the topic names no valid UPS (and string) for its dates"))
	}
	for i := range s.dates {
		f := &s.dates[i]
		v, derr := followLegacy(doc, f.text, f.path)
		if derr != nil {
			bad = append(bad, derr)
			continue
		}
		var d lifecycle.Date
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if strings.TrimSpace(x) == "" {
				continue
			}
			var err error
			if d, err = lifecycle.ParseDate(x); err != nil {
				bad = append(bad, decodeErr(ReasonBadDate, "%s: %q %v", f.text, shorten(x), err))
				continue
			}
		case json.Number:
			secs, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil || secs < 0 || secs > 253402300799 { // up to 9999-12-31
				bad = append(bad, decodeErr(ReasonBadDate, "%s: %s is not a whole number of seconds since 1970 up to the year 9999", f.text, shorten(string(x))))
				continue
			}
			if secs == 0 {
				continue
			}
			d = inventory.DateOf(time.Unix(secs, 0).UTC())
		default:
			bad = append(bad, decodeErr(ReasonBadDate, "%s: %s is neither a date nor a number", f.text, jsonKindLegacy(v)))
			continue
		}
		dates = append(dates, DateReading{UPS: e.UPS, String: e.String, Field: f.field, Date: d})
	}
	return dates, bad
}

// follow returns the value at p (a path without [*]) in v.
func followLegacy(v any, text string, p path) (any, *DecodeError) {
	for _, st := range p {
		var derr *DecodeError
		if v, derr = inLegacy(st, v, text); derr != nil {
			return nil, derr
		}
	}
	return v, nil
}

// in returns the member or element st (a key or [N]) names in v; text is
// the field's path, for messages.
func inLegacy(st step, v any, text string) (any, *DecodeError) {
	if st.key != "" {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, decodeErr(ReasonWrongType, "%s: not an object at %q", text, st.key)
		}
		if v, ok = m[st.key]; !ok {
			return nil, decodeErr(ReasonMissingField, "%s: no %q", text, st.key)
		}
		return v, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, decodeErr(ReasonWrongType, "%s: not an array at [%d]", text, st.index)
	}
	if st.index >= len(a) {
		return nil, decodeErr(ReasonMissingField, "%s: no element [%d]", text, st.index)
	}
	return a[st.index], nil
}

// walk follows p from v, binding one identity level per [*] below level l.
func (s *subscription) walkLegacy(v any, f *field, p path, e telemetry.Entity, l telemetry.Level, t int64,
	out []Reading, bad []*DecodeError) ([]Reading, []*DecodeError) {
	for i, st := range p {
		switch {
		case st.star:
			rest := p[i+1:]
			switch c := v.(type) {
			case []any:
				if len(c) == 0 {
					return out, append(bad, decodeErr(ReasonMissingField, "%s: empty array", f.text))
				}
				for j, x := range c {
					setLevel(&e, l+1, itoa(j+s.indexBase))
					out, bad = s.walkLegacy(x, f, rest, e, l+1, t, out, bad)
				}
			case map[string]any:
				if len(c) == 0 {
					return out, append(bad, decodeErr(ReasonMissingField, "%s: empty object", f.text))
				}
				keys := make([]string, 0, len(c))
				for k := range c {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					if k == "" { // the fix made with the scanner, to compare like with like
						bad = append(bad, decodeErr(ReasonBadIdentity, "%s: the key \"\" binds no %s", f.text, l+1))
						continue
					}
					setLevel(&e, l+1, k)
					out, bad = s.walkLegacy(c[k], f, rest, e, l+1, t, out, bad)
				}
			default:
				return out, append(bad, decodeErr(ReasonWrongType, "%s: [*] needs an array or an object", f.text))
			}
			return out, bad
		default:
			var derr *DecodeError
			if v, derr = inLegacy(st, v, f.text); derr != nil {
				return out, append(bad, derr)
			}
		}
	}
	var x float64
	switch n := v.(type) {
	case nil:
		x = math.NaN()
	case json.Number:
		var err error
		if x, err = strconv.ParseFloat(string(n), 64); err != nil {
			return out, append(bad, decodeErr(ReasonNotFinite, "%s: %s is beyond float64", f.text, n))
		}
		if x = f.conv.apply(x); math.IsInf(x, 0) || math.IsNaN(x) {
			return out, append(bad, decodeErr(ReasonNotFinite, "%s: %s overflows in the unit conversion", f.text, n))
		}
	default:
		return out, append(bad, decodeErr(ReasonWrongType, "%s: %s is not a number", f.text, jsonKindLegacy(v)))
	}
	return append(out, Reading{Entity: e, Metric: f.metric, Value: x, Time: t}), bad
}

func jsonKindLegacy(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a value"
}

// payloadTime reads the payload's timestamp: RFC 3339 text, or a number in
// the configured unit since the Unix epoch.
func (s *subscription) payloadTimeLegacy(doc any) (int64, *DecodeError) {
	v := doc
	for _, st := range s.timePath {
		switch c := v.(type) {
		case map[string]any:
			v = c[st.key]
		case []any:
			if st.index < 0 || st.index >= len(c) {
				v = nil
			} else {
				v = c[st.index]
			}
		default:
			v = nil
		}
	}
	switch t := v.(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return 0, decodeErr(ReasonBadTime, "time %q is not RFC 3339", shorten(t))
		}
		if ts.Year() < 1970 || ts.Year() > 2200 {
			return 0, decodeErr(ReasonBadTime, "time %q is out of range", t)
		}
		return ts.UnixNano(), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			if i <= 0 || i > math.MaxInt64/s.timeUnit {
				return 0, decodeErr(ReasonBadTime, "time %s is out of range", t)
			}
			return i * s.timeUnit, nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || !(f > 0) || f*float64(s.timeUnit) >= math.MaxInt64 {
			return 0, decodeErr(ReasonBadTime, "time %s is out of range", shorten(string(t)))
		}
		return int64(f * float64(s.timeUnit)), nil
	case nil:
		return 0, decodeErr(ReasonBadTime, "no time field")
	}
	return 0, decodeErr(ReasonBadTime, "time is %s, not a string or number", jsonKindLegacy(v))
}
