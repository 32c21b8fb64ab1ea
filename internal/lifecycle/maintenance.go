package lifecycle

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// DefaultMaintenance is how long a maintenance window lasts when its
// length is not given: a working day. A forgotten window must not mute a
// string for ever.
const DefaultMaintenance = 8 * time.Hour

// Window is a maintenance window: people are working on a UPS or one of
// its strings until Until. While it is active the daemon holds the alerts
// that work causes (TelemetryStale, SensorFault) for what is under
// maintenance; every safety alert stays live.
type Window struct {
	UPS string `json:"ups"`
	// String is empty for the whole UPS.
	String string `json:"string,omitempty"`
	// By is who does the work (a person or a team).
	By string `json:"by"`
	// Reason is free text (a work permit, a ticket).
	Reason string `json:"reason,omitempty"`
	// Started is when the window was opened; Until when it ends by
	// itself (RFC 3339 in the file).
	Started time.Time `json:"started"`
	Until   time.Time `json:"until"`
}

// Active reports whether the window applies at now: from Started up to,
// not including, Until.
func (w *Window) Active(now time.Time) bool { return !now.Before(w.Started) && now.Before(w.Until) }

// Entity is what the window puts under maintenance: a string, or a whole
// UPS when String is empty.
func (w *Window) Entity() telemetry.Entity { return telemetry.Entity{UPS: w.UPS, String: w.String} }

// Validate checks a window before it is stored.
func (w *Window) Validate() error {
	var errs []string
	if !telemetry.ValidUPS(w.UPS) {
		errs = append(errs, fmt.Sprintf("ups %q must match [A-Za-z0-9_.:-]+", w.UPS))
	}
	if w.String != "" && (!utf8.ValidString(w.String) || strings.ContainsAny(w.String, "/\x00\n\r\t")) {
		errs = append(errs, fmt.Sprintf("string %q must be valid UTF-8 without '/' or control characters", w.String))
	}
	if strings.TrimSpace(w.By) == "" {
		errs = append(errs, "by is required (who does the work)")
	}
	if w.Started.IsZero() {
		errs = append(errs, "start time is required")
	}
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"started", w.Started}, {"until", w.Until}} {
		if !storable(t.at) {
			errs = append(errs, fmt.Sprintf("%s %s must be within the years 1 to 9999 (UTC)", t.name, t.at.Format(time.RFC3339)))
		}
	}
	if !w.Until.After(w.Started) {
		errs = append(errs, fmt.Sprintf("until %s must be after the start %s", w.Until.UTC().Format(time.RFC3339), w.Started.UTC().Format(time.RFC3339)))
	}
	if len(errs) > 0 {
		return errors.New("maintenance window: " + strings.Join(errs, "; "))
	}
	return nil
}

// maintenanceFile is the maintenance store's document.
type maintenanceFile struct {
	Version int      `json:"version"`
	Windows []Window `json:"windows"`
}

// MaintenanceStore keeps maintenance windows in a JSON file that the
// daemon and the command line share, with the acknowledgement Store's
// discipline: every change is a read-modify-write under an exclusive flock
// on PATH.lock, written to a temporary file, synced and renamed over the
// file; readers take no lock and never see half a file. A missing file
// holds no window.
//
// A MaintenanceStore is safe for concurrent use by several goroutines and
// processes.
type MaintenanceStore struct {
	path string
}

// NewMaintenanceStore returns the store at path without reading it (the
// daemon starts even when the file is damaged, and says so at every read).
func NewMaintenanceStore(path string) *MaintenanceStore { return &MaintenanceStore{path: path} }

// OpenMaintenanceStore returns the store at path; the file is created on
// the first change. It fails when an existing file cannot be read or
// parsed.
func OpenMaintenanceStore(path string) (*MaintenanceStore, error) {
	s := NewMaintenanceStore(path)
	if _, err := s.List(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the store's file.
func (s *MaintenanceStore) Path() string { return s.path }

// List returns every stored window, expired ones included, sorted by UPS
// and string.
func (s *MaintenanceStore) List() ([]Window, error) {
	var f maintenanceFile
	if found, err := readStrict(s.path, &f); !found || err != nil {
		return nil, err
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version %d is not 1", s.path, f.Version)
	}
	for i := range f.Windows {
		if err := f.Windows[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s: windows[%d]: %w", s.path, i, err)
		}
	}
	sortWindows(f.Windows)
	return f.Windows, nil
}

// sortWindows orders windows by UPS and string, keeping the file's order
// among equals.
func sortWindows(ws []Window) {
	slices.SortStableFunc(ws, func(a, b Window) int { return cmp.Or(cmp.Compare(a.UPS, b.UPS), cmp.Compare(a.String, b.String)) })
}

// Active returns the windows that apply at now.
func (s *MaintenanceStore) Active(now time.Time) ([]Window, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(w Window) bool { return !w.Active(now) }), nil
}

// Start validates w and stores it, replacing the window of the same UPS
// and string. Windows that ended before w.Started are removed on the way.
func (s *MaintenanceStore) Start(w Window) error {
	if err := w.Validate(); err != nil {
		return err
	}
	return s.update(func(ws []Window) []Window {
		ws = slices.DeleteFunc(ws, func(o Window) bool {
			return (o.UPS == w.UPS && o.String == w.String) || !o.Until.After(w.Started)
		})
		return append(ws, w)
	})
}

// Stop ends the window of ups and str (str empty: the whole-UPS window)
// by removing it; it returns the window and whether there was one.
func (s *MaintenanceStore) Stop(ups, str string) (Window, bool, error) {
	var gone Window
	found := false
	err := s.update(func(ws []Window) []Window {
		return slices.DeleteFunc(ws, func(o Window) bool {
			m := o.UPS == ups && o.String == str
			if m {
				gone, found = o, true
			}
			return m
		})
	})
	return gone, found, err
}

// update applies change to the stored windows under the lock and writes
// the result atomically.
func (s *MaintenanceStore) update(change func([]Window) []Window) error {
	return locked(s.path, func() error {
		ws, err := s.List()
		if err != nil {
			return err
		}
		ws = change(ws)
		sortWindows(ws)
		if ws == nil {
			ws = []Window{}
		}
		for i := range ws {
			ws[i].Started, ws[i].Until = ws[i].Started.UTC(), ws[i].Until.UTC()
		}
		return writeJSON(s.path, maintenanceFile{Version: 1, Windows: ws})
	})
}
