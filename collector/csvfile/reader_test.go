package csvfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// readAll reads every sample and bad row of input.
func readAll(t *testing.T, input string) ([]telemetry.Sample, []BadRow, *Reader) {
	t.Helper()
	r, err := NewReader(strings.NewReader(input), "in.csv", telemetry.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var bad []BadRow
	r.OnBadRow = func(b BadRow) { bad = append(bad, b) }
	var out []telemetry.Sample
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, bad, r
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}

func TestBadRows(t *testing.T) {
	const ok = "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\n"
	tests := []struct {
		name   string
		row    string
		reason Reason
		detail string
	}{
		{"too few columns", "2026-03-01T00:00:00Z,ups-a,1,1,cell_voltage_volts,3.3", ReasonColumns, "expected 7 columns, got 6"},
		{"too many columns", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3,x", ReasonColumns, "expected 7 columns, got 8"},
		{"unterminated quote", `2026-03-01T00:00:00Z,"ups-a,1,1,1,cell_voltage_volts,3.3`, ReasonColumns, "malformed quoting in column 2"},
		{"text after quote", `2026-03-01T00:00:00Z,"ups-a"x,1,1,1,cell_voltage_volts,3.3`, ReasonColumns, "malformed quoting in column 2"},
		{"bare quote", `2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3"3`, ReasonColumns, "malformed quoting in column 7"},
		{"unparsable time", "yesterday,ups-a,1,1,1,cell_voltage_volts,3.3", ReasonTime, `time "yesterday": not an RFC 3339 timestamp`},
		{"impossible date", "2026-02-30T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3", ReasonTime, `time "2026-02-30T00:00:00Z": not an RFC 3339 timestamp`},
		{"no zone", "2026-03-01T00:00:00,ups-a,1,1,1,cell_voltage_volts,3.3", ReasonTime, `time "2026-03-01T00:00:00": not an RFC 3339 timestamp`},
		{"year out of range", "3000-01-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3", ReasonTime, `time "3000-01-01T00:00:00Z": out of range (years 1678 to 2261)`},
		{"time backwards", "2026-02-28T23:59:59Z,ups-a,1,1,1,cell_voltage_volts,3.3", ReasonBackwards, "time 2026-02-28T23:59:59Z is before the previous row's 2026-03-01T00:00:00Z (rows must be in time order)"},
		{"unknown metric", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_volts,3.3", ReasonMetric, `unknown metric "cell_volts"`},
		{"cell metric on a module", "2026-03-01T00:00:00Z,ups-a,1,1,,cell_voltage_volts,3.3", ReasonLevel, `metric cell_voltage_volts is cell-level but the row names module "ups-a/1/1"`},
		{"ups metric on a cell", "2026-03-01T00:00:00Z,ups-a,1,1,1,ambient_temperature_celsius,25", ReasonLevel, `metric ambient_temperature_celsius is ups-level but the row names cell "ups-a/1/1/1"`},
		{"empty ups", "2026-03-01T00:00:00Z,,1,1,1,cell_voltage_volts,3.3", ReasonIdentity, `entity ups="" string="1" module="1" cell="1": ups is empty`},
		{"bad ups characters", "2026-03-01T00:00:00Z,ups a,1,1,1,cell_voltage_volts,3.3", ReasonIdentity, `entity ups="ups a" string="1" module="1" cell="1": ups must match [A-Za-z0-9_.:-]+: "ups a"`},
		{"cell without module", "2026-03-01T00:00:00Z,ups-a,1,,1,cell_voltage_volts,3.3", ReasonIdentity, `entity ups="ups-a" string="1" module="" cell="1": a finer identifier is set while a coarser one is empty`},
		{"invalid UTF-8", "2026-03-01T00:00:00Z,ups-a,\xff,1,1,cell_voltage_volts,3.3", ReasonIdentity, `entity ups="ups-a" string="\xff" module="1" cell="1": identifier is not valid UTF-8`},
		{"text value", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,high", ReasonValue, `value "high": not a decimal number`},
		{"hex value", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,0x10", ReasonValue, `value "0x10": not a decimal number`},
		{"infinite value", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,Inf", ReasonValue, `value "Inf": not a decimal number`},
		{"overflowing value", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,1e999", ReasonValue, `value "1e999": out of range`},
		{"padded value", "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts, 3.3", ReasonValue, `value " 3.3": not a decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples, bad, r := readAll(t, Header+"\n"+ok+tt.row+"\n"+ok)
			want := []BadRow{{Source: "in.csv", Line: 3, Reason: tt.reason, Detail: tt.detail}}
			if fmt.Sprint(bad) != fmt.Sprint(want) {
				t.Errorf("bad rows:\n got  %v\n want %v", bad, want)
			}
			if len(samples) != 2 {
				t.Errorf("got %d samples, want the 2 good rows around the bad one", len(samples))
			}
			st := r.Stats()
			if st.Rows != 3 || st.Samples != 2 || st.Skipped[tt.reason] != 1 || st.SkippedTotal() != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestBadRowString(t *testing.T) {
	b := BadRow{Source: "testdata/x.csv", Line: 12, Reason: ReasonMetric, Detail: `unknown metric "foo"`}
	if got, want := b.String(), `testdata/x.csv:12: unknown metric "foo"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestValuesAndTimes(t *testing.T) {
	in := Header + "\r\n" + // CRLF line endings
		"2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\r\n" +
		"2026-03-01T00:00:00Z,ups-a,1,1,1,cell_temperature_celsius,\r\n" + // empty: no reading
		"2026-03-01T01:00:00.5+01:00,ups-a,1,1,1,cell_temperature_celsius,NaN\r\n" + // offset, fraction
		"2026-03-01T00:00:01Z,ups-a,1,,,string_current_amperes,-1.5e1\r\n" +
		"2026-03-01T00:00:02Z,ups-a,,,,ambient_temperature_celsius,+24\r\n" +
		"\r\n" + // blank lines are not rows
		`2026-03-01T00:00:03Z,"ups-a","1","1","1",cell_voltage_volts,"3.301"` + "\n" +
		"2026-03-01t00:00:04z,ups-a,07,1,1,cell_voltage_volts,3.302" // lower-case t and z; no final newline; "07" is not "7"
	samples, bad, r := readAll(t, "\xef\xbb\xbf"+in)
	if len(bad) != 0 {
		t.Fatalf("unexpected bad rows: %v", bad)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	want := []struct {
		dt     time.Duration
		path   string
		metric telemetry.Metric
		value  float64
	}{
		{0, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.3},
		{0, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, math.NaN()},
		{500 * time.Millisecond, "ups-a/1/1/1", telemetry.CellTemperatureCelsius, math.NaN()},
		{time.Second, "ups-a/1", telemetry.StringCurrentAmperes, -15},
		{2 * time.Second, "ups-a", telemetry.AmbientTemperatureCelsius, 24},
		{3 * time.Second, "ups-a/1/1/1", telemetry.CellVoltageVolts, 3.301},
		{4 * time.Second, "ups-a/07/1/1", telemetry.CellVoltageVolts, 3.302},
	}
	if len(samples) != len(want) {
		t.Fatalf("got %d samples, want %d", len(samples), len(want))
	}
	for i, w := range want {
		s := samples[i]
		got := fmt.Sprintf("%v %s %s %v", time.Duration(s.Time-t0), r.reg.Info(s.Entity).Entity.Path(), s.Metric, s.Value)
		exp := fmt.Sprintf("%v %s %s %v", w.dt, w.path, w.metric, w.value)
		if got != exp {
			t.Errorf("sample %d: got %s, want %s", i, got, exp)
		}
	}
	if st := r.Stats(); st.NoReading != 2 || st.Rows != 7 {
		t.Errorf("stats = %+v, want 7 rows and 2 without reading", st)
	}
}

func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"empty", "", "in.csv: empty file: no header"},
		{"first line too long", strings.Repeat("x", MaxLineBytes+10) + "\n", "in.csv:1: first line longer than 65536 bytes: not a telemetry CSV (or lines end in CR only)"},
		{"wrong header", "time,ups,metric,value\n", `in.csv:1: header must be "time,ups,string,module,cell,metric,value", got "time,ups,metric,value"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.input), "in.csv", telemetry.NewRegistry())
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLongLineIsSkipped(t *testing.T) {
	long := "2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts," + strings.Repeat("9", MaxLineBytes)
	samples, bad, _ := readAll(t, Header+"\n"+long+"\n2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\n")
	if len(samples) != 1 || len(bad) != 1 || bad[0].Reason != ReasonTooLong || bad[0].Line != 2 {
		t.Errorf("samples=%d bad=%v: want the long row skipped as line_too_long and the next read", len(samples), bad)
	}
}

func TestOpenGzipFileAndMagic(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, Header+"\n2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\n")
	zw.Close()
	dir := t.TempDir()
	for _, name := range []string{"t.csv.gz", "compressed-but-named.csv"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p, telemetry.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Next()
		if err != nil || s.Value != 3.3 {
			t.Errorf("%s: got %v, %v", name, s, err)
		}
		r.Close()
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.csv"), telemetry.NewRegistry())
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestFastTimeParserAgreesWithTimePackage(t *testing.T) {
	for _, s := range []string{
		"2026-03-01T00:00:00Z", "2024-02-29T23:59:59.999999999Z", "1970-01-01T00:00:00+00:00",
		"2026-12-31T23:59:59-05:30", "2000-01-01T12:00:00.1+14:00", "1999-12-31T23:59:60Z",
	} {
		checkTime(t, s)
	}
}

func checkTime(t *testing.T, s string) {
	ns, ok := parseTimeFast([]byte(s))
	want, err := time.Parse(time.RFC3339Nano, s)
	if ok && (err != nil || want.UnixNano() != ns) {
		t.Errorf("%q: fast parser gives %d, time.Parse gives %v, %v", s, ns, want, err)
	}
}

func FuzzTimeParser(f *testing.F) {
	f.Add("2026-03-01T00:00:00Z")
	f.Add("2026-03-01T00:00:00.123+01:00")
	f.Fuzz(func(t *testing.T, s string) { checkTime(t, s) })
}

func FuzzReader(f *testing.F) {
	f.Add("2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\n2026-03-01T00:00:00Z,ups-a,1,1,,module_temperature_celsius,NaN")
	f.Add(`2026-03-01T00:00:00Z,"u""a",1,1,1,cell_voltage_volts,3` + "\n,,,,,,\n")
	f.Fuzz(func(t *testing.T, body string) {
		r, err := NewReader(strings.NewReader(Header+"\n"+body), "f.csv", telemetry.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		for {
			s, err := r.Next()
			if err != nil {
				break
			}
			if !s.Metric.Valid() || s.Entity == 0 || math.IsInf(s.Value, 0) {
				t.Fatalf("invalid sample %+v", s)
			}
		}
		st := r.Stats()
		if st.Rows != st.Samples+st.SkippedTotal() {
			t.Fatalf("rows %d != samples %d + skipped %d", st.Rows, st.Samples, st.SkippedTotal())
		}
	})
}

func TestTimeJumps(t *testing.T) {
	row := func(ts string, v int) string {
		return fmt.Sprintf("%s,ups-a,1,1,1,cell_voltage_volts,3.%03d\n", ts, v)
	}
	tests := []struct {
		name    string
		rows    []string
		samples []int // values (millivolts past 3 V) returned, in order
		bad     []string
	}{
		{
			name: "one mistyped future row is an outlier",
			rows: []string{row("2026-03-01T00:00:00Z", 1), row("2036-03-01T00:00:30Z", 2),
				row("2026-03-01T00:01:00Z", 3), row("2026-03-01T00:01:30Z", 4)},
			samples: []int{1, 3, 4},
			bad:     []string{"in.csv:3: time 2036-03-01T00:00:30Z is 87672h0m30s ahead of the rows around it; skipped as an outlier"},
		},
		{
			name: "a whole poll with a wrong clock",
			rows: []string{row("2026-03-01T00:00:00Z", 1), row("2027-01-01T00:00:00Z", 2), row("2027-01-01T00:00:00Z", 3),
				row("2026-03-01T00:01:00Z", 4)},
			samples: []int{1, 4},
			bad: []string{
				"in.csv:3: time 2027-01-01T00:00:00Z is 7344h0m0s ahead of the rows around it; skipped as an outlier",
				"in.csv:4: time 2027-01-01T00:00:00Z is 7344h0m0s ahead of the rows around it; skipped as an outlier",
			},
		},
		{
			name: "a real gap in the recording",
			rows: []string{row("2026-03-01T00:00:00Z", 1), row("2026-03-01T05:00:00Z", 2),
				row("2026-03-01T05:00:30Z", 3), row("2026-03-01T05:01:00Z", 4), row("2026-03-01T05:01:30Z", 5)},
			samples: []int{1, 2, 3, 4, 5},
		},
		{
			name:    "a jump in the last rows is kept",
			rows:    []string{row("2026-03-01T00:00:00Z", 1), row("2026-03-01T05:00:00Z", 2)},
			samples: []int{1, 2},
		},
		{
			name: "a row between the two timelines goes backwards",
			rows: []string{row("2026-03-01T00:00:00Z", 1), row("2026-03-02T00:00:00Z", 2),
				row("2026-03-01T12:00:00Z", 3), row("2026-03-02T00:00:30Z", 4), row("2026-03-02T00:01:00Z", 5)},
			samples: []int{1, 2, 4, 5},
			bad:     []string{"in.csv:4: time 2026-03-01T12:00:00Z is before the previous row's 2026-03-02T00:00:00Z (rows must be in time order)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples, bad, r := readAll(t, Header+"\n"+strings.Join(tt.rows, ""))
			var got []int
			for _, s := range samples {
				got = append(got, int(math.Round((s.Value-3)*1000)))
			}
			var gotBad []string
			for _, b := range bad {
				gotBad = append(gotBad, b.String())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.samples) || fmt.Sprint(gotBad) != fmt.Sprint(tt.bad) {
				t.Errorf("samples %v, bad rows %q\nwant    %v, %q", got, gotBad, tt.samples, tt.bad)
			}
			st := r.Stats()
			if st.Rows != st.Samples+st.SkippedTotal() {
				t.Errorf("stats don't add up: %+v", st)
			}
		})
	}
}

func TestEntitiesBeyondTheRegistryLimitAreSkipped(t *testing.T) {
	in := Header + "\n" +
		"2026-03-01T00:00:00Z,ups-a,1,1,1,cell_voltage_volts,3.3\n" + // 4 entities
		"2026-03-01T00:00:00Z,ups-a,1,2,1,cell_voltage_volts,3.3\n" + // 2 more: over the limit of 5
		"2026-03-01T00:00:00Z,ups-a,1,1,2,cell_voltage_volts,3.3\n" // 1 more: fits
	r, err := NewReader(strings.NewReader(in), "in.csv", telemetry.NewRegistryWithLimit(5))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	r.OnBadRow = func(b BadRow) { bad = append(bad, b.String()) }
	n := 0
	for _, err := r.Next(); err == nil; _, err = r.Next() {
		n++
	}
	want := `in.csv:3: entity ups="ups-a" string="1" module="2" cell="1": too many distinct entities (limit 5)`
	if n != 2 || len(bad) != 1 || bad[0] != want {
		t.Errorf("read %d samples, bad rows %q; want 2 samples and %q", n, bad, want)
	}
}
