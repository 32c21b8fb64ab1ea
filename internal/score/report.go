package score

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellwarden/cellwarden/internal/sim"
)

// Column titles of WriteMarkdown.
const (
	OursTitle     = "cellwarden"
	BaselineTitle = "static BMS baseline"
)

// notApplicable is shown for undefined figures; absent marks a figure that
// one report of a comparison does not have (a class without faults there).
const (
	notApplicable = "n/a"
	absent        = "–"
)

// WriteTable writes r as plain-text tables for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	if r == nil {
		return errors.New("score: nil report")
	}
	ew := &errWriter{w: w}
	ew.printf("runs %d, cell-days %s, firing alerts %d\n", r.Runs, fmtFloat(r.CellDays), r.Alerts)

	ew.printf("\nDETECTION BY FAULT CLASS\n")
	if len(r.Classes) == 0 {
		ew.printf("no faults\n")
	} else {
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "class\tfaults\trecall\tmedian delay\tp90 delay\tnotifications median\tnotifications max")
		for _, c := range r.Classes {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Class, c.Faults, c.Recall,
				fmtDurationStat(c.Delay, c.Delay.Median), fmtDurationStat(c.Delay, c.Delay.P90),
				fmtCountMedian(c.Notifications), fmtCountMax(c.Notifications))
		}
		tw.Flush()
	}

	ew.printf("\nTHERMAL RUNAWAY LEAD TIME BEFORE CRITICAL (80 °C)\n")
	rw := r.Runaway
	if rw.Faults == 0 && rw.WithoutCriticalTime == 0 {
		ew.printf("no thermal-runaway faults\n")
	} else {
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "faults\twithout critical time\tdetected\tmedian lead\tmin lead\tdetected >= 30m early")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\n", rw.Faults, rw.WithoutCriticalTime, rw.Detected,
			fmtDurationStat(rw.Lead, rw.Lead.Median), fmtDurationStat(rw.Lead, rw.Lead.Min), rw.Early)
		tw.Flush()
	}

	fa := r.FalseAlerts
	ew.printf("\nFALSE ALERTS (%d over %s cell-days)\n", fa.Total, fmtFloat(fa.CellDays))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "severity\tcount\tper 1000 cell-days")
	for _, c := range fa.BySeverity {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", severityName(c.Key), c.Count, fmtRate(fa, c.Count))
	}
	tw.Flush()
	ew.printf("\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "alertname\tcount\tper 1000 cell-days")
	for _, c := range fa.ByAlertname {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Key, c.Count, fmtRate(fa, c.Count))
	}
	tw.Flush()

	e := r.EndOfLife
	ew.printf("\nEND OF LIFE\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "recall\trecall end_of_life\trecall soon\tprecision")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Recall, e.RecallEndOfLife, e.RecallSoon, e.Precision)
	tw.Flush()
	return ew.err
}

// WriteMarkdown writes one markdown table per section (detection by fault
// class, thermal-runaway lead time, false alerts, notifications per
// incident, end of life) with a column for ours and, when baseline is not
// nil, a column for the static BMS baseline next to it.
func WriteMarkdown(w io.Writer, ours, baseline *Report) error {
	if ours == nil {
		return errors.New("score: nil report")
	}
	reports := []*Report{ours}
	if baseline != nil {
		reports = append(reports, baseline)
	}
	ew := &errWriter{w: w}
	ew.printf("Scored %d runs, %s cell-days.\n", ours.Runs, fmtFloat(ours.CellDays))
	for _, s := range sections(reports) {
		ew.printf("\n## %s\n\n", s.title)
		if len(s.rows) == 0 {
			ew.printf("%s\n", s.empty)
			continue
		}
		head := append(slices.Clone(s.head), OursTitle)
		if baseline != nil {
			head = append(head, BaselineTitle)
		}
		ew.printf("|%s|\n", strings.Join(mdCells(head), "|"))
		align := slices.Repeat([]string{"---"}, len(s.head))
		align = append(align, slices.Repeat([]string{"---:"}, len(reports))...)
		ew.printf("|%s|\n", strings.Join(align, "|"))
		for _, row := range s.rows {
			cells := slices.Clone(row.keys)
			for _, r := range reports {
				cells = append(cells, row.cell(r))
			}
			ew.printf("|%s|\n", strings.Join(mdCells(cells), "|"))
		}
	}
	return ew.err
}

// section is one table of WriteMarkdown: key columns, then one value
// column per report.
type section struct {
	title string
	head  []string
	rows  []row
	empty string // shown instead of a table without rows
}

type row struct {
	keys []string
	cell func(*Report) string
}

func sections(reports []*Report) []section {
	present := map[string]bool{}
	runaway := false
	for _, r := range reports {
		for _, c := range r.Classes {
			present[c.Class] = true
		}
		runaway = runaway || r.Runaway.Faults > 0 || r.Runaway.WithoutCriticalTime > 0
	}
	classes := classOrder(present)

	byClass := func(class string, f func(ClassReport) string) func(*Report) string {
		return func(r *Report) string {
			c, ok := r.Class(class)
			if !ok {
				return absent
			}
			return f(c)
		}
	}
	detection := section{title: "Detection by fault class", head: []string{"class", "metric"}, empty: "No faults in the scenarios."}
	notifications := section{title: "Notifications per incident", head: []string{"class", "metric"}, empty: "No faults in the scenarios."}
	for _, class := range classes {
		detection.rows = append(detection.rows,
			row{[]string{class, "faults"}, byClass(class, func(c ClassReport) string { return fmt.Sprint(c.Faults) })},
			row{[]string{class, "recall"}, byClass(class, func(c ClassReport) string { return c.Recall.String() })},
			row{[]string{class, "median delay"}, byClass(class, func(c ClassReport) string { return fmtDurationStat(c.Delay, c.Delay.Median) })},
			row{[]string{class, "p90 delay"}, byClass(class, func(c ClassReport) string { return fmtDurationStat(c.Delay, c.Delay.P90) })},
		)
		notifications.rows = append(notifications.rows,
			row{[]string{class, "median"}, byClass(class, func(c ClassReport) string { return fmtCountMedian(c.Notifications) })},
			row{[]string{class, "max"}, byClass(class, func(c ClassReport) string { return fmtCountMax(c.Notifications) })},
		)
	}

	lead := section{title: "Thermal runaway: lead time before critical (80 °C)", head: []string{"metric"}, empty: "No thermal-runaway faults in the scenarios."}
	if runaway {
		lead.rows = []row{
			{[]string{"faults with critical time"}, func(r *Report) string { return fmt.Sprint(r.Runaway.Faults) }},
			{[]string{"faults without critical time"}, func(r *Report) string { return fmt.Sprint(r.Runaway.WithoutCriticalTime) }},
			{[]string{"detected"}, func(r *Report) string { return fmt.Sprint(r.Runaway.Detected) }},
			{[]string{"median lead"}, func(r *Report) string { return fmtDurationStat(r.Runaway.Lead, r.Runaway.Lead.Median) }},
			{[]string{"min lead"}, func(r *Report) string { return fmtDurationStat(r.Runaway.Lead, r.Runaway.Lead.Min) }},
			{[]string{"detected >= 30m before critical"}, func(r *Report) string { return r.Runaway.Early.String() }},
		}
	}

	falseAlerts := section{title: "False alerts", head: []string{"metric"}}
	falseAlerts.rows = []row{
		{[]string{"cell-days"}, func(r *Report) string { return fmtFloat(r.FalseAlerts.CellDays) }},
		{[]string{"false alerts"}, func(r *Report) string { return fmt.Sprint(r.FalseAlerts.Total) }},
	}
	sevs, names := countKeys(reports, func(r *Report) []Count { return r.FalseAlerts.BySeverity }), countKeys(reports, func(r *Report) []Count { return r.FalseAlerts.ByAlertname })
	slices.SortStableFunc(sevs, func(a, b string) int { return severityRank(a) - severityRank(b) })
	for _, sev := range sevs {
		falseAlerts.rows = append(falseAlerts.rows, row{[]string{severityName(sev) + " per 1000 cell-days"}, func(r *Report) string {
			return fmtRate(r.FalseAlerts, countOf(r.FalseAlerts.BySeverity, sev))
		}})
	}
	for _, name := range names {
		falseAlerts.rows = append(falseAlerts.rows, row{[]string{name + " (count)"}, func(r *Report) string {
			return fmt.Sprint(countOf(r.FalseAlerts.ByAlertname, name))
		}})
	}

	eol := section{title: "End of life", head: []string{"metric"}}
	eol.rows = []row{
		{[]string{"recall"}, func(r *Report) string { return r.EndOfLife.Recall.String() }},
		{[]string{"recall " + sim.StateEndOfLife}, func(r *Report) string { return r.EndOfLife.RecallEndOfLife.String() }},
		{[]string{"recall " + sim.StateSoon}, func(r *Report) string { return r.EndOfLife.RecallSoon.String() }},
		{[]string{"precision"}, func(r *Report) string { return r.EndOfLife.Precision.String() }},
	}
	return []section{detection, lead, falseAlerts, notifications, eol}
}

// countKeys returns the union of the keys of the counts of reports, sorted.
func countKeys(reports []*Report, counts func(*Report) []Count) []string {
	var keys []string
	for _, r := range reports {
		for _, c := range counts(r) {
			keys = append(keys, c.Key)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func countOf(counts []Count, key string) int {
	i := slices.IndexFunc(counts, func(c Count) bool { return c.Key == key })
	if i < 0 {
		return 0
	}
	return counts[i].Count
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = " " + strings.ReplaceAll(c, "|", `\|`) + " "
	}
	return out
}

func severityName(s string) string {
	if s == "" {
		return "(no severity)"
	}
	return s
}

func fmtRate(f FalseAlertReport, n int) string {
	v, ok := f.PerKiloCellDays(n)
	if !ok {
		return notApplicable
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtFloat(v float64) string {
	return fmt.Sprintf("%.1f", v)
}

func fmtDurationStat(s DurationStats, d time.Duration) string {
	if s.N == 0 {
		return notApplicable
	}
	return fmtDuration(d)
}

func fmtCountMedian(s CountStats) string {
	if s.N == 0 {
		return notApplicable
	}
	return fmt.Sprintf("%g", s.Median)
}

func fmtCountMax(s CountStats) string {
	if s.N == 0 {
		return notApplicable
	}
	return fmt.Sprint(s.Max)
}

// fmtDuration formats d for people: "45s", "4m30s", "1h12m" (seconds
// dropped from an hour on), "-12m".
func fmtDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var b strings.Builder
	switch {
	case d == 0:
		return "0s"
	case h > 0:
		fmt.Fprintf(&b, "%dh", h)
		if m > 0 {
			fmt.Fprintf(&b, "%dm", m)
		}
	case m > 0:
		fmt.Fprintf(&b, "%dm", m)
		if s > 0 {
			fmt.Fprintf(&b, "%ds", s)
		}
	default:
		fmt.Fprintf(&b, "%ds", s)
	}
	return sign + b.String()
}

// errWriter keeps the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
