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
	for _, v := range []any{entityState{}, staleState{}, cellPeer{}, track{}, jumpState{}, modPeer{}, group{}, upsState{}} {
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
	// The tables go straight to w through a buffer, checksummed on the
	// way: a fleet of 100 k cells has about 100 MB of state, which is
	// not copied once more.
	sum := crc32.NewIEEE()
	buf := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	var scratch [binary.MaxVarintLen64]byte
	putU := func(v uint64) { buf.Write(binary.AppendUvarint(scratch[:0], v)) }
	buf.WriteString(snapshotMagic)
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
	putU(uint64(e.cells.len()))
	putU(uint64(e.cells.len()) * uint64(unsafe.Sizeof(cellPeer{})))
	e.cells.each(func(ch []cellPeer) { buf.Write(rawBytes(ch)) })
	putU(uint64(e.tracks.len()))
	putU(uint64(e.tracks.len()) * uint64(unsafe.Sizeof(track{})))
	e.tracks.each(func(ch []track) { buf.Write(rawBytes(ch)) })
	putU(uint64(e.jumps.table.len()))
	putU(uint64(e.jumps.table.len()) * uint64(unsafe.Sizeof(jumpState{})))
	e.jumps.table.each(func(ch []jumpState) { buf.Write(rawBytes(ch)) })
	section(rawBytes(e.jumps.free), len(e.jumps.free))
	section(rawBytes(mods), len(mods))
	section(rawBytes(groups), len(groups))
	section(rawBytes(upss), len(upss))
	putU(uint64(e.stale.next))
	if err := buf.Flush(); err != nil {
		return err
	}
	_, err := w.Write(sum.Sum(nil))
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
	var tables snapTables
	if err := readSection(rd, &tables.ents); err != nil {
		return err
	}
	for _, f := range []func() error{
		func() error { return readSection(rd, &tables.sources) },
		func() error { return readSection(rd, &tables.states) },
		func() error { return readSection(rd, &tables.cells) },
		func() error { return readSection(rd, &tables.tracks) },
		func() error { return readSection(rd, &tables.jumps) },
		func() error { return readSection(rd, &tables.free) },
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
	if err := tables.check(ents); err != nil {
		return err
	}
	for i, ent := range ents {
		id, ierr := e.reg.Intern(ent)
		if ierr != nil || id != telemetry.EntityID(i+1) {
			return fmt.Errorf("snapshot entity %s does not restore to its ID: %v", ent.Path(), ierr)
		}
	}
	e.ents, e.cells, e.tracks, e.mods, e.groups, e.upss = tables.ents, chunkTableOf(tables.cells), chunkTableOf(tables.tracks), tables.mods, tables.groups, tables.upss
	e.jumps = jumpPool{table: chunkTableOf(tables.jumps), free: tables.free}
	e.stale.sources, e.stale.states, e.stale.next = tables.sources, tables.states, next
	for i := range e.ents {
		e.ents[i].limits = 0 // voltage limits come from the current configuration
	}
	e.forgetOffsetBounds() // and so do the offset bounds
	e.relink()
	return nil
}

// readSection reads one table written by Snapshot into dst. The bytes are
// checked before they become typed memory: sizes must add up, every byte
// where the type holds a pointer (slice, string, map) must be zero, as
// Snapshot writes it, and every bool 0 or 1; a file that passes its
// checksum can still not plant a pointer or an impossible bool.
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
	ptrs, bools := pointerRanges(reflect.TypeOf(zero), 0, nil, nil)
	for i := uint64(0); i < count; i++ {
		for _, r := range ptrs {
			for _, b := range raw[i*sz+uint64(r[0]) : i*sz+uint64(r[1])] {
				if b != 0 {
					return errors.New("snapshot is corrupt (reference fields)")
				}
			}
		}
		for _, r := range bools {
			if raw[i*sz+uint64(r[0])] > 1 {
				return errors.New("snapshot is corrupt (flags)")
			}
		}
	}
	s := make([]T, count)
	copy(rawBytes(s), raw)
	*dst = s
	return nil
}

// pointerRanges lists the byte ranges of t that hold pointers, slices,
// strings, maps, channels, functions or interfaces (zero in a snapshot),
// and boolRanges those that hold a bool (0 or 1 in a snapshot).
func pointerRanges(t reflect.Type, off uintptr, ptrs, bools [][2]uintptr) ([][2]uintptr, [][2]uintptr) {
	switch t.Kind() {
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			ptrs, bools = pointerRanges(f.Type, off+f.Offset, ptrs, bools)
		}
	case reflect.Array:
		for i := 0; i < t.Len(); i++ {
			ptrs, bools = pointerRanges(t.Elem(), off+uintptr(i)*t.Elem().Size(), ptrs, bools)
		}
	case reflect.Bool:
		bools = append(bools, [2]uintptr{off, off + 1})
	case reflect.Pointer, reflect.Slice, reflect.String, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		ptrs = append(ptrs, [2]uintptr{off, off + t.Size()})
	}
	return ptrs, bools
}

// snapTables are the tables of a snapshot being restored.
type snapTables struct {
	ents    []entityState
	sources []telemetry.EntityID
	states  []staleState
	cells   []cellPeer
	tracks  []track
	jumps   []jumpState
	free    []uint32 // jumpPool.free
	mods    []modPeer
	groups  []group
	upss    []upsState
}

// check verifies, before relink and the rules use them as indices, that the
// tables describe the snapshot's entities (paths) exactly as an engine
// that had observed them would: every entity's level and ancestors are the
// ones its path gives, every peer and stale-state slot belongs to exactly
// one entity of the right level and points back to it, and the counters
// that index fixed arrays are in range. A snapshot that passes its checksum
// but was altered can then be refused; it can never make the daemon
// index out of range or walk a loop.
func (tb *snapTables) check(paths []telemetry.Entity) error {
	bad := func(what string) error { return fmt.Errorf("snapshot is corrupt (%s)", what) }
	if len(tb.ents) < len(paths) {
		return bad("entity table")
	}
	ids := make(map[telemetry.Entity]telemetry.EntityID, len(paths))
	for i, p := range paths {
		ids[p] = telemetry.EntityID(i + 1)
	}
	// ancestor returns the ID of p's ancestor at level l (0 above p).
	ancestor := func(p telemetry.Entity, l telemetry.Level) telemetry.EntityID {
		for x := p; x.Level() != 0; x = x.Parent() {
			if x.Level() == l {
				return ids[x]
			}
		}
		return 0
	}
	var nSrc int
	srcUsed := make([]bool, len(tb.states))
	auxUsed := map[telemetry.Level][]bool{
		telemetry.LevelCell: make([]bool, len(tb.cells)), telemetry.LevelModule: make([]bool, len(tb.mods)),
		telemetry.LevelString: make([]bool, len(tb.groups)), telemetry.LevelUPS: make([]bool, len(tb.upss)),
	}
	auxID := func(l telemetry.Level, aux uint32) telemetry.EntityID {
		switch l {
		case telemetry.LevelCell:
			return tb.cells[aux-1].id
		case telemetry.LevelModule:
			return tb.mods[aux-1].id
		case telemetry.LevelString:
			return tb.groups[aux-1].id
		}
		return tb.upss[aux-1].id
	}
	for i := range tb.ents {
		st := &tb.ents[i]
		id := telemetry.EntityID(i + 1)
		if i >= len(paths) {
			if st.known {
				return bad("state for an unknown entity")
			}
			continue
		}
		if !st.known {
			if st.src != 0 || st.aux != 0 {
				return bad("state of an unseen entity")
			}
			continue
		}
		p := paths[i]
		parent := telemetry.EntityID(0)
		if p.Level() > telemetry.LevelUPS {
			parent = ids[p.Parent()]
		}
		if st.self != id || st.level != p.Level() || st.parent != parent ||
			st.str != ancestor(p, telemetry.LevelString) || st.module != ancestor(p, telemetry.LevelModule) {
			return bad("entity structure")
		}
		if parent != 0 && !tb.ents[parent-1].known {
			return bad("entity without its parent")
		}
		if st.level <= telemetry.LevelModule {
			if st.src == 0 || int(st.src) > len(tb.states) || srcUsed[st.src-1] {
				return bad("stale state")
			}
			srcUsed[st.src-1] = true
			nSrc++
			if nSrc > len(tb.sources) || tb.sources[nSrc-1] != id {
				return bad("stale sources")
			}
		} else if st.src != 0 {
			return bad("stale state of a cell")
		}
		if st.aux != 0 {
			used := auxUsed[st.level]
			if int(st.aux) > len(used) || used[st.aux-1] || auxID(st.level, st.aux) != id {
				return bad("peer state")
			}
			used[st.aux-1] = true
		}
	}
	if nSrc != len(tb.sources) || nSrc != len(tb.states) {
		return bad("stale sources")
	}
	for l, used := range auxUsed {
		if slices.Contains(used, false) {
			return bad(fmt.Sprintf("%s peer state without its entity", l))
		}
	}
	// The peer states of an entity's ancestors exist and are the ones it
	// names.
	aux := func(id telemetry.EntityID) uint32 { return tb.ents[id-1].aux }
	// Every track belongs to exactly one cell's temperature or voltage.
	trackUsed := make([]bool, len(tb.tracks))
	for i := range tb.cells {
		c := &tb.cells[i]
		st := &tb.ents[c.id-1]
		if aux(st.str) == 0 || aux(st.module) == 0 || c.mod != aux(st.module) {
			return bad("cell peers")
		}
		for _, k := range [...]uint32{c.temp, c.volt} {
			if k == 0 {
				continue
			}
			if int(k) > len(trackUsed) || trackUsed[k-1] {
				return bad("cell tracks")
			}
			trackUsed[k-1] = true
		}
	}
	if slices.Contains(trackUsed, false) {
		return bad("track without its cell")
	}
	// Every jump state belongs to exactly one cell track or module
	// sensor, or is free.
	jumpUsed := make([]bool, len(tb.jumps))
	claim := func(k uint32) bool {
		if int(k) >= len(jumpUsed) || jumpUsed[k] {
			return false
		}
		jumpUsed[k] = true
		return true
	}
	for i := range tb.tracks {
		if k := tb.tracks[i].jump; k != 0 && !claim(k-1) {
			return bad("jump states")
		}
	}
	for i := range tb.mods {
		if k := tb.mods[i].sensorJump; k != 0 && !claim(k-1) {
			return bad("jump states")
		}
	}
	for _, k := range tb.free {
		if !claim(k) {
			return bad("jump states")
		}
	}
	if slices.Contains(jumpUsed, false) {
		return bad("jump state neither used nor free")
	}
	for i := range tb.mods {
		if tb.mods[i].temp.jump != 0 {
			return bad("jump states") // a module's peer track has no jump filter (its sensor's is sensorJump)
		}
	}
	for i := range tb.mods {
		if aux(tb.ents[tb.mods[i].id-1].parent) == 0 {
			return bad("module peers")
		}
	}
	for i := range tb.groups {
		if u := aux(tb.ents[tb.groups[i].id-1].parent); u == 0 || tb.groups[i].ups != u {
			return bad("string peers")
		}
	}
	for i := range tb.states {
		if l := &tb.states[i].own; l.ngaps < 0 || l.nout < 0 || l.nout > len(l.outages) {
			return bad("stale history")
		}
	}
	return nil
}

// relink rebuilds the membership lists of the peer tables from the
// entities after a restore.
func (e *Engine) relink() {
	for i := range uint32(e.cells.len()) {
		c := e.cells.at(i)
		g := &e.groups[e.ents[e.ents[c.id-1].str-1].aux-1]
		g.cells = append(g.cells, i)
		m := &e.mods[c.mod-1]
		m.cells = append(m.cells, i)
	}
	for i := range e.mods {
		g := &e.groups[e.ents[e.ents[e.mods[i].id-1].parent-1].aux-1]
		g.mods = append(g.mods, uint32(i))
	}
	for i := range e.groups {
		u := &e.upss[e.groups[i].ups-1]
		u.groups = append(u.groups, uint32(i))
	}
	byCell := func(a, b uint32) int { return int(e.cells.at(a).id) - int(e.cells.at(b).id) }
	for i := range e.groups {
		slices.SortFunc(e.groups[i].cells, byCell)
		slices.SortFunc(e.groups[i].mods, func(a, b uint32) int { return int(e.mods[a].id) - int(e.mods[b].id) })
	}
	for i := range e.mods {
		slices.SortFunc(e.mods[i].cells, byCell)
	}
}
