package metrics

import (
	"math"
	"slices"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

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

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("cellwarden_"+name, help, labels, nil)
}

// Collector is the prometheus.Collector of a Store.
type Collector struct {
	s *Store

	readings [telemetry.NumMetrics]*prometheus.Desc

	tempResidual, tempThreshold, tempOffset, tempRatio, tempSlope *prometheus.Desc
	voltResidual, voltThreshold, voltOffset, voltRatio            *prometheus.Desc
	sensorFault, learning                                         *prometheus.Desc

	alerts, alertStart *prometheus.Desc

	batteryInfo, manufactured, installed, warranty, endOfLife *prometheus.Desc
	batteryState, batteryAcked, sohTrend, sohCrossing         *prometheus.Desc

	up, lastSuccess, lastDuration, polls, skipped, errors *prometheus.Desc
}

// NewCollector returns the collector of s. Register it once, on the
// daemon's own registry.
func NewCollector(s *Store) *Collector {
	c := &Collector{s: s,
		tempResidual:  desc("cell_temperature_residual_celsius", "How much hotter than its peers a cell was at its last poll, beyond its learned offset.", cellLabels...),
		tempThreshold: desc("cell_temperature_threshold_celsius", "The residual at which CellTemperatureDeviation fires for the cell.", cellLabels...),
		tempOffset:    desc("cell_temperature_offset_celsius", "The cell's learned normal temperature offset from its peers.", cellLabels...),
		tempRatio:     desc("cell_temperature_deviation_ratio", "Temperature residual divided by its threshold: 1 is where CellTemperatureDeviation fires.", cellLabels...),
		tempSlope:     desc("cell_temperature_slope_celsius_per_second", "Theil-Sen slope of the cell's temperature relative to its string.", cellLabels...),
		voltResidual:  desc("cell_voltage_residual_volts", "Cell voltage minus its peers' beyond its learned offset (negative: below its peers).", cellLabels...),
		voltThreshold: desc("cell_voltage_threshold_volts", "The absolute voltage residual at which CellVoltageDeviation fires for the cell.", cellLabels...),
		voltOffset:    desc("cell_voltage_offset_volts", "The cell's learned normal voltage offset from its peers.", cellLabels...),
		voltRatio:     desc("cell_voltage_deviation_ratio", "Absolute voltage residual divided by its threshold: 1 is where CellVoltageDeviation fires.", cellLabels...),
		sensorFault:   desc("cell_sensor_fault", "1 when the cell's temperature or voltage sensor is judged faulty (its readings are excluded).", append(slices.Clone(cellLabels), "sensor")...),
		learning:      desc("cell_learning", "1 while the cell's offsets are still being learned (peer rules silent for it).", cellLabels...),
		alerts:        desc("alerts", "Active (firing) alerts, like Prometheus' ALERTS; labels below the alert's entity are empty.", alertLabels...),
		alertStart:    desc("alert_start_timestamp_seconds", "Event time at which each active alert started firing.", alertLabels...),
		batteryInfo:   desc("battery_info", "The inventory's description of a battery string.", "ups", "string", "vendor", "model", "chemistry"),
		manufactured:  desc("battery_manufactured_timestamp_seconds", "Date of manufacture of the string's batteries (midnight UTC).", stringLabels...),
		installed:     desc("battery_installed_timestamp_seconds", "Installation date of the string's batteries (midnight UTC).", stringLabels...),
		warranty:      desc("battery_warranty_until_timestamp_seconds", "Last day of the batteries' warranty (midnight UTC).", stringLabels...),
		batteryState:  desc("battery_lifecycle_state", "1 for the string's battery-age state (ok, soon, end_of_life, unknown), 0 for the others.", "ups", "string", "state"),
		batteryAcked:  desc("battery_lifecycle_acknowledged", "1 while the string's age finding is acknowledged (owner and planned replacement).", stringLabels...),
		sohTrend:      desc("battery_soh_trend_ratio_per_year", "Fitted state-of-health trend (Theil-Sen), ratio per year; negative when falling.", stringLabels...),
		sohCrossing:   desc("battery_soh_limit_crossing_timestamp_seconds", "The day the state-of-health trend reaches the limit (midnight UTC).", stringLabels...),
		endOfLife:     desc("battery_end_of_life_timestamp_seconds", "When the batteries reach end of life: the earlier of installation (or manufacture) plus design life and the vendor's replace_by date.", stringLabels...),
		up:            desc("collector_up", "1 when the collector's last poll or connection worked.", healthLabels...),
		lastSuccess:   desc("collector_last_success_timestamp_seconds", "When the collector last received data.", healthLabels...),
		lastDuration:  desc("collector_last_poll_duration_seconds", "How long the collector's last poll took.", healthLabels...),
		polls:         desc("collector_polls_total", "Polls made by the collector.", healthLabels...),
		skipped:       desc("collector_polls_skipped_total", "Polls skipped because the previous one overran.", healthLabels...),
		errors:        desc("collector_errors_total", "Collector errors by kind.", append(slices.Clone(healthLabels), "kind")...),
	}
	for _, m := range telemetry.Metrics() {
		c.readings[m] = desc(m.String(), "Latest reading of "+m.String()+" (interfaces.md §1).", levelLabels[m.Level()]...)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range telemetry.Metrics() {
		ch <- c.readings[m]
	}
	for _, d := range []*prometheus.Desc{c.tempResidual, c.tempThreshold, c.tempOffset, c.tempRatio, c.tempSlope,
		c.voltResidual, c.voltThreshold, c.voltOffset, c.voltRatio, c.sensorFault, c.learning, c.alerts, c.alertStart,
		c.batteryInfo, c.manufactured, c.installed, c.warranty, c.endOfLife, c.batteryState, c.batteryAcked, c.sohTrend, c.sohCrossing,
		c.up, c.lastSuccess, c.lastDuration, c.polls, c.skipped, c.errors} {
		ch <- d
	}
}

// snapshot is what one scrape exports, copied under the Store's lock.
type snapshot struct {
	values   map[valueKey]float64
	scores   []detector.CellScore
	alerts   map[alerting.Labels]time.Time
	inv      *inventory.Inventory
	findings []lifecycle.Finding
	health   []func() []CollectorHealth
	strings  map[[2]string]bool // (ups, string) with live readings
}

// take drops stale readings and copies what a scrape needs.
func (s *Store) take() snapshot {
	cutoff := s.now().Add(-s.staleAfter).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{values: make(map[valueKey]float64, len(s.values)), alerts: make(map[alerting.Labels]time.Time, len(s.alerts)),
		inv: s.inv, findings: s.findings, health: slices.Clone(s.health), strings: map[[2]string]bool{}}
	live := map[telemetry.EntityID]bool{}
	for k, r := range s.values {
		if r.seen < cutoff {
			delete(s.values, k)
			continue
		}
		snap.values[k] = r.value
		live[k.id] = true
	}
	for id, sc := range s.scores {
		if live[id] {
			snap.scores = append(snap.scores, sc)
		}
	}
	for l, t := range s.alerts {
		snap.alerts[l] = t
	}
	for id := range live {
		if e := s.reg.Info(id).Entity; e.String != "" {
			snap.strings[[2]string{e.UPS, e.String}] = true
		}
	}
	return snap
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.take()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k, v := range snap.values {
		gauge(c.readings[k.metric], v, identity(c.s.reg.Info(k.id).Entity)...)
	}
	for _, sc := range snap.scores {
		l := identity(c.s.reg.Info(sc.Entity).Entity)
		if len(l) != 4 {
			continue
		}
		gauge(c.learning, b2f(!sc.Warm), l...)
		gauge(c.sensorFault, b2f(sc.TemperatureSensorFault), append(l, "temperature")...)
		gauge(c.sensorFault, b2f(sc.VoltageSensorFault), append(l, "voltage")...)
		gauge(c.tempOffset, sc.TemperatureOffset, l...)
		gauge(c.voltOffset, sc.VoltageOffset, l...)
		if !math.IsNaN(sc.RisingSlope) {
			gauge(c.tempSlope, sc.RisingSlope/3600, l...)
		}
		if !math.IsNaN(sc.TemperatureResidual) {
			gauge(c.tempResidual, sc.TemperatureResidual, l...)
			gauge(c.tempThreshold, sc.TemperatureThreshold, l...)
			if sc.TemperatureThreshold > 0 {
				gauge(c.tempRatio, sc.TemperatureResidual/sc.TemperatureThreshold, l...)
			}
		}
		if !math.IsNaN(sc.VoltageResidual) {
			gauge(c.voltResidual, sc.VoltageResidual, l...)
			gauge(c.voltThreshold, sc.VoltageThreshold, l...)
			if sc.VoltageThreshold > 0 {
				gauge(c.voltRatio, math.Abs(sc.VoltageResidual)/sc.VoltageThreshold, l...)
			}
		}
	}
	for l, since := range snap.alerts {
		lv := []string{l.Alertname, l.Severity, l.UPS, l.String, l.Module, l.Cell}
		gauge(c.alerts, 1, lv...)
		gauge(c.alertStart, seconds(since), lv...)
	}
	c.collectBatteries(snap, gauge)
	for _, fn := range snap.health {
		for _, h := range fn() {
			c.collectHealth(ch, &h)
		}
	}
}

// collectBatteries exports the inventory's dates for every string it
// names, and for the live strings of a UPS it describes as a whole.
func (c *Collector) collectBatteries(snap snapshot, gauge func(*prometheus.Desc, float64, ...string)) {
	if snap.findings != nil {
		c.collectFindings(snap, gauge)
		return
	}
	if snap.inv == nil {
		return
	}
	strs := map[[2]string]bool{}
	for _, b := range snap.inv.Batteries {
		if b.String != "" {
			strs[[2]string{b.UPS, b.String}] = true
		}
	}
	for k := range snap.strings {
		if _, ok := snap.inv.Lookup(k[0], k[1]); ok {
			strs[k] = true
		}
	}
	for k := range strs {
		b, _ := snap.inv.Effective(k[0], k[1])
		gauge(c.batteryInfo, 1, k[0], k[1], b.Vendor, b.Model, b.Chemistry.String())
		for d, date := range map[*prometheus.Desc]inventory.Date{c.manufactured: b.Manufactured, c.installed: b.Installed,
			c.warranty: b.WarrantyUntil, c.endOfLife: endOfLife(&b)} {
			if !date.IsZero() {
				gauge(d, seconds(date.Time()), k[0], k[1])
			}
		}
	}
}

// collectFindings exports the battery-age verdicts: the dates they used,
// the state, and the state-of-health trend.
func (c *Collector) collectFindings(snap snapshot, gauge func(*prometheus.Desc, float64, ...string)) {
	for i := range snap.findings {
		f := &snap.findings[i]
		b, _ := snap.inv.Effective(f.UPS, f.String)
		gauge(c.batteryInfo, 1, f.UPS, f.String, b.Vendor, b.Model, b.Chemistry.String())
		for d, date := range map[*prometheus.Desc]inventory.Date{c.manufactured: f.Manufactured.Date, c.installed: f.Installed.Date,
			c.warranty: f.Warranty.Date, c.endOfLife: f.EndOfLife} {
			if !date.IsZero() {
				gauge(d, seconds(date.Time()), f.UPS, f.String)
			}
		}
		for _, st := range []lifecycle.State{lifecycle.StateOK, lifecycle.StateSoon, lifecycle.StateEndOfLife, lifecycle.StateUnknown} {
			gauge(c.batteryState, b2f(f.State == st), f.UPS, f.String, st.String())
		}
		gauge(c.batteryAcked, b2f(f.Ack != nil), f.UPS, f.String)
		if f.SOH != nil && f.SOH.HasTrend {
			gauge(c.sohTrend, f.SOH.SlopePerYear, f.UPS, f.String)
			if !f.SOH.Crossing.IsZero() {
				gauge(c.sohCrossing, seconds(f.SOH.Crossing.Time()), f.UPS, f.String)
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

func (c *Collector) collectHealth(ch chan<- prometheus.Metric, h *CollectorHealth) {
	l := []string{h.Name, h.Source}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, b2f(h.Up), l...)
	if !h.LastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, seconds(h.LastSuccess), l...)
	}
	ch <- prometheus.MustNewConstMetric(c.lastDuration, prometheus.GaugeValue, h.LastDuration.Seconds(), l...)
	ch <- prometheus.MustNewConstMetric(c.polls, prometheus.CounterValue, float64(h.Polls), l...)
	ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(h.Skipped), l...)
	for kind, n := range h.Errors {
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(n), h.Name, h.Source, kind)
	}
}

// identity returns the label values of e down to its level.
func identity(e telemetry.Entity) []string {
	l := []string{e.UPS, e.String, e.Module, e.Cell}
	return l[:e.Level()]
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
