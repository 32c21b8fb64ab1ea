// Package mqtt is the MQTT collector: it subscribes to the topics BMS
// gateways publish on, maps topic levels and payload fields to the
// battery hierarchy (topic templates such as bms/{ups}/{string}/{module},
// JSON field paths with per-cell arrays, units and scale, or one plain
// number per topic) and hands Samples to one consumer.
//
// It is built not to go silent: the session is persistent (fixed client
// id, clean session off) and its subscriptions are made again in OnConnect
// after every connection; reconnects back off up to a bound; the message
// handler never blocks the client (a bounded queue sits between it and the
// consumer, and what the queue cannot take is counted by reason); bad
// payloads are counted by reason and topic template and logged rate
// limited; the broker's own dropped-message counters ($SYS) are kept in the
// health snapshot beside the connection state, message and byte counts
// and the last message time of every source.
package mqtt

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Health is what the collector has seen, for the metrics side and logs.
type Health struct {
	Name string
	// Connected: a session with the broker is up. Subscribed: the last
	// connection's data subscriptions were all granted.
	Connected, Subscribed bool
	// ConnectAttempts, Connects and ConnectionLosses count connection
	// attempts, successful connections and connections lost.
	ConnectAttempts, Connects, ConnectionLosses, SubscribeFailures uint64
	LastConnect, LastConnectionLoss                                time.Time
	// LastError is the last connection or subscription error.
	LastError string
	// Messages and Bytes count every data message received (too large
	// ones included, $SYS excluded); Samples the samples handed on,
	// NoReading those among them without a value.
	Messages, Bytes, Samples, NoReading uint64
	// LastMessage is the receive time of the last message that gave a
	// sample, by source: the string ("ups-a/1"), or the UPS when the
	// topic names no string.
	LastMessage map[string]time.Time
	// MessagesByTopic counts messages by the subscription template that
	// matched them.
	MessagesByTopic map[string]uint64
	// DecodeErrors counts rejected messages and readings by reason (every
	// reason present, from 0); DecodeErrorsByTopic by template and reason.
	DecodeErrors        map[string]uint64
	DecodeErrorsByTopic map[string]map[string]uint64
	// Dropped counts well-formed messages that never reached the
	// consumer, by reason (DropQueueFull, DropShutdown).
	Dropped map[string]uint64
	// Queued messages and bytes waiting for the consumer, and the bounds.
	Queued, QueueSize, QueuedBytes, QueueBytes int
	// Broker holds the last value of each $SYS statistic received, e.g.
	// "$SYS/broker/publish/messages/dropped" (mosquitto's count of
	// messages it dropped, for every client).
	Broker map[string]float64
}

// message is one data message waiting for the consumer.
type message struct {
	topic   string
	payload []byte
	recv    int64
}

// Collector subscribes to one broker. Create it with New and start it
// with Run.
type Collector struct {
	cfg   CollectorConfig
	reg   *telemetry.Registry
	log   *zap.Logger
	now   func() time.Time
	tls   *tls.Config
	creds credentials

	started atomic.Bool
	lost    chan error

	// The bounded queue between paho's handler and the consumer: the
	// handler appends to pending and wakes the consumer when pending was
	// empty; the consumer takes all of pending at once. queued and
	// queuedBytes count what is in pending or taken and not yet decoded.
	qmu         sync.Mutex
	pending     []message
	queued      int
	queuedBytes int
	stopping    bool
	wake        chan struct{}
	// gate tells the handler when the reader gathers messages (read
	// delay on): the consumer is then woken once the read's messages
	// are all queued, not at the first one.
	gate *readGate

	// messages and bytes count data messages received (paho's handler).
	messages, bytes atomic.Uint64

	mu      sync.Mutex
	health  Health
	bySub   []uint64 // messages by subscription, for MessagesByTopic
	sources map[telemetry.EntityID]int64
	limiter limiter
	dates   map[dateKey]DeviceDate

	// State and scratch space of the consumer goroutine.
	topics   map[string]*topicIDs
	doc      document
	batch    []message
	readings []Reading
	dateRs   []DateReading
	bad      []*DecodeError
	samples  []telemetry.Sample
	// What the messages decoded since the last hand-over add to the
	// health, applied under mu once per hand-over.
	acc struct {
		messages, bytes int // taken from the queue
		bySub           []uint64
		noReading       int
		sources         []sourceTime
	}
}

// topicIDs are the entity IDs of the readings of a topic's last message,
// in order: the next message of the topic mostly carries the same
// entities in the same order, which then cost a comparison each instead of
// a look-up in the registry. Kept for subscriptions whose messages carry
// several readings, for up to maxTopicsKept topics and maxIDsKept readings
// a topic. A module topic of 16 cells, voltage and temperature each, keeps
// about 480 bytes, its map entry included: 8 bytes a reading and the name
// of its cell, copied into one array; the strings of the UPS, string and
// module are the registry's. A fleet of 100 k cells keeps about 3 MB here.
type topicIDs struct {
	// The UPS, string and module of the kept readings (a module topic's
	// cells share them); a reading of another one is looked up each time.
	ups, str, module string
	// source is the kept readings' source: their string, or their UPS.
	source telemetry.EntityID
	ids    []keptReading
	// cells holds the cell of every kept reading, one after the other
	// (nothing for a reading of the module, string or UPS itself).
	cells []byte
}

// keptReading is one kept reading: its entity's ID, 0 to keep nothing,
// and the end of its cell in topicIDs.cells, where the previous reading's
// ends.
type keptReading struct {
	id  telemetry.EntityID
	end uint32
}

// get returns the ID and source kept for reading k if it concerns e.
func (t *topicIDs) get(k int, e telemetry.Entity) (id, source telemetry.EntityID, ok bool) {
	if t == nil || k >= len(t.ids) {
		return 0, 0, false
	}
	x := t.ids[k]
	return x.id, t.source, x.id != 0 && e.Cell == string(t.cells[t.start(k):x.end]) &&
		e.Module == t.module && e.String == t.str && e.UPS == t.ups
}

// start returns the start of reading k's cell in t.cells.
func (t *topicIDs) start(k int) uint32 {
	if k == 0 {
		return 0
	}
	return t.ids[k-1].end
}

// put keeps the IDs of reading k of rs, which concerns the registry's
// entity e, in place of what was kept for reading k and the ones after it
// (whose cells followed its own). Growing, it takes room for the rest of
// rs at once: a topic's messages mostly carry as many readings as its
// first.
func (t *topicIDs) put(rs []Reading, k int, e telemetry.Entity, id, source telemetry.EntityID) {
	if t == nil || k > len(t.ids) || k >= maxIDsKept {
		return
	}
	if k == 0 {
		t.ups, t.str, t.module, t.source = e.UPS, e.String, e.Module, source
	}
	end := t.start(k)
	t.ids, t.cells = t.ids[:k], t.cells[:end]
	if e.UPS != t.ups || e.String != t.str || e.Module != t.module {
		id = 0
	}
	if id != 0 && e.Cell != "" {
		if len(t.cells)+len(e.Cell) > cap(t.cells) {
			n := len(t.cells)
			for _, r := range rs[k:min(len(rs), maxIDsKept)] {
				n += len(r.Entity.Cell)
			}
			t.cells = append(make([]byte, 0, n), t.cells...)
		}
		t.cells = append(t.cells, e.Cell...)
		end = uint32(len(t.cells))
	}
	if len(t.ids) == cap(t.ids) {
		t.ids = append(make([]keptReading, 0, min(len(rs), maxIDsKept)), t.ids...)
	}
	t.ids = append(t.ids, keptReading{id: id, end: end})
}

const (
	maxTopicsKept = 1 << 16
	maxIDsKept    = 4096
)

// sourceTime is the receive time of a message that gave a sample, by
// source (a string, or a UPS).
type sourceTime struct {
	id   telemetry.EntityID
	recv int64
}

// Hand-over bounds: the samples of the messages decoded from one batch
// taken from the queue reach emit in one call, up to maxBatchMessages
// messages or maxBatchSamples samples.
const (
	maxBatchMessages = 256
	maxBatchSamples  = 4096
)

// maxBatchKept bounds the capacity of the queue's slices kept between
// bursts.
const maxBatchKept = 4096

// New prepares a collector for cfg (validated by the configuration loader,
// or here) that interns entities in reg and logs to log. It reads the TLS
// files and checks that the credentials can be read.
func New(cfg CollectorConfig, reg *telemetry.Registry, log *zap.Logger) (*Collector, error) {
	if cfg.subs == nil {
		if err := cfg.Validate("."); err != nil {
			return nil, err
		}
	}
	c := &Collector{cfg: cfg, reg: reg, log: log.With(zap.String("collector", cfg.Name)), now: time.Now,
		wake: make(chan struct{}, 1), lost: make(chan error, 1), bySub: make([]uint64, len(cfg.subs)),
		sources: map[telemetry.EntityID]int64{}, limiter: limiter{every: time.Minute}, dates: map[dateKey]DeviceDate{}}
	c.acc.bySub = make([]uint64, len(cfg.subs))
	if cfg.ReadDelay > 0 {
		c.gate = &readGate{wake: c.wakeIfQueued}
		c.gate.reading.Store(true)
	}
	c.creds = credentials{cfg: &c.cfg, log: c.log}
	if _, _, err := c.creds.read(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Broker)
	if tlsScheme(u.Scheme) {
		t, err := cfg.TLS.load()
		if err != nil {
			return nil, err
		}
		c.tls = t
	}
	h := &c.health
	h.Name = cfg.Name
	h.LastMessage = map[string]time.Time{}
	h.MessagesByTopic = map[string]uint64{}
	h.DecodeErrors = map[string]uint64{}
	h.DecodeErrorsByTopic = map[string]map[string]uint64{}
	for _, r := range Reasons() {
		h.DecodeErrors[r.String()] = 0
	}
	for _, s := range cfg.subs {
		h.DecodeErrorsByTopic[s.tmpl.String()] = map[string]uint64{}
	}
	h.Dropped = map[string]uint64{DropQueueFull: 0, DropShutdown: 0}
	h.Broker = map[string]float64{}
	h.QueueSize, h.QueueBytes = cfg.QueueSize, cfg.QueueBytes
	return c, nil
}

// load builds the TLS client configuration.
func (t TLSConfig) load() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// credentials reads the username and password at every connection
// attempt, so that a rotated file or variable is picked up; when a source
// cannot be read the last good value is kept and the problem logged once.
type credentials struct {
	cfg        *CollectorConfig
	log        *zap.Logger
	mu         sync.Mutex
	user, pass string
	lastErr    string
}

func secret(inline, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	}
	return inline, nil
}

// read returns the current credentials (the error names the source, never
// the value).
func (cr *credentials) read() (user, pass string, err error) {
	c := cr.cfg
	user, uerr := secret(c.Username, c.UsernameFile, c.UsernameEnv)
	pass, perr := secret(c.Password, c.PasswordFile, c.PasswordEnv)
	if uerr != nil {
		return "", "", fmt.Errorf("mqtt username: %w", uerr)
	}
	if perr != nil {
		return "", "", fmt.Errorf("mqtt password: %w", perr)
	}
	return user, pass, nil
}

// provide is paho's credentials provider.
func (cr *credentials) provide() (string, string) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	user, pass, err := cr.read()
	if err != nil {
		if err.Error() != cr.lastErr {
			cr.log.Error("cannot read the MQTT credentials; keeping the last ones read", zap.Error(err))
			cr.lastErr = err.Error()
		}
		return cr.user, cr.pass
	}
	cr.lastErr = ""
	cr.user, cr.pass = user, pass
	return user, pass
}

// clientID returns the configured client id or the default
// cellwarden-HOSTNAME-NAME.
func (c *Collector) clientID() string {
	if c.cfg.ClientID != "" {
		return c.cfg.ClientID
	}
	host, _ := os.Hostname()
	id := "cellwarden-" + host + "-" + c.cfg.Name
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '+' || r == '#' || r == '/' {
			return '_'
		}
		return r
	}, id)
}

func (c *Collector) options() *paho.ClientOptions {
	o := paho.NewClientOptions().AddBroker(c.cfg.Broker).SetClientID(c.clientID()).
		SetCleanSession(c.cfg.CleanSession).SetOrderMatters(true).
		// Buffered reads; no store of received messages (see nopStore).
		SetCustomOpenConnectionFn(dialer(time.Duration(c.cfg.AckDelay), time.Duration(c.cfg.ReadDelay), c.gate)).SetStore(nopStore{}).
		SetKeepAlive(time.Duration(c.cfg.KeepAlive)).SetPingTimeout(time.Duration(c.cfg.ConnectTimeout)).
		SetConnectTimeout(time.Duration(c.cfg.ConnectTimeout)).SetWriteTimeout(time.Duration(c.cfg.ConnectTimeout)).
		// Reconnects are ours (connectLoop), so that every failure is seen.
		SetAutoReconnect(false).SetConnectRetry(false).
		SetDefaultPublishHandler(c.onMessage).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost)
	if c.cfg.Username+c.cfg.UsernameFile+c.cfg.UsernameEnv != "" {
		o.SetCredentialsProvider(c.creds.provide)
	}
	if c.tls != nil {
		o.SetTLSConfig(c.tls)
	}
	return o
}

// Run connects, subscribes and hands the samples of every message to emit
// until ctx ends; then it disconnects and hands on what was still queued.
// emit is called from one goroutine, in arrival order; the slice is reused
// once emit returns (copy the Samples to keep them). Run may be called
// once.
func (c *Collector) Run(ctx context.Context, emit func([]telemetry.Sample)) error {
	if c.started.Swap(true) {
		return errors.New("mqtt collector: Run called twice")
	}
	client := paho.NewClient(c.options())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.connectLoop(ctx, client)
	}()
	for {
		select {
		case <-c.wake:
			c.drain(emit)
			continue
		case <-ctx.Done():
		}
		break
	}
	// Keep consuming while the client disconnects, then drain.
	for {
		select {
		case <-c.wake:
			c.drain(emit)
			continue
		case <-done:
		}
		break
	}
	c.qmu.Lock()
	c.stopping = true
	c.qmu.Unlock()
	c.drain(emit)
	return nil
}

// drain takes every message waiting in the queue and hands their samples
// on, in arrival order, batched.
func (c *Collector) drain(emit func([]telemetry.Sample)) {
	c.qmu.Lock()
	batch := c.pending
	c.pending = c.batch[:0]
	c.qmu.Unlock()
	c.consume(batch, emit)
	clear(batch) // the payloads are the garbage collector's again
	if cap(batch) > maxBatchKept {
		batch = nil
	}
	c.batch = batch
}

// connectLoop connects, waits for the connection to be lost and connects
// again, backing off up to MaxReconnectInterval with jitter, until ctx
// ends.
func (c *Collector) connectLoop(ctx context.Context, client paho.Client) {
	maxWait := time.Duration(c.cfg.MaxReconnectInterval)
	wait := min(250*time.Millisecond, maxWait)
	for {
		c.mu.Lock()
		c.health.ConnectAttempts++
		c.mu.Unlock()
		tok := client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			client.Disconnect(0)
			return
		}
		if err := tok.Error(); err != nil {
			c.connectFailed(err)
			jitter := time.Duration(rand.Int64N(int64(wait)/5 + 1))
			select {
			case <-time.After(wait - wait/10 + jitter):
			case <-ctx.Done():
				return
			}
			wait = min(2*wait, maxWait)
			continue
		}
		wait = min(250*time.Millisecond, maxWait)
		select {
		case <-c.lost:
		case <-ctx.Done():
			client.Disconnect(250)
			return
		}
	}
}

// connectFailed records a failed connection attempt, logging it when the
// error differs from the last one.
func (c *Collector) connectFailed(err error) {
	msg := err.Error()
	c.mu.Lock()
	changed := msg != c.health.LastError
	c.health.LastError = msg
	c.mu.Unlock()
	if changed {
		c.log.Warn("cannot connect to the MQTT broker; retrying with backoff", zap.String("broker", redactURL(c.cfg.Broker)), zap.Error(err))
	}
}

// onConnect runs after every successful connection: it subscribes again,
// since the broker may have lost the session.
func (c *Collector) onConnect(client paho.Client) {
	c.mu.Lock()
	c.health.Connected = true
	c.health.Connects++
	c.health.LastConnect = c.now()
	c.mu.Unlock()
	c.log.Info("connected to the MQTT broker", zap.String("broker", redactURL(c.cfg.Broker)),
		zap.String("client_id", c.clientID()))
	filters := map[string]byte{}
	for _, f := range c.cfg.Filters() {
		filters[f] = byte(c.cfg.QoS)
	}
	ok := c.subscribe(client, filters, true)
	if len(c.cfg.BrokerStats) > 0 {
		stats := map[string]byte{}
		for _, t := range c.cfg.BrokerStats {
			stats[t] = 0
		}
		c.subscribe(client, stats, false)
	}
	c.mu.Lock()
	c.health.Subscribed = ok
	c.mu.Unlock()
	if ok {
		c.log.Info("subscribed", zap.Strings("filters", c.cfg.Filters()), zap.Int("qos", c.cfg.QoS))
	}
}

// subscribe subscribes to filters and reports whether every one was
// granted. Refused data subscriptions are errors; refused $SYS ones (a
// broker may not offer them) only a warning.
func (c *Collector) subscribe(client paho.Client, filters map[string]byte, data bool) bool {
	tok := client.SubscribeMultiple(filters, nil)
	var failed []string
	var err error
	switch {
	case !tok.WaitTimeout(2 * time.Duration(c.cfg.ConnectTimeout)):
		err = errors.New("no SUBACK in time")
	case tok.Error() != nil:
		err = tok.Error()
	default:
		for f, code := range tok.(*paho.SubscribeToken).Result() {
			if code >= 0x80 {
				failed = append(failed, f)
			}
		}
		if len(failed) > 0 {
			err = fmt.Errorf("broker refused %s", strings.Join(failed, ", "))
		}
	}
	if err == nil {
		return true
	}
	if !data {
		c.log.Warn("broker statistics unavailable: the broker refused the $SYS subscriptions", zap.Error(err))
		return false
	}
	c.mu.Lock()
	c.health.SubscribeFailures++
	c.health.LastError = "subscribe: " + err.Error()
	c.mu.Unlock()
	c.log.Error("subscribing failed; no telemetry arrives until the next connection", zap.Error(err))
	return false
}

func (c *Collector) onConnectionLost(_ paho.Client, err error) {
	c.mu.Lock()
	c.health.Connected = false
	c.health.Subscribed = false
	c.health.ConnectionLosses++
	c.health.LastConnectionLoss = c.now()
	c.health.LastError = err.Error()
	c.mu.Unlock()
	c.log.Warn("connection to the MQTT broker lost; reconnecting", zap.String("broker", redactURL(c.cfg.Broker)), zap.Error(err))
	select {
	case c.lost <- err:
	default:
	}
}

// onMessage is paho's handler for every message. It never blocks: a
// message the queue cannot take is dropped and counted.
func (c *Collector) onMessage(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), m.Payload()
	if strings.HasPrefix(topic, "$SYS/") {
		c.brokerStat(topic, payload)
		return
	}
	recv := c.now().UnixNano()
	c.messages.Add(1)
	c.bytes.Add(uint64(len(payload)))
	if len(payload) > c.cfg.MaxPayloadBytes {
		si, _ := c.match(topic)
		c.reject(topic, si, []*DecodeError{decodeErr(ReasonTooLarge, "%d bytes, limit %d", len(payload), c.cfg.MaxPayloadBytes)})
		return
	}
	reason := ""
	c.qmu.Lock()
	switch {
	case c.stopping:
		reason = DropShutdown
	case c.queued >= c.cfg.QueueSize || c.queuedBytes+len(payload) > c.cfg.QueueBytes:
		reason = DropQueueFull
	default:
		c.pending = append(c.pending, message{topic: topic, payload: payload, recv: recv})
		c.queued++
		c.queuedBytes += len(payload)
	}
	// The first message queued wakes the consumer, unless the reader
	// is gathering (the gate wakes it once the read's messages are all
	// queued); so does a full batch.
	n := len(c.pending)
	c.qmu.Unlock()
	if reason != "" {
		c.drop(topic, reason)
		return
	}
	if n == 1 && c.gate.waitsInRead() || n == maxBatchMessages {
		c.wakeConsumer()
	}
}

// wakeConsumer wakes the consumer goroutine (or leaves it a wake-up).
func (c *Collector) wakeConsumer() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// wakeIfQueued wakes the consumer if messages wait in the queue.
func (c *Collector) wakeIfQueued() {
	c.qmu.Lock()
	n := len(c.pending)
	c.qmu.Unlock()
	if n > 0 {
		c.wakeConsumer()
	}
}

func (c *Collector) drop(topic, reason string) {
	now := c.now()
	c.mu.Lock()
	c.health.Dropped[reason]++
	ok, suppressed := c.limiter.allow("drop/"+reason, now)
	c.mu.Unlock()
	if ok {
		c.log.Warn("MQTT message dropped before decoding", zap.String("reason", reason), zap.String("topic", shorten(topic)),
			zap.Int("queue_size", c.cfg.QueueSize), zap.Int("suppressed", suppressed))
	}
}

// brokerStat keeps the value of a $SYS statistic.
func (c *Collector) brokerStat(topic string, payload []byte) {
	v, err := strconv.ParseFloat(strings.TrimSpace(string(payload)), 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.health.Broker[topic] = v
	c.mu.Unlock()
}

// match returns the index of the first subscription whose template matches
// topic, or -1.
func (c *Collector) match(topic string) (int, [numSlots]string) {
	for i, s := range c.cfg.subs {
		if b, ok := s.tmpl.Match(topic); ok {
			return i, b
		}
	}
	return -1, [numSlots]string{}
}

// consume decodes messages taken from the queue and hands their samples
// on in arrival order: the samples of several messages in one call of
// emit, up to maxBatchMessages messages or maxBatchSamples samples.
func (c *Collector) consume(ms []message, emit func([]telemetry.Sample)) {
	c.samples = c.samples[:0]
	for i := range ms {
		c.decode(&ms[i])
		if c.acc.messages == maxBatchMessages || len(c.samples) >= maxBatchSamples {
			c.handOver(emit)
		}
	}
	c.handOver(emit)
}

// handOver adds what the messages decoded since the last hand-over give
// to the health, takes them off the queue's count and emits their samples.
func (c *Collector) handOver(emit func([]telemetry.Sample)) {
	a := &c.acc
	if a.messages == 0 {
		return
	}
	c.mu.Lock()
	for si, n := range a.bySub {
		c.bySub[si] += n
	}
	c.health.Samples += uint64(len(c.samples))
	c.health.NoReading += uint64(a.noReading)
	for _, s := range a.sources {
		c.sources[s.id] = s.recv
	}
	c.mu.Unlock()
	c.qmu.Lock()
	c.queued -= a.messages
	c.queuedBytes -= a.bytes
	c.qmu.Unlock()
	clear(a.bySub)
	a.messages, a.bytes, a.noReading, a.sources = 0, 0, 0, a.sources[:0]
	if len(c.samples) > 0 {
		emit(c.samples)
	}
	c.samples = c.samples[:0]
}

// decode decodes one message, appending its samples to c.samples; its
// counts wait in c.acc for the next hand-over. Rejections and dates are
// recorded at once.
func (c *Collector) decode(m *message) {
	c.acc.messages++
	c.acc.bytes += len(m.payload)
	si, b := c.match(m.topic)
	if si < 0 {
		c.reject(m.topic, -1, []*DecodeError{decodeErr(ReasonNoMatch, "no subscription template matches the topic")})
		return
	}
	s := c.cfg.subs[si]
	c.readings, c.dateRs, c.bad = s.decode(&c.doc, &b, m.payload, m.recv, c.readings[:0], c.dateRs[:0], c.bad[:0])
	var known *topicIDs
	if s.many && len(c.readings) > 0 {
		known = c.topicIDs(m.topic)
	}
	var source telemetry.EntityID
	for k, r := range c.readings {
		id, src, ok := known.get(k, r.Entity)
		if !ok {
			var err error
			if id, err = c.reg.Intern(r.Entity); err != nil {
				c.bad = append(c.bad, decodeErr(ReasonBadIdentity, "%s: %v", r.Metric, err))
				continue
			}
			info := c.reg.Info(id)
			src = cmp.Or(info.String, info.UPS)
			known.put(c.readings, k, info.Entity, id, src)
		}
		if source == 0 {
			source = src
		}
		if math.IsNaN(r.Value) {
			c.acc.noReading++
		}
		c.samples = append(c.samples, telemetry.Sample{Time: r.Time, Value: r.Value, Entity: id, Metric: r.Metric})
	}
	c.acc.bySub[si]++
	if source != 0 {
		c.acc.sources = append(c.acc.sources, sourceTime{source, m.recv})
	}
	if len(c.dateRs) > 0 {
		c.mu.Lock()
		for _, d := range c.dateRs {
			k := dateKey{d.UPS, d.String, d.Field}
			if _, seen := c.dates[k]; !seen && len(c.dates) >= maxDates {
				c.bad = append(c.bad, decodeErr(ReasonBadDate, "%s: more than %d battery dates kept", d.Field, maxDates))
				continue
			}
			c.dates[k] = DeviceDate{UPS: d.UPS, String: d.String, Field: d.Field, Date: d.Date, Source: "mqtt " + m.topic}
		}
		c.mu.Unlock()
	}
	if len(c.bad) > 0 {
		c.reject(m.topic, si, c.bad)
	}
}

// topicIDs returns the IDs kept for topic, or nil when maxTopicsKept
// topics are kept already.
func (c *Collector) topicIDs(topic string) *topicIDs {
	if t, ok := c.topics[topic]; ok {
		return t
	}
	if c.topics == nil {
		c.topics = map[string]*topicIDs{}
	}
	if len(c.topics) >= maxTopicsKept {
		return nil
	}
	t := &topicIDs{}
	c.topics[topic] = t
	return t
}

// maxDates bounds the battery dates a collector keeps, so that topics
// naming ever new UPSs cannot grow memory without bound.
const maxDates = 100000

type dateKey struct {
	ups, str string
	field    lifecycle.Field
}

// DeviceDate is the latest battery date the messages carried for one UPS
// (and string) and field.
type DeviceDate struct {
	// UPS and String name the battery; String empty for every string of
	// the UPS.
	UPS, String string
	Field       lifecycle.Field
	Date        lifecycle.Date
	// Source is "mqtt " and the topic of the message that carried it.
	Source string
}

// Dates returns the latest battery date of every UPS (and string) and
// field, sorted by UPS, string and field.
func (c *Collector) Dates() []DeviceDate {
	c.mu.Lock()
	out := make([]DeviceDate, 0, len(c.dates))
	for _, d := range c.dates {
		out = append(out, d)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b DeviceDate) int {
		return cmp.Or(cmp.Compare(a.UPS, b.UPS), cmp.Compare(a.String, b.String), cmp.Compare(a.Field, b.Field))
	})
	return out
}

// reject counts rejected messages or readings by reason and template and
// logs them, at most once a minute per template and reason.
func (c *Collector) reject(topic string, si int, errs []*DecodeError) {
	pattern := "(none)"
	if si >= 0 {
		pattern = c.cfg.subs[si].tmpl.String()
	}
	now := c.now()
	type logLine struct {
		e          *DecodeError
		suppressed int
	}
	var logs []logLine
	c.mu.Lock()
	for _, e := range errs {
		r := e.Reason.String()
		c.health.DecodeErrors[r]++
		if si >= 0 {
			c.health.DecodeErrorsByTopic[pattern][r]++
		}
		if ok, n := c.limiter.allow(pattern+"\x00"+r, now); ok {
			logs = append(logs, logLine{e, n})
		}
	}
	c.mu.Unlock()
	for _, l := range logs {
		c.log.Warn("bad MQTT payload skipped", zap.String("reason", l.e.Reason.String()), zap.String("topic", shorten(topic)),
			zap.String("template", pattern), zap.String("detail", l.e.Detail), zap.Int("suppressed", l.suppressed))
	}
}

// Health returns a copy of the collector's health.
func (c *Collector) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health
	h.Messages, h.Bytes = c.messages.Load(), c.bytes.Load()
	h.LastMessage = make(map[string]time.Time, len(c.sources))
	for id, t := range c.sources {
		h.LastMessage[c.reg.Info(id).Entity.Path()] = time.Unix(0, t).UTC()
	}
	h.MessagesByTopic = make(map[string]uint64, len(c.bySub))
	for si, n := range c.bySub {
		h.MessagesByTopic[c.cfg.subs[si].tmpl.String()] = n
	}
	h.DecodeErrors = cloneMap(c.health.DecodeErrors)
	h.DecodeErrorsByTopic = make(map[string]map[string]uint64, len(c.health.DecodeErrorsByTopic))
	for k, v := range c.health.DecodeErrorsByTopic {
		h.DecodeErrorsByTopic[k] = cloneMap(v)
	}
	h.Dropped = cloneMap(c.health.Dropped)
	h.Broker = cloneMap(c.health.Broker)
	c.qmu.Lock()
	h.Queued, h.QueuedBytes = c.queued, c.queuedBytes
	c.qmu.Unlock()
	return h
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Name is the collector's name from its configuration.
func (c *Collector) Name() string { return c.cfg.Name }

// limiter lets one log line a key through per interval and counts the
// ones it holds back. It is guarded by the collector's mutex.
type limiter struct {
	every time.Duration
	last  map[string]time.Time
	held  map[string]int
}

func (l *limiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, seen := l.last[key]; seen && now.Sub(t) < l.every {
		l.held[key]++
		return false, 0
	}
	l.last[key] = now
	suppressed = l.held[key]
	l.held[key] = 0
	return true, suppressed
}
