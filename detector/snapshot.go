package detector

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"reflect"
	"slices"
	"unsafe"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// snapshotMagic starts every snapshot.
const snapshotMagic = "cellwarden-detector-snapshot-1\n"

// ErrSnapshotMismatch says a snapshot was written by a build whose state
// layout differs; the caller starts the detector fresh.
var ErrSnapshotMismatch = errors.New("snapshot was written by a different detector version")

// stateLayout fingerprints the layout of every saved state type, so that a
// snapshot is only read back into the exact structures that wrote it.
func stateLayout() uint64 {
	h := fnv.New64a()
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		fmt.Fprintf(h, "%s:%d;", t.String(), t.Size())
		switch t.Kind() {
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				fmt.Fprintf(h, "%s@%d{", f.Name, f.Offset)
				walk(f.Type)
				h.Write([]byte("}"))
			}
		case reflect.Array, reflect.Slice:
			walk(t.Elem())
		}
	}
	for _, v := range []any{entityState{}, staleState{}, cellPeer{}, modPeer{}, group{}, upsState{}} {
		walk(reflect.TypeOf(v))
	}
	var probe uint16 = 1
	fmt.Fprintf(h, "little-endian:%v", *(*byte)(unsafe.Pointer(&probe)) == 1)
	return h.Sum64()
}

// rawBytes views a slice of pointer-free structs as bytes.
func rawBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero)))
}

// Snapshot writes the engine's learned state (offsets, noise, baselines,
// learned intervals, alert states) and the entities it concerns to w, so
// that a restarted daemon neither relearns for hours nor pages again for
// alerts already sent.
func (e *Engine) Snapshot(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	putU := func(v uint64) { buf.Write(binary.AppendUvarint(nil, v)) }
	putU(stateLayout())
	n := e.reg.Len()
	putU(uint64(n))
	for id := 1; id <= n; id++ {
		ent := e.reg.Info(telemetry.EntityID(id)).Entity
		for _, s := range [...]string{ent.UPS, ent.String, ent.Module, ent.Cell} {
			putU(uint64(len(s)))
			buf.WriteString(s)
		}
	}
	section := func(b []byte, count int) {
		putU(uint64(count))
		putU(uint64(len(b)))
		buf.Write(b)
	}
	// Slices inside the peer tables are not saved (their pointers mean
	// nothing in another process); Restore rebuilds them.
	mods := slices.Clone(e.mods)
	for i := range mods {
		mods[i].cells = nil
	}
	groups := slices.Clone(e.groups)
	for i := range groups {
		groups[i].cells, groups[i].mods = nil, nil
	}
	upss := slices.Clone(e.upss)
	for i := range upss {
		upss[i].groups = nil
	}
	section(rawBytes(e.ents), len(e.ents))
	section(rawBytes(e.stale.sources), len(e.stale.sources))
	section(rawBytes(e.stale.states), len(e.stale.states))
	section(rawBytes(e.cells), len(e.cells))
	section(rawBytes(mods), len(mods))
	section(rawBytes(groups), len(groups))
	section(rawBytes(upss), len(upss))
	putU(uint64(e.stale.next))
	sum := crc32.ChecksumIEEE(buf.Bytes())
	buf.Write(binary.BigEndian.AppendUint32(nil, sum))
	_, err := w.Write(buf.Bytes())
	return err
}

// Restore reads a snapshot into a new engine whose registry is still
// empty: it interns the snapshot's entities (getting the same IDs) and
// takes over their state. Everything is checked before anything changes:
// on ErrSnapshotMismatch or any other error the engine and registry are
// left as they were.
func (e *Engine) Restore(r io.Reader) error {
	data, err := io.ReadAll(bufio.NewReader(r))
	if err != nil {
		return err
	}
	if len(data) < len(snapshotMagic)+4 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a detector snapshot")
	}
	body, tail := data[:len(data)-4], data[len(data)-4:]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(tail) {
		return errors.New("snapshot is corrupt (checksum mismatch)")
	}
	rd := bytes.NewReader(body[len(snapshotMagic):])
	getU := func() uint64 {
		v, err2 := binary.ReadUvarint(rd)
		if err2 != nil && err == nil {
			err = errors.New("snapshot is truncated")
		}
		return v
	}
	if getU() != stateLayout() {
		return ErrSnapshotMismatch
	}
	if e.reg.Len() != 0 || len(e.ents) != 0 {
		return errors.New("restore needs a fresh engine and registry")
	}
	n := getU()
	if err != nil || n > telemetry.DefaultMaxEntities {
		return errors.New("snapshot is corrupt (entity count)")
	}
	ents := make([]telemetry.Entity, n)
	seen := make(map[telemetry.Entity]bool, n)
	for i := range ents {
		var parts [4]string
		for j := range parts {
			l := getU()
			if err != nil || l > uint64(rd.Len()) {
				return errors.New("snapshot is truncated")
			}
			b := make([]byte, l)
			rd.Read(b)
			parts[j] = string(b)
		}
		ents[i] = telemetry.Entity{UPS: parts[0], String: parts[1], Module: parts[2], Cell: parts[3]}
		// Check every entity before interning any, so that a bad
		// snapshot leaves the registry as it was.
		if ents[i].Validate() != nil || seen[ents[i]] || (ents[i].Level() > telemetry.LevelUPS && !seen[ents[i].Parent()]) {
			return errors.New("snapshot is corrupt (entities)")
		}
		seen[ents[i]] = true
	}
	var tables struct {
		ents    []entityState
		sources []telemetry.EntityID
		states  []staleState
		cells   []cellPeer
		mods    []modPeer
		groups  []group
		upss    []upsState
	}
	if err := readSection(rd, &tables.ents); err != nil {
		return err
	}
	for _, f := range []func() error{
		func() error { return readSection(rd, &tables.sources) },
		func() error { return readSection(rd, &tables.states) },
		func() error { return readSection(rd, &tables.cells) },
		func() error { return readSection(rd, &tables.mods) },
		func() error { return readSection(rd, &tables.groups) },
		func() error { return readSection(rd, &tables.upss) },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	next := int64(getU())
	if err != nil {
		return err
	}
	if int(n) > len(tables.ents) {
		return errors.New("snapshot is corrupt (entity table)")
	}
	if err := checkIndices(tables.ents, tables.cells, tables.mods, tables.groups, tables.upss, tables.states, tables.sources); err != nil {
		return err
	}
	for i, ent := range ents {
		id, ierr := e.reg.Intern(ent)
		if ierr != nil || id != telemetry.EntityID(i+1) {
			return fmt.Errorf("snapshot entity %s does not restore to its ID: %v", ent.Path(), ierr)
		}
	}
	e.ents, e.cells, e.mods, e.groups, e.upss = tables.ents, tables.cells, tables.mods, tables.groups, tables.upss
	e.stale.sources, e.stale.states, e.stale.next = tables.sources, tables.states, next
	for i := range e.ents {
		e.ents[i].limits = 0 // voltage limits come from the current configuration
	}
	e.relink()
	return nil
}

// readSection reads one table written by Snapshot into dst. The bytes are
// checked before they become typed memory: sizes must add up, and every byte
// where the type holds a pointer (slice, string, map) must be zero, as
// Snapshot writes it; a file that passes its checksum can still not plant a
// pointer.
func readSection[T any](rd *bytes.Reader, dst *[]T) error {
	var zero T
	sz := uint64(unsafe.Sizeof(zero))
	count, err1 := binary.ReadUvarint(rd)
	size, err2 := binary.ReadUvarint(rd)
	if err1 != nil || err2 != nil || size > uint64(rd.Len()) || count > size/max(sz, 1) || size != count*sz {
		return errors.New("snapshot is corrupt (table size)")
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(rd, raw); err != nil {
		return errors.New("snapshot is truncated")
	}
	ranges := pointerRanges(reflect.TypeOf(zero), 0, nil)
	for i := uint64(0); i < count; i++ {
		for _, r := range ranges {
			for _, b := range raw[i*sz+uint64(r[0]) : i*sz+uint64(r[1])] {
				if b != 0 {
					return errors.New("snapshot is corrupt (reference fields)")
				}
			}
		}
	}
	s := make([]T, count)
	copy(rawBytes(s), raw)
	*dst = s
	return nil
}

// pointerRanges lists the byte ranges of t that hold pointers, slices,
// strings, maps, channels, functions or interfaces.
func pointerRanges(t reflect.Type, off uintptr, out [][2]uintptr) [][2]uintptr {
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			out = pointerRanges(f.Type, off+f.Offset, out)
		}
	case reflect.Array:
		for i := 0; i < t.Len(); i++ {
			out = pointerRanges(t.Elem(), off+uintptr(i)*t.Elem().Size(), out)
		}
	case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		out = append(out, [2]uintptr{off, off + t.Size()})
	}
	return out
}

// checkIndices verifies that the tables refer to each other consistently
// before relink uses the references as indices.
func checkIndices(ents []entityState, cells []cellPeer, mods []modPeer, groups []group, upss []upsState, states []staleState, sources []telemetry.EntityID) error {
	bad := errors.New("snapshot is corrupt (references)")
	ok := func(idx uint32, n int) bool { return idx >= 1 && int(idx) <= n }
	entOK := func(id telemetry.EntityID) bool { return id >= 1 && int(id) <= len(ents) }
	for i := range ents {
		st := &ents[i]
		if !st.known {
			continue
		}
		for _, id := range []telemetry.EntityID{st.parent, st.str, st.module} {
			if id != 0 && !entOK(id) {
				return bad
			}
		}
		if st.src != 0 && !ok(st.src, len(states)) {
			return bad
		}
		lim := map[telemetry.Level]int{telemetry.LevelCell: len(cells), telemetry.LevelModule: len(mods),
			telemetry.LevelString: len(groups), telemetry.LevelUPS: len(upss)}
		if st.aux != 0 && !ok(st.aux, lim[st.level]) {
			return bad
		}
	}
	for _, id := range sources {
		if !entOK(id) {
			return bad
		}
	}
	for i := range cells {
		c := &cells[i]
		if !entOK(c.id) || !ok(c.mod, len(mods)) || !entOK(ents[c.id-1].str) || !ok(ents[ents[c.id-1].str-1].aux, len(groups)) {
			return bad
		}
	}
	for i := range mods {
		if !entOK(mods[i].id) || !entOK(ents[mods[i].id-1].parent) || !ok(ents[ents[mods[i].id-1].parent-1].aux, len(groups)) {
			return bad
		}
	}
	for i := range groups {
		if !ok(groups[i].ups, len(upss)) {
			return bad
		}
	}
	return nil
}

// relink rebuilds the membership lists of the peer tables from the
// entities after a restore.
func (e *Engine) relink() {
	for i := range e.cells {
		c := &e.cells[i]
		g := &e.groups[e.ents[e.ents[c.id-1].str-1].aux-1]
		g.cells = append(g.cells, uint32(i))
		m := &e.mods[c.mod-1]
		m.cells = append(m.cells, uint32(i))
	}
	for i := range e.mods {
		g := &e.groups[e.ents[e.ents[e.mods[i].id-1].parent-1].aux-1]
		g.mods = append(g.mods, uint32(i))
	}
	for i := range e.groups {
		u := &e.upss[e.groups[i].ups-1]
		u.groups = append(u.groups, uint32(i))
	}
	byCell := func(a, b uint32) int { return int(e.cells[a].id) - int(e.cells[b].id) }
	for i := range e.groups {
		slices.SortFunc(e.groups[i].cells, byCell)
		slices.SortFunc(e.groups[i].mods, func(a, b uint32) int { return int(e.mods[a].id) - int(e.mods[b].id) })
	}
	for i := range e.mods {
		slices.SortFunc(e.mods[i].cells, byCell)
	}
}
