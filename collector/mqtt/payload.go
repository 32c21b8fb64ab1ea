package mqtt

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Reading is one value a message carried, before its entity is interned.
type Reading struct {
	Entity telemetry.Entity
	Metric telemetry.Metric
	Value  float64 // base unit; NaN for a JSON null ("no reading")
	Time   int64   // Unix ns: the payload's timestamp or the receive time
}

// DateReading is a battery date a message carried.
type DateReading struct {
	// UPS and String the topic names (String empty: every string of the
	// UPS).
	UPS, String string
	Field       lifecycle.Field
	Date        lifecycle.Date
}

// Payload formats.
const (
	formatJSON  = "json"
	formatValue = "value"
)

// step is one element of a field path: a key, an index, or [*].
type step struct {
	key   string
	index int // >= 0 for [N]
	star  bool
}

// path is a parsed field path such as "modules[*].cells[0].v".
type path []step

// parsePath parses a field path: keys separated by dots, each optionally
// followed by [N] (one element) or [*] (every element or member, binding
// the next identity level).
func parsePath(s string) (path, error) {
	if s == "" {
		return nil, errors.New("is empty")
	}
	var p path
	for i, part := range strings.Split(s, ".") {
		key, rest := part, ""
		if j := strings.IndexByte(part, '['); j >= 0 {
			key, rest = part[:j], part[j:]
		}
		if key == "" && (i > 0 || rest == "") {
			return nil, errors.New("has an empty key")
		}
		if key != "" {
			p = append(p, step{key: key, index: -1})
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if !strings.HasPrefix(rest, "[") || end < 0 {
				return nil, errors.New("has an unclosed or stray bracket")
			}
			in := rest[1:end]
			rest = rest[end+1:]
			if in == "*" {
				p = append(p, step{star: true, index: -1})
				continue
			}
			n, err := strconv.Atoi(in)
			if err != nil || n < 0 {
				return nil, errors.New("has an index that is neither * nor a number >= 0")
			}
			p = append(p, step{index: n})
		}
	}
	return p, nil
}

func (p path) stars() int {
	n := 0
	for _, s := range p {
		if s.star {
			n++
		}
	}
	return n
}

// conversion turns a raw number into the metric's base unit:
// base = raw*mul/div + add. A decimal factor (0.001) is kept as a divisor
// (1000), which gives the correctly rounded decimal: 3300 × 0.001 is
// 3.3000000000000003, 3300 / 1000 is 3.3.
type conversion struct{ mul, div, add float64 }

func newFactor(f, add float64) conversion {
	if k := math.Round(1 / f); math.Abs(f) < 1 && math.Abs(k*f-1) < 1e-12 {
		return conversion{1, k, add}
	}
	return conversion{f, 1, add}
}

func (c conversion) apply(v float64) float64 {
	if c.div != 1 {
		return v/c.div + c.add
	}
	return v*c.mul + c.add
}

// units maps a unit name to its base unit ("V", "°C", "A" or "" for
// ratios) and its conversion.
var units = map[string]struct {
	base     string
	mul, add float64
}{
	"V":       {"V", 1, 0},
	"mV":      {"V", 0.001, 0},
	"°C":      {"°C", 1, 0},
	"C":       {"°C", 1, 0},
	"degC":    {"°C", 1, 0},
	"dC":      {"°C", 0.1, 0},
	"K":       {"°C", 1, -273.15},
	"F":       {"°C", 5.0 / 9, -32 * 5.0 / 9},
	"A":       {"A", 1, 0},
	"mA":      {"A", 0.001, 0},
	"dA":      {"A", 0.1, 0},
	"ratio":   {"", 1, 0},
	"%":       {"", 0.01, 0},
	"percent": {"", 0.01, 0},
}

// unitNames lists the accepted units of a base unit, for messages.
func unitNames(base string) []string {
	var ns []string
	for n, u := range units {
		if u.base == base {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns
}

// newConversion combines a scale with a unit of metric m ("" is the base
// unit). ok is false when the unit is unknown or measures something else.
func newConversion(m telemetry.Metric, unit string, scale float64) (conversion, bool) {
	if unit == "" {
		return newFactor(scale, 0), true
	}
	u, ok := units[unit]
	if !ok || u.base != m.Unit() {
		return conversion{}, false
	}
	return newFactor(scale*u.mul, u.add), true
}

// field is one compiled JSON field mapping.
type field struct {
	text   string
	path   path
	metric telemetry.Metric
	conv   conversion
}

// dateField is one compiled date mapping.
type dateField struct {
	text  string
	path  path
	field lifecycle.Field
}

// subscription is one compiled subscription: its template and how its
// payloads decode.
type subscription struct {
	tmpl   *Template
	format string
	// fixed identity levels the topic does not bind (ups, string).
	fixed [2]string
	// depth is the identity level the topic (with the fixed levels) binds.
	depth telemetry.Level
	// value format: the metric (0 when the topic's {metric} names it) and
	// the conversion.
	metric telemetry.Metric
	conv   conversion
	// json format.
	fields    []field
	dates     []dateField
	timePath  path // nil: receive time
	timeUnit  int64
	indexBase int
	// many: a message can carry several readings (json with [*] or
	// more than one field): the collector keeps its topics' entity IDs.
	many bool
}

// smallInts caches the decimal text of small indexes, so that per-cell
// arrays do not allocate their identifiers.
var smallInts = func() (s [1025]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func itoa(i int) string {
	if i >= 0 && i < len(smallInts) {
		return smallInts[i]
	}
	return strconv.Itoa(i)
}

// entity builds the identity the topic binds, b being the template's
// bindings.
func (s *subscription) entity(b *[numSlots]string) telemetry.Entity {
	e := telemetry.Entity{UPS: b[slotUPS], String: b[slotString], Module: b[slotModule], Cell: b[slotCell]}
	if s.fixed[0] != "" {
		e.UPS = s.fixed[0]
	}
	if s.fixed[1] != "" {
		e.String = s.fixed[1]
	}
	return e
}

// setLevel sets identity level l (string..cell) of e to id.
func setLevel(e *telemetry.Entity, l telemetry.Level, id string) {
	switch l {
	case telemetry.LevelUPS:
		e.UPS = id
	case telemetry.LevelString:
		e.String = id
	case telemetry.LevelModule:
		e.Module = id
	case telemetry.LevelCell:
		e.Cell = id
	}
}

// truncate clears the identity levels of e below level l.
func truncate(e telemetry.Entity, l telemetry.Level) telemetry.Entity {
	if l < telemetry.LevelCell {
		e.Cell = ""
	}
	if l < telemetry.LevelModule {
		e.Module = ""
	}
	if l < telemetry.LevelString {
		e.String = ""
	}
	return e
}

// decode turns one message into readings appended to out and battery
// dates appended to dates; every reading, date or message it rejects is
// appended to bad with its reason. A message always yields at least one
// reading, date or rejection, unless it sets only dates to null or "".
// d is the caller's scratch space (one per goroutine); the readings do
// not refer to it or to payload.
func (s *subscription) decode(d *document, b *[numSlots]string, payload []byte, recv int64,
	out []Reading, dates []DateReading, bad []*DecodeError) ([]Reading, []DateReading, []*DecodeError) {
	if len(payload) == 0 {
		return out, dates, append(bad, decodeErr(ReasonEmpty, "empty payload"))
	}
	base := s.entity(b)
	if base.Level() != s.depth { // a topic level left empty: "val/u/1///cell_voltage_volts"
		return out, dates, append(bad, decodeErr(ReasonBadIdentity, "the topic leaves its %s level empty", s.depth))
	}
	if s.format == formatValue {
		out, bad = s.decodeValue(b, base, payload, recv, out, bad)
		return out, dates, bad
	}
	defer d.release()
	if err := d.parse(payload); err != nil {
		return out, dates, append(bad, decodeErr(ReasonInvalidJSON, "%v", err))
	}
	const root = 0
	dates, bad = s.decodeDates(d, root, truncate(base, telemetry.LevelString), dates, bad)
	if len(s.fields) == 0 {
		return out, dates, bad
	}
	t := recv
	if s.timePath != nil {
		var derr *DecodeError
		if t, derr = s.payloadTime(d, root); derr != nil {
			return out, dates, append(bad, derr)
		}
	}
	for i := range s.fields {
		f := &s.fields[i]
		l := min(s.depth, f.metric.Level())
		out, bad = s.walk(d, root, f, f.path, truncate(base, l), l, t, out, bad)
	}
	return out, dates, bad
}

// decodeDates reads the subscription's dates from node v for the UPS and
// string of e. A null or empty value is "not set"; text is read by
// lifecycle.ParseDate, a number as seconds since the Unix epoch (the
// day in UTC).
func (s *subscription) decodeDates(d *document, v int32, e telemetry.Entity, dates []DateReading, bad []*DecodeError) ([]DateReading, []*DecodeError) {
	if len(s.dates) > 0 && e.Validate() != nil {
		return dates, append(bad, decodeErr(ReasonBadDate, "the topic names no valid UPS (and string) for its dates"))
	}
	for i := range s.dates {
		f := &s.dates[i]
		n, derr := d.follow(v, f.text, f.path)
		if derr != nil {
			bad = append(bad, derr)
			continue
		}
		var date lifecycle.Date
		switch d.kindOf(n) {
		case jsonNull:
			continue
		case jsonString:
			x := string(d.str(n))
			if strings.TrimSpace(x) == "" {
				continue
			}
			var err error
			if date, err = lifecycle.ParseDate(x); err != nil {
				bad = append(bad, decodeErr(ReasonBadDate, "%s: %q %v", f.text, shorten(x), err))
				continue
			}
		case jsonNumber:
			x := string(d.raw(n))
			secs, err := strconv.ParseInt(x, 10, 64)
			if err != nil || secs < 0 || secs > 253402300799 { // up to 9999-12-31
				bad = append(bad, decodeErr(ReasonBadDate, "%s: %s is not a whole number of seconds since 1970 up to the year 9999", f.text, shorten(x)))
				continue
			}
			if secs == 0 {
				continue
			}
			date = inventory.DateOf(time.Unix(secs, 0).UTC())
		default:
			bad = append(bad, decodeErr(ReasonBadDate, "%s: %s is neither a date nor a number", f.text, d.describe(n)))
			continue
		}
		dates = append(dates, DateReading{UPS: e.UPS, String: e.String, Field: f.field, Date: date})
	}
	return dates, bad
}

// follow returns the node at p (a path without [*]) from node v.
func (d *document) follow(v int32, text string, p path) (int32, *DecodeError) {
	for _, st := range p {
		var derr *DecodeError
		if v, derr = d.in(v, st, text); derr != nil {
			return -1, derr
		}
	}
	return v, nil
}

// in returns the member or element st (a key or [N]) names in node v;
// text is the field's path, for messages.
func (d *document) in(v int32, st step, text string) (int32, *DecodeError) {
	if st.key != "" {
		if d.kindOf(v) != jsonObject {
			return -1, decodeErr(ReasonWrongType, "%s: not an object at %q", text, st.key)
		}
		if v = d.member(v, st.key); v < 0 {
			return -1, decodeErr(ReasonMissingField, "%s: no %q", text, st.key)
		}
		return v, nil
	}
	if d.kindOf(v) != jsonArray {
		return -1, decodeErr(ReasonWrongType, "%s: not an array at [%d]", text, st.index)
	}
	if v = d.element(v, st.index); v < 0 {
		return -1, decodeErr(ReasonMissingField, "%s: no element [%d]", text, st.index)
	}
	return v, nil
}

// walk follows p from node v, binding one identity level per [*] below
// level l.
func (s *subscription) walk(d *document, v int32, f *field, p path, e telemetry.Entity, l telemetry.Level, t int64,
	out []Reading, bad []*DecodeError) ([]Reading, []*DecodeError) {
	for i, st := range p {
		if !st.star {
			var derr *DecodeError
			if v, derr = d.in(v, st, f.text); derr != nil {
				return out, append(bad, derr)
			}
			continue
		}
		rest := p[i+1:]
		switch d.kindOf(v) {
		case jsonArray:
			if d.nodes[v].next == v+1 {
				return out, append(bad, decodeErr(ReasonMissingField, "%s: empty array", f.text))
			}
			j := s.indexBase
			for x := v + 1; x < d.nodes[v].next; x = d.nodes[x].next {
				setLevel(&e, l+1, itoa(j))
				if len(rest) == 0 {
					out, bad = s.leaf(d, x, f, e, t, out, bad)
				} else {
					out, bad = s.walk(d, x, f, rest, e, l+1, t, out, bad)
				}
				j++
			}
		case jsonObject:
			if d.nodes[v].next == v+1 {
				return out, append(bad, decodeErr(ReasonMissingField, "%s: empty object", f.text))
			}
			ms, mark := d.sortedMembers(v)
			for _, m := range ms {
				if m.key == "" { // it would leave the level empty
					bad = append(bad, decodeErr(ReasonBadIdentity, "%s: the key \"\" binds no %s", f.text, l+1))
					continue
				}
				setLevel(&e, l+1, m.key)
				if len(rest) == 0 {
					out, bad = s.leaf(d, m.val, f, e, t, out, bad)
				} else {
					out, bad = s.walk(d, m.val, f, rest, e, l+1, t, out, bad)
				}
			}
			d.members = d.members[:mark]
		default:
			return out, append(bad, decodeErr(ReasonWrongType, "%s: [*] needs an array or an object", f.text))
		}
		return out, bad
	}
	return s.leaf(d, v, f, e, t, out, bad)
}

// leaf reads the reading of field f at node v for entity e.
func (s *subscription) leaf(d *document, v int32, f *field, e telemetry.Entity, t int64,
	out []Reading, bad []*DecodeError) ([]Reading, []*DecodeError) {
	var x float64
	switch d.kindOf(v) {
	case jsonNull:
		x = math.NaN()
	case jsonNumber:
		var err error
		if x, err = parseNumber(d.raw(v)); err != nil {
			return out, append(bad, decodeErr(ReasonNotFinite, "%s: %s is beyond float64", f.text, d.raw(v)))
		}
		if x = f.conv.apply(x); math.IsInf(x, 0) || math.IsNaN(x) {
			return out, append(bad, decodeErr(ReasonNotFinite, "%s: %s overflows in the unit conversion", f.text, d.raw(v)))
		}
	default:
		return out, append(bad, decodeErr(ReasonWrongType, "%s: %s is not a number", f.text, d.describe(v)))
	}
	return append(out, Reading{Entity: e, Metric: f.metric, Value: x, Time: t}), bad
}

// payloadTime reads the payload's timestamp from node v: RFC 3339 text, or
// a number in the configured unit since the Unix epoch. The path is
// followed leniently: what is not there, or is null, is "no time field".
func (s *subscription) payloadTime(d *document, v int32) (int64, *DecodeError) {
	for _, st := range s.timePath {
		switch d.kindOf(v) {
		case jsonObject:
			// An index step looks for the key "", as a lookup in the
			// decoded map did.
			v = d.member(v, st.key)
		case jsonArray:
			if st.index < 0 {
				v = -1
			} else {
				v = d.element(v, st.index)
			}
		default:
			v = -1
		}
	}
	switch d.kindOf(v) {
	case jsonString:
		raw := d.str(v)
		if d.nodes[v].plain && len(d.lastTime) > 0 && string(raw) == string(d.lastTime) {
			return d.lastTimeNs, nil
		}
		ts, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return 0, decodeErr(ReasonBadTime, "time %q is not RFC 3339", shorten(string(raw)))
		}
		if ts.Year() < 1970 || ts.Year() > 2200 {
			return 0, decodeErr(ReasonBadTime, "time %q is out of range", raw)
		}
		if d.nodes[v].plain {
			d.lastTime, d.lastTimeNs = append(d.lastTime[:0], raw...), ts.UnixNano()
		}
		return ts.UnixNano(), nil
	case jsonNumber:
		text := string(d.raw(v))
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			if i <= 0 || i > math.MaxInt64/s.timeUnit {
				return 0, decodeErr(ReasonBadTime, "time %s is out of range", text)
			}
			return i * s.timeUnit, nil
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || !(f > 0) || f*float64(s.timeUnit) >= math.MaxInt64 {
			return 0, decodeErr(ReasonBadTime, "time %s is out of range", shorten(text))
		}
		return int64(f * float64(s.timeUnit)), nil
	case jsonNull, 0:
		return 0, decodeErr(ReasonBadTime, "no time field")
	}
	return 0, decodeErr(ReasonBadTime, "time is %s, not a string or number", d.describe(v))
}

// decodeValue reads a plain-value payload: one decimal number, or null
// for "no reading".
func (s *subscription) decodeValue(b *[numSlots]string, e telemetry.Entity, payload []byte, recv int64,
	out []Reading, bad []*DecodeError) ([]Reading, []*DecodeError) {
	m := s.metric
	if m == 0 {
		var ok bool
		if m, ok = telemetry.ParseMetric(b[slotMetric]); !ok {
			return out, append(bad, decodeErr(ReasonUnknownMetric, "topic level %q is not a metric of the catalogue", shorten(b[slotMetric])))
		}
		if m.Level() != s.depth {
			return out, append(bad, decodeErr(ReasonWrongLevel, "%s is a %s metric; the topic names a %s", m, m.Level(), s.depth))
		}
	}
	text := bytes.TrimSpace(payload)
	if string(text) == "null" {
		return append(out, Reading{Entity: e, Metric: m, Value: math.NaN(), Time: recv}), bad
	}
	x, err := strconv.ParseFloat(string(text), 64) // no copy of a short text
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		return out, append(bad, decodeErr(ReasonNotFinite, "%s is beyond float64", shorten(string(text))))
	case err != nil:
		return out, append(bad, decodeErr(ReasonBadValue, "%q is not a decimal number", shorten(string(text))))
	case math.IsNaN(x) || math.IsInf(x, 0):
		return out, append(bad, decodeErr(ReasonNotFinite, "%q is not a finite number", text))
	}
	if x = s.conv.apply(x); math.IsInf(x, 0) {
		return out, append(bad, decodeErr(ReasonNotFinite, "%q overflows in the unit conversion", text))
	}
	return append(out, Reading{Entity: e, Metric: m, Value: x, Time: recv}), bad
}

// shorten cuts s for a log line.
func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
