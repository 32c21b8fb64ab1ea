package telemetry

import (
	"hash/maphash"
	"testing"
)

// Two entities whose hashes collide both keep their own IDs: the second
// one goes to the collision table, and each is found again, with its
// ancestors.
func TestRegistryHashCollision(t *testing.T) {
	r := NewRegistry()
	a := Entity{UPS: "ups-a", String: "1", Module: "1", Cell: "1"}
	b := Entity{UPS: "ups-b", String: "2", Module: "3", Cell: "4"}
	idA, err := r.Intern(a)
	if err != nil {
		t.Fatal(err)
	}
	// Make b's hash point at a, as a collision would.
	r.ids[maphash.Comparable(r.seed, b)] = idA
	idB, err := r.Intern(b)
	if err != nil {
		t.Fatal(err)
	}
	if idB == idA || len(r.more) != 1 {
		t.Fatalf("b got ID %d (a has %d), %d entities in the collision table; want its own ID there", idB, idA, len(r.more))
	}
	for e, want := range map[Entity]EntityID{a: idA, b: idB} {
		if got, ok := r.Lookup(e); !ok || got != want {
			t.Errorf("Lookup(%v) = %d, %v; want %d", e, got, ok, want)
		}
		if got := r.Info(want).Entity; got != e {
			t.Errorf("Info(%d) = %v, want %v", want, got, e)
		}
		if again, _ := r.Intern(e); again != want {
			t.Errorf("Intern(%v) again = %d, want %d", e, again, want)
		}
	}
	if _, ok := r.Lookup(Entity{UPS: "ups-b", String: "2", Module: "3", Cell: "5"}); ok {
		t.Error("Lookup found an entity never interned")
	}
	if r.Len() != 8 {
		t.Errorf("%d entities, want 8 (two cells and their ancestors)", r.Len())
	}
}
