package modbus

import "testing"

// A register image that runs past register 65535 is cut there: it must not
// wrap around and overwrite the device's low registers.
func TestBankSetDoesNotWrap(t *testing.T) {
	b := NewBank(false)
	b.Set(1, 0, []uint16{7, 7})
	if b.Set(1, 65534, []uint16{1, 2, 3, 4}) {
		t.Error("Set reported that four words fit from register 65534")
	}
	regs := b.units[1]
	if regs[65534] != 1 || regs[65535] != 2 {
		t.Errorf("registers 65534-65535 = %d %d, want 1 2", regs[65534], regs[65535])
	}
	if regs[0] != 7 || regs[1] != 7 {
		t.Errorf("registers 0-1 = %d %d: the image wrapped around", regs[0], regs[1])
	}
	if !b.Set(1, 65535, []uint16{9}) {
		t.Error("Set refused one word at register 65535")
	}
}
