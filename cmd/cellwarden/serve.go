package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/internal/daemon"
)

type serveOptions struct {
	config           string
	stateDir         string
	shard            string
	snapshotInterval time.Duration
	shutdownTimeout  time.Duration
	web              *web.FlagConfig
	apiWithoutAuth   bool
	gogc             string
}

// addServe declares `cellwarden serve` and its flags.
func addServe(app *kingpin.Application) (*kingpin.CmdClause, *serveOptions) {
	o := &serveOptions{}
	c := app.Command("serve", "Run the daemon: poll and subscribe to the configured BMSs, detect, export /metrics and notify.")
	c.Flag("config", "Configuration file (check it with check-config).").Required().StringVar(&o.config)
	c.Flag("state.dir", "Directory for the detector's state snapshot (created if missing).").Default("data").StringVar(&o.stateDir)
	c.Flag("shard", "This instance's shard I/N: it watches the UPSs whose hash modulo N is I (docs/operations.md).").Default("0/1").StringVar(&o.shard)
	c.Flag("snapshot.interval", "How often the detector's state is written to the state directory (also on shutdown).").Default("1m").DurationVar(&o.snapshotInterval)
	c.Flag("shutdown.timeout", "How long SIGTERM waits for collectors and deliveries to finish.").Default("30s").DurationVar(&o.shutdownTimeout)
	o.web = metrics.AddFlags(c)
	c.Flag("web.enable-lifecycle-api-without-auth", "Dangerous: let POST and DELETE of /api/v1/acknowledgements and /api/v1/maintenance change things although --web.config.file sets no basic_auth_users; whoever reaches the port can then mute alerts.").BoolVar(&o.apiWithoutAuth)
	c.Flag("runtime.gogc", "The garbage collector's heap growth target in percent, or off (docs/operations.md: memory). "+
		"The daemon keeps its state in long-lived tables and allocates little, so a low target costs little CPU and keeps "+
		"the resident memory near the live state.").Envar("GOGC").Default(strconv.Itoa(defaultGOGC)).StringVar(&o.gogc)
	return c, o
}

// defaultGOGC is serve's heap growth target: at 100 k cells it holds the
// resident memory to about 1.6 times the live state instead of 2.6 times
// (Go's default of 100), for about 5 % more CPU (docs/benchmarks.md).
const defaultGOGC = 25

// parseGOGC reads a GOGC value: a percentage of at least 1, or off.
func parseGOGC(v string) (int, error) {
	if v == "off" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--runtime.gogc (or GOGC) %q: want a percentage of at least 1, or off", v)
	}
	return n, nil
}

// runServe runs the daemon until SIGINT or SIGTERM; SIGHUP reloads the
// configuration.
func runServe(o *serveOptions, log *zap.Logger) error {
	shard, err := daemon.ParseShard(o.shard)
	if err != nil {
		return err
	}
	gogc, err := parseGOGC(o.gogc)
	if err != nil {
		return err
	}
	debug.SetGCPercent(gogc)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // one reload pending is enough
			}
		}
	}()
	return daemon.Run(ctx, daemon.Options{ConfigPath: o.config, StateDir: o.stateDir, Shard: shard,
		SnapshotInterval: o.snapshotInterval, ShutdownTimeout: o.shutdownTimeout, Web: o.web, Reload: reload, Log: log,
		LifecycleAPIWithoutAuth: o.apiWithoutAuth})
}
