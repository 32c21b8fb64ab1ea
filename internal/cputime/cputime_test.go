package cputime

import "testing"

// Work done on the CPU shows as CPU time, and the clock never runs back.
func TestProcessCountsWork(t *testing.T) {
	before := Process()
	x := 0.0
	for i := range 50_000_000 {
		x += float64(i % 7)
	}
	after := Process()
	if x == 0 || after <= before {
		t.Fatalf("CPU time went from %s to %s over a busy loop", before, after)
	}
}
