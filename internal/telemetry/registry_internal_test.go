package telemetry

import (
	"fmt"
	"slices"
	"testing"
)

// upsWithSlot returns n UPSs, not among skip, whose hash picks slot i of a
// table of size slots in r.
func upsWithSlot(r *Registry, slots, i, n int, skip []Entity) []Entity {
	var out []Entity
	for k := 0; len(out) < n; k++ {
		e := Entity{UPS: fmt.Sprintf("u%d", k)}
		if int(r.hash(e)&uint64(slots-1)) == i && !slices.Contains(skip, e) {
			out = append(out, e)
		}
	}
	return out
}

// Entities whose hashes pick the same slot take the next free ones, the
// probe wrapping around the table's end; each is found again, and an
// entity never interned is not, whether its slot starts the cluster or
// lies within it. After the table grows every entity is found again.
func TestRegistryProbesPastCollisions(t *testing.T) {
	r := NewRegistry()
	if len(r.slots) != minSlots {
		t.Fatalf("a new registry has %d slots, want %d", len(r.slots), minSlots)
	}
	// Four UPSs picking the last slot, a fifth never interned.
	last := upsWithSlot(r, minSlots, minSlots-1, 5, nil)
	absent := last[4]
	for i, e := range last[:4] {
		if id, err := r.Intern(e); err != nil || id != EntityID(i+1) {
			t.Fatalf("Intern(%v) = %d, %v; want %d", e, id, err, i+1)
		}
	}
	want := make([]EntityID, minSlots)
	want[minSlots-1], want[0], want[1], want[2] = 1, 2, 3, 4
	if !slices.Equal(r.slots, want) {
		t.Fatalf("slots %v, want %v", r.slots, want)
	}
	// A UPS picking slot 1, inside the cluster: absent, then interned
	// past its end.
	inside := upsWithSlot(r, minSlots, 1, 1, nil)[0]
	for _, e := range []Entity{absent, inside} {
		if id, ok := r.Lookup(e); ok {
			t.Errorf("Lookup(%v) = %d, found; it was never interned", e, id)
		}
	}
	if id, err := r.Intern(inside); err != nil || id != 5 || r.slots[3] != 5 {
		t.Fatalf("Intern(%v) = %d, %v, slot 3 holds %d; want 5 there", inside, id, err, r.slots[3])
	}
	interned := append(last[:4:4], inside)
	for i, e := range interned {
		if id, ok := r.Lookup(e); !ok || id != EntityID(i+1) {
			t.Errorf("Lookup(%v) = %d, %v; want %d", e, id, ok, i+1)
		}
	}
	// More UPSs, all picking slot 0 of the first table, until it has
	// doubled twice.
	interned = append(interned, upsWithSlot(r, minSlots, 0, 39, interned)...)
	for i, e := range interned[5:] {
		if id, err := r.Intern(e); err != nil || id != EntityID(i+6) {
			t.Fatalf("Intern(%v) = %d, %v; want %d", e, id, err, i+6)
		}
	}
	if len(r.slots) != 4*minSlots {
		t.Fatalf("%d slots for %d entities, want %d", len(r.slots), r.Len(), 4*minSlots)
	}
	for i, e := range interned {
		if id, ok := r.Lookup(e); !ok || id != EntityID(i+1) || r.Info(id).Entity != e {
			t.Errorf("after growing: Lookup(%v) = %d, %v; want %d", e, id, ok, i+1)
		}
	}
	if id, ok := r.Lookup(absent); ok {
		t.Errorf("after growing: Lookup(%v) = %d, found; it was never interned", absent, id)
	}
}

// The table doubles when it would be more than 0.7 full, and only then.
func TestRegistryTableLoad(t *testing.T) {
	r := NewRegistry()
	for i := range 1000 {
		if _, err := r.Intern(Entity{UPS: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
		if n := len(r.slots); 10*r.Len() > 7*n || (n > minSlots && 10*r.Len() <= 7*n/2) {
			t.Fatalf("%d entities in %d slots", r.Len(), n)
		}
	}
}
