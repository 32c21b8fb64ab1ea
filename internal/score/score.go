// Package score turns the alerts a detector produced on simulated scenarios,
// together with the scenarios' ground truth (sim.Labels), into the figures
// a detection engineer looks at. The rules, exactly as implemented:
//
// Alerts. Only lines with status "firing" are alerts; "resolved" lines are
// ignored. Every firing line counts, also a repeat of the same alertname on
// the same entity.
//
// Entities. An alert's entity is the path of its labels ups, string, module,
// cell, taken in that order up to the first one that is missing or empty
// (an alert without a string label is a UPS-level alert, one without a ups
// label concerns the whole fleet). A fault's entity is the same path built
// from its label. Identifiers are compared byte for byte.
//
// Attribution. A firing alert is attributable to a fault of the same run
// when (a) one entity path is a prefix of the other (the alert's entity is
// the fault's entity, an ancestor of it or a descendant of it) and (b)
// onset <= alert time <= end + AttributionGrace (both edges included). An
// alert attributable to several faults counts for each of them. Alerts named
// BatteryEndOfLife or BatteryEndOfLifeSoon are never attributed to faults.
//
// Per fault class, in sim.Classes() order (classes unknown to sim follow,
// sorted; classes without faults are omitted): faults; detected (faults
// with at least one attributable alert); recall = detected / faults;
// detection delay = first attributable alert time - onset, over detected
// faults, as median and p90; notifications per incident = number of
// attributable alerts of a fault, over all faults of the class (undetected
// ones count 0), as median and max.
//
// Thermal runaway additionally, over runaway faults that have a critical
// time (those without one are only counted): lead time = critical time -
// first attributable alert time, over detected faults, as median and min
// (negative when the first alert came after the critical time); and the
// share of those faults, detected or not, whose lead time is >= EarlyWarning.
//
// Statistics. The median of an even number of values is the mean of the two
// middle ones; p90 is by nearest rank: the ceil(0.9*n)-th smallest value.
//
// False alerts: firing alerts that are attributable to no fault and are not
// end-of-life alerts. They are counted per severity label (warning and
// critical always, any other severity when it occurs) and per alertname,
// and rated per 1000 cell-days, cell-days being the sum of Labels.CellDays
// over the runs.
//
// End of life. Distinct end-of-life alerts are the distinct (run, ups,
// string, alertname) of firing BatteryEndOfLife / BatteryEndOfLifeSoon
// alerts (finer labels ignored; no string label means the UPS as a whole).
// A labelled string of state end_of_life is detected when its run has a
// BatteryEndOfLife alert for its ups and either its string or no string;
// state soon likewise with BatteryEndOfLifeSoon. Recall is over labelled
// strings of state end_of_life or soon (and per state). Precision = distinct
// end-of-life alerts that match a labelled string of their state (same ups,
// same string or none) / all distinct end-of-life alerts.
//
// Every ratio with a zero denominator, every statistic over no values and
// every rate over zero cell-days is reported as n/a. Output is sorted and
// does not depend on the order of runs' alerts.
package score

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/cellwarden/cellwarden/internal/sim"
)

// Scoring constants.
const (
	// AttributionGrace is how long after a fault's end an alert is still
	// attributed to it.
	AttributionGrace = 15 * time.Minute
	// EarlyWarning is the lead time before a thermal runaway's critical
	// time that counts as detected early.
	EarlyWarning = 30 * time.Minute
)

// End-of-life alert names, scored apart from faults.
const (
	AlertEndOfLife     = "BatteryEndOfLife"
	AlertEndOfLifeSoon = "BatteryEndOfLifeSoon"
)

// Run pairs one scenario's ground truth with the alerts a detector produced
// on it.
type Run struct {
	Labels *sim.Labels
	Alerts []Alert
}

// Report is the scored result of many runs.
type Report struct {
	// Runs is the number of runs scored.
	Runs int
	// CellDays is the sum of Labels.CellDays over the runs.
	CellDays float64
	// Alerts is the number of firing alerts over the runs.
	Alerts int
	// Classes holds one entry per fault class with at least one fault.
	Classes []ClassReport
	// Runaway is the lead-time report of thermal-runaway faults.
	Runaway RunawayReport
	// FalseAlerts counts the alerts attributable to no fault.
	FalseAlerts FalseAlertReport
	// EndOfLife scores the end-of-life alerts against the battery labels.
	EndOfLife EndOfLifeReport
}

// Class returns the report of class c, or false when c had no faults.
func (r *Report) Class(c string) (ClassReport, bool) {
	i := slices.IndexFunc(r.Classes, func(cr ClassReport) bool { return cr.Class == c })
	if i < 0 {
		return ClassReport{}, false
	}
	return r.Classes[i], true
}

// ClassReport is the detection performance on the faults of one class.
type ClassReport struct {
	Class string
	// Faults is the number of faults; Recall.Num of them were detected.
	Faults int
	Recall Ratio
	// Delay is first attributable alert time - onset over detected faults.
	Delay DurationStats
	// Notifications is the number of attributable alerts per fault, over
	// all faults of the class.
	Notifications CountStats
}

// RunawayReport is the lead time of thermal-runaway detection before the
// critical time.
type RunawayReport struct {
	// Faults is the number of runaway faults with a critical time.
	Faults int
	// WithoutCriticalTime counts runaway faults without one; they are left
	// out of the lead-time figures.
	WithoutCriticalTime int
	// Detected is the number of Faults with an attributable alert.
	Detected int
	// Lead is critical time - first attributable alert time over detected
	// faults; negative when detected after the critical time.
	Lead DurationStats
	// Early is the share of Faults detected at least EarlyWarning before
	// their critical time.
	Early Ratio
}

// FalseAlertReport counts the firing alerts attributable to no fault,
// end-of-life alerts excluded.
type FalseAlertReport struct {
	// CellDays is the exposure the rates are computed over.
	CellDays float64
	// Total is the number of false alerts.
	Total int
	// BySeverity is ordered warning, critical, info, then others by name;
	// warning and critical are always present.
	BySeverity []Count
	// ByAlertname is ordered by alertname.
	ByAlertname []Count
}

// PerKiloCellDays returns n per 1000 cell-days, or false when there are no
// cell-days.
func (f FalseAlertReport) PerKiloCellDays(n int) (float64, bool) {
	if f.CellDays <= 0 {
		return 0, false
	}
	return float64(n) / f.CellDays * 1000, true
}

// Count is a number of alerts under a key (a severity or an alertname).
type Count struct {
	Key   string
	Count int
}

// EndOfLifeReport scores end-of-life alerts against the battery labels.
type EndOfLifeReport struct {
	// Recall is over labelled strings of state end_of_life or soon.
	Recall Ratio
	// RecallEndOfLife and RecallSoon split Recall by state.
	RecallEndOfLife Ratio
	RecallSoon      Ratio
	// Precision is matching distinct end-of-life alerts / all of them.
	Precision Ratio
}

// Ratio is Num / Den, n/a when Den is 0.
type Ratio struct {
	Num, Den int
}

// Value returns the ratio, or false when it is undefined.
func (r Ratio) Value() (float64, bool) {
	if r.Den == 0 {
		return 0, false
	}
	return float64(r.Num) / float64(r.Den), true
}

// String formats the ratio as a percentage with its parts, "75.0% (3/4)",
// or "n/a".
func (r Ratio) String() string {
	v, ok := r.Value()
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", v*100, r.Num, r.Den)
}

// DurationStats summarises N durations; the other fields are meaningless
// when N is 0.
type DurationStats struct {
	N                     int
	Min, Median, P90, Max time.Duration
}

// CountStats summarises N counts; the other fields are meaningless when N
// is 0.
type CountStats struct {
	N      int
	Median float64
	Max    int
	Total  int
}

// Score scores the runs. A run with nil Labels has no faults, no batteries
// and no cell-days.
func Score(runs []Run) *Report {
	rep := &Report{Runs: len(runs)}
	type faultResult struct {
		fault    sim.FaultLabel
		detected bool
		first    time.Time
		alerts   int
	}
	byClass := map[string][]faultResult{}
	falseBySev := map[string]int{"warning": 0, "critical": 0}
	falseByName := map[string]int{}
	var eol eolCounter
	for _, run := range runs {
		labels := run.Labels
		if labels == nil {
			labels = &sim.Labels{}
		}
		rep.CellDays += labels.CellDays
		results := make([]faultResult, len(labels.Faults))
		paths := make([][]string, len(labels.Faults))
		for i, f := range labels.Faults {
			results[i].fault = f
			paths[i] = entityPath(f.UPS, f.String, f.Module, f.Cell)
		}
		var eolAlerts []eolKey
		for _, a := range run.Alerts {
			if a.Status != StatusFiring {
				continue
			}
			rep.Alerts++
			name := a.Labels["alertname"]
			if name == AlertEndOfLife || name == AlertEndOfLifeSoon {
				eolAlerts = append(eolAlerts, eolKey{ups: a.Labels["ups"], str: a.Labels["string"], name: name})
				continue
			}
			path := entityPath(a.Labels["ups"], a.Labels["string"], a.Labels["module"], a.Labels["cell"])
			attributed := false
			for i := range results {
				f := &results[i]
				if !related(path, paths[i]) || a.Time.Before(f.fault.Onset) || a.Time.After(f.fault.End.Add(AttributionGrace)) {
					continue
				}
				attributed = true
				f.alerts++
				if !f.detected || a.Time.Before(f.first) {
					f.first = a.Time
				}
				f.detected = true
			}
			if !attributed {
				falseBySev[a.Labels["severity"]]++
				falseByName[name]++
			}
		}
		for _, f := range results {
			byClass[f.fault.Class] = append(byClass[f.fault.Class], f)
		}
		eol.add(labels.Batteries, eolAlerts)
	}

	for _, class := range classOrder(byClass) {
		results := byClass[class]
		cr := ClassReport{Class: class, Faults: len(results), Recall: Ratio{Den: len(results)}}
		var delays []time.Duration
		counts := make([]int, 0, len(results))
		for _, f := range results {
			counts = append(counts, f.alerts)
			if f.detected {
				cr.Recall.Num++
				delays = append(delays, f.first.Sub(f.fault.Onset))
			}
		}
		cr.Delay = durationStats(delays)
		cr.Notifications = countStats(counts)
		rep.Classes = append(rep.Classes, cr)
	}

	var leads []time.Duration
	for _, f := range byClass[sim.ClassThermalRunaway] {
		if f.fault.CriticalTime == nil {
			rep.Runaway.WithoutCriticalTime++
			continue
		}
		rep.Runaway.Faults++
		if !f.detected {
			continue
		}
		rep.Runaway.Detected++
		lead := f.fault.CriticalTime.Sub(f.first)
		leads = append(leads, lead)
		if lead >= EarlyWarning {
			rep.Runaway.Early.Num++
		}
	}
	rep.Runaway.Early.Den = rep.Runaway.Faults
	rep.Runaway.Lead = durationStats(leads)

	rep.FalseAlerts.CellDays = rep.CellDays
	for sev, n := range falseBySev {
		rep.FalseAlerts.Total += n
		rep.FalseAlerts.BySeverity = append(rep.FalseAlerts.BySeverity, Count{Key: sev, Count: n})
	}
	slices.SortFunc(rep.FalseAlerts.BySeverity, func(a, b Count) int {
		return cmp.Or(cmp.Compare(severityRank(a.Key), severityRank(b.Key)), cmp.Compare(a.Key, b.Key))
	})
	for name, n := range falseByName {
		rep.FalseAlerts.ByAlertname = append(rep.FalseAlerts.ByAlertname, Count{Key: name, Count: n})
	}
	slices.SortFunc(rep.FalseAlerts.ByAlertname, func(a, b Count) int { return cmp.Compare(a.Key, b.Key) })

	rep.EndOfLife = eol.report()
	return rep
}

// entityPath returns the identifiers down to the first empty one.
func entityPath(ids ...string) []string {
	for i, id := range ids {
		if id == "" {
			return ids[:i]
		}
	}
	return ids
}

// related reports whether one path is a prefix of the other: the same
// entity, an ancestor or a descendant.
func related(a, b []string) bool {
	n := min(len(a), len(b))
	return slices.Equal(a[:n], b[:n])
}

// classOrder returns the classes present, in sim.Classes() order, then
// unknown classes sorted.
func classOrder[V any](present map[string]V) []string {
	var out []string
	known := map[string]bool{}
	for _, c := range sim.Classes() {
		known[c] = true
		if _, ok := present[c]; ok {
			out = append(out, c)
		}
	}
	var extra []string
	for c := range present {
		if !known[c] {
			extra = append(extra, c)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

func severityRank(s string) int {
	switch s {
	case "warning":
		return 0
	case "critical":
		return 1
	case "info":
		return 2
	}
	return 3
}

// eolKey is a distinct end-of-life alert of one run.
type eolKey struct {
	ups, str, name string
}

// eolCounter accumulates end-of-life recall and precision over runs.
type eolCounter struct {
	eol, soon, precision Ratio
}

func (c *eolCounter) add(batteries []sim.BatteryLabel, alerts []eolKey) {
	distinct := map[eolKey]bool{}
	for _, a := range alerts {
		distinct[a] = true
	}
	stateOf := map[string]string{AlertEndOfLife: sim.StateEndOfLife, AlertEndOfLifeSoon: sim.StateSoon}
	for _, b := range batteries {
		var r *Ratio
		var name string
		switch b.State {
		case sim.StateEndOfLife:
			r, name = &c.eol, AlertEndOfLife
		case sim.StateSoon:
			r, name = &c.soon, AlertEndOfLifeSoon
		default:
			continue
		}
		r.Den++
		if distinct[eolKey{b.UPS, b.String, name}] || distinct[eolKey{b.UPS, "", name}] {
			r.Num++
		}
	}
	for a := range distinct {
		c.precision.Den++
		if slices.ContainsFunc(batteries, func(b sim.BatteryLabel) bool {
			return b.UPS == a.ups && (a.str == "" || a.str == b.String) && b.State == stateOf[a.name]
		}) {
			c.precision.Num++
		}
	}
}

func (c *eolCounter) report() EndOfLifeReport {
	return EndOfLifeReport{
		Recall:          Ratio{Num: c.eol.Num + c.soon.Num, Den: c.eol.Den + c.soon.Den},
		RecallEndOfLife: c.eol,
		RecallSoon:      c.soon,
		Precision:       c.precision,
	}
}

// nearestRank returns the index of the p-percentile (0 < p <= 100) of n
// sorted values by nearest rank: ceil(p/100*n) - 1.
func nearestRank(p, n int) int {
	return max((p*n+99)/100-1, 0)
}

func durationStats(ds []time.Duration) DurationStats {
	if len(ds) == 0 {
		return DurationStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	return DurationStats{
		N:      n,
		Min:    s[0],
		Median: (s[(n-1)/2] + s[n/2]) / 2,
		P90:    s[nearestRank(90, n)],
		Max:    s[n-1],
	}
}

func countStats(cs []int) CountStats {
	if len(cs) == 0 {
		return CountStats{}
	}
	s := slices.Clone(cs)
	slices.Sort(s)
	n := len(s)
	total := 0
	for _, c := range s {
		total += c
	}
	return CountStats{
		N:      n,
		Median: float64(s[(n-1)/2]+s[n/2]) / 2,
		Max:    s[n-1],
		Total:  total,
	}
}
