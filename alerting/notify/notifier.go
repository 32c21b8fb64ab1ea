// Package notify sends cellwarden's alerts to people's tools: webhooks
// that speak Alertmanager's webhook format (signed with HMAC-SHA256) and
// Alertmanager itself through its /api/v2/alerts API.
//
// A Notifier routes every alert to the receivers whose matchers it
// satisfies and groups it with the other alerts of its group (by default
// one group per battery string), as Alertmanager does: a new group is
// notified after group_wait, a changed group at most every group_interval,
// an unchanged one with firing alerts every repeat_interval, and resolved
// alerts are notified once. Alertmanager receivers get every change at
// once and every firing alert again each resend_interval, as Prometheus
// does.
//
// Nothing is lost: the groups and every notification are written to the
// outbox (package outbox) in one synced transaction before Notify returns,
// and a notification leaves the outbox only when its receiver has
// answered 2xx (delivered) or 4xx other than 429 (refused, counted). 5xx,
// 429 and network errors are retried with exponential backoff and jitter
// for as long as it takes. After a crash the next Notifier delivers what
// was queued, in order, and carries on with the groups as they were.
// Delivery is at least once: a notification may arrive twice when the
// process died between the receiver's answer and the removal from the
// outbox. Each request carries an Idempotency-Key header, the same on every
// attempt of one notification; each alert in it is one state of one alert,
// identified by (fingerprint, status, startsAt).
package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/outbox"
	"go.uber.org/zap"
)

// Options are what a Notifier needs besides its configuration.
type Options struct {
	// Logger receives the notifier's logs (zap.NewNop when nil).
	Logger *zap.Logger
	// Metrics counts deliveries; create it once per process with
	// NewMetrics and keep it across configuration reloads. A private,
	// unregistered one when nil.
	Metrics *Metrics
	// Client, when set, is what every receiver's requests go through
	// (its Transport; for tests). The receivers' basic_auth and
	// authorization still apply, their tls_config does not. When nil,
	// each receiver has a transport of its own with its tls_config. Each
	// request gets the receiver's timeout through its context; redirects
	// are not followed (a 3xx is final), so that credentials never reach
	// another host.
	Client *http.Client
	// UserAgent of the requests ("cellwarden" when empty).
	UserAgent string
}

// Notifier routes, groups and delivers alerts. Create it with New, call
// Start once, then Notify from any goroutine; Shutdown stops it.
type Notifier struct {
	cfg       *Config
	ob        *outbox.Outbox
	log       *zap.Logger
	m         *Metrics
	userAgent string
	receivers []*receiver
	byName    map[string]*receiver

	mu          sync.Mutex
	groups      map[string]*group // by group key
	lastDropped map[string]uint64
	kick        chan struct{}
	// unsaved are the groups whose last change could not be written to
	// the outbox (a full disk): kept in memory and written, with the
	// notifications due, by the scheduler's next successful flush.
	unsaved map[string]bool

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
	stopErr             error
}

// receiver is a configured receiver with its settings resolved.
type receiver struct {
	cfg          *ReceiverConfig
	name         string
	am           bool
	groupBy      []string
	wait         time.Duration
	interval     time.Duration
	repeat       time.Duration
	sendResolved bool
	urls         []string
	secret       []byte
	client       *http.Client
	// wake tells the sender that the queue has a new entry.
	wake chan struct{}
}

// New opens the outbox at cfg.Outbox.Path and prepares the receivers of
// cfg, which must have been validated (Config.Validate). It sends nothing
// before Start. With no receivers it needs no outbox and Notify does
// nothing.
func New(cfg *Config, opts Options) (*Notifier, error) {
	n := &Notifier{cfg: cfg, log: opts.Logger, m: opts.Metrics, userAgent: opts.UserAgent,
		byName: map[string]*receiver{}, groups: map[string]*group{}, lastDropped: map[string]uint64{},
		kick: make(chan struct{}, 1), unsaved: map[string]bool{}}
	if n.log == nil {
		n.log = zap.NewNop()
	}
	if n.m == nil {
		n.m = NewMetrics(nil)
	}
	var base http.RoundTripper
	if opts.Client != nil {
		base = cmp.Or[http.RoundTripper](opts.Client.Transport, http.DefaultTransport)
	}
	if n.userAgent == "" {
		n.userAgent = "cellwarden"
	}
	for i := range cfg.Receivers {
		rc := &cfg.Receivers[i]
		r := &receiver{cfg: rc, name: rc.Name, wake: make(chan struct{}, 1)}
		if w := rc.Webhook; w != nil {
			r.groupBy, r.wait, r.interval, r.repeat = w.GroupBy, time.Duration(w.GroupWait), time.Duration(w.GroupInterval), time.Duration(w.RepeatInterval)
			r.sendResolved, r.urls, r.secret = w.SendResolved, []string{w.url}, []byte(w.secret)
		} else {
			r.am, r.repeat, r.sendResolved = true, time.Duration(rc.Alertmanager.ResendInterval), true
			r.urls = rc.Alertmanager.URLs
		}
		if (rc.matchRE == nil && len(rc.MatchRE) > 0) || (rc.Webhook != nil && rc.Webhook.url == "") {
			return nil, fmt.Errorf("notify: receiver %s: %w", rc.Name, errNotValidated)
		}
		rt, err := rc.HTTPConfig.roundTripper(rc.Name, base)
		if err != nil {
			return nil, fmt.Errorf("notify: receiver %s: %w", rc.Name, err)
		}
		r.client = &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		n.warnInsecure(r)
		n.receivers = append(n.receivers, r)
		n.byName[r.name] = r
	}
	if len(n.receivers) == 0 {
		return n, nil
	}
	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{MaxEntries: cfg.Outbox.MaxEntries})
	if err != nil {
		return nil, err
	}
	n.ob = ob
	if err := n.restore(); err != nil {
		ob.Close()
		return nil, err
	}
	return n, nil
}

// warnInsecure logs the settings of r that expose its traffic: no
// certificate verification, credentials over plain HTTP.
func (n *Notifier) warnInsecure(r *receiver) {
	hc := &r.cfg.HTTPConfig
	if hc.TLSConfig.InsecureSkipVerify {
		n.log.Warn("The receiver's TLS certificate is not verified (insecure_skip_verify)", zap.String("receiver", r.name))
	}
	if hc.sendsCredentials() && slices.ContainsFunc(r.urls, func(u string) bool { return !strings.HasPrefix(strings.ToLower(u), "https:") }) {
		n.log.Warn("The receiver's credentials travel unencrypted: its URL is not https", zap.String("receiver", r.name))
	}
}

// restore loads the groups kept in the outbox. Groups of receivers that
// are no longer configured are deleted; notifications queued for them stay
// in the outbox (they are delivered if the receiver comes back).
func (n *Notifier) restore() error {
	var gone []string
	err := n.ob.States(func(key string, value []byte) error {
		var g group
		if err := json.Unmarshal(value, &g); err != nil {
			n.log.Error("Dropping an unreadable alert group from the outbox", zap.String("key", key), zap.Error(err))
			gone = append(gone, key)
			return nil
		}
		if n.byName[g.Receiver] == nil {
			gone = append(gone, key)
			return nil
		}
		n.groups[g.Key] = &g
		return nil
	})
	if err != nil {
		return fmt.Errorf("read alert groups from the outbox: %w", err)
	}
	if len(gone) > 0 {
		n.log.Info("Forgetting alert groups of receivers no longer configured", zap.Int("groups", len(gone)))
		return n.ob.Update(func(tx *outbox.Tx) error {
			for _, k := range gone {
				if err := tx.DeleteState(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for _, t := range n.ob.Targets() {
		if n.byName[t] == nil && n.ob.Len(t) > 0 {
			n.log.Warn("Notifications queued for a receiver that is not configured stay in the outbox",
				zap.String("receiver", t), zap.Int("queued", n.ob.Len(t)))
		}
	}
	return nil
}

// Start starts delivering: one goroutine per receiver sends its queue in
// order, and one flushes groups when they are due. Calling Start again
// does nothing.
func (n *Notifier) Start(ctx context.Context) {
	n.startOnce.Do(func() {
		n.m.attach(n)
		if len(n.receivers) == 0 {
			return
		}
		ctx, n.cancel = context.WithCancel(ctx)
		for _, r := range n.receivers {
			n.wg.Go(func() { n.send(ctx, r) })
		}
		n.wg.Go(func() { n.schedule(ctx) })
	})
}

// Shutdown lets the senders deliver what is queued until ctx ends, then
// stops them (an interrupted request is not acknowledged: its notification
// stays queued for the next start) and closes the outbox. Calling it again
// returns the first result.
func (n *Notifier) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		if n.ob == nil {
			return
		}
		if n.cancel != nil {
		wait:
			for n.queued() > 0 {
				select {
				case <-ctx.Done():
					break wait
				case <-time.After(50 * time.Millisecond):
				}
			}
			n.cancel()
			n.wg.Wait()
			if q := n.queued(); q > 0 {
				n.log.Warn("Shutdown deadline reached: undelivered notifications stay in the outbox for the next start",
					zap.Int("queued", q))
			}
		}
		n.mu.Lock()
		unsaved := len(n.unsaved)
		n.mu.Unlock()
		if unsaved > 0 {
			// A last chance for changes a full disk kept in memory:
			// queued now, they are delivered after the next start.
			if _, err := n.flushDue(time.Now()); err != nil {
				n.log.Error("Alert changes not written to the outbox are lost", zap.Int("groups", unsaved), zap.Error(err))
			}
		}
		n.m.detach(n)
		for _, r := range n.receivers {
			r.client.CloseIdleConnections()
		}
		n.stopErr = n.ob.Close()
	})
	return n.stopErr
}

// queued is the number of queued notifications of the configured
// receivers.
func (n *Notifier) queued() int {
	total := 0
	for _, r := range n.receivers {
		total += n.ob.Len(r.name)
	}
	return total
}

// Notify hands alert state changes (alerting.FromChange) to the
// receivers. When it returns nil every change is on disk: in the groups
// and, for groups due now, in queued notifications. When the outbox cannot
// be written (a full disk) it returns the error but keeps the changes in
// memory; the scheduler writes them, and queues the notifications due,
// once a write succeeds again (retried every second), so that nothing is
// lost unless the process dies first. A change that changes
// nothing (an alert reported firing again) is ignored. Notify is safe for
// concurrent use; it is meant to be called by the goroutine that runs the
// detector, once per batch of changes.
func (n *Notifier) Notify(alerts ...alerting.Alert) error {
	if len(n.receivers) == 0 || len(alerts) == 0 {
		return nil
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	touched := map[string]*group{}
	for i := range alerts {
		a := &alerts[i]
		if a.Status != statusFiring && a.Status != statusResolved {
			return fmt.Errorf("notify: alert %s has status %q", a.Labels.Alertname, a.Status)
		}
		labels := labelMap(a.Labels)
		fp := Fingerprint(labels)
		for _, r := range n.receivers {
			if !r.matches(labels) {
				continue
			}
			gl := map[string]string{}
			for _, l := range r.groupBy {
				if v := labels[l]; v != "" {
					gl[l] = v
				}
			}
			key := groupKeyOf(r.name, gl)
			g := touched[key]
			if g == nil {
				g = n.groups[key].clone()
				if g == nil {
					g = &group{Receiver: r.name, Key: key, Labels: gl, Created: now, Alerts: map[string]*alertRecord{}}
				}
			}
			if g.apply(a, labels, fp) {
				touched[key] = g
			}
		}
	}
	err := n.commit(now, touched)
	if err != nil {
		// The scheduler retries the unsaved groups.
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
	return err
}

// commit flushes the due groups among gs, writes them and their
// notifications in one transaction, and on success makes them the current
// groups and wakes the senders and the scheduler. When the write fails,
// gs as they were before the flush become the current groups, marked
// unsaved, for the scheduler to write. n.mu is held.
func (n *Notifier) commit(now time.Time, gs map[string]*group) error {
	if len(gs) == 0 {
		return nil
	}
	before := make(map[string]*group, len(gs))
	for key, g := range gs {
		before[key] = g.clone()
	}
	queued := map[*receiver]int{}
	err := n.ob.Update(func(tx *outbox.Tx) error {
		clear(queued)
		for _, key := range slices.Sorted(maps.Keys(gs)) {
			g := gs[key]
			r := n.byName[g.Receiver]
			if due := g.due(r); !due.IsZero() && !due.After(now) {
				sent, err := n.flush(tx, g, r, now)
				if err != nil {
					return err
				}
				if sent {
					queued[r]++
				}
			}
			g.forget(now)
			var err error
			if g.empty() {
				err = tx.DeleteState(stateKey(key))
			} else {
				err = tx.PutState(stateKey(key), g.marshal())
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.m.outboxErrors.Inc()
		for key, g := range before {
			n.groups[key] = g
			n.unsaved[key] = true
		}
		return fmt.Errorf("notify: write to the outbox (changes kept in memory, retried): %w", err)
	}
	for key, g := range gs {
		delete(n.unsaved, key)
		if g.empty() {
			delete(n.groups, key)
		} else {
			n.groups[key] = g
		}
	}
	for r, k := range queued {
		n.m.created.WithLabelValues(r.name).Add(float64(k))
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	n.countDropped()
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// flush turns g into a notification queued for r, if it has anything to
// say: its firing alerts and the resolved ones not yet notified. Resolved
// alerts leave the group. A repeat notification (nothing changed) is not
// queued while r has notifications waiting: those will tell the receiver
// as much. It reports whether it queued one.
func (n *Notifier) flush(tx *outbox.Tx, g *group, r *receiver, now time.Time) (bool, error) {
	repeat := !g.Dirty
	g.Dirty, g.LastFlush = false, now
	var out []alertRecord
	for _, fp := range g.order() {
		a := g.Alerts[fp]
		if a.Status == statusResolved {
			if r.sendResolved && a.Notified != statusResolved {
				out = append(out, *a)
			}
			delete(g.Alerts, fp)
			if g.Resolved == nil {
				g.Resolved = map[string]time.Time{}
			}
			g.Resolved[fp] = now
			continue
		}
		a.Notified = statusFiring
		out = append(out, *a)
	}
	if len(out) == 0 || (repeat && n.ob.Len(r.name) > 0) {
		return false, nil
	}
	for i := range out {
		out[i].Notified = ""
	}
	data, err := json.Marshal(&record{Receiver: r.name, GroupKey: g.Key, GroupLabels: g.Labels, Alerts: out, Created: now})
	if err != nil {
		return false, err
	}
	_, err = tx.Enqueue(r.name, data)
	return err == nil, err
}

// countDropped counts the notifications the outbox dropped when full.
func (n *Notifier) countDropped() {
	for t, v := range n.ob.Dropped() {
		if d := v - n.lastDropped[t]; d > 0 {
			n.m.failed.WithLabelValues(t, reasonOutboxFull).Add(float64(d))
			n.log.Error("The outbox is full: dropped the oldest notifications", zap.String("receiver", t),
				zap.Uint64("dropped", d), zap.Int("capacity", n.ob.Capacity()))
		}
		n.lastDropped[t] = v
	}
}

// schedule flushes groups when they are due until ctx ends.
func (n *Notifier) schedule(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var lastErr string
	for {
		next, err := n.flushDue(time.Now())
		wait := time.Hour
		switch {
		case err != nil:
			if err.Error() != lastErr {
				n.log.Error("Cannot flush alert groups; retrying", zap.Error(err))
			}
			lastErr, wait = err.Error(), time.Second
		case lastErr != "":
			n.log.Info("Alert groups written to the outbox again")
			lastErr = ""
			if !next.IsZero() {
				wait = max(time.Until(next), 0)
			}
		case !next.IsZero():
			wait = max(time.Until(next), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// flushDue flushes every group due at now, and writes the unsaved ones,
// and returns when the next one is due (zero when none is).
func (n *Notifier) flushDue(now time.Time) (time.Time, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	due := map[string]*group{}
	var next time.Time
	for key, g := range n.groups {
		d := g.due(n.byName[g.Receiver])
		switch {
		case n.unsaved[key]:
			due[key] = g.clone()
		case d.IsZero():
		case !d.After(now):
			due[key] = g.clone()
		case next.IsZero() || d.Before(next):
			next = d
		}
	}
	if err := n.commit(now, due); err != nil {
		return now, err
	}
	for _, g := range due {
		if d := g.due(n.byName[g.Receiver]); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next, nil
}

func stateKey(groupKey string) string { return "group/" + groupKey }

// matches reports whether an alert with labels goes to r.
func (r *receiver) matches(labels map[string]string) bool {
	for l, vs := range r.cfg.Match {
		if !slices.Contains(vs, labels[l]) {
			return false
		}
	}
	for l, re := range r.cfg.matchRE {
		if !re.MatchString(labels[l]) {
			return false
		}
	}
	return true
}

// group is one alert group of one receiver, as kept in memory and in the
// outbox.
type group struct {
	Receiver string                  `json:"receiver"`
	Key      string                  `json:"key"`
	Labels   map[string]string       `json:"labels"`
	Alerts   map[string]*alertRecord `json:"alerts"` // by fingerprint
	// Created is when the group got its first alert; LastFlush when it was
	// last notified (zero before the first notification).
	Created   time.Time `json:"created"`
	LastFlush time.Time `json:"lastFlush,omitzero"`
	// Dirty says an alert changed since the last notification.
	Dirty bool `json:"dirty,omitempty"`
	// Resolved remembers, by fingerprint, when a notified resolution left
	// the group, for resolvedMemory: a detector restarted from a snapshot
	// taken before the resolution resolves the alert again, and that
	// second resolution must not reach the receiver.
	Resolved map[string]time.Time `json:"resolved,omitempty"`
}

// resolvedMemory is how long a group remembers an alert it told resolved.
// It spans a restart from the last snapshot (written within a second of
// an alert change, at the latest every --snapshot.interval).
const resolvedMemory = 15 * time.Minute

// forget drops the resolutions remembered longer than resolvedMemory.
func (g *group) forget(now time.Time) {
	for fp, at := range g.Resolved {
		if now.Sub(at) > resolvedMemory {
			delete(g.Resolved, fp)
		}
	}
}

// empty reports whether g holds nothing worth keeping.
func (g *group) empty() bool { return len(g.Alerts) == 0 && len(g.Resolved) == 0 }

// clone returns a deep copy of g (nil for nil), so that a failed commit
// leaves the current groups as they were.
func (g *group) clone() *group {
	if g == nil {
		return nil
	}
	c := *g
	c.Alerts = make(map[string]*alertRecord, len(g.Alerts))
	for fp, a := range g.Alerts {
		ac := *a
		c.Alerts[fp] = &ac
	}
	c.Resolved = maps.Clone(g.Resolved)
	return &c
}

func (g *group) marshal() []byte {
	data, _ := json.Marshal(g) // maps, strings and times: cannot fail
	return data
}

// apply records a state change of the alert with fingerprint fp. It
// reports whether the group changed.
func (g *group) apply(a *alerting.Alert, labels map[string]string, fp string) bool {
	ex := g.Alerts[fp]
	ann := annotationMap(a)
	switch {
	case a.Status == statusFiring && ex != nil && ex.Status == statusFiring:
		// Firing again (e.g. replayed after a restart): nothing to say.
		return false
	case a.Status == statusFiring && ex != nil && ex.Notified == statusFiring:
		// Back before its resolution was notified: to the receiver it
		// never stopped.
		ex.Status, ex.EndsAt, ex.Annotations = statusFiring, time.Time{}, ann
		return true
	case a.Status == statusFiring:
		g.Alerts[fp] = &alertRecord{Labels: labels, Annotations: ann, Status: statusFiring, StartsAt: a.Time.UTC(), Fingerprint: fp}
		delete(g.Resolved, fp)
	case ex != nil && ex.Status == statusResolved:
		return false
	case ex == nil && !g.Resolved[fp].IsZero():
		// Told resolved already (the detector resolved it again after
		// a restart): nothing to say.
		return false
	case ex != nil:
		ex.Status, ex.EndsAt, ex.Annotations = statusResolved, a.Time.UTC(), ann
	default:
		// Resolved without a firing we know of: tell it as it is.
		g.Alerts[fp] = &alertRecord{Labels: labels, Annotations: ann, Status: statusResolved,
			StartsAt: a.Time.UTC(), EndsAt: a.Time.UTC(), Fingerprint: fp}
	}
	g.Dirty = true
	return true
}

// due returns when g should be notified next, zero for never.
func (g *group) due(r *receiver) time.Time {
	switch {
	case g.Dirty && g.LastFlush.IsZero():
		return g.Created.Add(r.wait)
	case g.Dirty:
		return g.LastFlush.Add(r.interval)
	}
	for _, a := range g.Alerts {
		if a.Status == statusFiring {
			return g.LastFlush.Add(r.repeat)
		}
	}
	return time.Time{}
}

// order returns the fingerprints of g's alerts by start time, then
// entity and alert name: the order of a notification's alerts.
func (g *group) order() []string {
	fps := slices.Collect(maps.Keys(g.Alerts))
	slices.SortFunc(fps, func(a, b string) int {
		la, lb := g.Alerts[a].Labels, g.Alerts[b].Labels
		c := g.Alerts[a].StartsAt.Compare(g.Alerts[b].StartsAt)
		for _, l := range []string{"ups", "string", "module", "cell", "alertname", "severity"} {
			c = cmp.Or(c, cmp.Compare(la[l], lb[l]))
		}
		return cmp.Or(c, cmp.Compare(a, b))
	})
	return fps
}

// errNotValidated guards against an unvalidated configuration.
var errNotValidated = errors.New("configuration not validated")
