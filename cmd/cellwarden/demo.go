package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/score"
	"github.com/cellwarden/cellwarden/internal/sim"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// demoScenario is the embedded demonstration fleet: six hours of two UPSs
// polled every 30 s, a cell heading for thermal runaway, a module that
// stops reporting, and a discharge test that must not page.
func demoScenario() *sim.Scenario {
	ups := func(name string, chem inventory.Chemistry, installed time.Time, life float64) sim.UPSSpec {
		return sim.UPSSpec{Name: name, Chemistry: chem, Strings: 2, Modules: 4, Cells: 8, TempQuantum: 0.1,
			Vendor: "Simulated Energy", Model: "SIM-" + chem.String(), Manufactured: installed.AddDate(0, -3, 0),
			Installed: installed, DesignLifeYears: life, SOH: 0.93}
	}
	h := time.Hour
	return &sim.Scenario{
		Name: "demo", Description: "the cellwarden demo fleet", Seed: 2025,
		Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Duration: 6 * h, Interval: 30 * time.Second,
		Fleet: []sim.UPSSpec{
			ups("ups-a", inventory.NMC, time.Date(2019, 9, 15, 0, 0, 0, 0, time.UTC), 10),
			ups("ups-b", inventory.LFP, time.Date(2022, 4, 20, 0, 0, 0, 0, time.UTC), 15),
		},
		Events: []sim.EventSpec{{Kind: sim.EventDischargeTest, UPS: "ups-b", At: 3 * h, Duration: 20 * time.Minute, CRate: 0.5}},
		Faults: []sim.FaultSpec{
			{Class: sim.ClassThermalRunaway, UPS: "ups-a", String: "1", Module: "3", Cell: "5", At: h, Duration: 3 * h,
				Magnitude: 8, SagVolts: 0.03, Rate: 15},
			{Class: sim.ClassLostTelemetry, UPS: "ups-b", String: "1", Module: "4", At: 2 * h, Duration: 30 * time.Minute},
		},
		MissingRate: 0.0002,
	}
}

type demoOptions struct {
	export string  // directory to write the scenario to, "" for none
	replay bool    // replay in event time instead of running live
	speed  float64 // live: simulated seconds per second
	listen string  // live: the daemon's web address
}

// runDemo runs the demo live (runDemoLive), or replays the embedded fleet
// and prints the alerts as a table.
func runDemo(o demoOptions, stdout, stderr io.Writer, log *zap.Logger) error {
	sc := demoScenario()
	if o.export != "" {
		return exportDemo(o.export, sc, stdout)
	}
	if !o.replay {
		return runDemoLive(o, stdout, log)
	}
	var csv bytes.Buffer
	labels, inv, err := sim.Run(sc, &csv)
	if err != nil {
		return err
	}
	data := bytes.Clone(csv.Bytes())
	reg := telemetry.NewRegistry()
	rd, err := csvfile.NewReader(&csv, "demo.csv", reg)
	if err != nil {
		return err
	}
	log.Debug("demo scenario generated", zap.Int("bytes", csv.Len()))

	fmt.Fprintf(stdout, "cellwarden demo: replaying %s of an embedded fleet in event time, polled every %s.\n", sc.Duration, sc.Interval)
	for _, u := range sc.Fleet {
		fmt.Fprintf(stdout, "  %s: %s, %d strings x %d modules x %d cells, installed %s\n",
			u.Name, u.Chemistry, u.Strings, u.Modules, u.Cells, u.Installed.Format("2006-01-02"))
	}
	fmt.Fprintln(stdout, "  what happens:")
	for _, h := range happenings(labels) {
		fmt.Fprintln(stdout, "    "+h)
	}
	fmt.Fprintln(stdout)

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TIME\tSTATUS\tSEVERITY\tALERT\tENTITY\tSUMMARY")
	var alerts []score.Alert
	sink := func(c *detector.Change) error {
		a := alerting.FromChange(*c, reg)
		alerts = append(alerts, score.Alert{Time: a.Time, Status: a.Status, Labels: map[string]string{
			"alertname": a.Labels.Alertname, "severity": a.Labels.Severity,
			"ups": a.Labels.UPS, "string": a.Labels.String, "module": a.Labels.Module, "cell": a.Labels.Cell}})
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			time.Unix(0, c.Time).UTC().Format("15:04:05"), c.Status, c.Severity, c.Name, reg.Info(c.Entity).Entity.Path(), c.Summary)
		return err
	}
	res, err := replay(rd, detector.New(detector.DefaultConfig(), reg, inv), sink)
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rep := score.Score([]score.Run{{Labels: labels, Alerts: alerts}})
	detected := 0
	for _, c := range rep.Classes {
		detected += c.Recall.Num
	}
	base, err := baselineReport(data, labels, inv)
	if err != nil {
		return err
	}
	lead := ""
	if rep.Runaway.Detected > 0 {
		lead = fmt.Sprintf("\nThe runaway cell was flagged %s before it reached 80 °C", fmtLead(rep.Runaway.Lead.Median))
		if base.Runaway.Detected > 0 {
			lead += fmt.Sprintf("; a static BMS alarm (50/60 °C) would have fired %s before.", fmtLead(base.Runaway.Lead.Median))
		} else {
			lead += "; a static BMS alarm (50/60 °C) would not have fired before it."
		}
	}
	fmt.Fprintf(stdout, `
%d rows replayed in %.2f s. %d of %d injected faults detected, %d false alerts.%s
Run it on your own telemetry:  cellwarden replay --input FILE.csv [--inventory inventory.yaml]
Export this scenario:           cellwarden demo --export DIR
`, res.reader.Rows, res.elapsed.Seconds(), detected, len(labels.Faults), rep.FalseAlerts.Total, lead)
	return nil
}

// baselineReport replays the demo telemetry through the static BMS
// baseline and scores it.
func baselineReport(data []byte, labels *sim.Labels, inv *inventory.Inventory) (*score.Report, error) {
	reg := telemetry.NewRegistry()
	rd, err := csvfile.NewReader(bytes.NewReader(data), "demo.csv", reg)
	if err != nil {
		return nil, err
	}
	var alerts []score.Alert
	_, err = replay(rd, detector.New(detector.StaticBaselineConfig(), reg, inv), func(c *detector.Change) error {
		a := alerting.FromChange(*c, reg)
		alerts = append(alerts, score.Alert{Time: a.Time, Status: a.Status, Labels: map[string]string{
			"alertname": a.Labels.Alertname, "severity": a.Labels.Severity,
			"ups": a.Labels.UPS, "string": a.Labels.String, "module": a.Labels.Module, "cell": a.Labels.Cell}})
		return nil
	})
	return score.Score([]score.Run{{Labels: labels, Alerts: alerts}}), err
}

func fmtLead(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// exportDemo writes the demo scenario (telemetry, inventory, labels).
func exportDemo(dir string, sc *sim.Scenario, stdout io.Writer) error {
	if _, err := sim.Generate(dir, sc); err != nil {
		return err
	}
	d := filepath.Join(dir, sc.Name)
	fmt.Fprintf(stdout, "wrote %s/{%s,%s,%s}\nreplay it with: cellwarden replay --input %s --inventory %s\n",
		d, sim.TelemetryFile, sim.InventoryFile, sim.LabelsFile,
		filepath.Join(d, sim.TelemetryFile), filepath.Join(d, sim.InventoryFile))
	return nil
}
