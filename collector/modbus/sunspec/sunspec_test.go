package sunspec

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// encode lays out one model instance with Encode, failing the test on an
// error.
func encode(tb testing.TB, id uint16, in Instance) []uint16 {
	tb.Helper()
	regs, err := Encode(id, in)
	if err != nil {
		tb.Fatal(err)
	}
	return regs
}

// device is a register image answering reads like a Modbus server:
// reading any unmapped register fails with "illegal data address".
type device struct {
	regs  map[uint16]uint16
	reads int
}

func newDevice() *device { return &device{regs: map[uint16]uint16{}} }

func (d *device) put(addr int, words ...uint16) int {
	for i, w := range words {
		d.regs[uint16(addr+i)] = w
	}
	return addr + len(words)
}

// sunspec lays out the marker at base, the models, and the end model.
func (d *device) sunspec(base int, models ...[]uint16) *device {
	addr := d.put(base, markerHi, markerLo)
	for _, m := range models {
		addr = d.put(addr, m...)
	}
	d.put(addr, 0xFFFF, 0)
	return d
}

func (d *device) read(addr, count uint16) ([]uint16, error) {
	d.reads++
	out := make([]uint16, count)
	for i := range out {
		v, ok := d.regs[addr+uint16(i)]
		if !ok {
			return nil, errors.New("modbus: exception '2' (illegal data address)")
		}
		out[i] = v
	}
	return out, nil
}

// The example device: a 48 V bank of one string with modules of 16 cells.
func commonInst() Instance {
	return Instance{Strings: map[string]string{"Mn": "cellwarden", "Md": "SIM-48V", "Vr": "1.2.3  ", "SN": "CW-0001"},
		Values: map[string]float64{"DA": 1}}
}

func batteryInst() Instance {
	return Instance{Values: map[string]float64{
		"AHRtg": 280, "AHRtg_SF": 0,
		"WHRtg": 143360, "WHRtg_SF": 1, // positive scale factor: raw 14336
		"WChaRteMax": 7000, "WDisChaRteMax": 7500, "WChaDisChaMax_SF": 2,
		"SoC": 87.5, "SoC_SF": -1, // negative scale factor: raw 875
		"SoH_SF": 0, // SoH itself not implemented
		"NCyc":   123456,
		"ChaSt":  4, "LocRemCtl": 0, "AlmRst": 0, "Typ": 4, "State": 3,
		"WarrDt": 12676, // 2034-09-15
		"Evt1":   1<<1 | 1<<20, "EvtVnd1": 0, "EvtVnd2": 0,
		"V": 51.2, "V_SF": -1,
		"CellVMax": 3.412, "CellVMin": 3.198, "CellVAvg": 3.3, "CellV_SF": -3,
		"A": -12.5, "A_SF": -1,
		"AMax_SF": 0,
		"W":       -640, "W_SF": 0,
		"SetOp": 1, "SetInvState": 3,
	}, Raw: map[string]uint64{"DoD": 120}} // DoD present but DoD_SF not implemented
}

func stringInst(idx float64, nmod int) Instance {
	in := Instance{Values: map[string]float64{
		"Idx": idx, "St": 3,
		"SoC": 87.5, "SoC_SF": -1, "SoH": 96, "SoH_SF": 0,
		"A": -12.5, "A_SF": -1, "V": 51.2, "V_SF": -1,
		"CellVMax": 3.412, "CellVMin": 3.198, "CellVAvg": 3.3, "CellV_SF": -3,
		"ModTmpMax": 31.5, "ModTmpMaxMod": 2, "ModTmpMin": -2.5, "ModTmpMinMod": 1, "ModTmpAvg": 24, "ModTmp_SF": -1,
		"Evt1": 0,
	}}
	mods := make([]Instance, nmod)
	for m := range mods {
		mods[m] = Instance{Values: map[string]float64{
			"ModNCell": 16, "ModCellVMax": 3.412 - 0.1*float64(m), "ModCellVMin": 3.198, "ModCellVAvg": 3.3,
			"ModCellTmpMax": 31.5, "ModCellTmpMin": -2.5, "ModCellTmpAvg": 24,
		}}
	}
	in.Groups = map[string][]Instance{"lithium_ion_string_module": mods}
	return in
}

// moduleInst returns model 805 for module mod of string str with n cells:
// cell k (1-based) at 3.300 + k mV and 20.0 + k/2 °C, except cell 3 at
// -5.5 °C, cell 9 without a voltage and cell 12 without a temperature.
func moduleInst(str, mod float64, n int) Instance {
	in := Instance{
		Values: map[string]float64{
			"StrIdx": str, "ModIdx": mod, "NCell": float64(n),
			"SoC": 87.5, "SoC_SF": -1, "SoH": 96, "SoH_SF": 0, "NCyc": 70000,
			"V": 52.8, "V_SF": -1, "CellVMax": 3.316, "CellVMin": 3.301, "CellVAvg": 3.308, "CellV_SF": -3,
			"CellTmpMax": 28, "CellTmpMin": -5.5, "CellTmpAvg": 24.2, "Tmp_SF": -1,
		},
		Strings: map[string]string{"SN": fmt.Sprintf("MOD-%02.0f", mod)},
	}
	cells := make([]Instance, n)
	for k := 1; k <= n; k++ {
		c := map[string]float64{"CellV": 3.3 + float64(k)/1000, "CellTmp": 20 + float64(k)/2, "CellSt": float64(k % 2)}
		switch k {
		case 3:
			c["CellTmp"] = -5.5
		case 9:
			delete(c, "CellV")
		case 12:
			delete(c, "CellTmp")
		}
		cells[k-1] = Instance{Values: c}
	}
	in.Groups = map[string][]Instance{cellGroup: cells}
	return in
}

func TestDefinitions(t *testing.T) {
	// Fixed sizes from the model files, cross-checked against
	// shared/data/sunspec/derived/dump_*.txt.
	tests := []struct {
		id             uint16
		top            int // registers of the top group, header included
		group          string
		groupSize      int
		count          int
		countPoint     string
		scaledPoint    string
		scaleFactorRef string
	}{
		{id: 1, top: 68},
		{id: 802, top: 64, scaledPoint: "V", scaleFactorRef: "V_SF"},
		{id: 803, top: 28, group: "string", groupSize: 32, countPoint: "NStr", scaledPoint: "ModTmpMax", scaleFactorRef: "ModTmp_SF"},
		{id: 804, top: 48, group: "lithium_ion_string_module", groupSize: 16, countPoint: "NMod", scaledPoint: "A", scaleFactorRef: "A_SF"},
		{id: 805, top: 44, group: cellGroup, groupSize: 4, count: 0, scaledPoint: "CellTmpMax", scaleFactorRef: "Tmp_SF"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			def, err := lookup(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			top := groupDef{points: def.group.points}
			size, _ := top.fixedSize()
			var groups []string
			var gsize, gcount int
			var gcountPoint string
			for _, g := range def.group.groups {
				groups = append(groups, g.name)
				gsize, _ = g.fixedSize()
				gcount, gcountPoint = g.count, g.countPoint
			}
			sf := ""
			for _, p := range def.group.points {
				if p.name == tt.scaledPoint {
					sf = p.sf
				}
			}
			got := fmt.Sprint(size, groups, gsize, gcount, gcountPoint, sf)
			want := fmt.Sprint(tt.top, strings.Fields(tt.group), tt.groupSize, tt.count, tt.countPoint, tt.scaleFactorRef)
			if got != want {
				t.Errorf("definition: got %s, want %s", got, want)
			}
		})
	}
}

// chain is the example device's model chain: 1, 802, 804 (2 modules) and
// 805 (16 cells).
func chain(t testing.TB) [][]uint16 {
	return [][]uint16{
		encode(t, 1, commonInst()),
		encode(t, 802, batteryInst()),
		encode(t, 804, stringInst(1, 2)),
		encode(t, 805, moduleInst(1, 7, 16)),
	}
}

func refsAt(first int) []ModelRef {
	return []ModelRef{
		{ID: 1, Addr: uint16(first), L: 66},
		{ID: 802, Addr: uint16(first + 68), L: 62},
		{ID: 804, Addr: uint16(first + 68 + 64), L: 46 + 2*16},
		{ID: 805, Addr: uint16(first + 68 + 64 + 80), L: 42 + 16*4},
	}
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name   string
		dev    *device
		base   uint16
		models []ModelRef
	}{
		{name: "at 40000", dev: newDevice().sunspec(40000, chain(t)...), base: 40000, models: refsAt(40002)},
		{name: "at 0, 40000 unmapped", dev: newDevice().sunspec(0, chain(t)...), base: 0, models: refsAt(2)},
		{name: "at 50000, 40000 and 0 unmapped", dev: newDevice().sunspec(50000, chain(t)...), base: 50000, models: refsAt(50002)},
		{name: "at 0, 40000 readable without marker", dev: with(newDevice().sunspec(0, chain(t)...), 40000, 0x5375, 0x6E54), base: 0, models: refsAt(2)},
		{name: "40000 wins over 50000", dev: newDevice().sunspec(50000, chain(t)[:1]...).sunspec(40000, chain(t)...), base: 40000, models: refsAt(40002)},
		{
			name: "header with L 0 ends the chain",
			dev:  with(newDevice().sunspec(40000, chain(t)[:1]...), 40070, 802, 0),
			base: 40000, models: refsAt(40002)[:1],
		},
		{
			name: "end of the address space ends the chain",
			// A vendor model filling the space up to register 65535, no end model.
			dev:  with(newDevice().sunspec(50000, chain(t)[:1]...), 50070, 64001, 65536-50072),
			base: 50000, models: append(refsAt(50002)[:1], ModelRef{ID: 64001, Addr: 50070, L: 65536 - 50072}),
		},
		{name: "exactly MaxModels", dev: newDevice().sunspec(0, tiny(MaxModels)...), base: 0, models: tinyRefs(MaxModels)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, models, err := Discover(tt.dev.read)
			if err != nil {
				t.Fatal(err)
			}
			if base != tt.base || fmt.Sprint(models) != fmt.Sprint(tt.models) {
				t.Errorf("Discover = %d %v, want %d %v", base, models, tt.base, tt.models)
			}
		})
	}
}

// with writes words at addr and returns d.
func with(d *device, addr int, words ...uint16) *device {
	d.put(addr, words...)
	return d
}

// tiny returns n vendor models of one register each.
func tiny(n int) [][]uint16 {
	ms := make([][]uint16, n)
	for i := range ms {
		ms[i] = []uint16{64000, 1, uint16(i)}
	}
	return ms
}

func tinyRefs(n int) []ModelRef {
	refs := make([]ModelRef, n)
	for i := range refs {
		refs[i] = ModelRef{ID: 64000, Addr: uint16(2 + 3*i), L: 1}
	}
	return refs
}

func TestDiscoverErrors(t *testing.T) {
	const illegal = "modbus: exception '2' (illegal data address)"
	tests := []struct {
		name    string
		read    func(addr, count uint16) ([]uint16, error)
		is      error
		models  []ModelRef
		wantErr string
	}{
		{
			name:    "nothing mapped",
			read:    newDevice().read,
			is:      ErrNoMarker,
			wantErr: `sunspec: no "SunS" marker at 40000, 0 or 50000; read 2 registers at 40000: ` + illegal + "; read 2 registers at 0: " + illegal + "; read 2 registers at 50000: " + illegal,
		},
		{
			name:    "readable, no marker",
			read:    with(with(with(newDevice(), 40000, 0, 0), 0, 0x5375, 0x6E52), 50000, 0x6E53, 0x5375).read,
			is:      ErrNoMarker,
			wantErr: `sunspec: no "SunS" marker at 40000, 0 or 50000`,
		},
		{
			name:    "short answer",
			read:    func(addr, count uint16) ([]uint16, error) { return []uint16{markerHi}, nil },
			is:      ErrNoMarker,
			wantErr: `sunspec: no "SunS" marker at 40000, 0 or 50000; read 2 registers at 40000: got 1; read 2 registers at 0: got 1; read 2 registers at 50000: got 1`,
		},
		{
			name:    "truncated chain",
			read:    with(newDevice(), 40000, append([]uint16{markerHi, markerLo}, chain(t)[0]...)...).read,
			models:  refsAt(40002)[:1],
			wantErr: "sunspec: model chain at base 40000: header 2: read 2 registers at 40070: " + illegal,
		},
		{
			name:    "model runs past 65535",
			read:    with(newDevice().sunspec(50000, chain(t)[:1]...), 50070, 802, 65536-50071).read,
			models:  refsAt(50002)[:1],
			wantErr: "sunspec: model chain at base 50000: model 802 at 50070 has L 15465, running past register 65535",
		},
		{
			name:    "more than MaxModels",
			read:    newDevice().sunspec(0, tiny(MaxModels+1)...).read,
			is:      ErrModelLimit,
			models:  tinyRefs(MaxModels),
			wantErr: "sunspec: model chain longer than the limit: more than 200 models after base 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, models, err := Discover(tt.read)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error = %v\nwant    %s", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error does not wrap %v", tt.is)
			}
			if fmt.Sprint(models) != fmt.Sprint(tt.models) {
				t.Errorf("models = %v, want %v", models, tt.models)
			}
		})
	}
}

// pointCase is one expected decoded value; absent values have NaN num.
type pointCase struct {
	name   string
	num    float64
	str    string
	raw    uint64
	scale  int
	offset uint16
}

func checkPoints(t *testing.T, g Group, want []pointCase) {
	t.Helper()
	for _, w := range want {
		v, ok := g.Points[w.name]
		if !ok {
			t.Errorf("%s: missing", w.name)
			continue
		}
		present := !math.IsNaN(w.num) || w.str != ""
		if v.Present != present || !sameFloat(v.Num, w.num) || v.Str != w.str || v.Scale != w.scale || v.Offset != w.offset ||
			(w.raw != 0 && v.Raw != w.raw) {
			t.Errorf("%s = %+v, want present %v num %v str %q scale %d offset %d raw %#x",
				w.name, v, present, w.num, w.str, w.scale, w.offset, w.raw)
		}
	}
}

// scaleIf returns the scale expected for a value: exp, or 0 for absent
// values, which are not scaled.
func scaleIf(v float64, exp int) int {
	if math.IsNaN(v) {
		return 0
	}
	return exp
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

var nan = math.NaN()

func TestDecodeCommon(t *testing.T) {
	regs := encode(t, 1, commonInst())
	m, err := Decode(1, regs)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 1 || m.L != 66 || m.Name != "common" || len(m.Groups) != 0 {
		t.Errorf("model = %d %d %q %v", m.ID, m.L, m.Name, m.Groups)
	}
	want := []pointCase{
		{name: "ID", num: 1, raw: 1},
		{name: "L", num: 66, offset: 1},
		{name: "Mn", num: nan, str: "cellwarden", offset: 2},
		{name: "Md", num: nan, str: "SIM-48V", offset: 18},
		{name: "Opt", num: nan, offset: 34}, // all zero: not implemented
		{name: "Vr", num: nan, str: "1.2.3", offset: 42},
		{name: "SN", num: nan, str: "CW-0001", offset: 50},
		{name: "DA", num: 1, offset: 66},
	}
	checkPoints(t, m.Group, want)
	if _, ok := m.Points["Pad"]; ok {
		t.Error("pad decoded as a point")
	}
	// Devices of the older common model leave out the pad: L 65.
	short := append([]uint16(nil), regs[:67]...)
	short[1] = 65
	m, err = Decode(1, short)
	if err != nil {
		t.Fatal(err)
	}
	want[1] = pointCase{name: "L", num: 65, offset: 1}
	checkPoints(t, m.Group, want)
}

func TestDecodeBattery(t *testing.T) {
	m, err := Decode(802, encode(t, 802, batteryInst()))
	if err != nil {
		t.Fatal(err)
	}
	checkPoints(t, m.Group, []pointCase{
		{name: "AHRtg", num: 280, offset: 2},
		{name: "WHRtg", num: 143360, raw: 14336, scale: 1, offset: 3},
		{name: "WChaRteMax", num: 7000, raw: 70, scale: 2, offset: 4},
		{name: "WDisChaRteMax", num: 7500, raw: 75, scale: 2, offset: 5},
		{name: "DisChaRte", num: nan, offset: 6}, // and its scale factor: not implemented
		{name: "SoC", num: 87.5, raw: 875, scale: -1, offset: 11},
		{name: "DoD", num: nan, raw: 120, offset: 12}, // raw present, DoD_SF not implemented
		{name: "SoH", num: nan, offset: 13},           // not implemented, SoH_SF is
		{name: "NCyc", num: 123456, raw: 123456, offset: 14},
		{name: "ChaSt", num: 4, offset: 16},
		{name: "Hb", num: nan, raw: 0xFFFF, offset: 18},
		{name: "WarrDt", num: 12676, offset: 24},
		{name: "Evt1", num: 1<<1 | 1<<20, offset: 26},
		{name: "Evt2", num: nan, raw: 0xFFFFFFFF, offset: 28},
		{name: "V", num: 51.2, raw: 512, scale: -1, offset: 34},
		{name: "CellVMax", num: 3.412, raw: 3412, scale: -3, offset: 37},
		{name: "CellVMin", num: 3.198, scale: -3, offset: 40},
		{name: "CellVAvg", num: 3.3, scale: -3, offset: 43},
		{name: "A", num: -12.5, raw: 0xFF83, scale: -1, offset: 44},
		{name: "AChaMax", num: nan, offset: 45},
		{name: "W", num: -640, raw: 0xFD80, offset: 47},
		{name: "ReqW", num: nan, raw: 0x8000, offset: 49},
		{name: "WHRtg_SF", num: 1, offset: 53},
		{name: "DoD_SF", num: nan, raw: 0x8000, offset: 57},
		{name: "V_SF", num: -1, raw: 0xFFFF, offset: 59},
	})
	for _, p := range []string{"WHRtg", "A", "V"} {
		if u := m.Points[p].Units; u != map[string]string{"WHRtg": "Wh", "A": "A", "V": "V"}[p] {
			t.Errorf("%s units = %q", p, u)
		}
	}
}

func TestDecodeScaleFactorOutOfRange(t *testing.T) {
	in := batteryInst()
	in.Raw["W_SF"] = 11 // sunssf allows -10..10
	in.Raw["V_SF"] = 0xFFF6
	m, err := Decode(802, encode(t, 802, in))
	if err != nil {
		t.Fatal(err)
	}
	if w, v := m.Points["W"], m.Points["V"]; w.Present || !math.IsNaN(w.Num) || !v.Present || v.Num != 512e-10 {
		t.Errorf("W = %+v (want absent), V = %+v (want 512e-10)", w, v)
	}
}

func TestDecodeString(t *testing.T) {
	m, err := Decode(804, encode(t, 804, stringInst(3, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if m.L != 46+32 {
		t.Errorf("L = %d", m.L)
	}
	checkPoints(t, m.Group, []pointCase{
		{name: "Idx", num: 3, offset: 2},
		{name: "NMod", num: 2, offset: 3},
		{name: "SoC", num: 87.5, scale: -1, offset: 8},
		{name: "SoH", num: 96, offset: 12},
		{name: "A", num: -12.5, scale: -1, offset: 13},
		{name: "V", num: 51.2, scale: -1, offset: 14},
		{name: "ModTmpMin", num: -2.5, raw: 0xFFE7, scale: -1, offset: 22},
	})
	mods := m.Groups["lithium_ion_string_module"]
	if len(mods) != 2 {
		t.Fatalf("%d modules, want 2", len(mods))
	}
	// Group points take their scale factors from the model's top group.
	checkPoints(t, mods[1], []pointCase{
		{name: "ModNCell", num: 16, offset: 48 + 16},
		{name: "ModSoC", num: nan, offset: 49 + 16},
		{name: "ModCellVMax", num: 3.312, scale: -3, offset: 51 + 16},
		{name: "ModCellTmpMin", num: -2.5, scale: -1, offset: 58 + 16},
	})
}

func TestDecodeBank(t *testing.T) {
	in := Instance{Values: map[string]float64{"NStrCon": 2, "ModTmpMax": 31.5, "ModTmpMin": 18, "CellV_SF": -3, "ModTmp_SF": -1, "A_SF": -1, "SoC_SF": 0},
		Groups: map[string][]Instance{"string": {
			{Values: map[string]float64{"StrNMod": 8, "StrSt": 3, "StrSoC": 88, "StrA": -6.2, "StrCellVMax": 3.41}},
			{Values: map[string]float64{"StrNMod": 8, "StrSt": 1, "StrSoC": 87, "StrA": -6.3, "StrCellVMax": 3.405}},
		}}}
	m, err := Decode(803, encode(t, 803, in))
	if err != nil {
		t.Fatal(err)
	}
	strs := m.Groups["string"]
	if len(strs) != 2 || m.L != 26+64 || m.Points["NStr"].Num != 2 {
		t.Fatalf("%d strings, L %d, NStr %v", len(strs), m.L, m.Points["NStr"])
	}
	checkPoints(t, strs[1], []pointCase{
		{name: "StrSoC", num: 87, offset: 28 + 32 + 4},
		{name: "StrSoH", num: nan, offset: 28 + 32 + 5}, // SoH_SF not implemented either
		{name: "StrA", num: -6.3, scale: -1, offset: 28 + 32 + 6},
		{name: "StrCellVMax", num: 3.405, scale: -3, offset: 28 + 32 + 7},
	})
}

func TestDecodeModule(t *testing.T) {
	tests := []struct {
		name  string
		cells int
		extra int // registers appended after the last cell, L adjusted
	}{
		{name: "16 cells", cells: 16},
		{name: "256 cells", cells: 256},
		{name: "no cells", cells: 0},
		{name: "16 cells and a partial repeat", cells: 16, extra: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regs := encode(t, 805, moduleInst(2, 7, tt.cells))
			for range tt.extra {
				regs = append(regs, 0)
			}
			regs[1] = uint16(len(regs) - 2)
			m, err := Decode(805, regs)
			if err != nil {
				t.Fatal(err)
			}
			cells := m.Groups[cellGroup]
			if len(cells) != tt.cells || int(m.L) != 42+4*tt.cells+tt.extra {
				t.Fatalf("%d cells with L %d, want %d", len(cells), m.L, tt.cells)
			}
			checkPoints(t, m.Group, []pointCase{
				{name: "StrIdx", num: 2, offset: 2},
				{name: "ModIdx", num: 7, offset: 3},
				{name: "NCyc", num: 70000, offset: 8},
				{name: "CellTmpMin", num: -5.5, scale: -1, offset: 18},
				{name: "SN", num: nan, str: "MOD-07", offset: 22},
			})
			for k := 1; k <= tt.cells; k++ {
				v, tmp := 3.3+float64(k)/1000, 20+float64(k)/2
				switch k {
				case 3:
					tmp = -5.5
				case 9:
					v = nan
				case 12:
					tmp = nan
				}
				off := uint16(44 + 4*(k-1))
				checkPoints(t, cells[k-1], []pointCase{
					{name: "CellV", num: math.Round(v*1000) / 1000, scale: scaleIf(v, -3), offset: off},
					{name: "CellTmp", num: tmp, scale: scaleIf(tmp, -1), offset: off + 1},
					{name: "CellSt", num: float64(k % 2), offset: off + 2},
				})
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	battery := encode(t, 802, batteryInst())
	shortBattery := append([]uint16(nil), battery[:12]...)
	shortBattery[1] = 10
	tests := []struct {
		name    string
		id      uint16
		regs    []uint16
		wantErr string
	}{
		{name: "unknown model", id: 64001, regs: []uint16{64001, 2, 0, 0}, wantErr: "sunspec: model 64001 is not supported (known: 1, 802, 803, 804, 805)"},
		{name: "unknown model 801", id: 801, regs: battery, wantErr: "sunspec: model 801 is not supported (known: 1, 802, 803, 804, 805)"},
		{name: "no registers", id: 805, regs: nil, wantErr: "sunspec: model 805: 0 registers, the header alone needs 2"},
		{name: "other model's registers", id: 804, regs: battery, wantErr: "sunspec: model 804: the ID register holds 802"},
		{name: "registers shorter than L", id: 802, regs: battery[:40], wantErr: "sunspec: model 802: L is 62 but only 38 registers follow the header"},
		{name: "L too short for the model", id: 802, regs: shortBattery, wantErr: "sunspec: model 802: L 10 is too short: point DoD at offset 12 runs past the model's end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.id, tt.regs)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error = %v\nwant    %s", err, tt.wantErr)
			}
		})
	}
}

// lenientCases are a string model with 2 modules whose NMod says 3, and one
// whose NMod is not implemented.
func lenientCases(t *testing.T) (tooMany, noCount []uint16) {
	str := encode(t, 804, stringInst(1, 2))
	tooMany = append([]uint16(nil), str...)
	tooMany[3] = 3
	noCount = append([]uint16(nil), str...)
	noCount[3] = 0xFFFF
	return tooMany, noCount
}

// A count that disagrees with the model's length costs only what is not
// there: the string's own readings survive, with the modules that really
// follow (none when the count is not implemented).
func TestDecodeIsLenientWithCounts(t *testing.T) {
	tooMany, noCount := lenientCases(t)
	tests := []struct {
		name    string
		regs    []uint16
		modules int
	}{
		{"count beyond L", tooMany, 2},
		{"count not implemented", noCount, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(ModelLithiumIonString, tt.regs)
			if err != nil {
				t.Fatal(err)
			}
			if a := m.Group.Points["A"]; !a.Present {
				t.Errorf("string current lost: %+v", a)
			}
			if n := len(m.Group.Groups["lithium_ion_string_module"]); n != tt.modules {
				t.Errorf("%d modules decoded, want %d", n, tt.modules)
			}
		})
	}
}

// decodeAll discovers and decodes every known model of d.
func decodeAll(t testing.TB, d *device) []Model {
	t.Helper()
	_, refs, err := Discover(d.read)
	if err != nil {
		t.Fatal(err)
	}
	var models []Model
	for _, r := range refs {
		regs, err := d.read(r.Addr, 2+r.L)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Decode(r.ID, regs)
		if err != nil {
			t.Fatal(err)
		}
		m.Addr = r.Addr
		models = append(models, m)
	}
	return models
}

func TestReadings(t *testing.T) {
	d := newDevice().sunspec(40000,
		encode(t, 1, commonInst()),
		encode(t, 802, batteryInst()),
		encode(t, 804, stringInst(2, 1)),
		encode(t, 805, moduleInst(2, 5, 3)),
		encode(t, 805, moduleInst(2, 6, 1)),
	)
	models := decodeAll(t, d)
	got, warranty, ok := Readings(models)
	// Addresses: 1 at 40002 (68 registers), 802 at 40070 (64), 804 at
	// 40134 (64), 805 at 40198 (56), 805 at 40254.
	r := func(metric telemetry.Metric, str, mod, cell string, v float64, point string, addr uint16) Reading {
		return Reading{Reading: modbus.Reading{Metric: metric, Module: mod, Cell: cell, Value: v, Point: point, Addr: addr}, String: str}
	}
	want := []Reading{
		r(telemetry.StringVoltageVolts, "2", "", "", 51.2, "804.V", 40134+14),
		r(telemetry.StringCurrentAmperes, "2", "", "", 12.5, "804.A", 40134+13), // SunSpec -12.5 A: charging
		r(telemetry.StringSOCRatio, "2", "", "", 0.875, "804.SoC", 40134+8),
		r(telemetry.StringSOHRatio, "2", "", "", 0.96, "804.SoH", 40134+12),
		r(telemetry.CellVoltageVolts, "2", "5", "1", 3.301, "805.CellV", 40198+44),
		r(telemetry.CellTemperatureCelsius, "2", "5", "1", 20.5, "805.CellTmp", 40198+45),
		r(telemetry.CellVoltageVolts, "2", "5", "2", 3.302, "805.CellV", 40198+48),
		r(telemetry.CellTemperatureCelsius, "2", "5", "2", 21, "805.CellTmp", 40198+49),
		r(telemetry.CellVoltageVolts, "2", "5", "3", 3.303, "805.CellV", 40198+52),
		r(telemetry.CellTemperatureCelsius, "2", "5", "3", -5.5, "805.CellTmp", 40198+53),
		r(telemetry.CellVoltageVolts, "2", "6", "1", 3.301, "805.CellV", 40254+44),
		r(telemetry.CellTemperatureCelsius, "2", "6", "1", 20.5, "805.CellTmp", 40254+45),
	}
	checkReadings(t, got, want)
	if !ok || !warranty.Equal(time.Date(2034, 9, 15, 0, 0, 0, 0, time.UTC)) || warranty.Location() != time.UTC {
		t.Errorf("warranty = %v %v, want 2034-09-15 UTC", warranty, ok)
	}
}

func TestReadingsAbsent(t *testing.T) {
	str := stringInst(0, 0)
	delete(str.Values, "Idx")
	delete(str.Values, "V")
	delete(str.Values, "SoH_SF")
	str.Raw = map[string]uint64{"SoH": 96} // without its scale factor
	str.Values["A"] = 0
	mod := moduleInst(0, 0, 12)
	delete(mod.Values, "StrIdx")
	delete(mod.Values, "ModIdx")
	var models []Model
	for _, regs := range [][]uint16{encode(t, 804, str), encode(t, 805, mod)} {
		m, err := Decode(regs[0], regs)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	got, _, ok := Readings(models)
	if ok {
		t.Error("warranty without model 802")
	}
	if len(got) != 4+2*12 {
		t.Fatalf("%d readings, want %d", len(got), 4+2*12)
	}
	// Without StrIdx and ModIdx, String and Module are empty.
	r := func(metric telemetry.Metric, cell string, v float64, point string, addr uint16) Reading {
		return Reading{Reading: modbus.Reading{Metric: metric, Cell: cell, Value: v, Point: point, Addr: addr}}
	}
	checkReadings(t, got[:4], []Reading{
		r(telemetry.StringVoltageVolts, "", nan, "804.V", 14),
		r(telemetry.StringCurrentAmperes, "", 0, "804.A", 13),
		r(telemetry.StringSOCRatio, "", 0.875, "804.SoC", 8),
		r(telemetry.StringSOHRatio, "", nan, "804.SoH", 12),
	})
	if math.Signbit(got[1].Value) {
		t.Error("0 A became -0")
	}
	checkReadings(t, got[4+2*8:4+2*9], []Reading{
		r(telemetry.CellVoltageVolts, "9", nan, "805.CellV", 44+4*8),
		r(telemetry.CellTemperatureCelsius, "9", 24.5, "805.CellTmp", 45+4*8),
	})
	checkReadings(t, got[4+2*11:], []Reading{
		r(telemetry.CellVoltageVolts, "12", 3.312, "805.CellV", 44+4*11),
		r(telemetry.CellTemperatureCelsius, "12", nan, "805.CellTmp", 45+4*11),
	})
}

func checkReadings(t *testing.T, got, want []Reading) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d readings, want %d:\n%v", len(got), len(want), got)
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		gv, wv := g.Value, w.Value
		g.Value, w.Value = 0, 0
		if g != w || !sameFloat(gv, wv) {
			t.Errorf("reading %d = %+v %v, want %+v %v", i, g, gv, w, wv)
		}
	}
}

func TestWarranty(t *testing.T) {
	tests := []struct {
		name   string
		warrDt uint64 // raw; 0xFFFFFFFF: not implemented
		want   time.Time
		ok     bool
	}{
		{name: "day 0", warrDt: 0, want: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), ok: true},
		{name: "after the leap year 2000", warrDt: 366, want: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), ok: true},
		{name: "2034-09-15", warrDt: 12676, want: time.Date(2034, 9, 15, 0, 0, 0, 0, time.UTC), ok: true},
		{name: "largest", warrDt: 0xFFFFFFFE, want: time.Unix(946684800+0xFFFFFFFE*86400, 0).UTC(), ok: true},
		{name: "not implemented", warrDt: 0xFFFFFFFF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := batteryInst()
			in.Raw["WarrDt"] = tt.warrDt
			m, err := Decode(802, encode(t, 802, in))
			if err != nil {
				t.Fatal(err)
			}
			// The first 802 implementing WarrDt wins; one that does not is
			// skipped.
			later, err := Decode(802, encode(t, 802, batteryInst()))
			if err != nil {
				t.Fatal(err)
			}
			want, wantOK := tt.want, tt.ok
			if !wantOK {
				want, wantOK = time.Date(2034, 9, 15, 0, 0, 0, 0, time.UTC), true
			}
			got, ok := warrantyOf(t, m, later)
			if ok != wantOK || !got.Equal(want) {
				t.Errorf("warranty = %v %v, want %v %v", got, ok, want, wantOK)
			}
			got, ok = warrantyOf(t, m)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("alone: warranty = %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func warrantyOf(t *testing.T, models ...Model) (time.Time, bool) {
	t.Helper()
	readings, w, ok := Readings(models)
	if len(readings) != 0 {
		t.Errorf("readings from model 802: %v", readings)
	}
	return w, ok
}

func FuzzDecode(f *testing.F) {
	ids := []uint16{1, 802, 803, 804, 805}
	seeds := [][]uint16{
		encode(f, 1, commonInst()),
		encode(f, 802, batteryInst()),
		encode(f, 803, Instance{Values: map[string]float64{"CellV_SF": -3, "ModTmp_SF": -1, "A_SF": -1, "SoC_SF": 0},
			Groups: map[string][]Instance{"string": {{Values: map[string]float64{"StrSoC": 50}}}}}),
		encode(f, 804, stringInst(1, 2)),
		encode(f, 805, moduleInst(1, 1, 16)),
	}
	for i, s := range seeds {
		b := make([]byte, 0, 2*len(s))
		for _, w := range s {
			b = append(b, byte(w>>8), byte(w))
		}
		f.Add(uint8(i), b)
		f.Add(uint8(i)|0x80, b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		id := ids[int(which&0x7F)%len(ids)]
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		if len(regs) > 0 {
			regs[0] = id
		}
		if which&0x80 != 0 && len(regs) >= 2 && int(regs[1]) > len(regs)-2 {
			// Keep L consistent so decoding gets past the length check.
			regs[1] = uint16(len(regs) - 2)
		}
		m, err := Decode(id, regs)
		if err != nil {
			return
		}
		var check func(g Group)
		check = func(g Group) {
			for name, v := range g.Points {
				if v.Present == math.IsNaN(v.Num) && v.Type != "string" {
					t.Fatalf("%s: present %v with num %v", name, v.Present, v.Num)
				}
				if int(v.Offset) >= len(regs) {
					t.Fatalf("%s: offset %d beyond %d registers", name, v.Offset, len(regs))
				}
			}
			for _, insts := range g.Groups {
				for _, in := range insts {
					check(in)
				}
			}
		}
		check(m.Group)
		Readings([]Model{m})
	})
}

func BenchmarkDecodeModule256(b *testing.B) {
	regs := encode(b, 805, moduleInst(1, 1, 256))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(805, regs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadingsModule256(b *testing.B) {
	m, err := Decode(805, encode(b, 805, moduleInst(1, 1, 256)))
	if err != nil {
		b.Fatal(err)
	}
	models := []Model{m}
	b.ReportAllocs()
	for b.Loop() {
		Readings(models)
	}
}

func TestParseModelErrors(t *testing.T) {
	const header = `{"name": "ID", "type": "uint16", "size": 1}, {"name": "L", "type": "uint16", "size": 1}`
	model := func(points, groups string) string {
		return `{"id": 64100, "group": {"name": "m", "type": "group", "points": [` + header + points + `], "groups": [` + groups + `]}}`
	}
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "not json", json: `{`, wantErr: "unexpected end of JSON input"},
		{name: "id out of range", json: `{"id": 65535, "group": {"name": "m", "type": "group"}}`, wantErr: "model id 65535 out of range"},
		{name: "no header", json: `{"id": 64100, "group": {"name": "m", "type": "group"}}`, wantErr: "model 64100: the first points must be ID and L"},
		{name: "repeating top group", json: `{"id": 64100, "group": {"name": "m", "type": "group", "count": 2}}`, wantErr: "group m: the model's top group cannot repeat"},
		{name: "unsupported type", json: model(`, {"name": "IP", "type": "ipv6addr", "size": 8}`, ""), wantErr: `group m: point IP: type "ipv6addr" is not supported`},
		{name: "wrong size", json: model(`, {"name": "X", "type": "uint32", "size": 1}`, ""), wantErr: "group m: point X: type uint32 has size 2, not 1"},
		{name: "empty string", json: model(`, {"name": "S", "type": "string", "size": 0}`, ""), wantErr: "group m: point S: string size 0"},
		{name: "point count", json: model(`, {"name": "X", "type": "uint16", "size": 1, "count": 2}`, ""), wantErr: "group m: point X: count 2 is not supported"},
		{name: "bad sf", json: model(`, {"name": "X", "type": "uint16", "size": 1, "sf": true}`, ""), wantErr: "group m: point X: sf true is neither a number nor a point name"},
		{name: "bad count", json: model("", `{"name": "g", "type": "group", "count": 1.5}`), wantErr: "group m: group g: count 1.5 is neither a number nor a point name"},
		{name: "negative count", json: model("", `{"name": "g", "type": "group", "count": -1}`), wantErr: "group m: group g: negative count -1"},
		{
			name:    "count 0 not last",
			json:    model("", `{"name": "g", "type": "group", "count": 0}, {"name": "h", "type": "group"}`),
			wantErr: "group m: group g: count 0 (derived from L) is only supported for the model's last group",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseModel([]byte(tt.json))
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error = %v\nwant    %s", err, tt.wantErr)
			}
		})
	}
}

// TestConstantScaleFactor decodes a definition whose sf is a number (the
// schema allows it; the battery models only use names).
func TestConstantScaleFactor(t *testing.T) {
	def, err := parseModel([]byte(`{"id": 64100, "group": {"name": "m", "type": "group", "points": [
		{"name": "ID", "type": "uint16", "size": 1}, {"name": "L", "type": "uint16", "size": 1},
		{"name": "T", "type": "int32", "size": 2, "sf": -2}, {"name": "U", "type": "uint16", "size": 1, "sf": "3"},
		{"name": "F", "type": "float32", "size": 2}, {"name": "E", "type": "acc32", "size": 2}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := decoder{id: 64100, regs: []uint16{64100, 7, 0xFFFF, 0xFF38, 7, 0x7FC0, 0, 0, 0}}
	g, off, err := d.group(&def.group, 0, nil)
	if err != nil || off != 9 {
		t.Fatal(off, err)
	}
	checkPoints(t, g, []pointCase{
		{name: "T", num: -2, raw: 0xFFFFFF38, scale: -2, offset: 2},
		{name: "U", num: 7000, scale: 3, offset: 4},
		{name: "F", num: nan, offset: 5}, // NaN: not implemented
		{name: "E", num: nan, offset: 7}, // accumulators: 0 is not implemented
	})
}

// A module that says it has 2 cells yields 2 cells, even when its model is
// long enough for 4: no phantom cells.
func TestModuleCellsCappedByNCell(t *testing.T) {
	regs := encode(t, 805, moduleInst(1, 1, 4))
	regs[4] = 2 // NCell
	m, err := Decode(ModelLithiumIonModule, regs)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Group.Groups["lithium-ion-module-cell"]); n != 2 {
		t.Errorf("%d cells decoded, want the 2 NCell announces", n)
	}
}
