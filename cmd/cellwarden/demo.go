package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/fleetgen"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// demoInventory is what a facilities team would keep for the demo fleet.
const demoInventory = `batteries:
  - ups: ups-a
    vendor: LG Energy Solution
    model: M48126P3B
    serial: LGX-2019-00871
    chemistry: NMC
    manufactured: 2019-06-01
    installed: 2019-09-15
    design_life_years: 10
    warranty_until: 2029-09-15
  - ups: ups-b
    vendor: CATL
    model: UPS-LFP-100
    serial: CATL-2022-11302
    chemistry: LFP
    manufactured: 2022-02-01
    installed: 2022-04-20
    design_life_years: 15
`

// demoSpec is the embedded demonstration fleet: six hours of two UPSs
// polled every 30 s, with three faults injected.
func demoSpec() fleetgen.Spec {
	return fleetgen.Spec{
		Fleet: []fleetgen.UPS{
			{Name: "ups-a", Chemistry: fleetgen.NMC, Strings: 2, Modules: 4, Cells: 8},
			{Name: "ups-b", Chemistry: fleetgen.LFP, Strings: 2, Modules: 4, Cells: 8},
		},
		Start:    time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Duration: 6 * time.Hour,
		Interval: 30 * time.Second,
		Seed:     2025,
		Faults: []fleetgen.Fault{
			{Kind: fleetgen.Overvoltage, UPS: "ups-b", String: "2", Module: "1", Cell: "4", From: 90 * time.Minute, To: 150 * time.Minute, Magnitude: 0.40},
			{Kind: fleetgen.Overheat, UPS: "ups-a", String: "1", Module: "3", Cell: "5", From: 2 * time.Hour, To: 4 * time.Hour, Magnitude: 36},
			{Kind: fleetgen.Silence, UPS: "ups-b", String: "1", Module: "4", From: 4 * time.Hour, To: 270 * time.Minute},
		},
	}
}

type demoOptions struct {
	export string // directory to write the scenario to, "" for none
}

// runDemo replays the embedded fleet and prints the alerts as a table.
func runDemo(o demoOptions, stdout, stderr io.Writer, log *zap.Logger) error {
	sp := demoSpec()
	var csv bytes.Buffer
	rows, err := fleetgen.Write(&csv, sp)
	if err != nil {
		return err
	}
	if o.export != "" {
		return exportDemo(o.export, csv.Bytes(), stdout)
	}
	inv, err := inventory.Parse([]byte(demoInventory), "demo-inventory.yaml")
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	rd, err := csvfile.NewReader(&csv, "demo.csv", reg)
	if err != nil {
		return err
	}
	log.Debug("demo scenario generated", zap.Int("rows", rows))

	fmt.Fprintf(stdout, `cellwarden demo: replaying %s of an embedded fleet in event time.
  ups-a: NMC, 2 strings x 4 modules x 8 cells, installed 2019
  ups-b: LFP, 2 strings x 4 modules x 8 cells, installed 2022
  polled every %s; injected faults:
    01:30  cell ups-b/2/1/4 starts to overcharge (+0.4 V over 30 min)
    02:00  cell ups-a/1/3/5 starts to overheat (+36 °C over an hour), cooled at 04:00
    04:00  module ups-b/1/4 stops reporting for 30 min

`, sp.Duration, sp.Interval)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TIME\tSTATUS\tSEVERITY\tALERT\tENTITY\tSUMMARY")
	faulted := map[string]bool{}
	for _, f := range sp.Faults {
		faulted[telemetry.Entity{UPS: f.UPS, String: f.String, Module: f.Module, Cell: f.Cell}.Path()] = true
	}
	onFault, healthy := 0, 0
	sink := func(c *detector.Change) error {
		if c.Status == detector.StatusFiring {
			if faulted[reg.Info(c.Entity).Entity.Path()] {
				onFault++
			} else {
				healthy++
			}
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			time.Unix(0, c.Time).UTC().Format("15:04:05"), c.Status, c.Severity, c.Name,
			reg.Info(c.Entity).Entity.Path(), c.Summary)
		return err
	}
	res, err := replay(rd, detector.New(detector.DefaultConfig(), reg, inv), sink)
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
%d rows replayed in %.2f s: %d alerts on the %d injected faults, %d on healthy equipment.
Run it on your own telemetry:  cellwarden replay --input FILE.csv [--inventory inventory.yaml]
Export this scenario:           cellwarden demo --export DIR
`, res.reader.Rows, res.elapsed.Seconds(), onFault, len(sp.Faults), healthy)
	return nil
}

func exportDemo(dir string, csv []byte, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	csvPath := filepath.Join(dir, "demo.csv")
	invPath := filepath.Join(dir, "demo-inventory.yaml")
	if err := os.WriteFile(csvPath, csv, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(invPath, []byte(demoInventory), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\nreplay them with: cellwarden replay --input %s --inventory %s\n", csvPath, invPath, csvPath, invPath)
	return nil
}
