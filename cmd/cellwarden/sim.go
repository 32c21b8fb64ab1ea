package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/sim"
)

type simOptions struct {
	out  string
	seed uint64
	only []string
	// physics is --physics: key=value settings for sim.ParsePhysics.
	physics []string
}

// runSimScenarios writes the standard scenario suite, generating scenarios
// in parallel (each is independent and deterministic).
func runSimScenarios(o simOptions, stdout io.Writer, log *zap.Logger) error {
	phy, err := sim.ParsePhysics(o.physics)
	if err != nil {
		return err
	}
	suite := sim.Suite(o.seed)
	for _, sc := range suite {
		sc.Physics = phy
	}
	if len(o.only) > 0 {
		var picked []*sim.Scenario
		for _, name := range o.only {
			i := slices.IndexFunc(suite, func(s *sim.Scenario) bool { return s.Name == name })
			if i < 0 {
				return fmt.Errorf("no scenario %q (see cellwarden sim list)", name)
			}
			picked = append(picked, suite[i])
		}
		suite = picked
	}
	start := time.Now()
	results := make([]*sim.Labels, len(suite))
	errs := make([]error, len(suite))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, sc := range suite {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = sim.Generate(o.out, sc)
		}()
	}
	wg.Wait()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCELLS\tCELL-DAYS\tFAULTS\tEVENTS")
	for i, sc := range suite {
		if errs[i] != nil {
			return fmt.Errorf("scenario %s: %w", sc.Name, errs[i])
		}
		l := results[i]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%d\n", sc.Name, l.Cells, l.CellDays, len(l.Faults), len(l.Events))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	log.Debug("scenarios written", zap.String("dir", o.out), zap.Duration("took", time.Since(start)))
	physics := ""
	if p := phy.String(); p != "" {
		physics = ", physics " + p
	}
	fmt.Fprintf(stdout, "wrote %d scenarios to %s in %.1f s (seed %d%s)\n", len(suite), o.out, time.Since(start).Seconds(), o.seed, physics)
	return nil
}

// physicsFlagHelp is the help of sim scenarios --physics.
func physicsFlagHelp() string {
	return "Other physics, for robustness studies (docs/robustness.md): key=value settings, comma-separated or repeated. Keys: " +
		strings.Join(sim.PhysicsKeys(), "; ") + "."
}

// runSimList prints the standard scenarios.
func runSimList(seed uint64, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tDURATION\tINTERVAL\tCELLS\tDESCRIPTION")
	for _, sc := range sim.Suite(seed) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", sc.Name, sc.Duration, sc.Interval, sc.Cells(), sc.Description)
	}
	return tw.Flush()
}
