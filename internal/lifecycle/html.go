package lifecycle

import (
	_ "embed"
	"fmt"
	"html"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

var htmlReport = template.Must(template.New("report").Parse(reportTemplate))

// htmlFinding is a finding as the HTML template shows it.
type htmlFinding struct {
	ID      string
	Class   string
	Heading string
	Row     []string
	Details []string
}

func renderHTML(w io.Writer, r *Report) error {
	data := struct {
		Title, Settings, Summary string
		Sources                  string
		Header                   []string
		Findings                 []htmlFinding
		Timeline                 template.HTML
	}{
		Title: r.title(), Settings: "H" + r.settings()[1:], Summary: r.Summary().String(),
		Sources: strings.Join(r.Sources, ", "), Header: tableHeader,
		Timeline: template.HTML(timelineSVG(r)),
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		data.Findings = append(data.Findings, htmlFinding{
			ID: fmt.Sprintf("f%d", i+1), Class: stateClass(f), Heading: f.heading(), Row: f.row(), Details: f.details(),
		})
	}
	return htmlReport.Execute(w, data)
}

// stateClass is the CSS class of a finding: its urgency group.
func stateClass(f *Finding) string {
	switch f.urgency() {
	case 0:
		return "eol"
	case 1:
		return "soon"
	case 2:
		return "data"
	}
	return "ok"
}

// Timeline geometry, in SVG user units.
const (
	tlLeft   = 190.0 // labels left of the plot
	tlWidth  = 720.0 // the plot
	tlRight  = 30.0
	tlTop    = 40.0
	tlRow    = 24.0
	tlBottom = 30.0
)

// timelineSVG draws when each string reaches end of life: a bar per
// finding from its installation (or manufacture) to its end-of-life date,
// coloured by state, a line at the as-of day and a band over the horizon.
// Findings without an end-of-life date are listed without a bar.
func timelineSVG(r *Report) string {
	asOf := r.AsOf.Time()
	horizonEnd := AddDays(r.AsOf, r.HorizonDays).Time()
	// The axis spans whole years around every date shown, at least from
	// two years before the as-of day to two after the horizon.
	lo, hi := asOf.AddDate(-2, 0, 0), horizonEnd.AddDate(2, 0, 0)
	for i := range r.Findings {
		f := &r.Findings[i]
		if s := barStart(f); !s.IsZero() && s.Time().Before(lo) {
			lo = s.Time()
		}
		if !f.EndOfLife.IsZero() && f.EndOfLife.Time().After(hi) {
			hi = f.EndOfLife.Time()
		}
	}
	lo = time.Date(lo.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	hi = time.Date(hi.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	span := hi.Sub(lo).Hours()
	x := func(t time.Time) float64 { return tlLeft + tlWidth*t.Sub(lo).Hours()/span }
	n := len(r.Findings)
	height := tlTop + tlRow*float64(max(n, 1)) + tlBottom
	width := tlLeft + tlWidth + tlRight
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="End-of-life timeline">`+"\n", width, height, width, height)
	b.WriteString("<title>When each battery string reaches end of life</title>\n")
	plotBottom := tlTop + tlRow*float64(max(n, 1))
	fmt.Fprintf(&b, `<rect class="horizon" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>horizon: %d days from %s</title></rect>`+"\n",
		x(asOf), tlTop-10, x(horizonEnd)-x(asOf), plotBottom-tlTop+10, r.HorizonDays, r.AsOf)
	step := 1
	for years := hi.Year() - lo.Year(); years/step > 12; {
		step = map[int]int{1: 2, 2: 5, 5: 10, 10: 20, 20: 50, 50: 100}[step]
		if step == 0 {
			step = 100
			break
		}
	}
	for y := lo.Year(); y <= hi.Year(); y += step {
		tx := x(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC))
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text class="tick" x="%.1f" y="%.1f">%d</text>`+"\n",
			tx, tlTop-10, tx, plotBottom, tx, plotBottom+16, y)
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		cy := tlTop + tlRow*float64(i) + tlRow/2
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%.1f">%s</text>`+"\n", tlLeft-8, cy+4, html.EscapeString(f.name()))
		if f.EndOfLife.IsZero() {
			fmt.Fprintf(&b, `<text class="none" x="%.1f" y="%.1f">no end-of-life date: %s</text>`+"\n", tlLeft+4, cy+4, html.EscapeString(f.State.String()))
			continue
		}
		end := x(f.EndOfLife.Time())
		start := tlLeft
		if s := barStart(f); !s.IsZero() {
			start = x(s.Time())
		}
		fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, stateClass(f), start, cy-6, max(end-start, 1), 12.0)
		fmt.Fprintf(&b, `<circle class="mark %s" cx="%.1f" cy="%.1f" r="5"><title>%s: end of life %s (%s)</title></circle>`+"\n",
			stateClass(f), end, cy, html.EscapeString(f.name()), f.EndOfLife, html.EscapeString(f.due()))
	}
	fmt.Fprintf(&b, `<line class="today" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text class="today-label" x="%.1f" y="%.1f">as of %s</text>`+"\n",
		x(asOf), tlTop-14, x(asOf), plotBottom, x(asOf), tlTop-18, r.AsOf)
	b.WriteString("</svg>")
	return b.String()
}

// barStart is where a finding's bar starts: installation, else
// manufacture.
func barStart(f *Finding) Date {
	if !f.Installed.Date.IsZero() {
		return f.Installed.Date
	}
	return f.Manufactured.Date
}
