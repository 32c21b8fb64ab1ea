package modbus

import (
	"os"
	"testing"
)

// FuzzParseMap feeds arbitrary register-map files: ParseMap reports
// problems and never panics, and a map it accepts plans reads of at most
// MaxBlock registers and decodes any register contents without panicking.
func FuzzParseMap(f *testing.F) {
	for _, name := range []string{"profiles/soltaro_single_rack_vc.yaml", "profiles/pylontech_powercube_m2.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint16(7))
	}
	f.Add([]byte("points:\n  - {name: v, address: 65535, type: uint32, metric: string_voltage_volts}\n"), uint16(1))
	f.Add([]byte("name: d\npoints:\n  - {name: w, address: 7, type: uint32, date: warranty_until, date_format: yyyymmdd}\n"+
		"  - {name: m, address: 9, type: uint16, date: manufactured, date_format: yymmdd, sentinels: [65535]}\n"), uint16(0x0133))
	f.Fuzz(func(t *testing.T, data []byte, fill uint16) {
		m, err := ParseMap(data, "fuzz.yaml")
		if err != nil {
			return
		}
		regs := Registers{}
		for _, b := range m.Plan(8) {
			if b.Count == 0 || b.Count > MaxBlock {
				t.Fatalf("planned block %+v: want 1..%d registers", b, MaxBlock)
			}
			if int(b.Start)+int(b.Count) > 65536 {
				t.Fatalf("planned block %+v reaches past register 65535", b)
			}
			for i := 0; i < int(b.Count); i++ {
				regs[b.Start+uint16(i)] = fill + uint16(i)
			}
		}
		m.Decode(regs)
		m.Decode(Registers{})
	})
}
