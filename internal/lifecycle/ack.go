package lifecycle

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Ack is an acknowledgement of a finding: someone owns it and has planned
// the replacement. While it is active, alerts about the finding stop
// repeating; it covers the state it acknowledges and less urgent ones (an
// acknowledged "soon" does not cover "end_of_life").
type Ack struct {
	UPS string
	// String is empty for a finding about a whole UPS.
	String string
	// State is StateSoon or StateEndOfLife.
	State State
	// Owner is who is responsible: a person or a team.
	Owner string
	// Planned is the day the replacement is planned for.
	Planned Date
	// Expires is the last day the acknowledgement applies: from the next
	// day on, the alerts repeat again.
	Expires Date
	// Note is free text (a ticket number).
	Note string
	// Created is when it was recorded.
	Created time.Time
}

// ackJSON is Ack as it is stored.
type ackJSON struct {
	UPS     string    `json:"ups"`
	String  string    `json:"string,omitempty"`
	State   string    `json:"state"`
	Owner   string    `json:"owner"`
	Planned string    `json:"planned"`
	Expires string    `json:"expires"`
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
}

// MarshalJSON writes dates as YYYY-MM-DD and the state by name.
func (a Ack) MarshalJSON() ([]byte, error) {
	return json.Marshal(ackJSON{a.UPS, a.String, a.State.String(), a.Owner, a.Planned.String(), a.Expires.String(), a.Note, a.Created.UTC()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Ack) UnmarshalJSON(b []byte) error {
	var j ackJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	st, ok := ParseState(j.State)
	if !ok {
		return fmt.Errorf("state %q must be soon or end_of_life", j.State)
	}
	planned, err := ParseDate(j.Planned)
	if err != nil {
		return fmt.Errorf("planned %q %v", j.Planned, err)
	}
	expires, err := ParseDate(j.Expires)
	if err != nil {
		return fmt.Errorf("expires %q %v", j.Expires, err)
	}
	*a = Ack{j.UPS, j.String, st, j.Owner, planned, expires, j.Note, j.Created}
	return nil
}

// storable reports whether t can be written to a store file: JSON times
// are RFC 3339 in UTC, whose years run from 0 to 9999. A time such as
// 9999-12-31T23:00:00-05:00 reads, but is in the year 10000 in UTC.
func storable(t time.Time) bool {
	y := t.UTC().Year()
	return t.IsZero() || (y >= 1 && y <= 9999)
}

// SetDays parses the planned replacement and expiry days of an
// acknowledgement as a person typed them; an empty value stays unset
// (Validate names it). name gives a field's name in messages ("--planned"
// on the command line, "planned" in the API).
func (a *Ack) SetDays(planned, expires string, name func(field string) string) error {
	var errs []string
	for _, d := range []struct {
		field, value string
		into         *Date
	}{{"planned", planned, &a.Planned}, {"expires", expires, &a.Expires}} {
		if d.value == "" {
			continue
		}
		v, err := ParseDate(d.value)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %q %v", name(d.field), d.value, err))
			continue
		}
		*d.into = v
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Validate checks an acknowledgement before it is stored, and when it is
// read.
func (a *Ack) Validate() error {
	var errs []string
	if !telemetry.ValidUPS(a.UPS) {
		errs = append(errs, fmt.Sprintf("ups %q must match [A-Za-z0-9_.:-]+", a.UPS))
	}
	if a.State != StateSoon && a.State != StateEndOfLife {
		errs = append(errs, "state must be soon or end_of_life")
	}
	if strings.TrimSpace(a.Owner) == "" {
		errs = append(errs, "owner is required")
	}
	if a.Planned.IsZero() {
		errs = append(errs, "planned date is required")
	}
	if a.Expires.IsZero() {
		errs = append(errs, "expiry date is required")
	}
	if !storable(a.Created) {
		errs = append(errs, fmt.Sprintf("created %s must be within the years 1 to 9999 (UTC)", a.Created.Format(time.RFC3339)))
	}
	if !a.Expires.IsZero() && !a.Created.IsZero() && a.Expires.Before(DateIn(a.Created, time.UTC)) {
		errs = append(errs, fmt.Sprintf("expires %s is before the day it is recorded (%s)", a.Expires, DateIn(a.Created, time.UTC)))
	}
	if len(errs) > 0 {
		return errors.New("acknowledgement: " + strings.Join(errs, "; "))
	}
	return nil
}

// Active reports whether the acknowledgement applies on day: up to and
// including its Expires day.
func (a *Ack) Active(day Date) bool { return !day.After(a.Expires) }

// Covers reports whether the acknowledgement applies to f on day: same
// UPS and string, active, and f's state no more urgent than the one
// acknowledged.
func (a *Ack) Covers(f *Finding, day Date) bool {
	if a.UPS != f.UPS || a.String != f.String || !a.Active(day) {
		return false
	}
	switch f.State {
	case StateSoon:
		return a.State == StateSoon || a.State == StateEndOfLife
	case StateEndOfLife:
		return a.State == StateEndOfLife
	}
	return false
}

// ackFile is the store's document.
type ackFile struct {
	Version          int   `json:"version"`
	Acknowledgements []Ack `json:"acknowledgements"`
}

// Store keeps acknowledgements in a JSON file that the daemon and the
// command line share. Every change is a read-modify-write under an
// exclusive lock on PATH.lock (flock, so that a crashed writer leaves no
// stale lock), written to a temporary file, synced and renamed over the
// file, so that a reader never sees a half-written file. Readers take no
// lock. A missing file is an empty store.
//
// A Store is safe for concurrent use by several goroutines and
// processes.
type Store struct {
	path string
}

// OpenStore returns the store at path; the file is created on the first
// change. It fails when an existing file cannot be read or parsed.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path}
	if _, err := s.List(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// List returns every stored acknowledgement, expired ones included,
// sorted by UPS, string and state.
func (s *Store) List() ([]Ack, error) {
	var f ackFile
	if found, err := readStrict(s.path, &f); !found || err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version %d is not 1", s.path, f.Version)
	}
	for i := range f.Acknowledgements {
		if err := f.Acknowledgements[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s: acknowledgements[%d]: %w", s.path, i, err)
		}
	}
	sortAcks(f.Acknowledgements)
	return f.Acknowledgements, nil
}

// readStrict decodes the JSON file at path into v, refusing unknown
// fields; found is false, and v untouched, when the file does not exist.
func readStrict(path string, v any) (found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return true, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// sortAcks orders acknowledgements by UPS, string and state, keeping the
// file's order among equals (a hand-edited file may repeat one), so that
// writing a file back does not reorder it.
func sortAcks(acks []Ack) {
	slices.SortStableFunc(acks, func(a, b Ack) int {
		return cmp.Or(cmp.Compare(a.UPS, b.UPS), cmp.Compare(a.String, b.String), cmp.Compare(a.State, b.State))
	})
}

// Active returns the acknowledgements that apply on day.
func (s *Store) Active(day Date) ([]Ack, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(a Ack) bool { return !a.Active(day) }), nil
}

// Acknowledge validates a and stores it, replacing the acknowledgement of
// the same UPS, string and state.
func (s *Store) Acknowledge(a Ack) error {
	if err := a.Validate(); err != nil {
		return err
	}
	return s.update(func(acks []Ack) []Ack {
		acks = slices.DeleteFunc(acks, func(b Ack) bool { return b.UPS == a.UPS && b.String == a.String && b.State == a.State })
		return append(acks, a)
	})
}

// Remove deletes the acknowledgement of ups, str and state; it reports
// whether there was one.
func (s *Store) Remove(ups, str string, state State) (bool, error) {
	found := false
	err := s.update(func(acks []Ack) []Ack {
		return slices.DeleteFunc(acks, func(b Ack) bool {
			m := b.UPS == ups && b.String == str && b.State == state
			found = found || m
			return m
		})
	})
	return found, err
}

// Prune deletes the acknowledgements that expired before day and returns
// how many.
func (s *Store) Prune(day Date) (int, error) {
	n := 0
	err := s.update(func(acks []Ack) []Ack {
		return slices.DeleteFunc(acks, func(b Ack) bool {
			gone := !b.Active(day)
			if gone {
				n++
			}
			return gone
		})
	})
	return n, err
}

// update applies change to the stored list under the lock and writes the
// result atomically.
func (s *Store) update(change func([]Ack) []Ack) error {
	return locked(s.path, func() error {
		acks, err := s.List()
		if err != nil {
			return err
		}
		acks = change(acks)
		sortAcks(acks)
		if acks == nil {
			acks = []Ack{}
		}
		return writeJSON(s.path, ackFile{Version: 1, Acknowledgements: acks})
	})
}

// locked runs fn under an exclusive lock on path.lock.
func locked(path string, fn func() error) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer unlock()
	return fn()
}

// writeJSON writes v, indented, atomically to path.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'))
}

// writeAtomic writes data to path through a synced temporary file in the
// same directory and a rename, then syncs the directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
