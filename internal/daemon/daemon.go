// Package daemon is `cellwarden serve`: it starts the configured
// collectors, feeds their samples to one detector, hands the detector's
// alert changes to the metrics store and the notifier, serves /metrics,
// the lifecycle endpoints and the status page, snapshots the detector's
// state, reloads its configuration on SIGHUP or POST /-/reload (swapping
// only a configuration that validates) and drains on shutdown.
//
// Goroutines: one per collector (Modbus units, MQTT clients), one that
// owns the detector (the only one touching the Engine), the notifier's
// senders, and the HTTP server. Collectors hand batches of samples to the
// detector through a bounded channel; when it is full they wait, which a
// Modbus unit counts as skipped polls and the MQTT collector as drops of
// its own bounded queue, so back-pressure is visible and never silent.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/modbus/fleet"
	"github.com/cellwarden/cellwarden/collector/mqtt"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/config"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Options configure a daemon.
type Options struct {
	// ConfigPath is the configuration file (required).
	ConfigPath string
	// StateDir holds the detector snapshot; created when missing.
	StateDir string
	// Shard selects the UPSs this instance watches.
	Shard Shard
	// SnapshotInterval spaces the detector snapshots (also written on
	// shutdown). 0 means one minute.
	SnapshotInterval time.Duration
	// ShutdownTimeout bounds the drain on shutdown. 0 means 30 s.
	ShutdownTimeout time.Duration
	// Web are the exporter-toolkit flags (listen addresses, web config
	// file). Listener, when set, is served instead of Web's addresses.
	Web      *web.FlagConfig
	Listener net.Listener
	// Reload delivers reload requests (SIGHUP); POST /-/reload is another.
	Reload <-chan struct{}
	// LifecycleAPIWithoutAuth lets POST and DELETE of /api/v1/ change
	// acknowledgements and maintenance windows when the web configuration
	// file sets no basic_auth_users. Dangerous: whoever reaches the port
	// can then mute alerts.
	LifecycleAPIWithoutAuth bool
	// Log receives the daemon's logs.
	Log *zap.Logger
	// Clock is the event-time clock: it stamps Modbus polls and ticks the
	// detector (time.Now when nil). The demo plays its simulation faster
	// than real time through it.
	Clock func() time.Time
}

// batchQueue is how many batches of samples (one poll, one message) may
// wait for the detector.
const batchQueue = 4096

// freeBatches is how many emptied batches are kept for reuse: enough for
// the batches in flight at a steady pace, not a full queue's worth.
const freeBatches = 64

// snapshotFile is the detector snapshot's name in the state directory.
const snapshotFile = "detector.snapshot"

// alertsFile, beside the snapshot, lists the alerts firing when it was
// taken: the restored detector knows they fire and reports no change for
// them, so the metrics and the status page learn them from here.
const alertsFile = "alerts.json"

// daemon is one running serve.
type daemon struct {
	o     Options
	log   *zap.Logger
	reg   *telemetry.Registry
	store *metrics.Store
	self  *metrics.Self
	nm    *notify.Metrics
	prom  *prometheus.Registry

	in chan []telemetry.Sample
	// free holds batches the detector is done with, for the collectors to
	// fill again (no garbage per batch).
	free chan []telemetry.Sample
	// running is the collectors the health and metrics read (swapped on
	// reload by the detector goroutine, read by scrapes).
	running  atomic.Pointer[collectors]
	reloadCh chan chan error
	ready    atomic.Bool
	status   *statusState
	// recent: the firing and recently resolved alerts (GET
	// /api/v1/alerts).
	recent *alertLog

	// lifecycleCh: the lifecycle API changed the acknowledgements or the
	// maintenance windows (one pending nudge is enough).
	lifecycleCh chan struct{}

	// Owned by the detector goroutine.
	cfg      *config.Config
	inv      *inventory.Inventory
	eng      *detector.Engine
	notifier *notify.Notifier
	coll     *collectors
	changes  []detector.Change
	acks     *lifecycle.Store
	// lastEvent is the latest event time observed and lastEventAt the
	// clock when it arrived (eventNow).
	lastEvent, lastEventAt int64
	// deviceDates are the device-reported dates already observed, by
	// source.
	deviceDates map[string]inventory.Date
	ackSeen     string // the acknowledgements last handed to the engine
	maint       *lifecycle.MaintenanceStore
	// maintOn: the maintenance windows last handed to the engine, by
	// UPS/string; maintErr: the last read error, logged once.
	maintOn  map[telemetry.Entity]lifecycle.Window
	maintErr string
	// snapDue: alerts changed since the last snapshot.
	snapDue bool
}

// Run runs the daemon until ctx ends, then drains and returns nil; it
// returns an error when it cannot start (bad configuration, state
// directory, listen address).
func Run(ctx context.Context, o Options) error {
	if o.SnapshotInterval <= 0 {
		o.SnapshotInterval = time.Minute
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Shard.Count == 0 {
		o.Shard = Shard{Index: 0, Count: 1}
	}
	log := o.Log
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	inv, err := cfg.LoadInventory("")
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	d := &daemon{o: o, log: log, reg: telemetry.NewRegistry(), in: make(chan []telemetry.Sample, batchQueue),
		free:     make(chan []telemetry.Sample, freeBatches),
		reloadCh: make(chan chan error), lifecycleCh: make(chan struct{}, 1), cfg: cfg, inv: inv}
	d.store = metrics.NewStore(d.reg, metrics.StoreOptions{})
	d.store.SetInventory(inv)
	d.nm = notify.NewMetrics(nil)
	d.status = newStatusState()
	d.recent = newAlertLog(maxResolved)
	if err := d.recent.load(filepath.Join(o.StateDir, resolvedFile)); err != nil {
		log.Warn("resolved alerts of the last run not read: /api/v1/alerts lists those from now on", zap.Error(err))
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cellwarden_ingest_queue_batches",
		Help: "Batches of samples waiting for the detector."}, func() float64 { return float64(len(d.in)) })
	queueCap := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cellwarden_ingest_queue_capacity_batches",
		Help: "How many batches of samples may wait for the detector."})
	queueCap.Set(batchQueue)
	d.prom = metrics.NewRegistry(nil, d.nm, queue, queueCap, &mqttMetrics{d: d}, &modbusMetrics{d: d})
	d.self = metrics.NewSelf(d.prom, map[string][]string{"modbus": {"bad_identity"}, "mqtt": mqttReasonNames()})

	d.eng = detector.New(cfg.Detector, d.reg, inv)
	d.restore()
	// The age rules start after the restore, so that they know the
	// restored strings.
	if d.acks, err = lifecycle.OpenStore(filepath.Join(o.StateDir, ackFile)); err != nil {
		return fmt.Errorf("acknowledgements: %w", err)
	}
	if err := d.setLifecycle(cfg); err != nil {
		return err
	}
	d.maint = lifecycle.NewMaintenanceStore(filepath.Join(o.StateDir, maintenanceFile))
	d.refreshMaintenance()
	// Restored cells are exported as learned from the first poll on, not
	// from the first score refresh.
	d.store.SetScores(d.eng.CellScores)
	if d.notifier, err = d.newNotifier(cfg); err != nil {
		return err
	}
	d.notifier.Start(context.WithoutCancel(ctx))
	d.self.ConfigLoaded(true, time.Now())
	d.status.setConfig(cfg, o.Shard, nil)

	// The HTTP server runs until the drain is over.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	h, err := d.handler()
	if err != nil {
		return err
	}
	httpDone := make(chan error, 1)
	go func() {
		if o.Listener != nil {
			httpDone <- metrics.ServeListener(httpCtx, o.Listener, o.Web, h, log)
			return
		}
		httpDone <- metrics.Serve(httpCtx, o.Web, h, log)
	}()

	collCtx, stopColl := context.WithCancel(ctx)
	d.coll = d.startCollectors(collCtx, cfg)
	d.store.AddHealth(d.health)
	d.ready.Store(true)
	log.Info("cellwarden serving", zap.String("config", o.ConfigPath), zap.String("state_dir", o.StateDir),
		zap.String("shard", o.Shard.String()), zap.Int("modbus_devices", d.coll.fleet.Len()), zap.Int("mqtt_collectors", len(d.coll.mqtt)))

	err = d.loop(ctx, httpDone)
	stopColl()
	d.ready.Store(false)
	d.drain()
	stopHTTP()
	// Unless the loop ended because the server failed (it took the
	// server's error then), the server's outcome is still to come.
	if err == nil {
		if herr := <-httpDone; herr != nil && !errors.Is(herr, http.ErrServerClosed) {
			err = herr
		}
	}
	return err
}

// loop is the detector goroutine: it observes every batch, ticks the
// engine with the clock, refreshes the scores the metrics export, writes
// snapshots and applies reloads, until ctx ends or the HTTP server fails.
func (d *daemon) loop(ctx context.Context, httpDone <-chan error) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	snap := time.NewTicker(d.o.SnapshotInterval)
	defer snap.Stop()
	lastScores := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-httpDone:
			return fmt.Errorf("HTTP server: %w", err)
		case b := <-d.in:
			d.observe(b)
		case now := <-tick.C:
			d.changes = d.eng.Tick(d.eventNow(), d.changes[:0])
			d.publish(d.changes)
			if d.snapDue {
				// An alert changed: its state is in the outbox already;
				// keep the detector's in step, so that a restart after a
				// crash neither misses its resolution nor repeats it.
				d.snapshot()
			}
			if now.Sub(lastScores) >= 5*time.Second {
				d.store.SetScores(d.eng.CellScores)
				d.store.SetFindings(d.eng.Findings())
				d.refreshAcks()
				d.observeDeviceDates()
				d.refreshMaintenance()
				d.status.setFindings(d.eng.Findings())
				lastScores = now
			}
			d.countMQTT()
		case <-snap.C:
			d.snapshot()
		case <-d.o.Reload:
			d.reload()
		case reply := <-d.reloadCh:
			reply <- d.reload()
		case <-d.lifecycleCh:
			// Applied at the next tick, not at the next 5 s refresh.
			d.refreshAcks()
			d.refreshMaintenance()
		}
	}
}

// observe feeds one batch to the engine and publishes what changed.
func (d *daemon) observe(b []telemetry.Sample) {
	d.store.Observe(b...)
	d.changes = d.changes[:0]
	latest := d.lastEvent
	for _, s := range b {
		d.changes = d.eng.Observe(s, d.changes)
		latest = max(latest, s.Time)
	}
	if latest > d.lastEvent {
		d.lastEvent, d.lastEventAt = latest, d.o.Clock().UnixNano()
	}
	d.publish(d.changes)
	select {
	case d.free <- b[:0]:
	default:
	}
}

// batch returns an empty batch to copy samples into: one the detector is
// done with, or a new one.
func (d *daemon) batch() []telemetry.Sample {
	select {
	case b := <-d.free:
		return b
	default:
		return nil
	}
}

// eventNow is the event time the detector is ticked with: the clock, but
// never further ahead of the latest reading than the time that has passed
// since it arrived. Sources whose clocks lag ours (a gateway stamping MQTT
// payloads a minute behind) then do not look silent, while a fleet that
// really goes silent still ages by the clock.
func (d *daemon) eventNow() int64 {
	now := d.o.Clock().UnixNano()
	if d.lastEventAt == 0 {
		return now
	}
	return min(now, d.lastEvent+(now-d.lastEventAt))
}

// publish hands alert changes to the metrics, the status page, the log
// and the notifier. The notifier writes them to its outbox before it
// returns: from here on a crash loses nothing.
func (d *daemon) publish(cs []detector.Change) {
	if len(cs) == 0 {
		return
	}
	as := make([]alerting.Alert, len(cs))
	for i := range cs {
		as[i] = alerting.FromChange(cs[i], d.reg)
		a := &as[i]
		d.log.Info("alert "+a.Status, zap.String("alertname", a.Labels.Alertname), zap.String("severity", a.Labels.Severity),
			zap.String("entity", d.reg.Info(cs[i].Entity).Entity.Path()), zap.String("summary", a.Annotations.Summary))
	}
	d.store.Alert(as...)
	d.status.alerts(as)
	d.recent.record(as)
	d.snapDue = true
	if err := d.notifier.Notify(as...); err != nil {
		d.log.Error("alerts could not be queued for notification", zap.Int("alerts", len(as)), zap.Error(err))
	}
}

// drain runs after the collectors were told to stop: it waits for them
// (bounded by the shutdown timeout), feeds the detector what they queued,
// writes the snapshot and lets the notifier deliver what it can in time.
func (d *daemon) drain() {
	deadline := time.Now().Add(d.o.ShutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	stopped := make(chan struct{})
	go func() { d.coll.wait(); close(stopped) }()
	for done := false; !done; {
		select {
		case b := <-d.in:
			d.observe(b)
		case <-stopped:
			done = true
		case <-ctx.Done():
			d.log.Warn("collectors did not stop within the shutdown timeout")
			done = true
		}
	}
	for n := len(d.in); n > 0; n-- {
		d.observe(<-d.in)
	}
	d.snapshot()
	if err := d.notifier.Shutdown(ctx); err != nil {
		d.log.Warn("notifier shutdown", zap.Error(err))
	}
	d.log.Info("cellwarden stopped")
}

// snapshot writes the firing alerts and the detector's state, then the
// resolved alerts when they changed, each atomically, so that a crash
// mid-write leaves the previous files.
func (d *daemon) snapshot() {
	d.snapDue = false
	start := time.Now()
	path := filepath.Join(d.o.StateDir, alertsFile)
	err := writeAtomic(path, func(w io.Writer) error { return json.NewEncoder(w).Encode(d.status.firing()) })
	if err == nil {
		path = filepath.Join(d.o.StateDir, snapshotFile)
		err = writeAtomic(path, d.eng.Snapshot)
	}
	d.self.Snapshot(err == nil, time.Now(), time.Since(start))
	if err != nil {
		d.log.Error("detector snapshot not written", zap.String("path", path), zap.Error(err))
	}
	// Only GET /api/v1/alerts reads it: a failure here must not stop the
	// snapshot; it is written again at the next one.
	if err := d.recent.save(filepath.Join(d.o.StateDir, resolvedFile)); err != nil {
		d.log.Warn("resolved alerts not written", zap.Error(err))
	}
}

// writeAtomic writes a file through a temporary file, fsync and rename.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// restore loads the last snapshot, if any, into the fresh engine. A
// snapshot of another detector version, or a damaged one, is set aside
// and the detector starts fresh.
func (d *daemon) restore() {
	path := filepath.Join(d.o.StateDir, snapshotFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		d.log.Info("no detector snapshot: learning from scratch", zap.String("path", path))
		return
	}
	if err != nil {
		d.log.Error("detector snapshot unreadable: learning from scratch", zap.String("path", path), zap.Error(err))
		return
	}
	defer f.Close()
	if err := d.eng.Restore(f); err != nil {
		d.log.Warn("detector snapshot not used: learning from scratch", zap.String("path", path), zap.Error(err))
		return
	}
	as, err := readFiring(filepath.Join(d.o.StateDir, alertsFile))
	if err != nil {
		d.log.Warn("firing alerts not restored: they show once they change", zap.Error(err))
	}
	d.store.Alert(as...)
	d.status.alerts(as)
	d.recent.record(as)
	d.log.Info("detector state restored", zap.String("path", path), zap.Int("entities", d.reg.Len()), zap.Int("firing_alerts", len(as)))
}

// readFiring reads the alerts file (none when it is missing).
func readFiring(path string) ([]alerting.Alert, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var saved []savedAlert
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	as := make([]alerting.Alert, len(saved))
	for i, s := range saved {
		as[i] = alerting.Alert{Time: s.Since, Status: "firing", Labels: s.Labels, Annotations: s.Annotations, Value: math.NaN()}
	}
	return as, nil
}

// newNotifier opens the notifier of a configuration.
func (d *daemon) newNotifier(cfg *config.Config) (*notify.Notifier, error) {
	n, err := notify.New(&cfg.Alerting, notify.Options{Logger: d.log.Named("notify"), Metrics: d.nm})
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	return n, nil
}

// reload loads the configuration file again. A configuration that does not
// validate (or whose inventory does not load) is refused and the running
// one kept; otherwise the detector takes the new rules without losing what
// it learned, and the collectors and the notifier are restarted with
// theirs.
func (d *daemon) reload() error {
	cfg, err := config.Load(d.o.ConfigPath)
	var inv *inventory.Inventory
	if err == nil {
		inv, err = cfg.LoadInventory("")
	}
	if err != nil {
		d.self.ConfigLoaded(false, time.Now())
		d.status.setConfig(d.cfg, d.o.Shard, err)
		d.log.Error("configuration reload failed: keeping the running configuration", zap.String("config", d.o.ConfigPath), zap.Error(err))
		return err
	}
	d.coll.stop()
	// What the old collectors queued belongs to the old configuration's
	// entities, which the detector still knows: observe it first.
	for n := len(d.in); n > 0; n-- {
		d.observe(<-d.in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.o.ShutdownTimeout)
	if err := d.notifier.Shutdown(ctx); err != nil {
		d.log.Warn("notifier shutdown for reload", zap.Error(err))
	}
	cancel()
	n, nerr := d.newNotifier(cfg)
	if nerr != nil {
		// The outbox of the new configuration cannot be opened: keep
		// delivering through the old one.
		d.log.Error("configuration reload: alerting not usable, keeping the previous alerting", zap.Error(nerr))
		n, _ = d.newNotifier(d.cfg)
		cfg.Alerting = d.cfg.Alerting
		err = nerr
	}
	d.notifier = n
	d.notifier.Start(context.Background())
	d.eng.Reconfigure(cfg.Detector, inv)
	if lerr := d.setLifecycle(cfg); lerr != nil && err == nil {
		d.log.Error("configuration reload: the asset list could not be read; battery ages use the inventory", zap.Error(lerr))
		err = lerr
	}
	d.store.SetInventory(inv)
	d.cfg, d.inv = cfg, inv
	d.coll = d.startCollectors(d.coll.parent, cfg)
	d.self.ConfigLoaded(err == nil, time.Now())
	d.status.setConfig(cfg, d.o.Shard, err)
	if err == nil {
		d.log.Info("configuration reloaded", zap.String("config", d.o.ConfigPath),
			zap.Int("modbus_devices", d.coll.fleet.Len()), zap.Int("mqtt_collectors", len(d.coll.mqtt)))
	}
	return err
}

// ackFile holds the acknowledgements of battery-age findings in the state
// directory; `cellwarden acknowledge` and the HTTP API write it.
const ackFile = "acknowledgements.json"

// setLifecycle (re)configures the battery-age rules: the policy, the asset
// list and the acknowledgements.
func (d *daemon) setLifecycle(cfg *config.Config) error {
	err := cfg.SetAges(d.eng)
	d.ackSeen = ""
	d.refreshAcks()
	return err
}

// refreshAcks reads the acknowledgement store again and, when it changed,
// has the next tick judge the battery ages with it.
func (d *daemon) refreshAcks() {
	acks, err := d.acks.List()
	if err != nil {
		d.log.Warn("acknowledgements unreadable; keeping the last ones", zap.String("path", d.acks.Path()), zap.Error(err))
		return
	}
	seen := fmt.Sprint(acks)
	if seen == d.ackSeen {
		return
	}
	d.ackSeen = seen
	d.eng.Lifecycle().SetAcknowledgements(acks)
	d.eng.RecheckAges()
}

// maintenanceFile holds the maintenance windows in the state directory;
// `cellwarden maintenance start|stop` and the HTTP API write it.
const maintenanceFile = "maintenance.json"

// refreshMaintenance reads the maintenance windows again and, when the set
// active now changed (a window started, was stopped, changed or expired),
// hands it to the engine, the status page and the log. A file that cannot
// be read keeps the last set (logged once per distinct error).
// observeDeviceDates hands the battery dates the devices report (SunSpec
// 802 WarrDt, register-map date points, MQTT dates) to the battery-age
// rules, which weigh them against the inventory's and report
// disagreements.
func (d *daemon) observeDeviceDates() {
	c := d.running.Load()
	if c == nil || d.eng.Lifecycle() == nil {
		return
	}
	var obs []lifecycle.DateObservation
	for _, dd := range c.fleet.Dates() {
		if f, ok := lifecycle.ParseField(dd.Field); ok {
			obs = append(obs, lifecycle.DateObservation{UPS: dd.UPS, String: dd.String, Field: f,
				Date: inventory.DateOf(dd.Date), Source: "modbus " + dd.Unit + " " + dd.Point})
		}
	}
	for _, m := range c.mqtt {
		for _, dd := range m.Dates() {
			obs = append(obs, lifecycle.DateObservation{UPS: dd.UPS, String: dd.String, Field: dd.Field, Date: dd.Date, Source: dd.Source})
		}
	}
	for _, o := range obs {
		k := o.UPS + "\x00" + o.String + "\x00" + o.Field.String() + "\x00" + o.Source
		if d.deviceDates[k] == o.Date {
			continue
		}
		if d.deviceDates == nil {
			d.deviceDates = map[string]inventory.Date{}
		}
		d.deviceDates[k] = o.Date
		d.eng.Lifecycle().ObserveDate(o)
		d.eng.RecheckAges()
	}
}

func (d *daemon) refreshMaintenance() {
	now := time.Now() // windows are wall-clock times people set, not event time
	ws, err := d.maint.Active(now)
	if err != nil {
		if msg := err.Error(); msg != d.maintErr {
			d.maintErr = msg
			d.log.Warn("maintenance windows unreadable; keeping the last ones", zap.String("path", d.maint.Path()), zap.Error(err))
		}
		return
	}
	d.maintErr = ""
	on := make(map[telemetry.Entity]lifecycle.Window, len(ws))
	for _, w := range ws {
		on[w.Entity()] = w
	}
	if maps.Equal(on, d.maintOn) && d.maintOn != nil {
		return
	}
	for ent, w := range d.maintOn {
		if _, ok := on[ent]; !ok {
			how := "stopped"
			if !now.Before(w.Until) {
				how = "expired"
			}
			d.log.Info("maintenance ended", zap.String("ups", w.UPS), zap.String("string", w.String), zap.String("by", w.By),
				zap.Time("until", w.Until), zap.String("how", how))
		}
	}
	for ent, w := range on {
		if old, ok := d.maintOn[ent]; !ok || old != w {
			d.log.Info("maintenance started", zap.String("ups", w.UPS), zap.String("string", w.String), zap.String("by", w.By),
				zap.Time("until", w.Until), zap.String("reason", w.Reason))
		}
	}
	d.maintOn = on
	under := make([]telemetry.Entity, len(ws))
	for i := range ws {
		under[i] = ws[i].Entity()
	}
	d.eng.SetMaintenance(under)
	d.status.setMaintenance(ws)
}

// requestReload asks the detector goroutine to reload and waits for the
// outcome (POST /-/reload).
func (d *daemon) requestReload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.reloadCh <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// collectors are the running collectors of one configuration.
type collectors struct {
	parent context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	fleet  *fleet.Fleet
	mqtt   []*mqtt.Collector
	// seen: the MQTT decode errors already counted, by collector and
	// reason (owned by the detector goroutine).
	seen map[string]map[string]uint64
}

func (c *collectors) wait() { c.wg.Wait() }

func (c *collectors) stop() {
	c.cancel()
	c.wg.Wait()
}

// startCollectors starts the collectors of cfg that belong to this shard.
func (d *daemon) startCollectors(parent context.Context, cfg *config.Config) *collectors {
	ctx, cancel := context.WithCancel(parent)
	c := &collectors{parent: parent, cancel: cancel, seen: map[string]map[string]uint64{}}
	defer d.running.Store(c)
	var mine []modbus.CollectorConfig
	for _, m := range cfg.Collectors.Modbus {
		if d.o.Shard.Owns(m.UPS) {
			mine = append(mine, m)
		}
	}
	c.fleet = fleet.New(mine, d.log.Named("modbus"), d.o.Clock)
	emit := func(source string) func([]telemetry.Sample) {
		return func(b []telemetry.Sample) {
			b = d.o.Shard.filter(d.reg, b)
			if len(b) == 0 {
				return
			}
			d.self.Samples(source, len(b))
			// The collector reuses its slice: the detector gets a copy.
			cp := append(d.batch(), b...)
			select {
			case d.in <- cp:
			case <-ctx.Done():
			}
		}
	}
	c.wg.Go(func() {
		c.fleet.Run(ctx, d.reg, emit("modbus"), func(device string, n int) {
			d.self.BadInput("modbus", "bad_identity", n)
			d.log.Warn("Modbus readings refused: the entity registry is full or the identity invalid",
				zap.String("device", device), zap.Int("readings", n))
		})
		c.fleet.Close()
	})
	for _, mc := range cfg.Collectors.MQTT {
		col, err := mqtt.New(mc, d.reg, d.log.Named("mqtt"))
		if err != nil {
			// Validated configurations only fail here on unreadable
			// secrets or certificates: report and run the others.
			d.log.Error("MQTT collector not started", zap.String("collector", mc.Name), zap.Error(err))
			continue
		}
		c.mqtt = append(c.mqtt, col)
		c.wg.Go(func() {
			if err := col.Run(ctx, emit("mqtt")); err != nil {
				d.log.Error("MQTT collector stopped", zap.String("collector", col.Name()), zap.Error(err))
			}
		})
	}
	return c
}
