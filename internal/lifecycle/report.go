package lifecycle

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Formats are the report formats Render writes.
var Formats = []string{"table", "csv", "json", "markdown", "html"}

// Report is the fleet audit: every finding as of a day, with the settings
// it was worked out with.
type Report struct {
	AsOf        Date
	TimeZone    string
	HorizonDays int
	SOHLimit    float64
	// Sources names the files read, for the header.
	Sources []string
	// Findings as Evaluate returns them, most urgent first.
	Findings []Finding
}

// NewReport evaluates e as of the day asOf and returns the report.
func NewReport(e *Evaluator, asOf Date, sources []string) *Report {
	cfg := &e.cfg
	return &Report{
		AsOf: asOf, TimeZone: cfg.Location().String(), HorizonDays: cfg.HorizonDays(), SOHLimit: cfg.SOHLimit,
		Sources:  sources,
		Findings: e.EvaluateDay(asOf),
	}
}

// Summary counts the findings by group.
type Summary struct {
	EndOfLife, Soon, DataProblems, OK, Acknowledged int
}

// Summary counts the findings: past end of life, due soon, with data
// problems (or of unknown state) and otherwise fine, each finding in its
// most urgent group; Acknowledged counts those an acknowledgement covers.
func (r *Report) Summary() Summary {
	var s Summary
	for i := range r.Findings {
		f := &r.Findings[i]
		switch f.urgency() {
		case 0:
			s.EndOfLife++
		case 1:
			s.Soon++
		case 2:
			s.DataProblems++
		default:
			s.OK++
		}
		if f.Ack != nil {
			s.Acknowledged++
		}
	}
	return s
}

// ExitStatus is the audit's exit status: 2 when a battery is past end of
// life, 1 when one is due soon, else 0. Acknowledged findings do not
// count. With strict, data problems and unknown states count as 1.
func (r *Report) ExitStatus(strict bool) int {
	code := 0
	for i := range r.Findings {
		f := &r.Findings[i]
		switch {
		case f.Ack != nil:
		case f.State == StateEndOfLife:
			code = 2
		case f.State == StateSoon || (strict && f.urgency() == 2):
			code = max(code, 1)
		}
	}
	return code
}

// Render writes the report in format (one of Formats). The output depends
// only on the report.
func Render(w io.Writer, format string, r *Report) error {
	switch format {
	case "table":
		return renderTable(w, r)
	case "csv":
		return renderCSV(w, r)
	case "json":
		return renderJSON(w, r)
	case "markdown":
		return renderMarkdown(w, r)
	case "html":
		return renderHTML(w, r)
	}
	return fmt.Errorf("unknown format %q: use one of %s", format, strings.Join(Formats, ", "))
}

func (r *Report) title() string {
	return fmt.Sprintf("Battery age audit as of %s (%s)", r.AsOf, r.TimeZone)
}

func (r *Report) settings() string {
	return fmt.Sprintf("horizon %d days, state-of-health limit %s", r.HorizonDays, ratio(r.SOHLimit))
}

func (s Summary) String() string {
	out := fmt.Sprintf("%d past end of life, %d due soon, %d with data problems, %d fine", s.EndOfLife, s.Soon, s.DataProblems, s.OK)
	if s.Acknowledged > 0 {
		out += fmt.Sprintf("; %d acknowledged", s.Acknowledged)
	}
	return out
}

// name is "ups/string", or the UPS alone.
func (f *Finding) name() string {
	if f.String == "" {
		return f.UPS + " (all strings)"
	}
	return f.UPS + "/" + f.String
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (f *Finding) due() string {
	switch {
	case f.EndOfLife.IsZero():
		return "-"
	case f.DaysLeft < 0:
		return fmt.Sprintf("%d d ago", -f.DaysLeft)
	case f.DaysLeft == 0:
		return "today"
	}
	return fmt.Sprintf("in %d d", f.DaysLeft)
}

func (f *Finding) age() string {
	if !f.AgeKnown {
		return "-"
	}
	return strconv.FormatFloat(f.AgeYears(), 'f', 1, 64) + " y"
}

func (f *Finding) designLife() string {
	if f.DesignLife.Years == 0 {
		return "-"
	}
	return num(f.DesignLife.Years) + " y"
}

func (f *Finding) sohText() string {
	if f.SOH == nil {
		return "-"
	}
	return ratio(f.SOH.Current)
}

func (f *Finding) crossing() string {
	switch {
	case f.SOH == nil:
		return "-"
	case f.SOH.Below:
		return "below"
	case f.SOH.Crossing.IsZero():
		return "-"
	}
	return f.SOH.Crossing.String()
}

// dates lists each date with its source, for the details.
func (f *Finding) dates() []string {
	var out []string
	add := func(name string, d Dated) {
		if !d.Date.IsZero() {
			out = append(out, fmt.Sprintf("%s %s (%s)", name, d.Date, d.Source))
		}
	}
	add("manufactured", f.Manufactured)
	add("installed", f.Installed)
	if f.DesignLife.Years > 0 {
		out = append(out, fmt.Sprintf("design life %s y (%s)", num(f.DesignLife.Years), f.DesignLife.Source))
	}
	add("warranty until", f.Warranty)
	add("vendor replace-by", f.ReplaceBy)
	return out
}

// identity is "vendor model, serial S, chemistry".
func (f *Finding) identity() string {
	var parts []string
	if s := strings.TrimSpace(f.Vendor + " " + f.Model); s != "" {
		parts = append(parts, s)
	}
	if f.Serial != "" {
		parts = append(parts, "serial "+f.Serial)
	}
	if c := f.Chemistry.String(); c != "" {
		parts = append(parts, c)
	}
	return strings.Join(parts, ", ")
}

func (f *Finding) sohDetail() string {
	s := f.SOH
	if s == nil {
		return ""
	}
	out := fmt.Sprintf("state of health %s on %s (limit %s; %d six-hour buckets over %.1f days)", ratio(s.Current), s.At, ratio(s.Limit), s.Points, s.SpanDays)
	switch {
	case !s.Crossing.IsZero():
		out += fmt.Sprintf("; trend %s a year, reaches %s on %s", signed(s.SlopePerYear), ratio(s.Limit), s.Crossing)
	case s.Note != "":
		out += "; " + s.Note
	}
	return out
}

func (a *Ack) describe() string {
	s := fmt.Sprintf("acknowledged (%s) by %s, replacement planned %s, until %s", a.State, a.Owner, a.Planned, a.Expires)
	if a.Note != "" {
		s += ": " + a.Note
	}
	return s
}

// details are the lines under a finding's heading: reasons, identity,
// dates with sources, state of health, problems, acknowledgement.
func (f *Finding) details() []string {
	out := append([]string(nil), f.Reasons...)
	if id := f.identity(); id != "" {
		out = append(out, id)
	}
	out = append(out, f.dates()...)
	if s := f.sohDetail(); s != "" {
		out = append(out, s)
	}
	for _, p := range f.Problems {
		out = append(out, "data problem ("+p.Kind.String()+"): "+p.Message)
	}
	if f.Ack != nil {
		out = append(out, f.Ack.describe())
	}
	return out
}

func (f *Finding) heading() string {
	s := f.name() + ": " + f.State.String()
	if !f.EndOfLife.IsZero() {
		s += ", end of life " + f.EndOfLife.String() + " (" + f.due() + ")"
	}
	return s
}

var tableHeader = []string{"STATE", "UPS", "STRING", "END OF LIFE", "DUE", "AGE", "DESIGN LIFE", "WARRANTY", "REPLACE BY", "SOH", "SOH CROSSING", "DATA PROBLEMS", "ACK"}

func (f *Finding) row() []string {
	ack := "-"
	if f.Ack != nil {
		ack = f.Ack.Owner
	}
	return []string{f.State.String(), f.UPS, dash(f.String), dash(f.EndOfLife.String()), f.due(), f.age(), f.designLife(),
		dash(f.Warranty.Date.String()), dash(f.ReplaceBy.Date.String()), f.sohText(), f.crossing(), f.problemKinds(), ack}
}

// problemKinds lists the kinds of the finding's data problems, "-" for
// none.
func (f *Finding) problemKinds() string {
	var kinds []string
	for _, p := range f.Problems {
		if k := p.Kind.String(); !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return dash(strings.Join(kinds, ","))
}

func renderTable(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; %s\n%s\n\n", r.title(), r.settings(), r.Summary())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for i := range r.Findings {
		fmt.Fprintln(tw, strings.Join(r.Findings[i].row(), "\t"))
	}
	tw.Flush()
	for i := range r.Findings {
		f := &r.Findings[i]
		fmt.Fprintf(&b, "\n%s\n", f.heading())
		for _, d := range f.details() {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var csvHeader = []string{"state", "ups", "string", "end_of_life", "days_left", "age_years",
	"manufactured", "manufactured_source", "installed", "installed_source", "design_life_years", "design_life_source",
	"warranty_until", "warranty_source", "replace_by", "replace_by_source",
	"soh", "soh_date", "soh_crossing", "soh_note", "reasons", "problems",
	"ack_owner", "ack_planned", "ack_expires", "vendor", "model", "serial", "chemistry"}

func renderCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for i := range r.Findings {
		f := &r.Findings[i]
		days, age, life := "", "", ""
		if !f.EndOfLife.IsZero() {
			days = strconv.Itoa(f.DaysLeft)
		}
		if f.AgeKnown {
			age = strconv.FormatFloat(f.AgeYears(), 'f', 2, 64)
		}
		if f.DesignLife.Years > 0 {
			life = num(f.DesignLife.Years)
		}
		var soh, sohDate, cross, note string
		if s := f.SOH; s != nil {
			soh, sohDate, cross, note = ratio(s.Current), s.At.String(), s.Crossing.String(), s.Note
		}
		var problems []string
		for _, p := range f.Problems {
			problems = append(problems, p.Kind.String()+": "+p.Message)
		}
		var owner, planned, expires string
		if a := f.Ack; a != nil {
			owner, planned, expires = a.Owner, a.Planned.String(), a.Expires.String()
		}
		cw.Write([]string{f.State.String(), f.UPS, f.String, f.EndOfLife.String(), days, age,
			f.Manufactured.Date.String(), f.Manufactured.Source, f.Installed.Date.String(), f.Installed.Source, life, f.DesignLife.Source,
			f.Warranty.Date.String(), f.Warranty.Source, f.ReplaceBy.Date.String(), f.ReplaceBy.Source,
			soh, sohDate, cross, note, strings.Join(f.Reasons, "; "), strings.Join(problems, "; "),
			owner, planned, expires, f.Vendor, f.Model, f.Serial, f.Chemistry.String()})
	}
	cw.Flush()
	return cw.Error()
}

// The JSON document of the report.
type (
	reportJSON struct {
		AsOf        string        `json:"as_of"`
		TimeZone    string        `json:"time_zone"`
		HorizonDays int           `json:"horizon_days"`
		SOHLimit    float64       `json:"soh_limit"`
		Sources     []string      `json:"sources"`
		Summary     summaryJSON   `json:"summary"`
		Findings    []findingJSON `json:"findings"`
	}
	summaryJSON struct {
		EndOfLife    int `json:"end_of_life"`
		Soon         int `json:"soon"`
		DataProblems int `json:"data_problems"`
		OK           int `json:"ok"`
		Acknowledged int `json:"acknowledged"`
	}
	datedJSON struct {
		Date   string `json:"date"`
		Source string `json:"source"`
	}
	yearsJSON struct {
		Years  float64 `json:"years"`
		Source string  `json:"source"`
	}
	lifeDateJSON struct {
		Reason string `json:"reason"`
		Date   string `json:"date"`
		Source string `json:"source"`
		Detail string `json:"detail,omitempty"`
	}
	sohJSON struct {
		Current      float64  `json:"current"`
		Date         string   `json:"date"`
		Limit        float64  `json:"limit"`
		Below        bool     `json:"below"`
		Points       int      `json:"points"`
		SpanDays     float64  `json:"span_days"`
		SlopePerYear *float64 `json:"slope_per_year"`
		Crossing     *string  `json:"crossing"`
		Note         string   `json:"note,omitempty"`
	}
	problemJSON struct {
		Kind    string `json:"kind"`
		Field   string `json:"field,omitempty"`
		Message string `json:"message"`
	}
	findingJSON struct {
		UPS          string         `json:"ups"`
		String       string         `json:"string,omitempty"`
		State        string         `json:"state"`
		EndOfLife    *string        `json:"end_of_life"`
		DaysLeft     *int           `json:"days_left"`
		Reasons      []string       `json:"reasons"`
		LifeDates    []lifeDateJSON `json:"life_dates"`
		Vendor       string         `json:"vendor,omitempty"`
		Model        string         `json:"model,omitempty"`
		Serial       string         `json:"serial,omitempty"`
		Chemistry    string         `json:"chemistry,omitempty"`
		Manufactured *datedJSON     `json:"manufactured"`
		Installed    *datedJSON     `json:"installed"`
		AgeDays      *int           `json:"age_days"`
		DesignLife   *yearsJSON     `json:"design_life"`
		Warranty     *datedJSON     `json:"warranty_until"`
		ReplaceBy    *datedJSON     `json:"replace_by"`
		SOH          *sohJSON       `json:"soh"`
		Problems     []problemJSON  `json:"problems"`
		Ack          *Ack           `json:"acknowledgement"`
	}
)

func datedOrNil(d Dated) *datedJSON {
	if d.Date.IsZero() {
		return nil
	}
	return &datedJSON{d.Date.String(), d.Source}
}

func (f *Finding) json() findingJSON {
	j := findingJSON{UPS: f.UPS, String: f.String, State: f.State.String(), Reasons: f.Reasons,
		Vendor: f.Vendor, Model: f.Model, Serial: f.Serial, Chemistry: f.Chemistry.String(),
		Manufactured: datedOrNil(f.Manufactured), Installed: datedOrNil(f.Installed),
		Warranty: datedOrNil(f.Warranty), ReplaceBy: datedOrNil(f.ReplaceBy), Ack: f.Ack,
		LifeDates: []lifeDateJSON{}, Problems: []problemJSON{}}
	if j.Reasons == nil {
		j.Reasons = []string{}
	}
	if !f.EndOfLife.IsZero() {
		s, d := f.EndOfLife.String(), f.DaysLeft
		j.EndOfLife, j.DaysLeft = &s, &d
	}
	if f.AgeKnown {
		a := f.AgeDays
		j.AgeDays = &a
	}
	if f.DesignLife.Years > 0 {
		j.DesignLife = &yearsJSON{f.DesignLife.Years, f.DesignLife.Source}
	}
	for _, d := range f.LifeDates {
		j.LifeDates = append(j.LifeDates, lifeDateJSON{d.Reason.String(), d.Date.String(), d.Source, d.Detail})
	}
	for _, p := range f.Problems {
		field := ""
		if p.Field != 0 {
			field = p.Field.String()
		}
		j.Problems = append(j.Problems, problemJSON{p.Kind.String(), field, p.Message})
	}
	if s := f.SOH; s != nil {
		j.SOH = &sohJSON{Current: s.Current, Date: s.At.String(), Limit: s.Limit, Below: s.Below, Points: s.Points, SpanDays: s.SpanDays, Note: s.Note}
		if s.HasTrend {
			v := s.SlopePerYear
			j.SOH.SlopePerYear = &v
		}
		if !s.Crossing.IsZero() {
			c := s.Crossing.String()
			j.SOH.Crossing = &c
		}
	}
	return j
}

func renderJSON(w io.Writer, r *Report) error {
	s := r.Summary()
	doc := reportJSON{AsOf: r.AsOf.String(), TimeZone: r.TimeZone, HorizonDays: r.HorizonDays, SOHLimit: r.SOHLimit,
		Sources: r.Sources, Summary: summaryJSON(s),
		Findings: []findingJSON{}}
	if doc.Sources == nil {
		doc.Sources = []string{}
	}
	for i := range r.Findings {
		doc.Findings = append(doc.Findings, r.Findings[i].json())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// mdEscape escapes the characters Markdown tables and emphasis use.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "<", "&lt;", ">", "&gt;").Replace(s)
}

func renderMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s. %s.\n\n", r.title(), strings.ToUpper(r.settings()[:1])+r.settings()[1:], r.Summary())
	if len(r.Sources) > 0 {
		fmt.Fprintf(&b, "Sources: %s.\n\n", mdEscape(strings.Join(r.Sources, ", ")))
	}
	head := make([]string, len(tableHeader))
	for i, h := range tableHeader {
		head[i] = strings.ToLower(h[:1]) + strings.ToLower(h[1:])
	}
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for i := range r.Findings {
		row := r.Findings[i].row()
		for j := range row {
			row[j] = mdEscape(row[j])
		}
		if r.Findings[i].State == StateEndOfLife {
			row[0] = "**" + row[0] + "**"
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	b.WriteString("\n## Details\n")
	for i := range r.Findings {
		f := &r.Findings[i]
		fmt.Fprintf(&b, "\n### %s\n\n", mdEscape(f.heading()))
		for _, d := range f.details() {
			fmt.Fprintf(&b, "- %s\n", mdEscape(d))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
