package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
)

// resolvedFile, beside the alerts file, keeps the last resolved alerts
// across restarts (GET /api/v1/alerts).
const resolvedFile = "resolved.json"

// maxResolved bounds the resolved alerts the daemon remembers: about
// 400 kB in memory and in resolvedFile.
const maxResolved = 1000

// loggedAlert is an alert as GET /api/v1/alerts lists it: firing, or
// resolved with the time it ended.
type loggedAlert struct {
	Labels alerting.Labels `json:"labels"`
	// Annotations are those it fired with: the evidence.
	Annotations alerting.Annotations `json:"annotations"`
	State       string               `json:"state"` // "firing" or "resolved"
	// StartsAt and EndsAt are event times; StartsAt is zero when the
	// daemon did not see it fire (a restart without the alerts file).
	StartsAt time.Time `json:"startsAt,omitzero"`
	EndsAt   time.Time `json:"endsAt,omitzero"`
	// Value is the measured value when it fired.
	Value *float64 `json:"value,omitempty"`
	// Resolution is the summary it resolved with.
	Resolution string `json:"resolution,omitempty"`
}

// alertLog remembers the alerts firing now and the last ones that
// resolved (maxResolved in the daemon), so that the pre-maintenance check
// can ask what happened to a UPS lately: /metrics shows only the present.
// The detector goroutine records changes; the HTTP handlers read. It is
// safe for concurrent use.
type alertLog struct {
	mu     sync.Mutex
	firing map[alerting.Labels]loggedAlert
	// resolved is a ring in order of resolution: next is the slot the
	// next one takes once it holds size.
	resolved []loggedAlert
	next     int
	size     int
	// saved is false when resolved changed since it was last written.
	saved bool
}

// newAlertLog remembers up to size resolved alerts.
func newAlertLog(size int) *alertLog {
	return &alertLog{firing: map[alerting.Labels]loggedAlert{}, size: size, saved: true}
}

// record takes alert changes as the daemon publishes them.
func (l *alertLog) record(as []alerting.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range as {
		if a.Status == "firing" {
			if _, ok := l.firing[a.Labels]; ok {
				continue
			}
			e := loggedAlert{Labels: a.Labels, Annotations: a.Annotations, State: "firing", StartsAt: a.Time.UTC()}
			if !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) {
				v := a.Value
				e.Value = &v
			}
			l.firing[a.Labels] = e
			continue
		}
		e, ok := l.firing[a.Labels]
		if !ok {
			e = loggedAlert{Labels: a.Labels, Annotations: a.Annotations}
		}
		delete(l.firing, a.Labels)
		e.State, e.EndsAt, e.Resolution = "resolved", a.Time.UTC(), a.Annotations.Summary
		l.push(e)
	}
}

// push adds a resolved alert to the ring, over the oldest when it is full.
func (l *alertLog) push(e loggedAlert) {
	l.saved = false
	if len(l.resolved) < l.size {
		l.resolved = append(l.resolved, e)
		return
	}
	l.resolved[l.next] = e
	l.next = (l.next + 1) % l.size
}

// oldestFirst returns the resolved alerts in the order they resolved.
func (l *alertLog) oldestFirst() []loggedAlert {
	return append(slices.Clone(l.resolved[l.next:]), l.resolved[:l.next]...)
}

// query returns the firing alerts, newest first, then those that resolved
// at or after since (all with a zero since), most recent first; with ups
// set, only that UPS's.
func (l *alertLog) query(since time.Time, ups string) []loggedAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []loggedAlert{}
	for _, e := range l.firing {
		if ups == "" || e.Labels.UPS == ups {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b loggedAlert) int {
		return cmp.Or(b.StartsAt.Compare(a.StartsAt), compareLabels(a.Labels, b.Labels))
	})
	resolved := l.oldestFirst()
	for i := len(resolved) - 1; i >= 0; i-- {
		e := resolved[i]
		if (ups == "" || e.Labels.UPS == ups) && !e.EndsAt.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

func compareLabels(x, y alerting.Labels) int {
	return cmp.Or(cmp.Compare(x.UPS, y.UPS), cmp.Compare(x.String, y.String), cmp.Compare(x.Module, y.Module),
		cmp.Compare(x.Cell, y.Cell), cmp.Compare(x.Alertname, y.Alertname), cmp.Compare(x.Severity, y.Severity))
}

// resolvedDoc is resolvedFile's document.
type resolvedDoc struct {
	Version  int           `json:"version"`
	Resolved []loggedAlert `json:"resolved"`
}

// save writes the resolved alerts to path (atomically) when they changed
// since the last save.
func (l *alertLog) save(path string) error {
	l.mu.Lock()
	if l.saved {
		l.mu.Unlock()
		return nil
	}
	doc := resolvedDoc{Version: 1, Resolved: l.oldestFirst()}
	l.saved = true
	l.mu.Unlock()
	err := writeAtomic(path, func(w io.Writer) error { return json.NewEncoder(w).Encode(doc) })
	if err != nil {
		l.mu.Lock()
		l.saved = false
		l.mu.Unlock()
	}
	return err
}

// load reads the resolved alerts saved by an earlier run (none when the
// file is missing); the newest size are kept.
func (l *alertLog) load(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var doc resolvedDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if doc.Version != 1 {
		return fmt.Errorf("%s: version %d is not 1", path, doc.Version)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range doc.Resolved {
		if e.State == "resolved" {
			l.push(e)
		}
	}
	l.saved = true
	return nil
}
