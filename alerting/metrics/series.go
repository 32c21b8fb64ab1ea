package metrics

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// family is one metric family of the Store.
type family struct {
	id         int // index in catalogue.all
	name, help string
	typ        prometheus.ValueType
	// labels are the label names in the order of the Collector's values;
	// byName lists their indexes in name order, as the exposition writes
	// them and client_golang sorts series.
	labels []string
	byName []int
	// head is the family's HELP and TYPE lines.
	head string

	// Where the series come from: a reading of metric, a cell score
	// (value reports the value and whether there is one), the sensor
	// faults, or the few series of the alerts, batteries and collectors
	// built at each scrape (small).
	metric telemetry.Metric
	value  func(*score, uint8) (float64, bool)
	sensor bool
	small  bool
}

// catalogue is every family of the Store.
type catalogue struct {
	readings [telemetry.NumMetrics]*family

	learning, sensorFault *family

	alerts, alertStart *family

	batteryInfo, manufactured, installed, warranty, endOfLife *family
	batteryState, batteryAcked, sohTrend, sohCrossing         *family

	up, lastSuccess, lastDuration, polls, skipped, errors *family

	all    []*family // by name
	byName map[string]*family
}

// Label names by hierarchy level: a metric of a level carries the
// identifiers down to it.
var levelLabels = [...][]string{
	telemetry.LevelUPS:    {"ups"},
	telemetry.LevelString: {"ups", "string"},
	telemetry.LevelModule: {"ups", "string", "module"},
	telemetry.LevelCell:   {"ups", "string", "module", "cell"},
}

var (
	cellLabels   = levelLabels[telemetry.LevelCell]
	alertLabels  = []string{"alertname", "severity", "ups", "string", "module", "cell"}
	stringLabels = levelLabels[telemetry.LevelString]
	healthLabels = []string{"collector", "source"}
)

// cat is the catalogue; it never changes.
var cat = newCatalogue()

func newCatalogue() *catalogue {
	c := &catalogue{byName: map[string]*family{}}
	add := func(f *family) *family {
		f.name = "cellwarden_" + f.name
		if f.typ == 0 {
			f.typ = prometheus.GaugeValue
		}
		f.byName = make([]int, len(f.labels))
		for i := range f.byName {
			f.byName[i] = i
		}
		slices.SortFunc(f.byName, func(a, b int) int { return strings.Compare(f.labels[a], f.labels[b]) })
		typ := "gauge"
		if f.typ == prometheus.CounterValue {
			typ = "counter"
		}
		f.head = "# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n# TYPE " + f.name + " " + typ + "\n"
		c.all = append(c.all, f)
		c.byName[f.name] = f
		return f
	}
	cellScore := func(name, help string, value func(*score, uint8) (float64, bool)) *family {
		return add(&family{name: name, help: help, labels: cellLabels, value: value})
	}
	small := func(name, help string, labels ...string) *family {
		return add(&family{name: name, help: help, labels: labels, small: true})
	}
	counter := func(name, help string, labels ...string) *family {
		return add(&family{name: name, help: help, labels: labels, small: true, typ: prometheus.CounterValue})
	}
	for _, m := range telemetry.Metrics() {
		c.readings[m] = add(&family{name: m.String(), help: "Latest reading of " + m.String() + " (interfaces.md §1).",
			labels: levelLabels[m.Level()], metric: m})
	}
	cellScore("cell_temperature_residual_celsius", "How much hotter than its peers a cell was at its last poll, beyond its learned offset.",
		func(s *score, _ uint8) (float64, bool) { return s.tempRes, !math.IsNaN(s.tempRes) })
	cellScore("cell_temperature_threshold_celsius", "The residual at which CellTemperatureDeviation fires for the cell.",
		func(s *score, _ uint8) (float64, bool) { return s.tempThr, !math.IsNaN(s.tempRes) })
	cellScore("cell_temperature_offset_celsius", "The cell's learned normal temperature offset from its peers.",
		func(s *score, _ uint8) (float64, bool) { return s.tempOff, true })
	cellScore("cell_temperature_deviation_ratio", "Temperature residual divided by its threshold: 1 is where CellTemperatureDeviation fires.",
		func(s *score, _ uint8) (float64, bool) {
			return s.tempRes / s.tempThr, !math.IsNaN(s.tempRes) && s.tempThr > 0
		})
	cellScore("cell_temperature_slope_celsius_per_second", "Theil-Sen slope of the cell's temperature relative to its string.",
		func(s *score, _ uint8) (float64, bool) { return s.slope / 3600, !math.IsNaN(s.slope) })
	cellScore("cell_voltage_residual_volts", "Cell voltage minus its peers' beyond its learned offset (negative: below its peers).",
		func(s *score, _ uint8) (float64, bool) { return s.voltRes, !math.IsNaN(s.voltRes) })
	cellScore("cell_voltage_threshold_volts", "The absolute voltage residual at which CellVoltageDeviation fires for the cell.",
		func(s *score, _ uint8) (float64, bool) { return s.voltThr, !math.IsNaN(s.voltRes) })
	cellScore("cell_voltage_offset_volts", "The cell's learned normal voltage offset from its peers.",
		func(s *score, _ uint8) (float64, bool) { return s.voltOff, true })
	cellScore("cell_voltage_deviation_ratio", "Absolute voltage residual divided by its threshold: 1 is where CellVoltageDeviation fires.",
		func(s *score, _ uint8) (float64, bool) {
			return math.Abs(s.voltRes) / s.voltThr, !math.IsNaN(s.voltRes) && s.voltThr > 0
		})
	c.sensorFault = add(&family{name: "cell_sensor_fault", help: "1 when the cell's temperature or voltage sensor is judged faulty (its readings are excluded).",
		labels: append(slices.Clone(cellLabels), "sensor"), sensor: true})
	c.learning = cellScore("cell_learning", "1 while the cell's offsets are still being learned (peer rules silent for it).",
		func(_ *score, f uint8) (float64, bool) { return b2f(f&warm == 0), true })
	c.alerts = small("alerts", "Active (firing) alerts, like Prometheus' ALERTS; labels below the alert's entity are empty.", alertLabels...)
	c.alertStart = small("alert_start_timestamp_seconds", "Event time at which each active alert started firing.", alertLabels...)
	c.batteryInfo = small("battery_info", "The inventory's description of a battery string.", "ups", "string", "vendor", "model", "chemistry")
	c.manufactured = small("battery_manufactured_timestamp_seconds", "Date of manufacture of the string's batteries (midnight UTC).", stringLabels...)
	c.installed = small("battery_installed_timestamp_seconds", "Installation date of the string's batteries (midnight UTC).", stringLabels...)
	c.warranty = small("battery_warranty_until_timestamp_seconds", "Last day of the batteries' warranty (midnight UTC).", stringLabels...)
	c.batteryState = small("battery_lifecycle_state", "1 for the string's battery-age state (ok, soon, end_of_life, unknown), 0 for the others.", "ups", "string", "state")
	c.batteryAcked = small("battery_lifecycle_acknowledged", "1 while the string's age finding is acknowledged (owner and planned replacement).", stringLabels...)
	c.sohTrend = small("battery_soh_trend_ratio_per_year", "Fitted state-of-health trend (Theil-Sen), ratio per year; negative when falling.", stringLabels...)
	c.sohCrossing = small("battery_soh_limit_crossing_timestamp_seconds", "The day the state-of-health trend reaches the limit (midnight UTC).", stringLabels...)
	c.endOfLife = small("battery_end_of_life_timestamp_seconds", "When the batteries reach end of life: the earlier of installation (or manufacture) plus design life and the vendor's replace_by date.", stringLabels...)
	c.up = small("collector_up", "1 when the collector's last poll or connection worked.", healthLabels...)
	c.lastSuccess = small("collector_last_success_timestamp_seconds", "When the collector last received data.", healthLabels...)
	c.lastDuration = small("collector_last_poll_duration_seconds", "How long the collector's last poll took.", healthLabels...)
	c.polls = counter("collector_polls_total", "Polls made by the collector.", healthLabels...)
	c.skipped = counter("collector_polls_skipped_total", "Polls skipped because the previous one overran.", healthLabels...)
	c.errors = counter("collector_errors_total", "Collector errors by kind.", append(slices.Clone(healthLabels), "kind")...)
	slices.SortFunc(c.all, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	for i, f := range c.all {
		f.id = i
	}
	return c
}

// sink receives the Store's series: the families in name order, the
// series of each in the order client_golang sorts them.
type sink interface {
	// entity is a series labelled with an entity's identifiers. For a
	// cell, cell is its escaped cell value and pairs the pairs of its
	// module; otherwise cell is nil and pairs are the entity's pairs.
	// split is where sensor="…" goes in pairs when sensor is not "".
	entity(f *family, id telemetry.EntityID, cell, pairs []byte, split int, sensor string, v float64)
	// series is a series with its label values in f.labels order.
	series(f *family, v float64, values []string)
	// unlocked is called between batches of series, outside the Store's
	// lock; a writer flushes there. An error stops the exposition.
	unlocked() error
}

// batch is how many rows a scrape renders under one hold of the lock.
const batch = 512

// expose sends the Store's current series to out, the families for which
// want (nil: all) says true.
func (s *Store) expose(out sink, want func(name string) bool) error {
	cutoff := max(unixSeconds(s.now().Add(-s.staleAfter)), 1) // 0 is no reading
	var orders [telemetry.LevelCell + 1][]uint32
	for level := telemetry.LevelUPS; level <= telemetry.LevelCell; level++ {
		orders[level] = s.order(level)
	}
	small := s.smallSeries(cutoff)
	for _, f := range cat.all {
		if want != nil && !want(f.name) {
			continue
		}
		var err error
		switch {
		case f.small:
			for _, x := range small[f.id] {
				out.series(f, x.v, x.values)
			}
			err = out.unlocked()
		case f.metric != 0:
			err = s.exposeReadings(out, f, orders[f.metric.Level()], cutoff)
		default:
			err = s.exposeScores(out, f, orders[telemetry.LevelCell], cutoff)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// exposeReadings sends the current readings of f.metric.
func (s *Store) exposeReadings(out sink, f *family, order []uint32, cutoff uint32) error {
	level := f.metric.Level()
	for i := 0; i < len(order); {
		s.mu.RLock()
		t, mods, text := &s.tables[level], &s.tables[telemetry.LevelModule], s.text
		for end := min(i+batch, len(order)); i < end; i++ {
			row := order[i]
			k := int(row)*t.width + slots[f.metric]
			if t.seen[k] < cutoff {
				continue
			}
			if level == telemetry.LevelCell {
				pairs, split := pairsText(text, mods.text[t.parent[row]])
				out.entity(f, t.ids[row], cellText(text, t.text[row]), pairs, split, "", t.vals[k])
			} else {
				pairs, split := pairsText(text, t.text[row])
				out.entity(f, t.ids[row], nil, pairs, split, "", t.vals[k])
			}
		}
		s.mu.RUnlock()
		if err := out.unlocked(); err != nil {
			return err
		}
	}
	return nil
}

// exposeScores sends a score family of the cells with a current reading.
// The sensor faults come in runs of cells with the same cell and module
// identifiers (their first labels): the run's temperature sensors, then
// its voltage sensors.
func (s *Store) exposeScores(out sink, f *family, order []uint32, cutoff uint32) error {
	for i := 0; i < len(order); {
		s.mu.RLock()
		t, mods, text := &s.tables[telemetry.LevelCell], &s.tables[telemetry.LevelModule], s.text
		live := func(row uint32) bool {
			return s.scoreFlags[row]&scored != 0 && slices.ContainsFunc(t.seen[int(row)*t.width:int(row+1)*t.width], func(x uint32) bool { return x >= cutoff })
		}
		emit := func(row uint32, sensor string, v float64) {
			pairs, split := pairsText(text, mods.text[t.parent[row]])
			out.entity(f, t.ids[row], cellText(text, t.text[row]), pairs, split, sensor, v)
		}
		for end := min(i+batch, len(order)); i < end; {
			if !f.sensor {
				if row := order[i]; live(row) {
					if v, ok := f.value(&s.scores[row], s.scoreFlags[row]); ok {
						emit(row, "", v)
					}
				}
				i++
				continue
			}
			j := i + 1
			for j < len(order) && s.sameCellModule(text, order[i], order[j]) {
				j++
			}
			for _, sensor := range [...]struct {
				name string
				flag uint8
			}{{"temperature", tempFault}, {"voltage", voltFault}} {
				for _, row := range order[i:j] {
					if live(row) {
						emit(row, sensor.name, b2f(s.scoreFlags[row]&sensor.flag != 0))
					}
				}
			}
			i = j
		}
		s.mu.RUnlock()
		if err := out.unlocked(); err != nil {
			return err
		}
	}
	return nil
}

// sameCellModule reports whether two cell rows have the same cell and
// module identifiers. Called with the lock held.
func (s *Store) sameCellModule(text []byte, a, b uint32) bool {
	t, mods := &s.tables[telemetry.LevelCell], &s.tables[telemetry.LevelModule]
	if string(cellText(text, t.text[a])) != string(cellText(text, t.text[b])) {
		return false
	}
	pa, sa := pairsText(text, mods.text[t.parent[a]])
	pb, sb := pairsText(text, mods.text[t.parent[b]])
	return string(pa[:sa]) == string(pb[:sb])
}

// order returns the rows of a level in exposition order, sorting the rows
// added since the last call in.
func (s *Store) order(level telemetry.Level) []uint32 {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	s.mu.RLock()
	t := &s.tables[level]
	order, ids := t.order, t.ids // ids only grows: ids[:n] stays valid
	s.mu.RUnlock()
	if len(order) == len(ids) {
		return order
	}
	type key struct {
		row uint32
		e   telemetry.Entity
	}
	entity := func(row uint32) telemetry.Entity { return s.reg.Info(ids[row]).Entity }
	// The label names in name order are the identifiers finest first.
	compare := func(a, b telemetry.Entity) int {
		return cmp.Or(strings.Compare(a.Cell, b.Cell), strings.Compare(a.Module, b.Module),
			strings.Compare(a.String, b.String), strings.Compare(a.UPS, b.UPS))
	}
	added := make([]key, 0, len(ids)-len(order))
	for row := len(order); row < len(ids); row++ {
		added = append(added, key{uint32(row), entity(uint32(row))})
	}
	slices.SortFunc(added, func(a, b key) int { return compare(a.e, b.e) })
	merged := make([]uint32, 0, len(ids))
	for _, row := range order {
		e := entity(row)
		for len(added) > 0 && compare(added[0].e, e) < 0 {
			merged = append(merged, added[0].row)
			added = added[1:]
		}
		merged = append(merged, row)
	}
	for _, k := range added {
		merged = append(merged, k.row)
	}
	s.mu.Lock()
	t.order = merged
	s.mu.Unlock()
	return merged
}

// smallOne is one series of a small family.
type smallOne struct {
	values []string
	v      float64
}

// smallSeries builds the series of the alerts, batteries and collectors,
// each family's sorted as client_golang sorts them.
func (s *Store) smallSeries(cutoff uint32) [][]smallOne {
	out := make([][]smallOne, len(cat.all))
	add := func(f *family, v float64, values ...string) { out[f.id] = append(out[f.id], smallOne{values, v}) }
	s.mu.RLock()
	for l, since := range s.alerts {
		lv := []string{l.Alertname, l.Severity, l.UPS, l.String, l.Module, l.Cell}
		add(cat.alerts, 1, lv...)
		add(cat.alertStart, seconds(since), lv...)
	}
	inv, findings, health := s.inv, s.findings, slices.Clone(s.health)
	var live map[[2]string]bool
	if findings == nil && inv != nil {
		live = s.liveStringsLocked(cutoff)
	}
	s.mu.RUnlock()
	if findings != nil {
		addFindings(findings, inv, add)
	} else if inv != nil {
		addInventory(inv, live, add)
	}
	for _, fn := range health {
		for _, h := range fn() {
			l := []string{h.Name, h.Source}
			add(cat.up, b2f(h.Up), l...)
			if !h.LastSuccess.IsZero() {
				add(cat.lastSuccess, seconds(h.LastSuccess), l...)
			}
			add(cat.lastDuration, h.LastDuration.Seconds(), l...)
			add(cat.polls, float64(h.Polls), l...)
			add(cat.skipped, float64(h.Skipped), l...)
			for kind, n := range h.Errors {
				add(cat.errors, float64(n), h.Name, h.Source, kind)
			}
		}
	}
	for _, f := range cat.all {
		compare := func(a, b smallOne) int {
			for _, i := range f.byName {
				if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
					return c
				}
			}
			return 0
		}
		slices.SortFunc(out[f.id], compare)
		// Two series with the same labels would make the exposition
		// invalid; the first stays.
		out[f.id] = slices.CompactFunc(out[f.id], func(a, b smallOne) bool { return compare(a, b) == 0 })
	}
	return out
}

// liveStringsLocked returns the (ups, string) pairs with a current reading
// of the string or an entity below it.
func (s *Store) liveStringsLocked(cutoff uint32) map[[2]string]bool {
	strs := map[[2]string]bool{}
	for level := telemetry.LevelString; level <= telemetry.LevelCell; level++ {
		t := &s.tables[level]
		for row, id := range t.ids {
			if slices.ContainsFunc(t.seen[row*t.width:(row+1)*t.width], func(x uint32) bool { return x >= cutoff }) {
				e := s.reg.Info(id).Entity
				strs[[2]string{e.UPS, e.String}] = true
			}
		}
	}
	return strs
}

// addInventory adds the inventory's dates for every string it names, and
// for the live strings of a UPS it describes as a whole.
func addInventory(inv *inventory.Inventory, live map[[2]string]bool, add func(*family, float64, ...string)) {
	strs := map[[2]string]bool{}
	for _, b := range inv.Batteries {
		if b.String != "" {
			strs[[2]string{b.UPS, b.String}] = true
		}
	}
	for k := range live {
		if _, ok := inv.Lookup(k[0], k[1]); ok {
			strs[k] = true
		}
	}
	for k := range strs {
		b, _ := inv.Effective(k[0], k[1])
		add(cat.batteryInfo, 1, k[0], k[1], b.Vendor, b.Model, b.Chemistry.String())
		for f, date := range map[*family]inventory.Date{cat.manufactured: b.Manufactured, cat.installed: b.Installed,
			cat.warranty: b.WarrantyUntil, cat.endOfLife: endOfLife(&b)} {
			if !date.IsZero() {
				add(f, seconds(date.Time()), k[0], k[1])
			}
		}
	}
}

// addFindings adds the battery-age verdicts: the dates they used, the
// state, and the state-of-health trend.
func addFindings(fs []lifecycle.Finding, inv *inventory.Inventory, add func(*family, float64, ...string)) {
	for i := range fs {
		f := &fs[i]
		b, _ := inv.Effective(f.UPS, f.String)
		add(cat.batteryInfo, 1, f.UPS, f.String, b.Vendor, b.Model, b.Chemistry.String())
		for fam, date := range map[*family]inventory.Date{cat.manufactured: f.Manufactured.Date, cat.installed: f.Installed.Date,
			cat.warranty: f.Warranty.Date, cat.endOfLife: f.EndOfLife} {
			if !date.IsZero() {
				add(fam, seconds(date.Time()), f.UPS, f.String)
			}
		}
		for _, st := range []lifecycle.State{lifecycle.StateOK, lifecycle.StateSoon, lifecycle.StateEndOfLife, lifecycle.StateUnknown} {
			add(cat.batteryState, b2f(f.State == st), f.UPS, f.String, st.String())
		}
		add(cat.batteryAcked, b2f(f.Ack != nil), f.UPS, f.String)
		if f.SOH != nil && f.SOH.HasTrend {
			add(cat.sohTrend, f.SOH.SlopePerYear, f.UPS, f.String)
			if !f.SOH.Crossing.IsZero() {
				add(cat.sohCrossing, seconds(f.SOH.Crossing.Time()), f.UPS, f.String)
			}
		}
	}
}

// endOfLife is the earlier of the design life's end and replace_by (the
// zero Date when the inventory gives neither).
func endOfLife(b *inventory.Battery) inventory.Date {
	var eol inventory.Date
	start := b.Installed
	if start.IsZero() {
		start = b.Manufactured
	}
	if !start.IsZero() && b.DesignLifeYears > 0 {
		whole := math.Floor(b.DesignLifeYears)
		frac := time.Duration((b.DesignLifeYears - whole) * 365.25 * 24 * float64(time.Hour))
		eol = inventory.DateOf(start.Time().AddDate(int(whole), 0, 0).Add(frac))
	}
	if !b.ReplaceBy.IsZero() && (eol.IsZero() || b.ReplaceBy.Before(eol)) {
		eol = b.ReplaceBy
	}
	return eol
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
