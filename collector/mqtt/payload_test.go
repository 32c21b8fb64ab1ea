package mqtt

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// parseCollector decodes and validates one collector entry given as YAML.
func parseCollector(t testing.TB, doc string) CollectorConfig {
	t.Helper()
	cs, err := validateDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0]
}

// validateDoc decodes the collector entries under mqtt: and returns them
// with their problems.
func validateDoc(t testing.TB, doc string) ([]CollectorConfig, error) {
	t.Helper()
	var f struct {
		MQTT []CollectorConfig `yaml:"mqtt"`
	}
	d, errs := yamlstrict.Decode([]byte(doc), &f)
	if errs != nil {
		t.Fatal(errs)
	}
	p := d.Problems()
	ValidateCollectors(f.MQTT, p, "mqtt", t.TempDir())
	return f.MQTT, p.Err()
}

// decodeRows runs topic and payload through the collector's subscriptions
// and renders the readings and rejections.
func decodeRows(c *CollectorConfig, topic, payload string) (rows, reasons []string) {
	rows, _, reasons = decodeAll(c, topic, payload)
	return rows, reasons
}

// decodeAll renders the readings, battery dates and rejections of a
// message.
func decodeAll(c *CollectorConfig, topic, payload string) (rows, dates, reasons []string) {
	for _, s := range c.subs {
		b, ok := s.tmpl.Match(topic)
		if !ok {
			continue
		}
		rs, ds, bad := s.decode(new(document), &b, []byte(payload), 1_000_000_000, nil, nil, nil)
		for _, r := range rs {
			rows = append(rows, fmt.Sprintf("%s %s %g @%d", r.Entity.Path(), r.Metric, r.Value, r.Time))
		}
		for _, d := range ds {
			dates = append(dates, fmt.Sprintf("%s/%s %s %s", d.UPS, d.String, d.Field, d.Date))
		}
		for _, e := range bad {
			reasons = append(reasons, e.Reason.String())
		}
		return rows, dates, reasons
	}
	return nil, nil, []string{ReasonNoMatch.String()}
}

// moduleSubscription reads module messages of the reference layout.
const moduleSubscription = `
      - topic: bms/{ups}/{string}/{module}
        time_field: time
        fields:
          - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
          - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
          - {path: module_temperature_celsius, metric: module_temperature_celsius}`

const testSubscriptions = `
mqtt:
  - broker: tcp://127.0.0.1:1883
    subscriptions:` + moduleSubscription + `
      - topic: bms/{ups}/{string}
        time_field: ts
        time_unit: ms
        fields:
          - {path: "modules[*].cells[*].mv", metric: cell_voltage_volts, unit: mV}
          - {path: "modules[*].t", metric: module_temperature_celsius, unit: dC}
          - {path: pack.current, metric: string_current_amperes}
          - {path: pack.soc, metric: string_soc_ratio, unit: "%"}
          - {path: ambient, metric: ambient_temperature_celsius, unit: K}
      - topic: gw/{string}/cells
        ups: ups-fixed
        fields:
          - {path: "v[*][*]", metric: cell_voltage_volts, scale: 0.001}
      - topic: val/{ups}/{string}/{module}/{cell}/{metric}
        format: value
      - topic: amb/{ups}
        format: value
        metric: ambient_temperature_celsius
        unit: F
      - topic: info/{ups}/{string}
        fields:
          - {path: soh, metric: string_soh_ratio}
        dates:
          - {path: battery.installed, field: installed}
          - {path: warranty_until, field: warranty_until}
      - topic: ups/{ups}/info
        dates:
          - {path: "dates[0]", field: replace_by}
      - topic: obj/{ups}/{string}/{module}
        time_field: "when[1]"
        time_unit: ms
        fields:
          - {path: "[*]", metric: cell_voltage_volts}
`

func TestDecode(t *testing.T) {
	c := parseCollector(t, testSubscriptions)
	tests := []struct {
		name, topic, payload string
		rows, reasons        []string
	}{
		{
			name: "module message with per-cell arrays and RFC 3339 time", topic: "bms/ups-a/1/3",
			payload: `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[3.301,null],"cell_temperature_celsius":[25.5,26],"module_temperature_celsius":24.1}`,
			rows: []string{
				"ups-a/1/3/1 cell_voltage_volts 3.301 @1772337900000000000",
				"ups-a/1/3/2 cell_voltage_volts NaN @1772337900000000000",
				"ups-a/1/3/1 cell_temperature_celsius 25.5 @1772337900000000000",
				"ups-a/1/3/2 cell_temperature_celsius 26 @1772337900000000000",
				"ups-a/1/3 module_temperature_celsius 24.1 @1772337900000000000",
			},
		},
		{
			name: "string message: nested arrays bind module and cell, units convert, ms time", topic: "bms/ups-b/2",
			payload: `{"ts":1772337900123,"modules":[{"t":251,"cells":[{"mv":3300},{"mv":3310}]}],"pack":{"current":-12.5,"soc":87},"ambient":298.15}`,
			rows: []string{
				"ups-b/2/1/1 cell_voltage_volts 3.3 @1772337900123000000",
				"ups-b/2/1/2 cell_voltage_volts 3.31 @1772337900123000000",
				"ups-b/2/1 module_temperature_celsius 25.1 @1772337900123000000",
				"ups-b/2 string_current_amperes -12.5 @1772337900123000000",
				"ups-b/2 string_soc_ratio 0.87 @1772337900123000000",
				"ups-b ambient_temperature_celsius 25 @1772337900123000000",
			},
		},
		{
			name: "object members bind identifiers by key; fixed ups; receive time", topic: "gw/7/cells",
			payload: `{"v":{"m2":[3300],"m1":[3290,3291]}}`,
			rows: []string{
				"ups-fixed/7/m1/1 cell_voltage_volts 3.29 @1000000000",
				"ups-fixed/7/m1/2 cell_voltage_volts 3.291 @1000000000",
				"ups-fixed/7/m2/1 cell_voltage_volts 3.3 @1000000000",
			},
		},
		{name: "plain value with the metric from the topic", topic: "val/ups-a/1/2/07/cell_voltage_volts", payload: " 3.3021\n",
			rows: []string{"ups-a/1/2/07 cell_voltage_volts 3.3021 @1000000000"}},
		{name: "plain null is no reading", topic: "val/ups-a/1/2/07/cell_voltage_volts", payload: "null",
			rows: []string{"ups-a/1/2/07 cell_voltage_volts NaN @1000000000"}},
		{name: "plain value in Fahrenheit", topic: "amb/ups-a", payload: "77", rows: []string{"ups-a ambient_temperature_celsius 25 @1000000000"}},
		{name: "invalid JSON", topic: "bms/ups-a/1/3", payload: `{"time":`, reasons: []string{"invalid_json"}},
		{name: "trailing data", topic: "bms/ups-a/1/3", payload: `{} {}`, reasons: []string{"invalid_json"}},
		{name: "NaN is not JSON", topic: "bms/ups-a/1/3", payload: `{"time":"2026-03-01T04:05:00Z","module_temperature_celsius":NaN}`,
			reasons: []string{"invalid_json"}},
		{name: "empty payload", topic: "bms/ups-a/1/3", payload: ``, reasons: []string{"empty_payload"}},
		{name: "no time", topic: "bms/ups-a/1/3", payload: `{"module_temperature_celsius":1}`, reasons: []string{"bad_time"}},
		{name: "unreadable time", topic: "bms/ups-a/1/3", payload: `{"time":"yesterday"}`, reasons: []string{"bad_time"}},
		{
			name: "wrong types and missing fields, the good part kept", topic: "bms/ups-a/1/3",
			payload: `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":["3.3",true,3.2],"cell_temperature_celsius":{}}`,
			rows:    []string{"ups-a/1/3/3 cell_voltage_volts 3.2 @1772337900000000000"},
			reasons: []string{"wrong_type", "wrong_type", "missing_field", "missing_field"},
		},
		{name: "a number beyond float64", topic: "bms/ups-a/1/3", payload: `{"time":"2026-03-01T04:05:00Z","module_temperature_celsius":1e999,"cell_voltage_volts":[],"cell_temperature_celsius":[]}`,
			reasons: []string{"missing_field", "missing_field", "not_finite"}},
		{name: "plain NaN", topic: "val/ups-a/1/2/3/cell_voltage_volts", payload: "NaN", reasons: []string{"not_finite"}},
		{name: "plain Inf", topic: "val/ups-a/1/2/3/cell_voltage_volts", payload: "-Inf", reasons: []string{"not_finite"}},
		{name: "plain text", topic: "val/ups-a/1/2/3/cell_voltage_volts", payload: "3,3", reasons: []string{"bad_value"}},
		{name: "unknown metric", topic: "val/ups-a/1/2/3/voltage", payload: "3.3", reasons: []string{"unknown_metric"}},
		{name: "an empty topic level", topic: "val/ups-a/1///cell_voltage_volts", payload: "3.3", reasons: []string{"bad_identity"}},
		{name: "metric at the wrong level", topic: "val/ups-a/1/2/3/string_voltage_volts", payload: "800", reasons: []string{"wrong_level"}},
		{name: "no template matches", topic: "other/topic", payload: "1", reasons: []string{"no_matching_template"}},
		{name: "an empty key binds no cell", topic: "obj/ups-a/1/2", payload: `{"when":[0,1772337900123],"":3.3,"7":3.4}`,
			rows: []string{"ups-a/1/2/7 cell_voltage_volts 3.4 @1772337900123000000"}, reasons: []string{"bad_identity", "wrong_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, reasons := decodeRows(&c, tt.topic, tt.payload)
			if !reflect.DeepEqual(rows, tt.rows) || !reflect.DeepEqual(reasons, tt.reasons) {
				t.Errorf("got rows\n  %s\nreasons %v\nwant rows\n  %s\nreasons %v",
					strings.Join(rows, "\n  "), reasons, strings.Join(tt.rows, "\n  "), tt.reasons)
			}
		})
	}
}

// Decoding never panics, and every message yields a reading, a date or a
// reason: nothing is lost without a count. Readings carry a valid metric at their
// entity's level, finite values or NaN ("no reading").
func FuzzDecode(f *testing.F) {
	c := parseCollector(f, testSubscriptions)
	f.Add("bms/ups-a/1/3", `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[3.301,null],"module_temperature_celsius":24.1}`)
	f.Add("bms/ups-b/2", `{"ts":1772337900123,"modules":[{"t":251,"cells":[{"mv":3300}]}],"pack":{"current":-1,"soc":87},"ambient":298.15}`)
	f.Add("gw/7/cells", `{"v":{"m2":[3300],"m1":[3290,3291]}}`)
	f.Add("val/ups-a/1/2/07/cell_voltage_volts", "3.3")
	f.Add("amb/ups-a", "1e308")
	f.Add("bms/ups-a/1/3", `{"time":1e400,"cell_voltage_volts":[[[[[]]]]]}`)
	f.Add("bms/a b/1/3", `{"time":"2026-03-01T04:05:00+02:00","module_temperature_celsius":-0}`)
	f.Add("info/ups-a/1", `{"soh":0.9,"battery":{"installed":"09/15/2014"},"warranty_until":2041891200}`)
	f.Add("ups/ups-a/info", `{"dates":["2001/09/25"]}`)
	f.Add("obj/u1/2/3", `{"when":{"":1772337900123},"2":1,"1":null,"10":3e2,"1":4,"\u0031\u0031":5,"\ud800x":6}`)
	f.Add("bms/ups-a/1", `{"ts":"2026-03-01T04:05:00.5+01:00","modules":{"b":{"cells":[{"mv":1}]},"a":{"cells":{"x":{"mv":2}}}},"":{"t":1}}`)
	f.Add("bms/ups-a/1/3", " [1,2] \t\n")
	f.Add("bms/ups-a/1/3", `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[1,-0.5e-3,1E+2,"\"\/\b\f\n\r\t\u00e9"]}x`)
	doc := new(document) // reused, as the collector does
	f.Fuzz(func(t *testing.T, topic, payload string) {
		rows, reasons := 0, 0
		for _, s := range c.subs {
			b, ok := s.tmpl.Match(topic)
			if !ok {
				continue
			}
			rs, ds, bad := s.decode(doc, &b, []byte(payload), 1, nil, nil, nil)
			rows, reasons = len(rs)+len(ds), len(bad)
			// The same as the encoding/json decoder it replaced.
			lrs, lds, lbad := s.decodeLegacy(&b, []byte(payload), 1, nil, nil, nil)
			if !sameReadings(rs, lrs) || !slices.Equal(ds, lds) || !sameErrors(bad, lbad) {
				t.Fatalf("topic %q payload %q:\n got  %v %v %v\n want %v %v %v (encoding/json)", topic, payload, rs, ds, bad, lrs, lds, lbad)
			}
			for _, r := range rs {
				if r.Metric.Level() != r.Entity.Level() && r.Entity.Validate() == nil {
					t.Fatalf("reading %+v: metric level %s, entity level %s", r, r.Metric.Level(), r.Entity.Level())
				}
				if math.IsInf(r.Value, 0) {
					t.Fatalf("infinite value %+v", r)
				}
			}
			for _, e := range bad {
				if e.Reason == 0 || e.Reason >= NumReasons {
					t.Fatalf("invalid reason %v", e)
				}
			}
			break
		}
		// A subscription of dates only may get a message that sets
		// none (null or ""): nothing is lost then.
		matched := false
		for _, s := range c.subs {
			if _, ok := s.tmpl.Match(topic); ok {
				matched = len(s.fields) > 0
				break
			}
		}
		if matched && rows+reasons == 0 {
			t.Fatalf("topic %q payload %q: neither a reading nor a reason", topic, payload)
		}
	})
}

// sameReadings compares readings, NaN equal to NaN.
func sameReadings(a, b []Reading) bool {
	return slices.EqualFunc(a, b, func(x, y Reading) bool {
		return x.Entity == y.Entity && x.Metric == y.Metric && x.Time == y.Time &&
			(x.Value == y.Value || math.IsNaN(x.Value) && math.IsNaN(y.Value)) && math.Signbit(x.Value) == math.Signbit(y.Value)
	})
}

// sameErrors compares rejections; the wording of a syntax error is the
// scanner's own.
func sameErrors(a, b []*DecodeError) bool {
	return slices.EqualFunc(a, b, func(x, y *DecodeError) bool {
		return x.Reason == y.Reason && (x.Reason == ReasonInvalidJSON || x.Detail == y.Detail)
	})
}

// Battery dates in a payload: text in the vendors' formats or Unix
// seconds, for the topic's UPS and string; null and "" are "not set"; a
// value that is no date is a bad_date, and the rest of the message is
// still read.
func TestDecodeDates(t *testing.T) {
	c := parseCollector(t, testSubscriptions)
	tests := []struct {
		name, topic, payload string
		dates, reasons       []string
	}{
		{name: "text and Unix seconds", topic: "info/ups-a/1",
			payload: `{"soh":0.9,"battery":{"installed":"09/15/2014"},"warranty_until":2041891200}`,
			dates:   []string{"ups-a/1 installed 2014-09-15", "ups-a/1 warranty_until 2034-09-15"}},
		{name: "ISO and YYYYMMDD text", topic: "info/ups-a/2",
			payload: `{"soh":0.9,"battery":{"installed":"2016-02-29"},"warranty_until":"20260228"}`,
			dates:   []string{"ups-a/2 installed 2016-02-29", "ups-a/2 warranty_until 2026-02-28"}},
		{name: "a UPS-wide date", topic: "ups/ups-b/info", payload: `{"dates":["Sep 15 2030"]}`,
			dates: []string{"ups-b/ replace_by 2030-09-15"}},
		{name: "null and empty are not set", topic: "info/ups-a/1",
			payload: `{"soh":0.9,"battery":{"installed":null},"warranty_until":""}`},
		{name: "no such day", topic: "info/ups-a/1",
			payload: `{"soh":0.9,"battery":{"installed":"2015-02-29"},"warranty_until":"2034-09-15"}`,
			dates:   []string{"ups-a/1 warranty_until 2034-09-15"}, reasons: []string{"bad_date"}},
		{name: "words and a boolean", topic: "info/ups-a/1",
			payload: `{"soh":0.9,"battery":{"installed":"last spring"},"warranty_until":true}`, reasons: []string{"bad_date", "bad_date"}},
		{name: "fractional or negative seconds", topic: "ups/ups-b/info", payload: `{"dates":[-5]}`, reasons: []string{"bad_date"}},
		{name: "missing and misplaced", topic: "info/ups-a/1", payload: `{"soh":0.9,"battery":"2014-09-15"}`,
			reasons: []string{"wrong_type", "missing_field"}},
		{name: "a topic naming no valid UPS", topic: "ups/bad ups/info", payload: `{"dates":["2030-09-15"]}`, reasons: []string{"bad_date"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dates, reasons := decodeAll(&c, tt.topic, tt.payload)
			if !reflect.DeepEqual(dates, tt.dates) || !reflect.DeepEqual(reasons, tt.reasons) {
				t.Errorf("got dates %q, reasons %v\nwant dates %q, reasons %v", dates, reasons, tt.dates, tt.reasons)
			}
		})
	}
}

// Mistakes in a subscription's dates are reported with their path and
// line.
func TestDateConfigProblems(t *testing.T) {
	doc := `mqtt:
  - broker: tcp://127.0.0.1:1883
    subscriptions:
      - topic: info/{ups}/{string}
        dates:
          - {path: "d[*]", field: installed}
          - {path: w, field: warranty}
          - {path: x, field: installed}
      - topic: v/{ups}
        format: value
        metric: ambient_temperature_celsius
        dates:
          - {path: w, field: installed}
`
	_, err := validateDoc(t, doc)
	got := fmt.Sprint(err)
	for _, want := range []string{
		`mqtt[0].subscriptions[0].dates[0].path: "d[*]" cannot contain [*]: a date belongs to the topic's UPS or string (line 6)`,
		`mqtt[0].subscriptions[0].dates[1].field: "warranty" must be manufactured, installed, warranty_until or replace_by (line 7)`,
		`mqtt[0].subscriptions[0].dates[2].field: "installed" is also read by dates[0] (line 8)`,
		`mqtt[0].subscriptions[1].dates: apply to the json format, not to value (line 12)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack\n  %s\ngot\n  %s", want, got)
		}
	}
}

// The scanner accepts exactly the payloads encoding/json accepts.
func TestScannerValidity(t *testing.T) {
	tests := []string{
		`{}`, ` [ ] `, `0`, `-0`, `-0.5e-3`, `1E+2`, `01`, `1.`, `.5`, `-`, `+1`, `1e`, `1e+`, `tru`, `nul`, `null `, `nulls`,
		`"a\u00e9\ud800\"\\\/\b\f\n\r\t"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"\x01\"", "\"\xff\xfe\"", `"unterminated`,
		`{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`, `{"a":[{"b":{}}]}`, `{} {}`, `[]]`, "\ufeff{}",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	}
	var d document
	for _, p := range tests {
		err := d.parse([]byte(p))
		if (err == nil) != json.Valid([]byte(p)) {
			t.Errorf("%.40q: scanner says %v, encoding/json valid %v", p, err, json.Valid([]byte(p)))
		}
	}
}

// parseNumber gives strconv.ParseFloat's value, to the bit, on its short
// way and off it.
func TestParseNumber(t *testing.T) {
	nums := []string{"0", "-0", "0.0", "-0.000", "3.301", "-12.5", "1e22", "1e23", "9007199254740993", "4503599627370496.5",
		"123456789012345678", "1234567890123456789", "0.1", "1E-22", "1e-23", "1.7976931348623157e308", "1e309", "4.9e-324",
		"1e-400", "0.000000000000000000000000000001", "25.1", "298.15", "1e+2", "100e-2", "1e0001"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		m := rng.Uint64() >> rng.IntN(64)
		var s string
		switch rng.IntN(3) {
		case 0:
			s = strconv.FormatUint(m, 10)
		case 1:
			s = strconv.FormatUint(m, 10) + "e" + strconv.Itoa(rng.IntN(60)-30)
		default:
			d := strconv.FormatUint(m, 10)
			k := rng.IntN(len(d) + 1)
			s = cmp.Or(d[:k], "0") + "." + d[k:] + "0"
		}
		if rng.IntN(2) == 0 {
			s = "-" + s
		}
		nums = append(nums, s)
	}
	var d document
	for _, n := range nums {
		if err := d.parse([]byte(n)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		got, gerr := parseNumber([]byte(n))
		want, werr := strconv.ParseFloat(n, 64)
		if math.Float64bits(got) != math.Float64bits(want) || (gerr == nil) != (werr == nil) {
			t.Errorf("%s: got %v (%v), strconv %v (%v)", n, got, gerr, want, werr)
		}
	}
}
