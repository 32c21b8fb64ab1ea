package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var maintBase = time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)

func testWindow(ups, str string, started time.Time, d time.Duration) Window {
	return Window{UPS: ups, String: str, By: "alice", Reason: "PTW-7", Started: started, Until: started.Add(d)}
}

func TestWindowActive(t *testing.T) {
	w := testWindow("u", "1", maintBase, DefaultMaintenance)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"before it starts", maintBase.Add(-time.Second), false},
		{"as it starts", maintBase, true},
		{"a nanosecond before it ends", maintBase.Add(DefaultMaintenance - 1), true},
		{"when it ends", maintBase.Add(DefaultMaintenance), false},
		{"after it ended", maintBase.Add(24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.Active(tt.at); got != tt.want {
				t.Errorf("Active(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestWindowValidate(t *testing.T) {
	tests := []struct {
		name string
		w    Window
		want string
	}{
		{"everything wrong", Window{UPS: "ups a", String: "1/2", By: " ", Until: maintBase},
			`maintenance window: ups "ups a" must match [A-Za-z0-9_.:-]+; string "1/2" must be valid UTF-8 without '/' or control characters; by is required (who does the work); start time is required`},
		{"ends before it starts", testWindow("u", "", maintBase, -time.Hour),
			`maintenance window: until 2026-03-04T08:00:00Z must be after the start 2026-03-04T09:00:00Z`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.w.Validate(); err == nil || err.Error() != tt.want {
				t.Errorf("Validate:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestMaintenanceStoreStartReplacesStopsAndExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maintenance.json")
	s, err := OpenMaintenanceStore(path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if ws, err := s.Active(maintBase); err != nil || len(ws) != 0 {
		t.Fatalf("a missing file holds no window: %v, %v", ws, err)
	}
	must(s.Start(testWindow("u", "2", maintBase, time.Hour)))
	must(s.Start(testWindow("u", "", maintBase, 2*time.Hour)))
	// The same string again: the window is replaced, not added.
	replaced := testWindow("u", "2", maintBase.Add(10*time.Minute), 3*time.Hour)
	replaced.By = "bob"
	must(s.Start(replaced))
	if err := s.Start(Window{UPS: "u"}); err == nil {
		t.Error("an invalid window was stored")
	}
	data, err := os.ReadFile(path)
	must(err)
	want := `{
  "version": 1,
  "windows": [
    {
      "ups": "u",
      "by": "alice",
      "reason": "PTW-7",
      "started": "2026-03-04T09:00:00Z",
      "until": "2026-03-04T11:00:00Z"
    },
    {
      "ups": "u",
      "string": "2",
      "by": "bob",
      "reason": "PTW-7",
      "started": "2026-03-04T09:10:00Z",
      "until": "2026-03-04T12:10:00Z"
    }
  ]
}
`
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}

	// Another process (another store on the same file) sees the windows
	// expire at their Until.
	other, err := OpenMaintenanceStore(path)
	must(err)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{maintBase.Add(time.Hour), "u/ u/2"},
		{maintBase.Add(2 * time.Hour), "u/2"},
		{maintBase.Add(3*time.Hour + 10*time.Minute), ""},
	} {
		ws, err := other.Active(c.at)
		must(err)
		var got []string
		for _, w := range ws {
			got = append(got, w.UPS+"/"+w.String)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("active at %s: %v, want %s", c.at.Format(time.Kitchen), got, c.want)
		}
	}

	w, found, err := s.Stop("u", "2")
	must(err)
	if !found || w.By != "bob" {
		t.Errorf("Stop: found %v, window %+v", found, w)
	}
	if _, found, _ := s.Stop("u", "2"); found {
		t.Error("a stopped window was found again")
	}
	// Starting a window removes those that already ended.
	must(s.Start(testWindow("v", "1", maintBase.Add(5*time.Hour), time.Hour)))
	ws, err := s.List()
	must(err)
	if len(ws) != 1 || ws[0].UPS != "v" {
		t.Errorf("after a later start the stored windows are %+v, want only v/1", ws)
	}
	if matches, _ := filepath.Glob(path + ".tmp*"); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestMaintenanceStoreConcurrentWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maintenance.json")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			s, err := OpenMaintenanceStore(path)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Start(testWindow("u", fmt.Sprint(i), maintBase, time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, _ := OpenMaintenanceStore(path)
	if ws, err := s.List(); err != nil || len(ws) != 20 {
		t.Errorf("%d windows stored, want 20 (%v)", len(ws), err)
	}
}

func TestMaintenanceStoreRefusesABadFile(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown field", `{"version": 1, "windows": [{"ups": "u", "by": "a", "started": "2026-03-04T09:00:00Z", "until": "2026-03-04T10:00:00Z", "muted": true}]}`,
			`json: unknown field "muted"`},
		{"other version", `{"version": 2, "windows": []}`, "version 2 is not 1"},
		{"a time that is not RFC 3339", `{"version": 1, "windows": [{"ups": "u", "by": "a", "started": "2026-03-04", "until": "2026-03-04T10:00:00Z"}]}`,
			`parsing time "2026-03-04" as "2006-01-02T15:04:05Z07:00"`},
		{"a window without its worker", `{"version": 1, "windows": [{"ups": "u", "started": "2026-03-04T09:00:00Z", "until": "2026-03-04T10:00:00Z"}]}`,
			"windows[0]: maintenance window: by is required (who does the work)"},
		// It reads, but it cannot be written back: the store would refuse
		// every change (FuzzMaintenanceStore).
		{"an end beyond the year 9999 in UTC", `{"version": 1, "windows": [{"ups": "u", "by": "a", "started": "2026-03-04T09:00:00Z", "until": "9999-12-31T23:00:00-05:00"}]}`,
			"windows[0]: maintenance window: until 9999-12-31T23:00:00-05:00 must be within the years 1 to 9999 (UTC)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenMaintenanceStore(writeTemp(t, tt.body)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenMaintenanceStore: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
