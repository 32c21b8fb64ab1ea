package telemetry

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"
)

// fleetCells returns n cells laid out as the daemon's benchmarks lay out a
// fleet: 16 cells a module, 16 modules a string, 4 strings a UPS.
func fleetCells(n int) []Entity {
	cells := make([]Entity, n)
	for i := range cells {
		mod := i / 16
		cells[i] = Entity{
			UPS:    fmt.Sprintf("u%d", mod/64),
			String: fmt.Sprint(mod/16%4 + 1),
			Module: fmt.Sprint(mod%16 + 1),
			Cell:   fmt.Sprint(i%16 + 1),
		}
	}
	return cells
}

// heapAlloc returns the bytes of live heap after a collection.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRegistryMemory interns a fleet of 100 k cells (about 107 k
// entities with their ancestors) into a fresh registry per iteration and
// reports the live heap the registry holds per entity (B/entity), and the
// part of it that is the index rather than the nodes (index-B/entity).
// The entities' strings are the caller's and not counted.
//
//	go test -run '^$' -bench RegistryMemory -benchtime 5x ./internal/telemetry
func BenchmarkRegistryMemory(b *testing.B) {
	cells := fleetCells(100_000)
	var total, index, entities float64
	for b.Loop() {
		b.StopTimer()
		before := heapAlloc()
		b.StartTimer()
		r := NewRegistry()
		for _, e := range cells {
			if _, err := r.Intern(e); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		heap := float64(heapAlloc() - before)
		nodes := float64(uintptr(cap(r.nodes)) * unsafe.Sizeof(node{}))
		entities = float64(r.Len())
		total += heap / entities
		index += (heap - nodes) / entities
		runtime.KeepAlive(r)
		b.StartTimer()
	}
	b.ReportMetric(total/float64(b.N), "B/entity")
	b.ReportMetric(index/float64(b.N), "index-B/entity")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entities, "ns/entity")
}

// BenchmarkRegistryLookup finds known entities of fleets of 20 k cells
// (the table about 0.66 full) and 100 k cells (0.41), in a shuffled order
// and through copies of their strings (as a collector holds them), by
// Lookup and by Intern.
//
//	go test -run '^$' -bench RegistryLookup ./internal/telemetry
func BenchmarkRegistryLookup(b *testing.B) {
	for _, n := range []int{20_000, 100_000} {
		cells := fleetCells(n)
		r := NewRegistry()
		for _, e := range cells {
			if _, err := r.Intern(e); err != nil {
				b.Fatal(err)
			}
		}
		queries := make([]Entity, len(cells))
		for i, j := range rand.New(rand.NewPCG(1, 2)).Perm(len(cells)) {
			e := cells[j]
			queries[i] = Entity{UPS: string([]byte(e.UPS)), String: string([]byte(e.String)),
				Module: string([]byte(e.Module)), Cell: string([]byte(e.Cell))}
		}
		b.Run(fmt.Sprintf("cells=%d/Lookup", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := r.Lookup(queries[i%len(queries)]); !ok {
					b.Fatal("not found")
				}
			}
		})
		b.Run(fmt.Sprintf("cells=%d/Intern", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := r.Intern(queries[i%len(queries)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
