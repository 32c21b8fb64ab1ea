package telemetry_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// catalogue is the metric table of shared/spec/interfaces.md §1. Ratios
// have no display unit.
var catalogue = []struct {
	name  string
	level telemetry.Level
	unit  string
}{
	{"cell_voltage_volts", telemetry.LevelCell, "V"},
	{"cell_temperature_celsius", telemetry.LevelCell, "°C"},
	{"module_temperature_celsius", telemetry.LevelModule, "°C"},
	{"string_voltage_volts", telemetry.LevelString, "V"},
	{"string_current_amperes", telemetry.LevelString, "A"},
	{"string_soc_ratio", telemetry.LevelString, ""},
	{"string_soh_ratio", telemetry.LevelString, ""},
	{"ambient_temperature_celsius", telemetry.LevelUPS, "°C"},
}

func TestParseMetricCatalogue(t *testing.T) {
	for _, tt := range catalogue {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := telemetry.ParseMetric(tt.name)
			if !ok {
				t.Fatalf("ParseMetric(%q) not found", tt.name)
			}
			if !m.Valid() {
				t.Errorf("ParseMetric(%q) = %d, not Valid", tt.name, m)
			}
			if got := m.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := m.Level(); got != tt.level {
				t.Errorf("Level() = %v, want %v", got, tt.level)
			}
			if got := m.Unit(); got != tt.unit {
				t.Errorf("Unit() = %q, want %q", got, tt.unit)
			}
		})
	}
}

// TestMetricsIsTheCatalogue checks that Metrics lists exactly the spec's
// catalogue, in its order, so that per-metric tables cover every name.
func TestMetricsIsTheCatalogue(t *testing.T) {
	var got, want []string
	for _, m := range telemetry.Metrics() {
		got = append(got, m.String())
	}
	for _, c := range catalogue {
		want = append(want, c.name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Metrics() = %v\nwant %v", got, want)
	}
}

func TestParseMetricRejectsUnknown(t *testing.T) {
	for _, name := range []string{
		"",
		"cell_voltage",
		"cell_volts",
		"Cell_Voltage_Volts",
		"CELL_VOLTAGE_VOLTS",
		" cell_voltage_volts",
		"cell_voltage_volts ",
		"cell_voltage_volts\x00",
		"module_voltage_volts",
		"ups_temperature_celsius",
		"invalid",
	} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			m, ok := telemetry.ParseMetric(name)
			if ok || m != 0 {
				t.Errorf("ParseMetric(%q) = %v, %v; want 0, false", name, m, ok)
			}
		})
	}
}

func TestInvalidMetric(t *testing.T) {
	for _, m := range []telemetry.Metric{0, telemetry.NumMetrics, 255} {
		t.Run(fmt.Sprint(uint8(m)), func(t *testing.T) {
			if m.Valid() || m.String() != "invalid" || m.Level() != 0 || m.Unit() != "" {
				t.Errorf("Metric(%d): Valid %v, String %q, Level %v, Unit %q; want false, \"invalid\", 0, \"\"",
					uint8(m), m.Valid(), m.String(), m.Level(), m.Unit())
			}
		})
	}
}

func TestEntityValidate(t *testing.T) {
	tests := []struct {
		name  string
		e     telemetry.Entity
		want  error // nil for valid entities
		level telemetry.Level
	}{
		{"ups", telemetry.Entity{UPS: "ups-a"}, nil, telemetry.LevelUPS},
		{"string", telemetry.Entity{UPS: "ups-a", String: "1"}, nil, telemetry.LevelString},
		{"module", telemetry.Entity{UPS: "ups-a", String: "1", Module: "3"}, nil, telemetry.LevelModule},
		{"cell", telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "7"}, nil, telemetry.LevelCell},
		{"ups every allowed character", telemetry.Entity{UPS: "AZaz09_.:-"}, nil, telemetry.LevelUPS},
		{"opaque zero-padded id", telemetry.Entity{UPS: "ups-a", String: "07"}, nil, telemetry.LevelString},
		{"finer ids are free text", telemetry.Entity{UPS: "ups-a", String: "rack 2/left", Module: "Modul ü", Cell: "#7"}, nil, telemetry.LevelCell},

		{"zero entity", telemetry.Entity{}, telemetry.ErrNoUPS, 0},
		{"empty ups with finer ids", telemetry.Entity{String: "1", Module: "3", Cell: "7"}, telemetry.ErrNoUPS, telemetry.LevelCell},
		{"ups with a space", telemetry.Entity{UPS: "ups a"}, telemetry.ErrBadUPS, telemetry.LevelUPS},
		{"ups with a slash", telemetry.Entity{UPS: "ups/a"}, telemetry.ErrBadUPS, telemetry.LevelUPS},
		{"ups with non-ASCII", telemetry.Entity{UPS: "üps"}, telemetry.ErrBadUPS, telemetry.LevelUPS},
		{"ups with invalid UTF-8", telemetry.Entity{UPS: "ups\xff"}, telemetry.ErrBadUPS, telemetry.LevelUPS},
		{"cell without module", telemetry.Entity{UPS: "ups-a", String: "1", Cell: "7"}, telemetry.ErrHole, telemetry.LevelCell},
		{"module without string", telemetry.Entity{UPS: "ups-a", Module: "3"}, telemetry.ErrHole, telemetry.LevelModule},
		{"cell without string", telemetry.Entity{UPS: "ups-a", Module: "3", Cell: "7"}, telemetry.ErrHole, telemetry.LevelCell},
		{"invalid UTF-8 string", telemetry.Entity{UPS: "ups-a", String: "\xff"}, telemetry.ErrInvalidUTF, telemetry.LevelString},
		{"invalid UTF-8 module", telemetry.Entity{UPS: "ups-a", String: "1", Module: "\xc3"}, telemetry.ErrInvalidUTF, telemetry.LevelModule},
		{"invalid UTF-8 cell", telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "7\xed\xa0\x80"}, telemetry.ErrInvalidUTF, telemetry.LevelCell},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("%#v.Validate() = %v, want %v", tt.e, err, tt.want)
			}
			if got := tt.e.Level(); got != tt.level {
				t.Errorf("Level() = %v, want %v", got, tt.level)
			}
		})
	}
}

func TestEntityPathAndParent(t *testing.T) {
	tests := []struct {
		e      telemetry.Entity
		path   string
		parent telemetry.Entity
	}{
		{telemetry.Entity{UPS: "ups-a"}, "ups-a", telemetry.Entity{}},
		{telemetry.Entity{UPS: "ups-a", String: "1"}, "ups-a/1", telemetry.Entity{UPS: "ups-a"}},
		{telemetry.Entity{UPS: "ups-a", String: "1", Module: "3"}, "ups-a/1/3", telemetry.Entity{UPS: "ups-a", String: "1"}},
		{telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "07"}, "ups-a/1/3/07", telemetry.Entity{UPS: "ups-a", String: "1", Module: "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := tt.e.Path(); got != tt.path {
				t.Errorf("Path() = %q, want %q", got, tt.path)
			}
			if got := tt.e.Parent(); got != tt.parent {
				t.Errorf("Parent() = %#v, want %#v", got, tt.parent)
			}
		})
	}
}

var (
	upsA    = telemetry.Entity{UPS: "ups-a"}
	strA1   = telemetry.Entity{UPS: "ups-a", String: "1"}
	modA13  = telemetry.Entity{UPS: "ups-a", String: "1", Module: "3"}
	cellA7  = telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "7"}
	cellA07 = telemetry.Entity{UPS: "ups-a", String: "1", Module: "3", Cell: "07"}
	upsB    = telemetry.Entity{UPS: "ups-b"}
	strB2   = telemetry.Entity{UPS: "ups-b", String: "2"}
)

// TestRegistryInternsAncestorsFirst interns a sequence into a fresh
// registry and checks every ID and Info it ends up with.
func TestRegistryInternsAncestorsFirst(t *testing.T) {
	reg := telemetry.NewRegistry()
	for _, e := range []telemetry.Entity{cellA7, cellA07, strB2, upsA, cellA7} {
		if _, err := reg.Intern(e); err != nil {
			t.Fatalf("Intern(%v): %v", e.Path(), err)
		}
	}
	// Interning ups-a/1/3/7 first assigns ups-a, ups-a/1, ups-a/1/3 and
	// the cell, in that order; "07" is a cell of its own; ups-b comes
	// before its string; re-interning assigns nothing new.
	want := []telemetry.Info{
		{Entity: upsA, Level: telemetry.LevelUPS, Parent: 0, UPS: 1},
		{Entity: strA1, Level: telemetry.LevelString, Parent: 1, UPS: 1, String: 2},
		{Entity: modA13, Level: telemetry.LevelModule, Parent: 2, UPS: 1, String: 2, Module: 3},
		{Entity: cellA7, Level: telemetry.LevelCell, Parent: 3, UPS: 1, String: 2, Module: 3},
		{Entity: cellA07, Level: telemetry.LevelCell, Parent: 3, UPS: 1, String: 2, Module: 3},
		{Entity: upsB, Level: telemetry.LevelUPS, Parent: 0, UPS: 6},
		{Entity: strB2, Level: telemetry.LevelString, Parent: 6, UPS: 6, String: 7},
	}
	if got := reg.Len(); got != len(want) {
		t.Fatalf("Len() = %d, want %d", got, len(want))
	}
	for i, w := range want {
		id := telemetry.EntityID(i + 1)
		t.Run(w.Entity.Path(), func(t *testing.T) {
			if got := reg.Info(id); got != w {
				t.Errorf("Info(%d) = %+v\nwant %+v", id, got, w)
			}
			got, err := reg.Intern(w.Entity)
			if err != nil || got != id {
				t.Errorf("Intern again = %d, %v; want %d, nil", got, err, id)
			}
			got, ok := reg.Lookup(w.Entity)
			if !ok || got != id {
				t.Errorf("Lookup = %d, %v; want %d, true", got, ok, id)
			}
		})
	}
	if got := reg.Len(); got != len(want) {
		t.Errorf("Len() after re-interning = %d, want %d", got, len(want))
	}
}

// TestRegistryDeterministic feeds the same entities to two registries and
// expects the same IDs: replays of one input label alerts identically.
func TestRegistryDeterministic(t *testing.T) {
	seq := []telemetry.Entity{strB2, cellA07, upsA, cellA7, modA13, upsB}
	intern := func() []telemetry.EntityID {
		reg := telemetry.NewRegistry()
		ids := make([]telemetry.EntityID, len(seq))
		for i, e := range seq {
			id, err := reg.Intern(e)
			if err != nil {
				t.Fatalf("Intern(%v): %v", e.Path(), err)
			}
			ids[i] = id
		}
		return ids
	}
	first, second := intern(), intern()
	// ups-b=1, ups-b/2=2, ups-a=3, ups-a/1=4, ups-a/1/3=5, ups-a/1/3/07=6, ups-a/1/3/7=7.
	want := []telemetry.EntityID{2, 6, 3, 7, 5, 1}
	if !slices.Equal(first, want) || !slices.Equal(second, want) {
		t.Errorf("IDs = %v then %v, want %v both times", first, second, want)
	}
}

func TestRegistryRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		e    telemetry.Entity
		want error
	}{
		{"empty ups", telemetry.Entity{String: "1"}, telemetry.ErrNoUPS},
		{"bad ups", telemetry.Entity{UPS: "ups a"}, telemetry.ErrBadUPS},
		{"hole", telemetry.Entity{UPS: "ups-a", String: "1", Cell: "7"}, telemetry.ErrHole},
		{"invalid UTF-8", telemetry.Entity{UPS: "ups-a", String: "\xff"}, telemetry.ErrInvalidUTF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := telemetry.NewRegistry()
			id, err := reg.Intern(tt.e)
			if id != 0 || !errors.Is(err, tt.want) {
				t.Errorf("Intern(%#v) = %d, %v; want 0, %v", tt.e, id, err, tt.want)
			}
			if n := reg.Len(); n != 0 {
				t.Errorf("Len() = %d after a rejected entity, want 0", n)
			}
			if id, ok := reg.Lookup(tt.e); ok {
				t.Errorf("Lookup found rejected entity as %d", id)
			}
		})
	}
}

func TestRegistryLookupUnknown(t *testing.T) {
	reg := telemetry.NewRegistry()
	if _, err := reg.Intern(cellA7); err != nil {
		t.Fatal(err)
	}
	for _, e := range []telemetry.Entity{cellA07, upsB, {UPS: "ups-a", String: "01"}, {}} {
		t.Run(e.Path(), func(t *testing.T) {
			if id, ok := reg.Lookup(e); ok || id != 0 {
				t.Errorf("Lookup(%#v) = %d, %v; want 0, false", e, id, ok)
			}
		})
	}
	if n := reg.Len(); n != 4 {
		t.Errorf("Len() = %d after lookups, want 4 (lookups must not intern)", n)
	}
}

// TestRegistryConcurrent interns overlapping entities from several
// goroutines; run it with -race. Every entity must end up with exactly one
// ID, whoever interned it first.
func TestRegistryConcurrent(t *testing.T) {
	const (
		goroutines = 8
		upss       = 3
		strs       = 2
		mods       = 4
		cells      = 5
	)
	var all []telemetry.Entity
	for u := range upss {
		for s := range strs {
			for m := range mods {
				for c := range cells {
					all = append(all, telemetry.Entity{
						UPS: fmt.Sprintf("ups-%d", u), String: fmt.Sprint(s), Module: fmt.Sprint(m), Cell: fmt.Sprint(c),
					})
				}
			}
		}
	}
	// Every entity plus its ancestors, each counted once.
	distinct := upss + upss*strs + upss*strs*mods + len(all)

	// Each goroutine interns every entity in its own order, so that they
	// race on the same entities and ancestors.
	rng := rand.New(rand.NewPCG(1, 2))
	orders := make([][]int, goroutines)
	for g := range orders {
		orders[g] = rng.Perm(len(all))
	}

	reg := telemetry.NewRegistry()
	got := make([][]telemetry.EntityID, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ids := make([]telemetry.EntityID, len(all))
			for _, i := range orders[g] {
				id, err := reg.Intern(all[i])
				if err != nil {
					errs[g] = err
					return
				}
				ids[i] = id
				reg.Info(id) // read while others write
			}
			got[g] = ids
		})
	}
	wg.Wait()

	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := reg.Len(); n != distinct {
		t.Errorf("Len() = %d, want %d", n, distinct)
	}
	seen := make(map[telemetry.EntityID]telemetry.Entity)
	for i, e := range all {
		id := got[0][i]
		for g := 1; g < goroutines; g++ {
			if got[g][i] != id {
				t.Errorf("%s: goroutine 0 got ID %d, goroutine %d got %d", e.Path(), id, g, got[g][i])
			}
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("ID %d given to both %s and %s", id, prev.Path(), e.Path())
		}
		seen[id] = e
		info := reg.Info(id)
		if info.Entity != e {
			t.Errorf("Info(%d).Entity = %s, want %s", id, info.Entity.Path(), e.Path())
		}
		if lid, ok := reg.Lookup(e); !ok || lid != id {
			t.Errorf("Lookup(%s) = %d, %v; want %d, true", e.Path(), lid, ok, id)
		}
		// The ancestors recorded in Info are the registry's IDs for them.
		for _, a := range []struct {
			id telemetry.EntityID
			e  telemetry.Entity
		}{
			{info.Parent, e.Parent()},
			{info.Module, e.Parent()},
			{info.String, e.Parent().Parent()},
			{info.UPS, e.Parent().Parent().Parent()},
		} {
			if lid, _ := reg.Lookup(a.e); lid != a.id || a.id == 0 {
				t.Errorf("%s: ancestor %s has ID %d, Info says %d", e.Path(), a.e.Path(), lid, a.id)
			}
		}
	}
}

// TestRegistryManyEntities interns 200 k cells in a shuffled order, with
// some of their strings and modules first, and checks against a model
// that every entity got the next ID at first sight, ancestors first, and
// that Lookup and Info give every one back.
func TestRegistryManyEntities(t *testing.T) {
	const cells = 200_000
	rng := rand.New(rand.NewPCG(3, 4))
	cell := func(i int) telemetry.Entity {
		mod := i / 16
		return telemetry.Entity{UPS: fmt.Sprintf("u%d", mod/64), String: fmt.Sprint(mod/16%4 + 1),
			Module: fmt.Sprint(mod%16 + 1), Cell: fmt.Sprint(i%16 + 1)}
	}
	var seq []telemetry.Entity
	for _, i := range rng.Perm(cells) {
		seq = append(seq, cell(i))
		if i%7 == 0 {
			seq = append(seq, cell(rng.IntN(cells)).Parent().Parent(), cell(rng.IntN(cells)).Parent())
		}
	}
	// The model: IDs in first-seen order, ancestors first.
	want := map[telemetry.Entity]telemetry.EntityID{}
	var byID []telemetry.Entity
	model := func(e telemetry.Entity) telemetry.EntityID {
		var chain []telemetry.Entity
		for x := e; x.Level() != 0; x = x.Parent() {
			chain = append(chain, x)
		}
		for _, x := range slices.Backward(chain) {
			if _, ok := want[x]; !ok {
				byID = append(byID, x)
				want[x] = telemetry.EntityID(len(byID))
			}
		}
		return want[e]
	}
	ancestor := func(e telemetry.Entity, l telemetry.Level) telemetry.EntityID {
		for e.Level() > l {
			e = e.Parent()
		}
		if e.Level() != l {
			return 0
		}
		return want[e]
	}

	reg := telemetry.NewRegistry()
	for _, e := range seq {
		if got, err := reg.Intern(e); err != nil || got != model(e) {
			t.Fatalf("Intern(%s) = %d, %v; want %d", e.Path(), got, err, want[e])
		}
	}
	if reg.Len() != len(byID) {
		t.Fatalf("Len() = %d, want %d", reg.Len(), len(byID))
	}
	for i, e := range byID {
		id := telemetry.EntityID(i + 1)
		info := telemetry.Info{Entity: e, Level: e.Level(), Parent: want[e.Parent()], UPS: ancestor(e, telemetry.LevelUPS),
			String: ancestor(e, telemetry.LevelString), Module: ancestor(e, telemetry.LevelModule)}
		if got := reg.Info(id); got != info {
			t.Fatalf("Info(%d) = %+v, want %+v", id, got, info)
		}
		// A copy of the strings, so that no comparison succeeds by
		// their pointers.
		e := telemetry.Entity{UPS: string([]byte(e.UPS)), String: string([]byte(e.String)),
			Module: string([]byte(e.Module)), Cell: string([]byte(e.Cell))}
		if got, ok := reg.Lookup(e); !ok || got != id {
			t.Fatalf("Lookup(%s) = %d, %v; want %d", e.Path(), got, ok, id)
		}
	}
	for _, e := range []telemetry.Entity{
		{UPS: "u0", String: "1", Module: "1", Cell: "17"},
		{UPS: "u0", String: "1", Module: "17"},
		{UPS: "u0", String: "5"},
		{UPS: fmt.Sprintf("u%d", cells/16/64+1)},
		{UPS: "u1", String: "1", Module: "1", Cell: "01"},
	} {
		if id, ok := reg.Lookup(e); ok {
			t.Errorf("Lookup(%s) = %d, found; it was never interned", e.Path(), id)
		}
	}
}

func TestInternKnownDoesNotAllocate(t *testing.T) {
	reg := telemetry.NewRegistry()
	// A fresh copy of the strings, so that the lookup cannot succeed by
	// comparing pointers.
	e := telemetry.Entity{UPS: string([]byte("ups-a")), String: "1", Module: "3", Cell: "7"}
	want, err := reg.Intern(cellA7)
	if err != nil {
		t.Fatal(err)
	}
	var got telemetry.EntityID
	allocs := testing.AllocsPerRun(100, func() {
		got, _ = reg.Intern(e)
	})
	if allocs != 0 {
		t.Errorf("Intern of a known entity: %v allocations per call, want 0", allocs)
	}
	if got != want {
		t.Errorf("Intern = %d, want %d", got, want)
	}
}

func TestRegistryLimit(t *testing.T) {
	r := telemetry.NewRegistryWithLimit(6)
	for _, e := range []telemetry.Entity{
		{UPS: "u", String: "1", Module: "1", Cell: "1"}, // 4 entities
		{UPS: "u", String: "1", Module: "1", Cell: "2"}, // 5
	} {
		if _, err := r.Intern(e); err != nil {
			t.Fatalf("Intern(%v): %v", e, err)
		}
	}
	// A new cell under a new module needs 2 more: over the limit.
	_, err := r.Intern(telemetry.Entity{UPS: "u", String: "1", Module: "2", Cell: "1"})
	if !errors.Is(err, telemetry.ErrTooManyEntities) || err.Error() != "too many distinct entities (limit 6)" {
		t.Errorf("got %v, want too many distinct entities (limit 6)", err)
	}
	// Known entities are still found.
	if _, err := r.Intern(telemetry.Entity{UPS: "u", String: "1", Module: "1", Cell: "2"}); err != nil {
		t.Errorf("known entity after the limit: %v", err)
	}
	if r.Len() != 5 {
		t.Errorf("Len = %d, want 5", r.Len())
	}
}
