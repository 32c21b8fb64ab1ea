package detector

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Battery age: BatteryEndOfLife (warning) while a string is past its design
// life, warranty or vendor replace-by date or its state of health is below
// the limit, and BatteryEndOfLifeSoon (info) while one of those dates falls
// within the horizon. The verdicts come from internal/lifecycle, judged in
// event time: on the first tick, at every new event-time hour (dates pass
// at midnight), and after a string is first seen or its state of health
// crosses the limit. An acknowledged finding (owner, planned date, until
// its expiry) resolves its alert; when the acknowledgement expires the
// alert fires again.

// Alert names of the battery-age rules.
const (
	AlertBatteryEndOfLife     = "BatteryEndOfLife"
	AlertBatteryEndOfLifeSoon = "BatteryEndOfLifeSoon"
)

// ageState is the battery-age part of an engine.
type ageState struct {
	ev       *lifecycle.Evaluator
	sohLimit float64
	lastHour int64 // event-time hour of the last evaluation (-1: never)
	dirty    bool
	firing   map[ageKey]bool
	findings []lifecycle.Finding
}

type ageKey struct {
	ups, str, name string
}

// SetLifecycle turns on the battery-age rules with cfg (validated, defaults
// filled) and the engine's inventory. Without it (replay --baseline) the
// engine raises no age alerts. Calling it again (a reload) keeps the
// observed dates and states of health.
func (e *Engine) SetLifecycle(cfg lifecycle.Config) {
	if e.age == nil {
		e.age = &ageState{ev: lifecycle.NewEvaluator(cfg), lastHour: -1, firing: map[ageKey]bool{}}
		for i := range e.ents {
			if st := &e.ents[i]; st.known && st.level == telemetry.LevelString {
				ent := e.reg.Info(st.self).Entity
				e.age.ev.DeclareString(ent.UPS, ent.String)
			}
		}
	} else {
		e.age.ev.Reconfigure(cfg)
	}
	e.age.ev.SetInventory(e.inv)
	e.age.sohLimit = cfg.SOHLimit
	e.age.dirty = true
}

// Lifecycle returns the battery-age evaluator (nil when the rules are
// off), for the daemon to feed asset lists, device dates and
// acknowledgements. Use it from the goroutine that feeds the engine.
func (e *Engine) Lifecycle() *lifecycle.Evaluator {
	if e.age == nil {
		return nil
	}
	return e.age.ev
}

// Findings returns the battery-age verdicts of the last evaluation (nil
// when the rules are off).
func (e *Engine) Findings() []lifecycle.Finding {
	if e.age == nil {
		return nil
	}
	return e.age.findings
}

// RecheckAges makes the next tick evaluate battery ages again (after new
// acknowledgements, asset lists or device dates).
func (e *Engine) RecheckAges() {
	if e.age != nil {
		e.age.dirty = true
	}
}

// declareString tells the age rules about a string first seen in telemetry.
func (e *Engine) declareString(id telemetry.EntityID) {
	if e.age == nil {
		return
	}
	ent := e.reg.Info(id).Entity
	e.age.ev.DeclareString(ent.UPS, ent.String)
	e.age.dirty = true
}

// observeSOH feeds a string's state of health to the age rules.
func (e *Engine) observeSOH(st *entityState, s telemetry.Sample) {
	if e.age == nil || st.level != telemetry.LevelString || s.Value < 0 || s.Value > 1.5 {
		return
	}
	ent := e.reg.Info(st.self).Entity
	e.age.ev.ObserveSOH(ent.UPS, ent.String, time.Unix(0, s.Time), s.Value)
	if s.Value < e.age.sohLimit {
		e.age.dirty = true
	}
}

// tickAges evaluates battery ages when due and appends the changes.
func (e *Engine) tickAges(now int64, out []Change) []Change {
	a := e.age
	if a == nil {
		return out
	}
	hour := now / int64(time.Hour)
	if hour == a.lastHour && !a.dirty {
		return out
	}
	a.lastHour, a.dirty = hour, false
	a.findings = a.ev.Evaluate(time.Unix(0, now))
	want := map[ageKey]*lifecycle.Finding{}
	for i := range a.findings {
		f := &a.findings[i]
		if f.Ack != nil {
			continue
		}
		switch f.State {
		case lifecycle.StateEndOfLife:
			want[ageKey{f.UPS, f.String, AlertBatteryEndOfLife}] = f
		case lifecycle.StateSoon:
			want[ageKey{f.UPS, f.String, AlertBatteryEndOfLifeSoon}] = f
		}
	}
	keys := make([]ageKey, 0, len(want)+len(a.firing))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range a.firing {
		if want[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y ageKey) int {
		return cmp.Or(cmp.Compare(x.ups, y.ups), cmp.Compare(x.str, y.str), cmp.Compare(x.name, y.name))
	})
	for _, k := range keys {
		f, on := want[k], a.firing[k]
		if (f != nil) == on {
			continue
		}
		id, err := e.reg.Intern(telemetry.Entity{UPS: k.ups, String: k.str})
		if err != nil {
			continue // the registry is full: the audit still reports it
		}
		sev := SeverityWarning
		if k.name == AlertBatteryEndOfLifeSoon {
			sev = SeverityInfo
		}
		c := Change{Time: now, Name: k.name, Severity: sev, Entity: id}
		if f != nil {
			a.firing[k] = true
			c.Status, c.Value, c.Summary = StatusFiring, float64(f.DaysLeft), ageSummary(f)
		} else {
			delete(a.firing, k)
			c.Status, c.Summary = StatusResolved, e.ageResolution(k)
		}
		out = append(out, c)
	}
	return out
}

// ageSummary says why a battery is due, for people.
func ageSummary(f *lifecycle.Finding) string {
	what := "batteries of ups " + f.UPS
	if f.String != "" {
		what = fmt.Sprintf("batteries of string %s/%s", f.UPS, f.String)
	}
	verdict := "are past end of life"
	if f.State == lifecycle.StateSoon {
		verdict = fmt.Sprintf("reach end of life on %s (in %d days)", f.EndOfLife, f.DaysLeft)
	}
	return fmt.Sprintf("%s %s: %s", what, verdict, strings.Join(f.Reasons, "; "))
}

// ageResolution says why an age alert resolved: acknowledged, or no longer
// due (replaced, dates corrected, now past end of life instead of soon).
func (e *Engine) ageResolution(k ageKey) string {
	for i := range e.age.findings {
		f := &e.age.findings[i]
		if f.UPS != k.ups || f.String != k.str {
			continue
		}
		if f.Ack != nil {
			return fmt.Sprintf("acknowledged by %s: replacement planned for %s (acknowledgement expires %s)",
				f.Ack.Owner, f.Ack.Planned, f.Ack.Expires)
		}
		return fmt.Sprintf("now %s", strings.ReplaceAll(f.State.String(), "_", " "))
	}
	return "no longer in the inventory"
}
