package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testAck(t testing.TB, ups, str string, state State, planned, expires string) Ack {
	return Ack{UPS: ups, String: str, State: state, Owner: "facilities", Planned: mustDate(t, planned), Expires: mustDate(t, expires),
		Created: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func TestAckCovers(t *testing.T) {
	soon := Finding{UPS: "u", String: "1", State: StateSoon}
	eol := Finding{UPS: "u", String: "1", State: StateEndOfLife}
	tests := []struct {
		name string
		ack  Ack
		f    Finding
		day  string
		want bool
	}{
		{"soon acknowledged", testAck(t, "u", "1", StateSoon, "2026-05-01", "2026-05-15"), soon, "2026-03-04", true},
		{"on its last day", testAck(t, "u", "1", StateSoon, "2026-05-01", "2026-05-15"), soon, "2026-05-15", true},
		{"expired the day after", testAck(t, "u", "1", StateSoon, "2026-05-01", "2026-05-15"), soon, "2026-05-16", false},
		{"a soon acknowledgement does not cover end of life", testAck(t, "u", "1", StateSoon, "2026-05-01", "2026-05-15"), eol, "2026-03-04", false},
		{"an end-of-life acknowledgement covers soon", testAck(t, "u", "1", StateEndOfLife, "2026-05-01", "2026-05-15"), soon, "2026-03-04", true},
		{"other string", testAck(t, "u", "2", StateEndOfLife, "2026-05-01", "2026-05-15"), eol, "2026-03-04", false},
		{"a UPS-wide acknowledgement is for the UPS-wide finding only", testAck(t, "u", "", StateEndOfLife, "2026-05-01", "2026-05-15"), eol, "2026-03-04", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ack.Covers(&tt.f, mustDate(t, tt.day)); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAckValidate(t *testing.T) {
	a := Ack{UPS: "ups a", State: StateOK, Owner: " ", Expires: mustDate(t, "2026-02-01"), Created: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	want := `acknowledgement: ups "ups a" must match [A-Za-z0-9_.:-]+; state must be soon or end_of_life; owner is required; planned date is required; expires 2026-02-01 is before the day it is recorded (2026-03-01)`
	if err := a.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
}

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acks.json")
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if acks, err := s.List(); err != nil || len(acks) != 0 {
		t.Fatalf("a missing file is an empty store: %v, %v", acks, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Acknowledge(testAck(t, "u", "2", StateSoon, "2026-05-01", "2026-05-15")))
	must(s.Acknowledge(testAck(t, "u", "1", StateEndOfLife, "2026-04-01", "2026-04-10")))
	replaced := testAck(t, "u", "2", StateSoon, "2026-06-01", "2026-06-15")
	replaced.Note = "CHG-1042"
	must(s.Acknowledge(replaced))
	if err := s.Acknowledge(Ack{UPS: "u"}); err == nil {
		t.Error("an invalid acknowledgement was stored")
	}
	data, err := os.ReadFile(path)
	must(err)
	want := `{
  "version": 1,
  "acknowledgements": [
    {
      "ups": "u",
      "string": "1",
      "state": "end_of_life",
      "owner": "facilities",
      "planned": "2026-04-01",
      "expires": "2026-04-10",
      "created": "2026-03-01T09:00:00Z"
    },
    {
      "ups": "u",
      "string": "2",
      "state": "soon",
      "owner": "facilities",
      "planned": "2026-06-01",
      "expires": "2026-06-15",
      "note": "CHG-1042",
      "created": "2026-03-01T09:00:00Z"
    }
  ]
}
`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	// Another process (another Store on the same file) sees it.
	other, err := OpenStore(path)
	must(err)
	active, err := other.Active(mustDate(t, "2026-04-11"))
	must(err)
	if len(active) != 1 || active[0].String != "2" {
		t.Errorf("active on 2026-04-11: %+v", active)
	}
	n, err := other.Prune(mustDate(t, "2026-04-11"))
	must(err)
	if n != 1 {
		t.Errorf("pruned %d, want 1", n)
	}
	found, err := s.Remove("u", "2", StateSoon)
	must(err)
	if acks, _ := s.List(); !found || len(acks) != 0 {
		t.Errorf("after Remove: found %v, left %v", found, acks)
	}
	if matches, _ := filepath.Glob(path + ".tmp*"); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestStoreConcurrentWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acks.json")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			s, err := OpenStore(path)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Acknowledge(testAck(t, "u", string(rune('a'+i)), StateSoon, "2026-05-01", "2026-05-15")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, _ := OpenStore(path)
	if acks, err := s.List(); err != nil || len(acks) != 20 {
		t.Errorf("%d acknowledgements stored, want 20 (%v)", len(acks), err)
	}
}

func TestStoreRefusesABadFile(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"an unknown state", `{"version": 1, "acknowledgements": [{"ups": "u", "state": "maybe"}]}`, `state "maybe" must be soon or end_of_life`},
		// Read files are checked as the command checks what it stores.
		{"without an owner", `{"version": 1, "acknowledgements": [{"ups": "u", "state": "soon", "planned": "2026-05-15", "expires": "2026-05-31"}]}`,
			"acknowledgements[0]: acknowledgement: owner is required"},
		// It reads, but it cannot be written back (FuzzStore).
		{"created beyond the year 9999 in UTC", `{"version": 1, "acknowledgements": [{"ups": "u", "state": "soon", "owner": "o",
		  "planned": "2026-05-15", "expires": "2026-05-31", "created": "9999-12-31T23:00:00-05:00"}]}`,
			"acknowledgements[0]: acknowledgement: created 9999-12-31T23:00:00-05:00 must be within the years 1 to 9999 (UTC)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenStore(writeTemp(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenStore: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// writeTemp writes body to a file in a fresh directory.
func writeTemp(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.json")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvaluateAppliesAcknowledgements(t *testing.T) {
	e := NewEvaluator(DefaultConfig())
	e.SetInventory(parseInventory(t, "  - {ups: u, string: '1', warranty_until: 2026-01-01}\n"))
	e.SetAcknowledgements([]Ack{testAck(t, "u", "1", StateEndOfLife, "2026-04-01", "2026-04-10")})
	for day, want := range map[string]bool{"2026-03-04": true, "2026-04-10": true, "2026-04-11": false} {
		f := e.EvaluateDay(mustDate(t, day))[0]
		if (f.Ack != nil) != want || f.NeedsAttention() == want {
			t.Errorf("%s: acknowledged %v, needs attention %v", day, f.Ack != nil, f.NeedsAttention())
		}
	}
}
