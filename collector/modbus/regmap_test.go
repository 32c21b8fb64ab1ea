package modbus

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

func reading(d Decoded, metric telemetry.Metric, module, cell string) (float64, bool) {
	for _, r := range d.Readings {
		if r.Metric == metric && r.Module == module && r.Cell == cell {
			return r.Value, true
		}
	}
	return 0, false
}

func alarms(d Decoded) string {
	var on []string
	for _, a := range d.Alarms {
		if a.Active {
			on = append(on, a.Name)
		}
	}
	return strings.Join(on, ",")
}

// A Soltaro rack of 2 modules x 12 cells, register values worked out by
// hand from the documented layout.
func TestSoltaroVector(t *testing.T) {
	m, err := Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	m.SetModules(2)
	regs := Registers{0x2100: 7680, 0x2101: 0xFF38, 0x2103: 87, 0x2104: 96, 0x2140: 0x0009, 0x2141: 0}
	for n := 0; n < 24; n++ {
		regs[0x2800+uint16(n)] = uint16(3300 + n)
		regs[0x2C00+uint16(n)] = uint16(250 + n)
	}
	regs[0x2805] = 65535  // a cell voltage sensor reporting "none"
	regs[0x2C07] = 0x8000 // -32768: a temperature sentinel
	regs[0x2C08] = 0xFFF6 // -10 raw: -1.0 °C
	d := m.Decode(regs)

	tests := []struct {
		metric       telemetry.Metric
		module, cell string
		want         float64
	}{
		{telemetry.StringVoltageVolts, "", "", 768.0},
		{telemetry.StringCurrentAmperes, "", "", -20.0},
		{telemetry.StringSOCRatio, "", "", 0.87},
		{telemetry.StringSOHRatio, "", "", 0.96},
		{telemetry.CellVoltageVolts, "1", "1", 3.300},
		{telemetry.CellVoltageVolts, "2", "12", 3.323}, // n = 23
		{telemetry.CellVoltageVolts, "1", "6", math.NaN()},
		{telemetry.CellTemperatureCelsius, "1", "1", 25.0},
		{telemetry.CellTemperatureCelsius, "2", "1", 26.2}, // n = 12
		{telemetry.CellTemperatureCelsius, "1", "8", math.NaN()},
		{telemetry.CellTemperatureCelsius, "1", "9", -1.0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.metric, tt.module, tt.cell), func(t *testing.T) {
			got, ok := reading(d, tt.metric, tt.module, tt.cell)
			if !ok || !(math.Abs(got-tt.want) < 1e-9 || (math.IsNaN(got) && math.IsNaN(tt.want))) {
				t.Errorf("got %v (found %v), want %v", got, ok, tt.want)
			}
		})
	}
	if len(d.Readings) != 4+24+24 || d.Missing != 1 {
		t.Errorf("%d readings, %d missing: want 52 readings and the one unread register (0x2185)", len(d.Readings), d.Missing)
	}
	if got := alarms(d); got != "level2_cell_voltage_high,level2_cell_voltage_low" {
		t.Errorf("active alarms %q", got)
	}
}

func TestPylontechVector(t *testing.T) {
	m, err := Profile("pylontech_powercube_m2")
	if err != nil {
		t.Fatal(err)
	}
	// -1234.56 A is -123456 raw = 0xFFFE1DC0, most significant word first.
	d := m.Decode(Registers{0x1103: 5120, 0x1104: 0xFFFE, 0x1105: 0x1DC0, 0x1107: 55, 0x1120: 100,
		0x1100: 1 << 9, 0x1101: 1 << 12, 0x1132: 0})
	for metric, want := range map[telemetry.Metric]float64{
		telemetry.StringVoltageVolts: 512.0, telemetry.StringCurrentAmperes: -1234.56,
		telemetry.StringSOCRatio: 0.55, telemetry.StringSOHRatio: 1.0,
	} {
		if got, ok := reading(d, metric, "", ""); !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if got := alarms(d); got != "temperature_warning,module_overtemperature_protection" {
		t.Errorf("active alarms %q", got)
	}
}

func TestTypesAndOrders(t *testing.T) {
	tests := []struct {
		name, yaml string
		regs       Registers
		want       string
	}{
		{"int32 lsw first", "{name: x, address: 0, type: int32, word_order: lsw_first, metric: string_current_amperes}",
			Registers{0: 0x1DC0, 1: 0xFFFE}, "-123456"},
		{"uint16 little-endian bytes", "{name: x, address: 0, type: uint16, byte_order: little, metric: string_voltage_volts}",
			Registers{0: 0x3412}, "4660"},
		{"float32", "{name: x, address: 0, type: float32, metric: string_voltage_volts}",
			Registers{0: 0x4053, 1: 0x3333}, "3.299999952316284"},
		{"uint32 with scale and offset", "{name: x, address: 0, type: uint32, scale: 0.1, offset: -40, metric: ambient_temperature_celsius}",
			Registers{0: 0, 1: 650}, "25"},
		{"current offset 3200", "{name: x, address: 0, type: uint16, scale: 0.1, offset: -3200, metric: string_current_amperes}",
			Registers{0: 32500}, "50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMap([]byte("name: t\npoints:\n  - "+tt.yaml+"\n"), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			d := m.Decode(tt.regs)
			if len(d.Readings) != 1 || fmt.Sprint(d.Readings[0].Value) != tt.want {
				t.Errorf("got %+v, want value %s", d.Readings, tt.want)
			}
		})
	}
}

func TestStringPoint(t *testing.T) {
	m, err := ParseMap([]byte("name: t\npoints:\n  - {name: serial, address: 10, type: string, words: 4}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := m.Decode(Registers{10: 'S'<<8 | 'N', 11: '-'<<8 | '1', 12: '2'<<8 | '3', 13: 0})
	if d.Strings["serial"] != "SN-123" {
		t.Errorf("serial = %q", d.Strings["serial"])
	}
}

// Date points in every format, read from hand-made register vectors: the
// day each names, and "not set" for 0, a sentinel or digits that name no
// day.
func TestDatePoints(t *testing.T) {
	tests := []struct {
		name, point string
		regs        Registers
		want        string // "" for not set
	}{
		{"days since 2000 as SunSpec", "type: uint16, date_format: days_since_2000", Registers{0: 12676}, "2034-09-15"},
		{"days since 2000, 32 bits lsw first", "type: uint32, word_order: lsw_first, date_format: days_since_2000", Registers{0: 12676, 1: 0}, "2034-09-15"},
		{"unix seconds", "type: uint32, date_format: unix_seconds", Registers{0: 1410739200 >> 16, 1: 1410739200 & 0xFFFF}, "2014-09-15"},
		{"unix seconds late in the day is that day (UTC)", "type: uint32, date_format: unix_seconds",
			Registers{0: 1410825599 >> 16, 1: 1410825599 & 0xFFFF}, "2014-09-15"},
		{"yyyymmdd", "type: uint32, date_format: yyyymmdd", Registers{0: 20140915 >> 16, 1: 20140915 & 0xFFFF}, "2014-09-15"},
		{"yyyymmdd leap day", "type: uint32, date_format: yyyymmdd", Registers{0: 20160229 >> 16, 1: 20160229 & 0xFFFF}, "2016-02-29"},
		{"yyyymmdd no such day", "type: uint32, date_format: yyyymmdd", Registers{0: 20150229 >> 16, 1: 20150229 & 0xFFFF}, ""},
		{"yyyymmdd month 13", "type: uint32, date_format: yyyymmdd", Registers{0: 20141315 >> 16, 1: 20141315 & 0xFFFF}, ""},
		{"yymmdd in 32 bits", "type: uint32, date_format: yymmdd", Registers{0: 140915 >> 16, 1: 140915 & 0xFFFF}, "2014-09-15"},
		{"yymmdd in 16 bits, little-endian bytes", "type: uint16, byte_order: little, date_format: yymmdd", Registers{0: 0x9BEB}, "2006-03-15"}, // 0xEB9B = 60315
		{"zero is not set", "type: uint16, date_format: days_since_2000", Registers{0: 0}, ""},
		{"a sentinel is not set", "type: uint16, date_format: days_since_2000, sentinels: [65535]", Registers{0: 65535}, ""},
		{"negative days are not set", "type: int16, date_format: days_since_2000", Registers{0: 0xFFFF}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMap([]byte("name: t\npoints:\n  - {name: d, address: 0, date: warranty_until, "+tt.point+"}\n"), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			d := m.Decode(tt.regs)
			got := ""
			if len(d.Dates) == 1 && d.Dates[0].Field == "warranty_until" && d.Dates[0].Addr == 0 {
				got = d.Dates[0].Date.Format("2006-01-02")
			}
			if got != tt.want || len(d.Dates) > 1 || len(d.Readings) != 0 {
				t.Errorf("dates %+v, readings %+v; want %q", d.Dates, d.Readings, tt.want)
			}
		})
	}
}

// A map's date points are read with its metrics: the plan covers their
// registers.
func TestPlanIncludesDatePoints(t *testing.T) {
	m, err := ParseMap([]byte(`name: t
points:
  - {name: v, address: 100, type: uint16, metric: string_voltage_volts}
  - {name: installed, address: 300, type: uint32, date: installed, date_format: yyyymmdd}
  - {name: made, address: 302, type: uint16, date: manufactured, date_format: yymmdd}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.Plan(0)); got != "[{100 1} {300 3}]" {
		t.Errorf("blocks %s, want [{100 1} {300 3}]", got)
	}
}

func TestPlanCoalescesWithin125(t *testing.T) {
	m, err := Profile("soltaro_single_rack_vc")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		gap  int
		want string
	}{
		{0, "[{8448 2} {8451 2} {8512 2} {8581 1} {10240 125} {10365 115} {11264 125} {11389 115}]"},
		{1, "[{8448 5} {8512 2} {8581 1} {10240 125} {10365 115} {11264 125} {11389 115}]"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("gap ", tt.gap), func(t *testing.T) {
			if got := fmt.Sprint(m.Plan(tt.gap)); got != tt.want {
				t.Errorf("blocks %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBadMaps(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"write function", "name: t\nfunction: coils\npoints:\n  - {name: x, address: 0, type: uint16}\n",
			`t.yaml: function: "coils" must be holding or input (cellwarden only reads) (line 2)`},
		{"unknown type", "name: t\npoints:\n  - {name: x, address: 0, type: int64}\n",
			`t.yaml: points[0].type: "int64" must be one of int16, uint16, int32, uint32, float32, bitfield16, string (line 3)`},
		{"cell metric without array", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, metric: cell_voltage_volts}\n",
			`t.yaml: points[0].array: a cell-level metric needs an array (which module and cell?) (line 3)`},
		{"alarms on a number", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, alarms: [{bit: 1, name: a}]}\n",
			`t.yaml: points[0].alarms: alarms need type bitfield16 (line 3)`},
		{"past the last register", "name: t\npoints:\n  - {name: x, address: 65535, type: uint32, metric: string_voltage_volts}\n",
			`t.yaml: points[0].address: "65535" the point runs past register 65535 (line 3)`},
		{"unknown date field", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, date: commissioned, date_format: days_since_2000}\n",
			`t.yaml: points[0].date: "commissioned" must be manufactured, installed, warranty_until or replace_by (line 3)`},
		{"date without a format", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, date: installed}\n",
			`t.yaml: points[0].date_format: is required with date: days_since_2000, unix_seconds, yyyymmdd or yymmdd (line 3)`},
		{"unknown date format", "name: t\npoints:\n  - {name: x, address: 0, type: uint16,\n     date: installed, date_format: ddmmyy}\n",
			`t.yaml: points[0].date_format: "ddmmyy" must be days_since_2000, unix_seconds, yyyymmdd or yymmdd (line 4)`},
		{"yyyymmdd in 16 bits", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, date: installed, date_format: yyyymmdd}\n",
			`t.yaml: points[0].type: "uint16" a yyyymmdd date is read as uint32 (line 3)`},
		{"a date with a metric", "name: t\npoints:\n  - {name: x, address: 0, type: uint32, date: installed, date_format: unix_seconds,\n     metric: string_voltage_volts}\n",
			`t.yaml: points[0].metric: does not apply to a date point (line 4)`},
		{"a date scaled", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, date: installed, date_format: yymmdd, scale: 0.1}\n",
			`t.yaml: points[0].scale: does not apply to a date point (line 3)`},
		{"a format without a date", "name: t\npoints:\n  - {name: x, address: 0, type: uint16, date_format: yymmdd}\n",
			`t.yaml: points[0].date_format: "yymmdd" needs date (which battery date the point holds) (line 3)`},
		{"one alarm name twice", "name: t\npoints:\n  - {name: x, address: 0, type: bitfield16, alarms: [{bit: 1, name: hot}]}\n" +
			"  - {name: y, address: 1, type: bitfield16, alarms: [{bit: 0, name: cold}, {bit: 2, name: hot}]}\n",
			`t.yaml: points[1].alarms[1].name: "hot" is also the name of points[0].alarms[0] (alarm names label the cellwarden_bms_alarm series) (line 4)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMap([]byte(tt.doc), "t.yaml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestEveryProfileLoadsAndPlans(t *testing.T) {
	for _, name := range Profiles() {
		t.Run(name, func(t *testing.T) {
			m, err := Profile(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range m.Plan(0) {
				if b.Count == 0 || b.Count > MaxBlock {
					t.Errorf("block %+v", b)
				}
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint16(0x2100), uint16(7680), uint16(0xFFFF))
	f.Fuzz(func(t *testing.T, addr, v1, v2 uint16) {
		for _, name := range Profiles() {
			m, err := Profile(name)
			if err != nil {
				t.Fatal(err)
			}
			d := m.Decode(Registers{addr: v1, addr + 1: v2})
			for _, r := range d.Readings {
				if math.IsInf(r.Value, 0) {
					t.Fatalf("infinite reading %+v", r)
				}
			}
		}
	})
}

// Cell voltages in millivolts, stored little-endian by a misbehaving
// gateway: the probe ranks the right decoding first.
func TestInterpretRanksTheRightDecoding(t *testing.T) {
	tests := []struct {
		name   string
		regs   []uint16
		metric telemetry.Metric
		want   string
	}{
		{"mV big-endian", []uint16{3301, 3305, 3298, 3310}, telemetry.CellVoltageVolts, "type: uint16, byte_order: big, scale: 0.001"},
		{"mV little-endian", []uint16{0xE50C, 0xE90C, 0xE20C, 0xEE0C}, telemetry.CellVoltageVolts, "type: uint16, byte_order: little, scale: 0.001"},
		{"temperature in tenths, one below zero", []uint16{253, 0xFFFB, 261, 247}, telemetry.CellTemperatureCelsius, "type: int16, byte_order: big, scale: 0.1"},
		{"float32 cell voltages", float32Words(3.301, 3.305, 3.298, 3.310), telemetry.CellVoltageVolts, "type: float32, byte_order: big, word_order: msw_first, scale: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Interpret(tt.regs, tt.metric)
			top := []string{}
			for _, x := range c[:3] {
				top = append(top, x.Describe())
			}
			if top[0] != tt.want {
				t.Errorf("top candidates %q, want %q first", top, tt.want)
			}
		})
	}
}

func float32Words(vs ...float32) []uint16 {
	var out []uint16
	for _, v := range vs {
		b := math.Float32bits(v)
		out = append(out, uint16(b>>16), uint16(b))
	}
	return out
}

// Encoding a reading and decoding the registers gives the reading back, to
// the point's resolution, for every profile.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	readings := []struct {
		metric       telemetry.Metric
		module, cell string
		value        float64
	}{
		{telemetry.StringVoltageVolts, "", "", 812.3},
		{telemetry.StringCurrentAmperes, "", "", -45.6}, // 0.1 A: the coarsest profile's resolution
		{telemetry.StringSOCRatio, "", "", 0.95},
		{telemetry.CellVoltageVolts, "3", "7", 4.087},
		{telemetry.CellTemperatureCelsius, "3", "7", -4.5},
		{telemetry.CellTemperatureCelsius, "1", "2", math.NaN()},
	}
	for _, name := range Profiles() {
		m, err := Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		m.SetModules(4)
		for _, r := range readings {
			t.Run(fmt.Sprintf("%s/%s/%s/%s", name, r.metric, r.module, r.cell), func(t *testing.T) {
				addr, words, ok := m.Encode(r.metric, r.module, r.cell, r.value)
				hasPoint := slices.ContainsFunc(m.Points, func(p Point) bool { return p.Metric == r.metric.String() })
				if ok != hasPoint {
					t.Fatalf("Encode ok=%v but the map has a point for %s: %v", ok, r.metric, hasPoint)
				}
				if !ok {
					return // the BMS has no such register (Pylontech: no cells)
				}
				regs := Registers{}
				for i, w := range words {
					regs[addr+uint16(i)] = w
				}
				got, found := reading(m.Decode(regs), r.metric, r.module, r.cell)
				if !found || !(math.Abs(got-r.value) < 0.006 || (math.IsNaN(got) && math.IsNaN(r.value))) {
					t.Errorf("round trip of %v gave %v (found %v)", r.value, got, found)
				}
			})
		}
	}
}
