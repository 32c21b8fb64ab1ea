package e2e

import (
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/collector/modbus"
)

// sunspecImage lays out, by hand from the SunSpec point table of model 805
// (shared/data/sunspec/derived/dump_805.txt), a device with one lithium-ion
// module: string 2, module 3, four cells.
func sunspecImage() []uint16 {
	const na = 0xFFFF
	m := []uint16{805, 58, // ID, L = 42 + 4 cells x 4 registers
		2, 3, 4, // StrIdx, ModIdx, NCell
		na, na, na, // SoC, DoD, SoH: not implemented
		na, na, // NCyc (uint32): not implemented
		1650,    // V, V_SF -2: 16.50 V
		4103, 4, // CellVMax (CellV_SF -3), its cell
		4100, 1, // CellVMin, its cell
		4101,   // CellVAvg
		254, 4, // CellTmpMax (Tmp_SF -1), its cell
		251, 1, // CellTmpMin, its cell
		252, // CellTmpAvg
		na,  // NCellBal
	}
	m = append(m, make([]uint16, 16)...)                          // SN: empty
	m = append(m, 0x8000, 0x8000, 0x8000, 0xFFFE, 0xFFFD, 0xFFFF) // SoC_SF, SoH_SF, DoD_SF (n/a), V_SF -2, CellV_SF -3, Tmp_SF -1
	for i := uint16(0); i < 4; i++ {
		m = append(m, 4100+i, 251+i, 0, 0) // CellV, CellTmp, CellSt (bitfield32)
	}
	img := append([]uint16{0x5375, 0x6E53}, m...) // "SunS"
	return append(img, 0xFFFF, 0)                 // end of the model chain
}

func TestModbusReadSunSpec(t *testing.T) {
	bank := modbus.NewBank(false)
	bank.Set(1, 40000, sunspecImage())
	addr := serveModbus(t, bank)
	r := cellwarden(t, nil, "modbus", "read", "--address", addr, "--profile", "sunspec", "--ups", "ups-s", "--device", "1", "--polls", "1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		",ups-s,2,3,1,cell_voltage_volts,4.1",
		",ups-s,2,3,4,cell_voltage_volts,4.103",
		",ups-s,2,3,1,cell_temperature_celsius,25.1",
		",ups-s,2,3,4,cell_temperature_celsius,25.4",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if reads, writes := bank.Requests(); writes != 0 || len(reads) != 1 || reads[3] == 0 {
		t.Errorf("requests: reads %v, writes %d: want holding-register reads only", reads, writes)
	}
}
