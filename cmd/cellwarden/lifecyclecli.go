package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
)

// The files `cellwarden serve` reads in its state directory (the daemon
// package's names).
const (
	ackFileName         = "acknowledgements.json"
	maintenanceFileName = "maintenance.json"
)

// lifecycleCommands are acknowledge and maintenance start|stop|list.
type lifecycleCommands struct {
	ack, mStart, mStop, mList *kingpin.CmdClause
	now                       func() time.Time

	// acknowledge
	stateDir, ups, str, state     string
	owner, planned, expires, note string
	list, remove                  bool

	// maintenance start, stop and list (each its own flags)
	mStateDir, mUPS, mStr, by, reason string
	duration                          time.Duration
	mStopStateDir, mStopUPS, mStopStr string
	mListStateDir                     string
}

// addLifecycleCommands declares acknowledge and maintenance.
func addLifecycleCommands(app *kingpin.Application) *lifecycleCommands {
	c := &lifecycleCommands{now: time.Now}
	c.ack = app.Command("acknowledge", "Acknowledge a battery-age finding with an owner, a planned replacement date and an expiry: its BatteryEndOfLife/Soon alert resolves until the expiry. --list shows them, --remove deletes one.")
	c.ack.Flag("state.dir", "The serve state directory holding "+ackFileName+".").Default("data").StringVar(&c.stateDir)
	c.ack.Flag("ups", "The UPS of the finding.").StringVar(&c.ups)
	c.ack.Flag("string", "The battery string (empty: a finding about the whole UPS).").StringVar(&c.str)
	c.ack.Flag("state", "The state acknowledged: end_of_life (covers soon too) or soon.").StringVar(&c.state)
	c.ack.Flag("owner", "Who owns the replacement: a person or a team.").StringVar(&c.owner)
	c.ack.Flag("planned", "The day the replacement is planned for (2026-05-15, or any date format of docs/lifecycle.md).").StringVar(&c.planned)
	c.ack.Flag("expires", "The last day the acknowledgement applies; from the next day on the alert repeats.").StringVar(&c.expires)
	c.ack.Flag("note", "Free text, such as a change ticket.").StringVar(&c.note)
	c.ack.Flag("list", "List the stored acknowledgements.").BoolVar(&c.list)
	c.ack.Flag("remove", "Remove the acknowledgement of --ups, --string and --state.").BoolVar(&c.remove)

	m := app.Command("maintenance", "Maintenance windows: while people work on a UPS or a string, TelemetryStale and SensorFault are held for it; every safety alert stays live.")
	c.mStart = m.Command("start", "Start (or replace) the maintenance window of a UPS or a string; it ends by itself after --for.")
	c.mStart.Flag("state.dir", "The serve state directory holding "+maintenanceFileName+".").Default("data").StringVar(&c.mStateDir)
	c.mStart.Flag("ups", "The UPS worked on.").Required().StringVar(&c.mUPS)
	c.mStart.Flag("string", "The string worked on (empty: the whole UPS).").StringVar(&c.mStr)
	c.mStart.Flag("by", "Who does the work.").Required().StringVar(&c.by)
	c.mStart.Flag("for", "How long the window lasts: a forgotten window must not mute a string for ever.").Default(lifecycle.DefaultMaintenance.String()).DurationVar(&c.duration)
	c.mStart.Flag("reason", "Free text, such as the work permit.").StringVar(&c.reason)
	c.mStop = m.Command("stop", "End the maintenance window of a UPS or a string now.")
	c.mStop.Flag("state.dir", "The serve state directory holding "+maintenanceFileName+".").Default("data").StringVar(&c.mStopStateDir)
	c.mStop.Flag("ups", "The UPS.").Required().StringVar(&c.mStopUPS)
	c.mStop.Flag("string", "The string (empty: the whole-UPS window).").StringVar(&c.mStopStr)
	c.mList = m.Command("list", "List the maintenance windows, active and ended.")
	c.mList.Flag("state.dir", "The serve state directory holding "+maintenanceFileName+".").Default("data").StringVar(&c.mListStateDir)
	return c
}

// run runs cmd if it is one of these commands; handled is false otherwise.
// Invalid input is reported on stderr and exits with status 1.
func (c *lifecycleCommands) run(cmd string, stdout, stderr io.Writer) (handled bool, err error) {
	switch cmd {
	case c.ack.FullCommand():
		err = c.acknowledge(stdout)
	case c.mStart.FullCommand():
		err = c.maintenanceStart(stdout)
	case c.mStop.FullCommand():
		err = c.maintenanceStop(stdout)
	case c.mList.FullCommand():
		err = c.maintenanceList(stdout)
	default:
		return false, nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "cellwarden %s: %v\n", cmd, err)
		return true, exitError{1}
	}
	return true, nil
}

func (c *lifecycleCommands) acknowledge(stdout io.Writer) error {
	store, err := lifecycle.OpenStore(filepath.Join(c.stateDir, ackFileName))
	if err != nil {
		return err
	}
	switch {
	case c.list && c.remove:
		return errors.New("--list and --remove exclude each other")
	case c.list:
		acks, err := store.List()
		if err != nil {
			return err
		}
		today := lifecycle.DateIn(c.now(), time.UTC)
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "UPS\tSTRING\tSTATE\tOWNER\tPLANNED\tEXPIRES\tACTIVE\tNOTE")
		for _, a := range acks {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.UPS, dash(a.String), a.State, a.Owner, a.Planned, a.Expires, yesNo(a.Active(today)), dash(a.Note))
		}
		return w.Flush()
	}
	if c.ups == "" {
		return errors.New("--ups is required")
	}
	state, ok := lifecycle.ParseState(c.state)
	if !ok || (state != lifecycle.StateSoon && state != lifecycle.StateEndOfLife) {
		return fmt.Errorf("--state %q must be end_of_life or soon", c.state)
	}
	if c.remove {
		found, err := store.Remove(c.ups, c.str, state)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no acknowledgement of %s state %s", entityName(c.ups, c.str), state)
		}
		fmt.Fprintf(stdout, "removed the acknowledgement of %s state %s\n", entityName(c.ups, c.str), state)
		return nil
	}
	a := lifecycle.Ack{UPS: c.ups, String: c.str, State: state, Owner: c.owner, Note: c.note, Created: c.now().UTC().Truncate(time.Second)}
	if err := a.SetDays(c.planned, c.expires, func(f string) string { return "--" + f }); err != nil {
		return err
	}
	if err := store.Acknowledge(a); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "acknowledged %s state %s: owner %s, replacement planned %s, until %s (%s)\n",
		entityName(a.UPS, a.String), a.State, a.Owner, a.Planned, a.Expires, store.Path())
	return nil
}

func (c *lifecycleCommands) maintenanceStart(stdout io.Writer) error {
	if c.duration <= 0 {
		return fmt.Errorf("--for %s must be positive", c.duration)
	}
	store, err := lifecycle.OpenMaintenanceStore(filepath.Join(c.mStateDir, maintenanceFileName))
	if err != nil {
		return err
	}
	now := c.now().UTC().Truncate(time.Second)
	w := lifecycle.Window{UPS: c.mUPS, String: c.mStr, By: c.by, Reason: c.reason, Started: now, Until: now.Add(c.duration)}
	if err := store.Start(w); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "maintenance of %s by %s until %s: TelemetryStale and SensorFault held, safety alerts live (%s)\n",
		entityName(w.UPS, w.String), w.By, w.Until.Format(time.RFC3339), store.Path())
	return nil
}

func (c *lifecycleCommands) maintenanceStop(stdout io.Writer) error {
	store, err := lifecycle.OpenMaintenanceStore(filepath.Join(c.mStopStateDir, maintenanceFileName))
	if err != nil {
		return err
	}
	w, found, err := store.Stop(c.mStopUPS, c.mStopStr)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s has no maintenance window", entityName(c.mStopUPS, c.mStopStr))
	}
	fmt.Fprintf(stdout, "maintenance of %s by %s stopped: every alert is live again\n", entityName(w.UPS, w.String), w.By)
	return nil
}

func (c *lifecycleCommands) maintenanceList(stdout io.Writer) error {
	store, err := lifecycle.OpenMaintenanceStore(filepath.Join(c.mListStateDir, maintenanceFileName))
	if err != nil {
		return err
	}
	ws, err := store.List()
	if err != nil {
		return err
	}
	now := c.now()
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "UPS\tSTRING\tBY\tSTARTED\tUNTIL\tACTIVE\tREASON")
	for _, x := range ws {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.UPS, dash(x.String), x.By, x.Started.Format(time.RFC3339), x.Until.Format(time.RFC3339),
			yesNo(x.Active(now)), dash(x.Reason))
	}
	return w.Flush()
}

// entityName names a UPS ("ups dc1-ups-a") or a string ("dc1-ups-a/2").
func entityName(ups, str string) string {
	if str == "" {
		return "ups " + ups
	}
	return ups + "/" + str
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
