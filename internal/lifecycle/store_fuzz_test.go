package lifecycle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The acknowledgement and maintenance files are edited by hand as well as
// by cellwarden. Whatever they hold, reading them must not panic; a file
// that is accepted must mean what it says when written back (it reads
// back as the same entries, and writing is a fixed point), and must stay
// writable: the daemon's API and the commands change an accepted file.

// fuzzStoreFile writes data as the store file in dir (one directory per
// fuzz worker), replacing the previous input.
func fuzzStoreFile(t *testing.T, dir string, data []byte) string {
	path := filepath.Join(dir, "store.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reencoded writes v with the stores' writer and returns the bytes.
func reencoded(t *testing.T, dir string, v any) []byte {
	path := filepath.Join(dir, "reencoded.json")
	if err := writeJSON(path, v); err != nil {
		t.Fatalf("an accepted file cannot be written back: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writtenBack writes entries back as the store writes doc(entries), reads
// them with list, and checks that what was read is as many entries and
// writes back to the same bytes (a fixed point). It returns what was
// read.
func writtenBack[T any](t *testing.T, dir string, entries []T, doc func([]T) any, list func(path string) ([]T, error)) []T {
	first := reencoded(t, dir, doc(entries))
	back, err := list(filepath.Join(dir, "reencoded.json"))
	if err != nil {
		t.Fatalf("written back, the file is refused: %v\n%s", err, first)
	}
	if second := reencoded(t, dir, doc(back)); !bytes.Equal(first, second) {
		t.Fatalf("writing back is not a fixed point:\n%s\nthen\n%s", first, second)
	}
	if len(back) != len(entries) {
		t.Fatalf("%d entries read back, %d accepted", len(back), len(entries))
	}
	return back
}

func FuzzStore(f *testing.F) {
	for _, s := range []string{
		`{"version": 1, "acknowledgements": [{"ups": "dc1-ups-b", "string": "2", "state": "soon", "owner": "facilities-dc1",
		  "planned": "2026-05-15", "expires": "2026-05-31", "note": "CHG-1042", "created": "2026-02-20T14:30:00Z"}]}`,
		`{"version": 1, "acknowledgements": [
		  {"ups": "u", "state": "end_of_life", "owner": "o", "planned": "05/15/2026", "expires": "15.06.2026", "created": "2026-03-01T09:00:00+05:00"},
		  {"ups": "u", "string": "1", "state": "soon", "owner": "o", "planned": "2026-05-15", "expires": "2026-05-31", "created": "2026-03-01T09:00:00Z"}]}`,
		`{"version": 1, "acknowledgements": []}`,
		`{"version": 2, "acknowledgements": []}`,
		`{"version": 1, "acknowledgements": [{"ups": "u", "state": "maybe"}]}`,
		`{"version": 1, "acks": []}`,
		`{}`, ``, `null`, `[`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	valid := Ack{UPS: "fuzz-ups", String: "9", State: StateEndOfLife, Owner: "fuzz", Planned: DateIn(time.Date(2026, 5, 15, 0, 0, 0, 0, time.UTC), time.UTC), Expires: DateIn(time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), time.UTC),
		Created: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := fuzzStoreFile(t, dir, data)
		s := &Store{path: path}
		acks, err := s.List()
		if err != nil {
			return
		}
		for i := range acks {
			if err := acks[i].Validate(); err != nil {
				t.Fatalf("accepted acknowledgement %d does not validate: %v", i, err)
			}
		}
		back := writtenBack(t, dir, acks, func(acks []Ack) any { return ackFile{Version: 1, Acknowledgements: acks} },
			func(path string) ([]Ack, error) { return (&Store{path: path}).List() })
		for i := range acks {
			a, b := acks[i], back[i]
			if a.UPS != b.UPS || a.String != b.String || a.State != b.State || a.Owner != b.Owner || a.Note != b.Note ||
				a.Planned != b.Planned || a.Expires != b.Expires || !a.Created.Equal(b.Created) {
				t.Fatalf("acknowledgement %d reads back as %+v, was %+v", i, b, a)
			}
		}
		if err := s.Acknowledge(valid); err != nil {
			t.Fatalf("an accepted file cannot be changed: %v", err)
		}
		if after, err := s.List(); err != nil || len(after) < 1 {
			t.Fatalf("after a change: %v, %v", after, err)
		}
	})
}

func FuzzMaintenanceStore(f *testing.F) {
	for _, s := range []string{
		`{"version": 1, "windows": [{"ups": "dc1-ups-a", "string": "2", "by": "alice", "reason": "PTW-1234",
		  "started": "2026-03-04T09:00:00Z", "until": "2026-03-04T17:00:00Z"}]}`,
		`{"version": 1, "windows": [{"ups": "u", "by": "bob", "started": "2026-03-04T09:00:00+01:00", "until": "2026-03-04T17:00:00.5-05:00"},
		  {"ups": "u", "string": "1", "by": "bob", "started": "2026-03-04T09:00:00Z", "until": "2026-03-05T09:00:00Z"}]}`,
		`{"version": 1, "windows": []}`,
		`{"version": 1, "windows": [{"ups": "u", "by": "b", "started": "2026-03-04T09:00:00Z", "until": "2026-03-04T08:00:00Z"}]}`,
		`{"version": 1, "windows": [{"ups": "u", "by": "b", "started": "2026-03-04T09:00:00Z", "until": "9999-12-31T23:00:00-05:00"}]}`,
		`{"version": 3}`, `{}`, ``, `{"version": 1, "windows": [{"ups": "u", "strng": "1"}]}`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	start := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	valid := Window{UPS: "fuzz-ups", String: "9", By: "fuzz", Started: start, Until: start.Add(DefaultMaintenance)}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := fuzzStoreFile(t, dir, data)
		s := NewMaintenanceStore(path)
		ws, err := s.List()
		if err != nil {
			return
		}
		back := writtenBack(t, dir, ws, func(ws []Window) any { return maintenanceFile{Version: 1, Windows: ws} },
			func(path string) ([]Window, error) { return NewMaintenanceStore(path).List() })
		for i := range ws {
			a, b := ws[i], back[i]
			if a.UPS != b.UPS || a.String != b.String || a.By != b.By || a.Reason != b.Reason || !a.Started.Equal(b.Started) || !a.Until.Equal(b.Until) {
				t.Fatalf("window %d reads back as %+v, was %+v", i, b, a)
			}
			if a.Active(start) != b.Active(start) {
				t.Fatalf("window %d is active at %s before it is written back and not after, or the reverse", i, start)
			}
		}
		if err := s.Start(valid); err != nil {
			t.Fatalf("an accepted file cannot be changed: %v", err)
		}
		if _, _, err := s.Stop(valid.UPS, valid.String); err != nil {
			t.Fatalf("an accepted file cannot be changed: %v", err)
		}
	})
}
