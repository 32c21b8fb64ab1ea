package telemetry

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"unicode/utf8"
)

// Entity is the identity of a node of the battery hierarchy. Identifiers are
// opaque and compared byte for byte ("07" is not "7"). The finer fields are
// empty for coarser entities: a string has an empty Module and Cell, a UPS
// has only UPS set.
type Entity struct {
	UPS    string
	String string
	Module string
	Cell   string
}

// Level returns the entity's level, or 0 when the fields do not describe a
// node of the hierarchy (see Validate).
func (e Entity) Level() Level {
	switch {
	case e.Cell != "":
		return LevelCell
	case e.Module != "":
		return LevelModule
	case e.String != "":
		return LevelString
	case e.UPS != "":
		return LevelUPS
	}
	return 0
}

// Parent returns the entity one level up. The parent of a UPS is the zero
// Entity.
func (e Entity) Parent() Entity {
	switch e.Level() {
	case LevelCell:
		e.Cell = ""
	case LevelModule:
		e.Module = ""
	case LevelString:
		e.String = ""
	default:
		return Entity{}
	}
	return e
}

// Path renders the entity as a slash-separated path, e.g. "ups-a/1/3/7".
func (e Entity) Path() string {
	s := e.UPS
	for _, p := range [...]string{e.String, e.Module, e.Cell} {
		if p == "" {
			break
		}
		s += "/" + p
	}
	return s
}

// Validation errors returned by Entity.Validate.
var (
	ErrNoUPS      = errors.New("ups is empty")
	ErrBadUPS     = errors.New("ups must match [A-Za-z0-9_.:-]+")
	ErrHole       = errors.New("a finer identifier is set while a coarser one is empty")
	ErrInvalidUTF = errors.New("identifier is not valid UTF-8")
	// ErrTooManyEntities is returned by Intern once the registry holds its
	// limit: hostile or garbled input cannot grow memory without bound.
	ErrTooManyEntities = errors.New("too many distinct entities")
)

// DefaultMaxEntities is the registry limit NewRegistry sets: about 1M
// UPSs, strings, modules and cells together, several times the largest
// data-center fleet.
const DefaultMaxEntities = 1 << 20

// ValidUPS reports whether id is a valid UPS identifier: non-empty and made
// of [A-Za-z0-9_.:-] only.
func ValidUPS(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !upsChar[id[i]] {
			return false
		}
	}
	return true
}

var upsChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_.:-" {
		t[c] = true
	}
	return t
}()

// Validate checks that the entity names a node of the hierarchy: a valid UPS
// identifier, no finer identifier without its coarser ones, and UTF-8 text.
func (e Entity) Validate() error {
	if e.UPS == "" {
		return ErrNoUPS
	}
	if !ValidUPS(e.UPS) {
		return fmt.Errorf("%w: %q", ErrBadUPS, e.UPS)
	}
	if (e.String == "" && (e.Module != "" || e.Cell != "")) || (e.Module == "" && e.Cell != "") {
		return ErrHole
	}
	if !utf8.ValidString(e.String) || !utf8.ValidString(e.Module) || !utf8.ValidString(e.Cell) {
		return ErrInvalidUTF
	}
	return nil
}

// EntityID is an entity interned in a Registry. IDs are dense, start at 1
// and are assigned in first-seen order, so replaying the same input assigns
// the same IDs. The zero value means "none".
type EntityID uint32

// Info is what a Registry knows about an interned entity.
type Info struct {
	Entity Entity
	Level  Level
	// Parent is the entity one level up (0 for a UPS). UPS, String and
	// Module are the ancestors at those levels, or the entity itself at
	// its own level; finer ones are 0.
	Parent, UPS, String, Module EntityID
}

// Registry interns entities. It is safe for concurrent use: collectors
// intern from their own goroutines while the detector reads. Interning an
// entity also interns all its ancestors.
type Registry struct {
	mu sync.RWMutex
	// slots finds an entity by its hash: an open-addressing table of IDs
	// (0 for an empty slot), its length a power of two, probed linearly
	// from the slot the hash picks; a candidate is compared by rebuilding
	// its entity from nodes. Holding nothing but IDs, it costs 5.7-11.4
	// bytes an entity at the load it is kept under (see add), where a
	// map[uint64]EntityID took 19-39.
	seed  maphash.Seed
	slots []EntityID
	nodes []node // nodes[id-1]
	limit int
}

// minSlots is the size of a new registry's table.
const minSlots = 16

// node is what a Registry keeps of an entity: its own identifier and its
// ancestors, whose identifiers complete its Entity (40 bytes where an Info
// takes 88).
type node struct {
	// name is the entity's identifier at its own level: its UPS, String,
	// Module or Cell.
	name  string
	level Level
	// As in Info.
	parent, ups, str, module EntityID
}

// entity rebuilds the Entity of n from its ancestors' names. r.mu is held.
func (r *Registry) entity(n *node) Entity {
	e := Entity{UPS: r.nodes[n.ups-1].name}
	if n.str != 0 {
		e.String = r.nodes[n.str-1].name
	}
	if n.module != 0 {
		e.Module = r.nodes[n.module-1].name
	}
	if n.level == LevelCell {
		e.Cell = n.name
	}
	return e
}

// hash returns the hash of e that picks its first slot.
func (r *Registry) hash(e Entity) uint64 { return maphash.Comparable(r.seed, e) }

// lookup returns the ID of e. r.mu is held. The table is never full (see
// add): a probe ends at an empty slot.
func (r *Registry) lookup(e Entity) (EntityID, bool) {
	mask := uint64(len(r.slots) - 1)
	for i := r.hash(e) & mask; ; i = (i + 1) & mask {
		id := r.slots[i]
		if id == 0 {
			return 0, false
		}
		if r.entity(&r.nodes[id-1]) == e {
			return id, true
		}
	}
}

// add indexes id, the last node, as e. r.mu is held for writing.
//
// The table doubles when it would be more than 0.7 full: linear probing
// then reads on average at most 2.2 slots to find an entity and 6 to miss
// one (Knuth), and the table costs 5.7-11.4 bytes an entity (at 0.5 it
// would read 1.5 and 2.5 slots for 8-16 bytes). Entities are looked up
// far more often than interned, and mostly found.
func (r *Registry) add(e Entity, id EntityID) {
	if 10*len(r.nodes) > 7*len(r.slots) {
		r.rehash(2 * len(r.slots))
		return
	}
	r.slots[freeSlot(r.slots, r.hash(e))] = id
}

// rehash replaces the table by one of size slots holding every node. r.mu
// is held for writing: readers wait for it, 10 ms at 100 k entities and
// 150 ms at 750 k (measured on 2 shared cores), once for each doubling.
func (r *Registry) rehash(size int) {
	// The nodes give every entity again: the old table is dropped before
	// the new one is allocated, for a collection that allocation starts
	// to free it.
	r.slots = nil
	slots := make([]EntityID, size)
	for i := range r.nodes {
		slots[freeSlot(slots, r.hash(r.entity(&r.nodes[i])))] = EntityID(i + 1)
	}
	r.slots = slots
}

// freeSlot returns the first empty slot of slots from the one h picks.
func freeSlot(slots []EntityID, h uint64) uint64 {
	mask := uint64(len(slots) - 1)
	i := h & mask
	for slots[i] != 0 {
		i = (i + 1) & mask
	}
	return i
}

// NewRegistry returns an empty registry holding at most
// DefaultMaxEntities entities.
func NewRegistry() *Registry { return NewRegistryWithLimit(DefaultMaxEntities) }

// NewRegistryWithLimit returns an empty registry holding at most limit
// entities.
func NewRegistryWithLimit(limit int) *Registry {
	return &Registry{seed: maphash.MakeSeed(), slots: make([]EntityID, minSlots), limit: limit}
}

// Intern returns the ID of e, assigning one (and IDs for its ancestors) on
// first sight. e must be valid (see Entity.Validate).
func (r *Registry) Intern(e Entity) (EntityID, error) {
	r.mu.RLock()
	id, ok := r.lookup(e)
	r.mu.RUnlock()
	if ok {
		return id, nil
	}
	if err := e.Validate(); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Count the entity and the ancestors it would add.
	added := 0
	for x := e; x.Level() != 0; x = x.Parent() {
		if _, ok := r.lookup(x); ok {
			break
		}
		added++
	}
	if len(r.nodes)+added > r.limit {
		return 0, fmt.Errorf("%w (limit %d)", ErrTooManyEntities, r.limit)
	}
	return r.internLocked(e), nil
}

func (r *Registry) internLocked(e Entity) EntityID {
	if id, ok := r.lookup(e); ok {
		return id
	}
	n := node{level: e.Level()}
	if n.level > LevelUPS {
		n.parent = r.internLocked(e.Parent())
		p := &r.nodes[n.parent-1]
		n.ups, n.str, n.module = p.ups, p.str, p.module
	}
	id := EntityID(len(r.nodes) + 1)
	switch n.level {
	case LevelUPS:
		n.name, n.ups = e.UPS, id
	case LevelString:
		n.name, n.str = e.String, id
	case LevelModule:
		n.name, n.module = e.Module, id
	case LevelCell:
		n.name = e.Cell
	}
	r.nodes = append(r.nodes, n)
	r.add(e, id)
	return id
}

// Lookup returns the ID of e if it was interned.
func (r *Registry) Lookup(e Entity) (EntityID, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lookup(e)
}

// Info returns what the registry knows about id. It panics on an ID the
// registry did not assign, which is a programming error.
func (r *Registry) Info(id EntityID) Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := &r.nodes[id-1]
	return Info{Entity: r.entity(n), Level: n.level, Parent: n.parent, UPS: n.ups, String: n.str, Module: n.module}
}

// Len returns the number of interned entities; IDs run from 1 to Len.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.nodes)
}
