package sunspec

import (
	"errors"
	"testing"
)

// FuzzDiscover walks arbitrary register images: the walk must end (no
// loop, no more than MaxModels models), never panic, return models that lie
// inside the address space, and follow the chain a model's length gives.
func FuzzDiscover(f *testing.F) {
	// A marker at 40000 and a small chain: 1 (L 66), 802 (L 4), end.
	seed := []byte{0x53, 0x75, 0x6E, 0x53, 0, 1, 0, 66}
	f.Add(uint16(40000), seed)
	f.Add(uint16(0), []byte{0x53, 0x75, 0x6E, 0x53, 0xFF, 0xFF, 0, 0})
	f.Add(uint16(50000), []byte{0x53, 0x75, 0x6E, 0x53, 0x03, 0x22, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, at uint16, data []byte) {
		// The image: data's words from register at, and 0 elsewhere,
		// except that reads beyond the image fail as a device would.
		regs := make(map[int]uint16, len(data)/2)
		for i := 0; 2*i+1 < len(data); i++ {
			regs[int(at)+i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		reads := 0
		read := func(addr, count uint16) ([]uint16, error) {
			reads++
			if reads > 10*MaxModels {
				t.Fatalf("Discover read %d times: the walk does not end", reads)
			}
			out := make([]uint16, count)
			for i := range out {
				v, ok := regs[int(addr)+i]
				if !ok {
					return nil, errors.New("illegal data address")
				}
				out[i] = v
			}
			return out, nil
		}
		_, models, _ := Discover(read)
		if len(models) > MaxModels {
			t.Fatalf("%d models, more than MaxModels", len(models))
		}
		for i, m := range models {
			if int(m.Addr)+2+int(m.L) > 65536 {
				t.Errorf("model %d at %d with L %d reaches past register 65535", m.ID, m.Addr, m.L)
			}
			if i > 0 && int(m.Addr) != int(models[i-1].Addr)+2+int(models[i-1].L) {
				t.Errorf("model %d at %d does not follow model %d at %d (L %d)", m.ID, m.Addr, models[i-1].ID, models[i-1].Addr, models[i-1].L)
			}
		}
	})
}
