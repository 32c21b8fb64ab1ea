package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cellwarden/cellwarden/collector/csvfile"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// auditFailed is the exit status of an audit that could not run (an
// unreadable or invalid input): 1 and 2 are verdicts.
const auditFailed = 3

// auditOptions are the flags of cellwarden audit.
type auditOptions struct {
	inventory, assets, config, telemetry, acks string
	asOf, format, out                          string
	strict                                     bool
	now                                        func() time.Time
	pre                                        preMaintOptions
}

// addAudit declares the audit command.
func addAudit(app *kingpin.Application) (*kingpin.CmdClause, *auditOptions) {
	o := &auditOptions{now: time.Now}
	c := app.Command("audit", "Audit battery ages: every string by urgency with its end-of-life date, reasons and the source of each date. Exit status 0: all fine; 1: something due soon; 2: something past end of life; 3: the audit could not run.")
	c.Flag("inventory", "Battery inventory YAML (interfaces.md §2); overrides the configuration's inventory.").StringVar(&o.inventory)
	c.Flag("assets", "Asset list CSV (docs/lifecycle.md) with more dates and their sources.").StringVar(&o.assets)
	c.Flag("config", "Configuration file: its lifecycle: section (policies, horizon, SoH limit, time zone) and inventory.").StringVar(&o.config)
	c.Flag("telemetry", "Telemetry CSV (interfaces.md §1) whose string_soh_ratio rows give each string's state of health and its trend.").StringVar(&o.telemetry)
	c.Flag("acks", "Acknowledgement store (JSON) to show; acknowledged findings do not raise the exit status.").StringVar(&o.acks)
	c.Flag("as-of", "The day to audit as of (2026-03-04, or any date format of docs/lifecycle.md); default today in the configured time zone.").StringVar(&o.asOf)
	c.Flag("format", "Output format: "+strings.Join(lifecycle.Formats, ", ")+".").Default("table").EnumVar(&o.format, lifecycle.Formats...)
	c.Flag("out", "Write the report to this file instead of standard output.").StringVar(&o.out)
	c.Flag("strict", "Data problems (placeholder, conflicting or missing dates) and unknown states exit with status 1 too.").BoolVar(&o.strict)
	addPreMaintenanceFlags(c, &o.pre)
	return c, o
}

// runAudit runs the audit and returns its verdict as an exitError (nil
// for status 0).
func runAudit(o *auditOptions, stdout, stderr io.Writer) error {
	if o.pre.ups != "" {
		return runPreMaintenance(o, stdout, stderr)
	}
	if o.pre.url != "" {
		fmt.Fprintln(stderr, "cellwarden audit: --url is for --pre-maintenance U")
		return exitError{auditFailed}
	}
	rep, err := buildAudit(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden audit: %v\n", err)
		return exitError{auditFailed}
	}
	var buf bytes.Buffer
	if err := lifecycle.Render(&buf, o.format, rep); err != nil {
		fmt.Fprintf(stderr, "cellwarden audit: %v\n", err)
		return exitError{auditFailed}
	}
	if o.out != "" {
		err = os.WriteFile(o.out, buf.Bytes(), 0o644)
	} else {
		_, err = stdout.Write(buf.Bytes())
	}
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden audit: %v\n", err)
		return exitError{auditFailed}
	}
	if code := rep.ExitStatus(o.strict); code != 0 {
		return exitError{code}
	}
	return nil
}

// buildAudit loads every source and evaluates them.
func buildAudit(o *auditOptions, stderr io.Writer) (*lifecycle.Report, error) {
	cfg := lifecycle.DefaultConfig()
	cfg.FillDefaults()
	invPath := o.inventory
	if o.config != "" {
		c, p, err := lifecycle.LoadConfig(o.config)
		if err != nil {
			return nil, err
		}
		cfg = c
		if invPath == "" {
			invPath = p
		}
	}
	if invPath == "" && o.assets == "" {
		return nil, errors.New("nothing to audit: give --inventory, --assets or a --config that names an inventory")
	}
	day := lifecycle.DateIn(o.now(), cfg.Location())
	if o.asOf != "" {
		d, err := lifecycle.ParseDate(o.asOf)
		if err != nil {
			return nil, fmt.Errorf("--as-of %q %v", o.asOf, err)
		}
		day = d
	}
	ev := lifecycle.NewEvaluator(cfg)
	var sources []string
	if invPath != "" {
		inv, err := inventory.Load(invPath)
		if err != nil {
			return nil, err
		}
		ev.SetInventory(inv)
		sources = append(sources, invPath)
	}
	if o.assets != "" {
		assets, err := lifecycle.LoadAssets(o.assets)
		if err != nil {
			return nil, err
		}
		ev.SetAssets(assets)
		sources = append(sources, o.assets)
	}
	if o.telemetry != "" {
		if err := auditTelemetry(ev, o.telemetry, day, cfg.Location(), stderr); err != nil {
			return nil, err
		}
		sources = append(sources, o.telemetry)
	}
	if o.acks != "" {
		store, err := lifecycle.OpenStore(o.acks)
		if err != nil {
			return nil, err
		}
		acks, err := store.List()
		if err != nil {
			return nil, err
		}
		ev.SetAcknowledgements(acks)
		sources = append(sources, o.acks)
	}
	return lifecycle.NewReport(ev, day, sources), nil
}

// auditTelemetry feeds the string_soh_ratio readings of a telemetry file
// up to the as-of day to ev, and declares every string it mentions.
func auditTelemetry(ev *lifecycle.Evaluator, path string, day lifecycle.Date, loc *time.Location, stderr io.Writer) error {
	reg := telemetry.NewRegistry()
	r, err := csvfile.Open(path, reg)
	if err != nil {
		return err
	}
	defer r.Close()
	declared := map[telemetry.EntityID]bool{}
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		info := reg.Info(s.Entity)
		if info.String != 0 && !declared[info.String] {
			declared[info.String] = true
			e := reg.Info(info.String).Entity
			ev.DeclareString(e.UPS, e.String)
		}
		t := s.Timestamp()
		if s.Metric != telemetry.StringSOHRatio || s.NoReading() || lifecycle.DateIn(t, loc).After(day) {
			continue
		}
		ev.ObserveSOH(info.Entity.UPS, info.Entity.String, t, s.Value)
	}
	if st := r.Stats(); st.SkippedTotal() > 0 {
		n := st.SkippedTotal()
		fmt.Fprintf(stderr, "cellwarden audit: %s: skipped %d bad rows\n", path, n)
	}
	return nil
}
