// Package modbus reads battery management systems over Modbus. This file
// holds the declarative register maps: which registers hold which
// telemetry, in which type, byte and word order, scale and offset, with
// per-cell arrays, sentinel values meaning "no reading", alarm bits, and
// battery dates (manufactured, installed, warranty, replace-by).
// A map decodes a register dump into readings without any I/O, so every
// profile is tested against golden vectors.
package modbus

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// Map is a register map: a profile for one kind of BMS.
type Map struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Source      string `yaml:"source"`
	// Function is the read function: "holding" (FC 3) or "input" (FC 4).
	// Only read function codes exist here: cellwarden never writes.
	Function string `yaml:"function"`
	// ByteOrder inside a register ("big", Modbus' own, or "little") and
	// WordOrder of 32-bit values ("msw_first" or "lsw_first"), defaults
	// for every point.
	ByteOrder string  `yaml:"byte_order"`
	WordOrder string  `yaml:"word_order"`
	Points    []Point `yaml:"points"`
}

// Point maps one register (or an array of them) to a metric or alarms.
type Point struct {
	Name    string `yaml:"name"`
	Address uint16 `yaml:"address"`
	// Type: int16, uint16, int32, uint32, float32, bitfield16, string.
	Type string `yaml:"type"`
	// Words is the length of a string in registers.
	Words int `yaml:"words"`
	// Metric is a telemetry metric of interfaces.md §1; empty for points
	// that carry only alarms or identity.
	Metric string `yaml:"metric"`
	// Value = raw × Scale + Offset (Scale 0 means 1).
	Scale  float64 `yaml:"scale"`
	Offset float64 `yaml:"offset"`
	// Raw values that mean "no reading" (e.g. 65535, 32767, -32768).
	Sentinels []float64 `yaml:"sentinels"`
	// Overrides of the map's byte and word order for this point.
	ByteOrder string `yaml:"byte_order"`
	WordOrder string `yaml:"word_order"`
	// Array repeats the point for every cell (or module): element n sits at
	// Address + n × Stride registers and belongs to module n / PerModule + 1,
	// cell n % PerModule + 1 (cell metrics), or module n + 1 (module
	// metrics).
	Array *Array `yaml:"array"`
	// Alarms name the bits of a bitfield16.
	Alarms []Alarm `yaml:"alarms"`
	// Date makes the point a battery date instead of a metric: one of
	// the lifecycle fields (manufactured, installed, warranty_until,
	// replace_by), written in DateFormat (see dateFormats). A raw 0 or a
	// sentinel means "not set".
	Date       string `yaml:"date"`
	DateFormat string `yaml:"date_format"`
}

// dateFormats are the encodings of a date point, with the integer types
// each may be read as.
var dateFormats = map[string][]string{
	"days_since_2000": {"int16", "uint16", "int32", "uint32"}, // as SunSpec 802 WarrDt
	"unix_seconds":    {"uint32"},
	"yyyymmdd":        {"uint32"},           // 20140915
	"yymmdd":          {"uint16", "uint32"}, // 140915: 2014-09-15 (years 2000..2099)
}

// dateFormatNames lists the date formats for messages.
const dateFormatNames = "days_since_2000, unix_seconds, yyyymmdd or yymmdd"

// Array describes a per-cell or per-module block.
type Array struct {
	Modules   int `yaml:"modules"`
	PerModule int `yaml:"per_module"`
	Stride    int `yaml:"stride"`
}

// Alarm names one bit of a bitfield.
type Alarm struct {
	Bit  int    `yaml:"bit"`
	Name string `yaml:"name"`
}

// words returns how many registers one element of the point takes.
func (p *Point) words() int {
	switch p.Type {
	case "int32", "uint32", "float32":
		return 2
	case "string":
		return p.Words
	}
	return 1
}

// count returns the number of elements (1 without an array).
func (p *Point) count() int {
	if p.Array == nil {
		return 1
	}
	if p.metricLevel() == telemetry.LevelModule {
		return p.Array.Modules
	}
	return p.Array.Modules * p.Array.PerModule
}

func (p *Point) stride() int {
	if p.Array == nil || p.Array.Stride == 0 {
		return p.words()
	}
	return p.Array.Stride
}

func (p *Point) metricLevel() telemetry.Level {
	m, _ := telemetry.ParseMetric(p.Metric)
	return m.Level()
}

// Validate reports every problem of the map to pr, with paths below path.
func (m *Map) Validate(pr *yamlstrict.Problems, path string) {
	if m.Name == "" {
		pr.Add(yamlstrict.Key(path, "name"), nil, "is required")
	}
	switch m.Function {
	case "holding", "input":
	default:
		pr.Add(yamlstrict.Key(path, "function"), m.Function, "must be holding or input (cellwarden only reads)")
	}
	checkOrders(pr, path, m.ByteOrder, m.WordOrder)
	if len(m.Points) == 0 {
		pr.Add(yamlstrict.Key(path, "points"), nil, "must list at least one point")
	}
	alarms := map[string]string{} // alarm name → the path that names it first
	for i := range m.Points {
		pp := yamlstrict.Index(yamlstrict.Key(path, "points"), i)
		m.Points[i].validate(pr, pp)
		for j, a := range m.Points[i].Alarms {
			ap := yamlstrict.Index(yamlstrict.Key(pp, "alarms"), j)
			if first, dup := alarms[a.Name]; dup && a.Name != "" {
				pr.Add(yamlstrict.Key(ap, "name"), a.Name, "is also the name of %s (alarm names label the cellwarden_bms_alarm series)", first)
				continue
			}
			alarms[a.Name] = ap
		}
	}
}

func checkOrders(pr *yamlstrict.Problems, path, byteOrder, wordOrder string) {
	switch byteOrder {
	case "", "big", "little":
	default:
		pr.Add(yamlstrict.Key(path, "byte_order"), byteOrder, "must be big or little")
	}
	switch wordOrder {
	case "", "msw_first", "lsw_first":
	default:
		pr.Add(yamlstrict.Key(path, "word_order"), wordOrder, "must be msw_first or lsw_first")
	}
}

func (p *Point) validate(pr *yamlstrict.Problems, path string) {
	switch p.Type {
	case "int16", "uint16", "int32", "uint32", "float32", "bitfield16":
	case "string":
		if p.Words < 1 || p.Words > 64 {
			pr.Add(yamlstrict.Key(path, "words"), p.Words, "a string needs 1 to 64 registers")
		}
	default:
		pr.Add(yamlstrict.Key(path, "type"), p.Type, "must be one of int16, uint16, int32, uint32, float32, bitfield16, string")
	}
	checkOrders(pr, path, p.ByteOrder, p.WordOrder)
	if p.Metric != "" {
		m, ok := telemetry.ParseMetric(p.Metric)
		switch {
		case !ok:
			pr.Add(yamlstrict.Key(path, "metric"), p.Metric, "is not a metric of the catalogue")
		case p.Type == "string" || p.Type == "bitfield16":
			pr.Add(yamlstrict.Key(path, "metric"), p.Metric, "needs a numeric type")
		case p.Array == nil && (m.Level() == telemetry.LevelCell || m.Level() == telemetry.LevelModule):
			pr.Add(yamlstrict.Key(path, "array"), nil, "a %s-level metric needs an array (which module and cell?)", m.Level())
		case p.Array != nil && m.Level() != telemetry.LevelCell && m.Level() != telemetry.LevelModule:
			pr.Add(yamlstrict.Key(path, "array"), nil, "only cell- and module-level metrics have arrays")
		}
	}
	if p.Metric == "" && len(p.Alarms) == 0 && p.Name == "" && p.Date == "" {
		pr.Add(path, nil, "a point needs a metric, alarms, a date or at least a name")
	}
	p.validateDate(pr, path)
	if len(p.Alarms) > 0 && p.Type != "bitfield16" {
		pr.Add(yamlstrict.Key(path, "alarms"), nil, "alarms need type bitfield16")
	}
	for i, a := range p.Alarms {
		if a.Bit < 0 || a.Bit > 15 || a.Name == "" {
			pr.Add(yamlstrict.Index(yamlstrict.Key(path, "alarms"), i), a.Bit, "needs a bit 0..15 and a name")
		}
	}
	if p.Array != nil && p.Metric == "" {
		pr.Add(yamlstrict.Key(path, "array"), nil, "needs a metric (arrays repeat a cell or module reading)")
	}
	if a := p.Array; a != nil {
		if a.Modules < 1 || a.Modules > 1000 || (p.metricLevel() == telemetry.LevelCell && (a.PerModule < 1 || a.PerModule > 1000)) {
			pr.Add(yamlstrict.Key(path, "array"), nil, "needs modules (1..1000) and, for cells, per_module (1..1000)")
		}
		if a.Stride != 0 && a.Stride < p.words() {
			pr.Add(yamlstrict.Key(yamlstrict.Key(path, "array"), "stride"), a.Stride, "is smaller than one element (%d registers)", p.words())
		}
	}
	last := int(p.Address) + (p.count()-1)*p.stride() + p.words() - 1
	if last > math.MaxUint16 {
		pr.Add(yamlstrict.Key(path, "address"), p.Address, "the point runs past register 65535")
	}
}

// validateDate checks the date and date_format keys of a point.
func (p *Point) validateDate(pr *yamlstrict.Problems, path string) {
	if p.Date == "" {
		if p.DateFormat != "" {
			pr.Add(yamlstrict.Key(path, "date_format"), p.DateFormat, "needs date (which battery date the point holds)")
		}
		return
	}
	if _, ok := lifecycle.ParseField(p.Date); !ok {
		pr.Add(yamlstrict.Key(path, "date"), p.Date, "must be manufactured, installed, warranty_until or replace_by")
	}
	types, ok := dateFormats[p.DateFormat]
	switch {
	case p.DateFormat == "":
		pr.Add(yamlstrict.Key(path, "date_format"), nil, "is required with date: %s", dateFormatNames)
	case !ok:
		pr.Add(yamlstrict.Key(path, "date_format"), p.DateFormat, "must be %s", dateFormatNames)
	case !slices.Contains(types, p.Type):
		pr.Add(yamlstrict.Key(path, "type"), p.Type, "a %s date is read as %s", p.DateFormat, strings.Join(types, " or "))
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"metric", p.Metric != ""}, {"array", p.Array != nil}, {"alarms", len(p.Alarms) > 0}, {"scale", p.Scale != 0}, {"offset", p.Offset != 0}} {
		if k.set {
			pr.Add(yamlstrict.Key(path, k.key), nil, "does not apply to a date point")
		}
	}
}

// Reading is one decoded value: a metric of an entity below the device's
// string (Module and Cell empty above their level).
type Reading struct {
	Metric telemetry.Metric
	Module string
	Cell   string
	Value  float64 // NaN: a sentinel ("no reading")
	Point  string  // the point's name, for messages
	Addr   uint16  // the register, for messages
}

// AlarmState is one alarm bit as read.
type AlarmState struct {
	Name   string // the alarm's name in the map, unique in it
	Active bool
	Point  string // the bitfield point's name, for messages
	Addr   uint16 // its register, for messages
	Bit    int
}

// Registers is a register dump: address → value. Missing addresses were
// not read (or their block failed).
type Registers map[uint16]uint16

// DecodedDate is a battery date a date point holds.
type DecodedDate struct {
	Field string    // the lifecycle field: "warranty_until"
	Date  time.Time // midnight UTC of the day
	Point string    // the point's name, for messages
	Addr  uint16    // the register, for messages
}

// Decoded is what a map makes of a dump.
type Decoded struct {
	Readings []Reading
	Alarms   []AlarmState
	Strings  map[string]string // identity points (serials, versions)
	// Dates are the date points that hold a date; those reading 0, a
	// sentinel or no valid day are left out.
	Dates []DecodedDate
	// Missing counts elements whose registers were not in the dump.
	Missing int
}

// Decode turns a register dump into readings, alarms and identity strings.
// It never fails: registers missing from the dump are counted, raw values
// listed as sentinels become NaN readings.
func (m *Map) Decode(regs Registers) Decoded { return m.decode(regs, nil) }

// decode is Decode appending the readings to buf[:0], which it grows once
// to the map's size when it is too small.
func (m *Map) decode(regs dump, buf []Reading) Decoded {
	n := 0
	for i := range m.Points {
		if m.Points[i].Metric != "" {
			n += m.Points[i].count()
		}
	}
	d := Decoded{Readings: slices.Grow(buf[:0], n)}
	var wordBuf [8]uint16
	for i := range m.Points {
		p := &m.Points[i]
		metric, _ := telemetry.ParseMetric(p.Metric)
		bo, wo := orders(m, p)
		var words []uint16
		if n := p.words(); n <= len(wordBuf) {
			words = wordBuf[:n]
		} else {
			words = make([]uint16, n)
		}
		for n := 0; n < p.count(); n++ {
			addr := uint16(int(p.Address) + n*p.stride())
			if !regs.read(addr, words) {
				d.Missing++
				continue
			}
			switch p.Type {
			case "string":
				if d.Strings == nil {
					d.Strings = map[string]string{}
				}
				d.Strings[p.Name] = decodeString(words, bo)
				continue
			case "bitfield16":
				v := swapBytes(words[0], bo)
				for _, a := range p.Alarms {
					d.Alarms = append(d.Alarms, AlarmState{Name: a.Name, Active: v&(1<<a.Bit) != 0, Point: p.Name, Addr: addr, Bit: a.Bit})
				}
				continue
			}
			if p.Date != "" {
				raw := decodeNumber(p.Type, words, bo, wo)
				if t, ok := decodeDate(p.DateFormat, raw); ok && !slices.Contains(p.Sentinels, raw) {
					d.Dates = append(d.Dates, DecodedDate{Field: p.Date, Date: t, Point: p.Name, Addr: addr})
				}
				continue
			}
			if p.Metric == "" {
				continue
			}
			raw := decodeNumber(p.Type, words, bo, wo)
			value := raw
			if slices.Contains(p.Sentinels, raw) || math.IsNaN(raw) || math.IsInf(raw, 0) {
				value = math.NaN()
			} else {
				value = scaled(raw, p.Scale) + p.Offset
			}
			r := Reading{Metric: metric, Value: value, Point: p.Name, Addr: addr}
			if p.Array != nil {
				if metric.Level() == telemetry.LevelModule {
					r.Module = index(n + 1)
				} else {
					r.Module, r.Cell = index(n/p.Array.PerModule+1), index(n%p.Array.PerModule+1)
				}
			}
			d.Readings = append(d.Readings, r)
		}
	}
	return d
}

// dateEpoch is day 0 of days_since_2000 (SunSpec 802 WarrDt's epoch).
var dateEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeDate turns a date point's raw value into the day it names
// (midnight UTC); false for 0 ("not set"), a negative value, or digits
// that name no day (20141332).
func decodeDate(format string, raw float64) (time.Time, bool) {
	if raw <= 0 || raw != math.Trunc(raw) {
		return time.Time{}, false
	}
	n := int64(raw)
	switch format {
	case "days_since_2000":
		return dateEpoch.AddDate(0, 0, int(n)), true
	case "unix_seconds":
		t := time.Unix(n, 0).UTC()
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), true
	case "yyyymmdd":
		return civilDate(n/10000, n/100%100, n%100)
	case "yymmdd":
		if n > 991231 {
			return time.Time{}, false
		}
		return civilDate(2000+n/10000, n/100%100, n%100)
	}
	return time.Time{}, false
}

// civilDate returns the day y-m-d, or false when there is no such day.
func civilDate(y, m, d int64) (time.Time, bool) {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(int(y), time.Month(m), int(d), 0, 0, 0, 0, time.UTC)
	return t, t.Day() == int(d) // 2015-02-29 would be March 1
}

// scaled applies a scale. Decimal scales (0.1, 0.01, ...) divide by the
// power of ten, which gives the correctly rounded decimal (262 × 0.1 is
// 26.200000000000003; 262 / 10 is 26.2).
func scaled(raw, scale float64) float64 {
	switch {
	case scale == 0 || scale == 1:
		return raw
	case scale < 1:
		if k := math.Round(1 / scale); math.Abs(k*scale-1) < 1e-12 {
			return raw / k
		}
	}
	return raw * scale
}

func orders(m *Map, p *Point) (byteOrder, wordOrder string) {
	byteOrder, wordOrder = m.ByteOrder, m.WordOrder
	if p.ByteOrder != "" {
		byteOrder = p.ByteOrder
	}
	if p.WordOrder != "" {
		wordOrder = p.WordOrder
	}
	return byteOrder, wordOrder
}

// dump is where decode finds the registers: a Registers map, or the dense
// image a Device fills at each poll.
type dump interface {
	// read fills dst with the registers from addr on (wrapping past
	// 65535), false when one of them is missing.
	read(addr uint16, dst []uint16) bool
}

func (r Registers) read(addr uint16, dst []uint16) bool {
	for i := range dst {
		v, ok := r[addr+uint16(i)]
		if !ok {
			return false
		}
		dst[i] = v
	}
	return true
}

// image is a dense register dump over the addresses a device's blocks
// span: cheaper to fill and read at every poll than a map.
type image struct {
	base uint16
	vals []uint16
	have []uint64 // a bit per register: read in this poll
}

// newImage makes an image spanning blocks.
func newImage(blocks []Block) *image {
	if len(blocks) == 0 {
		return &image{}
	}
	lo, hi := int(blocks[0].Start), 0
	for _, b := range blocks {
		lo, hi = min(lo, int(b.Start)), max(hi, int(b.Start)+int(b.Count))
	}
	n := max(hi-lo, 0)
	return &image{base: uint16(lo), vals: make([]uint16, n), have: make([]uint64, (n+63)/64)}
}

// reset forgets every register, for the next poll.
func (im *image) reset() { clear(im.have) }

// store records vals read from start on; registers outside the image's
// span are dropped (the device's blocks never reach there).
func (im *image) store(start uint16, vals []uint16) {
	for i, v := range vals {
		j := int(start+uint16(i)) - int(im.base)
		if j >= 0 && j < len(im.vals) {
			im.vals[j] = v
			im.have[j>>6] |= 1 << (j & 63)
		}
	}
}

func (im *image) read(addr uint16, dst []uint16) bool {
	for i := range dst {
		j := int(addr+uint16(i)) - int(im.base)
		if j < 0 || j >= len(im.vals) || im.have[j>>6]&(1<<(j&63)) == 0 {
			return false
		}
		dst[i] = im.vals[j]
	}
	return true
}

func swapBytes(w uint16, byteOrder string) uint16 {
	if byteOrder == "little" {
		return w<<8 | w>>8
	}
	return w
}

// decodeNumber decodes a numeric element; 32-bit values combine two words
// in the given word order.
func decodeNumber(typ string, words []uint16, byteOrder, wordOrder string) float64 {
	w0 := swapBytes(words[0], byteOrder)
	switch typ {
	case "int16":
		return float64(int16(w0))
	case "uint16":
		return float64(w0)
	}
	w1 := swapBytes(words[1], byteOrder)
	hi, lo := w0, w1
	if wordOrder == "lsw_first" {
		hi, lo = w1, w0
	}
	u := uint32(hi)<<16 | uint32(lo)
	switch typ {
	case "int32":
		return float64(int32(u))
	case "uint32":
		return float64(u)
	}
	return float64(math.Float32frombits(u))
}

func decodeString(words []uint16, byteOrder string) string {
	var b strings.Builder
	for _, w := range words {
		w = swapBytes(w, byteOrder)
		for _, c := range [2]byte{byte(w >> 8), byte(w)} {
			if c != 0 {
				b.WriteByte(c)
			}
		}
	}
	return strings.TrimSpace(b.String())
}

// indexNames are the decimal names of module and cell numbers, made once:
// decoding a rack names hundreds of cells a poll.
var indexNames = func() [1001]string {
	var a [1001]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

// index is the decimal name of a one-based module or cell number.
func index(n int) string {
	if n >= 0 && n < len(indexNames) {
		return indexNames[n]
	}
	return strconv.Itoa(n)
}
