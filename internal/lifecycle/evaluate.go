package lifecycle

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// origin orders the kinds of sources: when sources agree or a text field
// is given twice, the first origin's value is shown first.
type origin uint8

const (
	originInventory origin = iota + 1
	originAssets
	originDevice
)

// claim is what one source says about a string (or about every string of
// a UPS, with str empty).
type claim struct {
	ups, str              string
	origin                origin
	source                string
	vendor, model, serial string
	chem                  inventory.Chemistry
	life                  float64
	dates                 [numFields]Date
}

// DateObservation is a date read from a device: SunSpec 802 WarrDt, a
// vendor register, an MQTT field.
type DateObservation struct {
	// UPS and String name the battery; String empty for every string of
	// the UPS.
	UPS, String string
	Field       Field
	Date        Date
	// Source names the device and the point, for people:
	// "modbus rack-1 SunSpec 802 WarrDt". A later observation with the
	// same UPS, String, Field and Source replaces the earlier one.
	Source string
}

type key struct{ ups, str string }

type obsKey struct {
	key
	field  Field
	source string
}

// Evaluator works out the lifecycle state of every battery string from
// its sources: the inventory, an asset list, dates read from devices and
// state-of-health readings. It is pure: it never reads the wall clock
// (Evaluate takes the as-of instant) and does no I/O.
//
// An Evaluator is not safe for concurrent use: the daemon's detector
// goroutine owns it. Set* replace what an earlier call of the same method
// gave (on reload); observations accumulate.
type Evaluator struct {
	cfg       Config
	inventory []claim
	assets    []claim
	devices   map[obsKey]Date
	soh       map[key]*sohSeries
	declared  map[key]bool
	acks      []Ack
}

// NewEvaluator returns an Evaluator with a configuration that passed
// Validate (DefaultConfig is fine).
func NewEvaluator(cfg Config) *Evaluator {
	cfg.FillDefaults()
	return &Evaluator{cfg: cfg, devices: map[obsKey]Date{}, soh: map[key]*sohSeries{}, declared: map[key]bool{}}
}

// Reconfigure replaces the configuration, keeping every source and
// observation.
func (e *Evaluator) Reconfigure(cfg Config) {
	cfg.FillDefaults()
	e.cfg = cfg
}

// SetInventory replaces the inventory's records; nil removes them. Each
// entry's source is "FILE:LINE" of the entry.
func (e *Evaluator) SetInventory(inv *inventory.Inventory) {
	e.inventory = nil
	if inv == nil {
		return
	}
	for _, b := range inv.Batteries {
		e.inventory = append(e.inventory, claim{
			ups: b.UPS, str: b.String, origin: originInventory, source: fmt.Sprintf("%s:%d", inv.Source, b.Line),
			vendor: b.Vendor, model: b.Model, serial: b.Serial, chem: b.Chemistry, life: b.DesignLifeYears,
			dates: [numFields]Date{FieldManufactured: b.Manufactured, FieldInstalled: b.Installed, FieldWarrantyUntil: b.WarrantyUntil, FieldReplaceBy: b.ReplaceBy},
		})
	}
}

// SetAssets replaces the asset list's records; nil removes them.
func (e *Evaluator) SetAssets(assets []Asset) {
	e.assets = nil
	for _, a := range assets {
		e.assets = append(e.assets, claim{
			ups: a.UPS, str: a.String, origin: originAssets, source: a.Source,
			vendor: a.Vendor, model: a.Model, serial: a.Serial, chem: a.Chemistry, life: a.DesignLifeYears,
			dates: [numFields]Date{FieldManufactured: a.Manufactured, FieldInstalled: a.Installed, FieldWarrantyUntil: a.WarrantyUntil, FieldReplaceBy: a.ReplaceBy},
		})
	}
}

// ObserveDate records a date read from a device. A zero Date removes the
// observation (the device stopped reporting it).
func (e *Evaluator) ObserveDate(o DateObservation) {
	k := obsKey{key{o.UPS, o.String}, o.Field, o.Source}
	if o.Date.IsZero() {
		delete(e.devices, k)
		return
	}
	e.devices[k] = o.Date
}

// ObserveSOH records a state-of-health reading (string_soh_ratio) of
// string str of UPS ups at event time t. Readings must come in time order
// per string; older ones, and values outside (0, 1.5], are ignored.
// Memory per string is bounded by the SoH window (one bucket per six
// hours).
func (e *Evaluator) ObserveSOH(ups, str string, t time.Time, ratio float64) {
	k := key{ups, str}
	s := e.soh[k]
	if s == nil {
		s = &sohSeries{}
		e.soh[k] = s
	}
	s.observe(t.Unix(), ratio, e.cfg.SOHWindow.Duration())
}

// DeclareString tells the Evaluator that string str of UPS ups exists
// (telemetry mentions it). Findings attach to strings once any string of
// a UPS is known; a UPS-wide record then applies to each of them.
func (e *Evaluator) DeclareString(ups, str string) {
	if str != "" {
		e.declared[key{ups, str}] = true
	}
}

// SetAcknowledgements replaces the acknowledgements Evaluate applies (see
// Ack.Covers); Store.List gives them.
func (e *Evaluator) SetAcknowledgements(acks []Ack) { e.acks = slices.Clone(acks) }

// claims returns every claim, inventory first, then assets, then devices
// (sorted by key and source, so that map order never shows).
func (e *Evaluator) claims() []claim {
	out := slices.Concat(e.inventory, e.assets)
	dev := make([]claim, 0, len(e.devices))
	for k, d := range e.devices {
		c := claim{ups: k.ups, str: k.str, origin: originDevice, source: k.source}
		c.dates[k.field] = d
		dev = append(dev, c)
	}
	slices.SortFunc(dev, func(a, b claim) int {
		return cmp.Or(cmp.Compare(a.ups, b.ups), cmp.Compare(a.str, b.str), cmp.Compare(a.source, b.source), slices.Compare(fieldsOf(a), fieldsOf(b)))
	})
	return append(out, dev...)
}

func fieldsOf(c claim) []int {
	var out []int
	for f, d := range c.dates {
		if !d.IsZero() {
			out = append(out, f)
		}
	}
	return out
}

// subjects returns the entities findings attach to, sorted: every string
// some source names, and every UPS none of whose strings is known.
func (e *Evaluator) subjects(claims []claim) []key {
	set := map[key]bool{}
	for _, c := range claims {
		set[key{c.ups, c.str}] = true
	}
	for k := range e.soh {
		set[k] = true
	}
	for k := range e.declared {
		set[k] = true
	}
	hasStrings := map[string]bool{}
	for k := range set {
		if k.str != "" {
			hasStrings[k.ups] = true
		}
	}
	var out []key
	for k := range set {
		if k.str == "" && hasStrings[k.ups] {
			continue
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b key) int { return cmp.Or(cmp.Compare(a.ups, b.ups), cmp.Compare(a.str, b.str)) })
	return out
}

// Evaluate returns a finding for every battery string (or UPS whose
// strings are not known) as of the instant asOf, whose calendar day in
// the configured time zone is the as-of day. Findings are sorted by
// urgency: end of life (earliest end-of-life date first), then soon (by
// date), then findings with data problems or an unknown state, then the
// fine ones (next due first); ties by UPS and string.
//
// A life date is reached on its day: a battery whose warranty_until is
// 2024-09-15 is at end of life from 2024-09-15 on, and soon from 180 days
// before. Evaluate fits the state-of-health trend of a string again only
// after one of its six-hour buckets has closed.
func (e *Evaluator) Evaluate(asOf time.Time) []Finding {
	return e.EvaluateDay(DateIn(asOf, e.cfg.Location()))
}

// EvaluateDay is Evaluate as of the calendar day day.
func (e *Evaluator) EvaluateDay(day Date) []Finding {
	claims := e.claims()
	var out []Finding
	for _, k := range e.subjects(claims) {
		f := e.evaluate(k, claims, day)
		for _, a := range e.acks {
			if a.Covers(&f, day) {
				a := a
				f.Ack = &a
				break
			}
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.urgency(), b.urgency()), compareDate(a.EndOfLife, b.EndOfLife),
			cmp.Compare(a.UPS, b.UPS), cmp.Compare(a.String, b.String))
	})
	return out
}

// compareDate orders dates with the zero Date last.
func compareDate(a, b Date) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

// evaluate works out the finding for one subject.
func (e *Evaluator) evaluate(k key, claims []claim, day Date) Finding {
	f := Finding{UPS: k.ups, String: k.str}
	var own, wide []claim
	for _, c := range claims {
		switch {
		case c.ups != k.ups:
		case c.str == k.str:
			own = append(own, c)
		case c.str == "":
			wide = append(wide, c)
		}
	}
	// pick returns the claims that set a value: the string's own when any
	// of them does, else the UPS-wide ones.
	pick := func(set func(c *claim) bool) []claim {
		for _, cs := range [][]claim{own, wide} {
			var out []claim
			for i := range cs {
				if set(&cs[i]) {
					out = append(out, cs[i])
				}
			}
			if len(out) > 0 {
				return out
			}
		}
		return nil
	}
	text := func(get func(c *claim) string) string {
		cs := pick(func(c *claim) bool { return get(c) != "" })
		if len(cs) == 0 {
			return ""
		}
		return get(&cs[0])
	}
	f.Vendor = text(func(c *claim) string { return c.vendor })
	f.Model = text(func(c *claim) string { return c.model })
	f.Serial = text(func(c *claim) string { return c.serial })
	f.Chemistry = e.chemistry(&f, pick(func(c *claim) bool { return c.chem != 0 }))

	var dated [numFields]Dated
	for fld := FieldManufactured; fld < numFields; fld++ {
		dated[fld] = e.date(&f, fld, pick(func(c *claim) bool { return !c.dates[fld].IsZero() }), day)
	}
	f.Manufactured, f.Installed = dated[FieldManufactured], dated[FieldInstalled]
	m, in := f.Manufactured.Date, f.Installed.Date
	if !m.IsZero() && !in.IsZero() && m.After(in) {
		f.Problems = append(f.Problems, Problem{Kind: ProblemOrder, Field: FieldManufactured,
			Message: fmt.Sprintf("manufactured %s (%s) is after installed %s (%s)", m, f.Manufactured.Source, in, f.Installed.Source)})
	}
	if w := dated[FieldWarrantyUntil].Date; !w.IsZero() && !in.IsZero() && w.Before(in) {
		f.Problems = append(f.Problems, Problem{Kind: ProblemOrder, Field: FieldWarrantyUntil,
			Message: fmt.Sprintf("warranty_until %s (%s) is before installed %s (%s)", w, dated[FieldWarrantyUntil].Source, in, f.Installed.Source)})
	}
	base, baseName := f.Installed, "installed"
	if base.Date.IsZero() {
		base, baseName = f.Manufactured, "manufactured"
	}
	if base.Date.IsZero() {
		f.Problems = append(f.Problems, Problem{Kind: ProblemUnknownAge, Message: "age unknown: no usable installed or manufactured date"})
	} else {
		f.AgeDays, f.AgeKnown = DaysBetween(base.Date, day), true
	}

	pol := e.policy(f.Vendor, f.Model, f.Chemistry)
	f.DesignLife = e.designLife(&f, pick(func(c *claim) bool { return c.life != 0 }), pol)
	f.Warranty, f.ReplaceBy = dated[FieldWarrantyUntil], dated[FieldReplaceBy]
	if f.Warranty.Date.IsZero() && pol.warranty.Years > 0 && !in.IsZero() {
		f.Warranty = Dated{AddYears(in, pol.warranty.Years), fmt.Sprintf("%s: %s y from installed %s", pol.warranty.Source, num(pol.warranty.Years), in)}
	}
	if f.ReplaceBy.Date.IsZero() && pol.replace.Years > 0 && !in.IsZero() {
		f.ReplaceBy = Dated{AddYears(in, pol.replace.Years), fmt.Sprintf("%s: %s y from installed %s", pol.replace.Source, num(pol.replace.Years), in)}
	}

	if f.DesignLife.Years > 0 && !base.Date.IsZero() {
		f.LifeDates = append(f.LifeDates, LifeDate{Reason: ReasonDesignLife, Date: AddYears(base.Date, f.DesignLife.Years),
			Source: fmt.Sprintf("%s from %s; design life from %s", baseName, base.Source, f.DesignLife.Source),
			Detail: fmt.Sprintf("%s y from %s %s", num(f.DesignLife.Years), baseName, base.Date)})
	}
	if !f.Warranty.Date.IsZero() {
		f.LifeDates = append(f.LifeDates, LifeDate{Reason: ReasonWarranty, Date: f.Warranty.Date, Source: f.Warranty.Source})
	}
	if !f.ReplaceBy.Date.IsZero() {
		f.LifeDates = append(f.LifeDates, LifeDate{Reason: ReasonReplaceBy, Date: f.ReplaceBy.Date, Source: f.ReplaceBy.Source})
	}
	limit := e.cfg.SOHLimit
	if pol.sohLimit > 0 {
		limit = pol.sohLimit
	}
	if s := e.soh[k]; s != nil {
		if st, ok := s.status(limit, e.cfg.SOHMinPoints, e.cfg.SOHMinSpan.Duration(), e.cfg.Location()); ok {
			f.SOH = &st
			switch {
			case st.Below:
				// The day the trend crossed, when it did so before the
				// latest reading, else the day of that reading.
				at := st.At
				if !st.Crossing.IsZero() && st.Crossing.Before(at) {
					at = st.Crossing
				}
				f.LifeDates = append(f.LifeDates, LifeDate{Reason: ReasonSOH, Date: at, Source: "string_soh_ratio telemetry",
					Detail: fmt.Sprintf("SoH %s below %s", ratio(st.Current), ratio(limit))})
			case !st.Crossing.IsZero():
				f.LifeDates = append(f.LifeDates, LifeDate{Reason: ReasonSOHTrend, Date: st.Crossing, Source: "string_soh_ratio telemetry",
					Detail: fmt.Sprintf("trend %s a year from %s", signed(st.SlopePerYear), ratio(st.Current))})
			}
		}
	}
	slices.SortStableFunc(f.LifeDates, func(a, b LifeDate) int { return a.Date.Compare(b.Date) })
	e.verdict(&f, day)
	return f
}

// verdict sets the state, the end-of-life date and the reasons.
func (e *Evaluator) verdict(f *Finding, day Date) {
	if len(f.LifeDates) == 0 {
		f.State = StateUnknown
		return
	}
	f.EndOfLife = f.LifeDates[0].Date
	f.DaysLeft = DaysBetween(day, f.EndOfLife)
	horizon := AddDays(day, e.cfg.HorizonDays())
	var past, soon []string
	for _, d := range f.LifeDates {
		switch {
		case d.Reason == ReasonSOH:
			past = append(past, d.Detail)
		case d.Reason != ReasonSOHTrend && !d.Date.After(day):
			past = append(past, describe(d, true))
		case !d.Date.After(horizon):
			soon = append(soon, describe(d, false))
		}
	}
	switch {
	case len(past) > 0:
		f.State, f.Reasons = StateEndOfLife, past
	case len(soon) > 0:
		f.State, f.Reasons = StateSoon, soon
	default:
		f.State = StateOK
	}
}

// describe says a life date for people, as passed or as due.
func describe(d LifeDate, passed bool) string {
	switch d.Reason {
	case ReasonDesignLife:
		if passed {
			return fmt.Sprintf("past design life on %s (%s)", d.Date, d.Detail)
		}
		return fmt.Sprintf("design life ends %s (%s)", d.Date, d.Detail)
	case ReasonWarranty:
		if passed {
			return fmt.Sprintf("warranty ended %s", d.Date)
		}
		return fmt.Sprintf("warranty ends %s", d.Date)
	case ReasonReplaceBy:
		if passed {
			return fmt.Sprintf("vendor replace-by %s passed", d.Date)
		}
		return fmt.Sprintf("vendor replace-by %s", d.Date)
	case ReasonSOHTrend:
		return fmt.Sprintf("SoH projected to reach the limit on %s (%s)", d.Date, d.Detail)
	}
	return d.Detail
}

// chemistry returns the chemistry the claims give, noting a conflict.
func (e *Evaluator) chemistry(f *Finding, cs []claim) inventory.Chemistry {
	if len(cs) == 0 {
		return 0
	}
	var parts []string
	seen := map[inventory.Chemistry]bool{}
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s (%s)", c.chem, c.source))
		seen[c.chem] = true
	}
	if len(seen) > 1 {
		f.Problems = append(f.Problems, Problem{Kind: ProblemConflict,
			Message: fmt.Sprintf("chemistry %s disagree; using %s", strings.Join(parts, " and "), cs[0].chem)})
	}
	return cs[0].chem
}

// date returns the date the claims give for fld, leaving out placeholders
// and (for installed and manufactured) dates after day, each noted as a
// problem, and using the earliest when the rest disagree.
func (e *Evaluator) date(f *Finding, fld Field, cs []claim, day Date) Dated {
	type val struct {
		d       Date
		sources []string
	}
	var vals []val
	for _, c := range cs {
		d := c.dates[fld]
		if why := placeholderWhy(d, e.cfg.PlaceholderDates); why != "" {
			f.Problems = append(f.Problems, Problem{Kind: ProblemPlaceholder, Field: fld,
				Message: fmt.Sprintf("%s %s (%s) is a placeholder (%s); not used", fld, d, c.source, why)})
			continue
		}
		if (fld == FieldInstalled || fld == FieldManufactured) && d.After(day) {
			f.Problems = append(f.Problems, Problem{Kind: ProblemFuture, Field: fld,
				Message: fmt.Sprintf("%s %s (%s) is after the as-of day %s; not used", fld, d, c.source, day)})
			continue
		}
		i := slices.IndexFunc(vals, func(v val) bool { return v.d == d })
		if i < 0 {
			vals = append(vals, val{d: d})
			i = len(vals) - 1
		}
		vals[i].sources = append(vals[i].sources, c.source)
	}
	if len(vals) == 0 {
		return Dated{}
	}
	best := slices.MinFunc(vals, func(a, b val) int { return a.d.Compare(b.d) })
	if len(vals) > 1 {
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprintf("%s (%s)", v.d, strings.Join(v.sources, ", "))
		}
		f.Problems = append(f.Problems, Problem{Kind: ProblemConflict, Field: fld,
			Message: fmt.Sprintf("%s %s disagree; using the earliest, %s", fld, strings.Join(parts, " and "), best.d)})
	}
	return Dated{Date: best.d, Source: strings.Join(best.sources, ", ")}
}

// designLife returns the design life: the records' (the shortest when
// they disagree), else the policy's, else the chemistry's default.
func (e *Evaluator) designLife(f *Finding, cs []claim, pol policyValues) Years {
	if len(cs) > 0 {
		best := cs[0]
		var parts []string
		distinct := map[float64]bool{}
		for _, c := range cs {
			parts = append(parts, fmt.Sprintf("%s y (%s)", num(c.life), c.source))
			distinct[c.life] = true
			if c.life < best.life {
				best = c
			}
		}
		if len(distinct) > 1 {
			f.Problems = append(f.Problems, Problem{Kind: ProblemConflict,
				Message: fmt.Sprintf("design_life_years %s disagree; using the shortest, %s y", strings.Join(parts, " and "), num(best.life))})
		}
		return Years{best.life, best.source}
	}
	if pol.life.Years > 0 {
		return pol.life
	}
	name := f.Chemistry.String()
	if name == "" {
		name = "unknown"
	}
	if y := e.cfg.DesignLifeYears[name]; y > 0 {
		return Years{y, "default for " + strings.Replace(name, "unknown", "unknown chemistry", 1)}
	}
	return Years{}
}

// policyValues is what the applicable policies give.
type policyValues struct {
	life, warranty, replace Years
	sohLimit                float64
}

// policy merges the policies that apply to a battery, most specific
// first.
func (e *Evaluator) policy(vendor, model string, chem inventory.Chemistry) policyValues {
	type match struct {
		i     int
		score int
	}
	var ms []match
	for i, p := range e.cfg.Policies {
		score := 0
		ok := true
		for _, sel := range []struct{ want, have string }{{p.Vendor, vendor}, {p.Model, model}} {
			if sel.want != "" {
				ok = ok && strings.EqualFold(sel.want, sel.have)
				score++
			}
		}
		if p.Chemistry != 0 {
			ok = ok && p.Chemistry == chem
			score++
		}
		if ok {
			ms = append(ms, match{i, score})
		}
	}
	slices.SortStableFunc(ms, func(a, b match) int { return cmp.Compare(b.score, a.score) })
	var v policyValues
	for _, m := range ms {
		p := e.cfg.Policies[m.i]
		src := "lifecycle.policies[" + strconv.Itoa(m.i) + "]"
		if v.life.Years == 0 && p.DesignLifeYears > 0 {
			v.life = Years{p.DesignLifeYears, src}
		}
		if v.warranty.Years == 0 && p.WarrantyYears > 0 {
			v.warranty = Years{p.WarrantyYears, src}
		}
		if v.replace.Years == 0 && p.ReplaceAfterYears > 0 {
			v.replace = Years{p.ReplaceAfterYears, src}
		}
		if v.sohLimit == 0 && p.SOHLimit > 0 {
			v.sohLimit = p.SOHLimit
		}
	}
	return v
}

// num formats years without trailing zeros: 10, 12.5.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// ratio formats a state of health: 0.79, 0.795.
func ratio(v float64) string {
	s := strconv.FormatFloat(v, 'f', 4, 64)
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") || len(s) < 4 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return s
}

// signed formats a slope with its sign: -0.0312.
func signed(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "0"
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}
