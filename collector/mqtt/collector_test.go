package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// broker is an embedded mochi-mqtt broker on loopback.
type broker struct {
	srv  *mochi.Server
	addr string
	once sync.Once
}

type brokerOptions struct {
	tls   *tls.Config
	users auth.AuthRules // nil: allow everyone
}

// startBroker starts a broker on addr ("" for a free port) for the rest of
// the test.
func startBroker(t *testing.T, addr string, o brokerOptions) *broker {
	t.Helper()
	if addr == "" {
		addr = mosquittotest.FreeAddr(t)
	}
	srv := mochi.New(&mochi.Options{InlineClient: true, SysTopicResendInterval: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var err error
	if o.users == nil {
		err = srv.AddHook(new(auth.AllowHook), nil)
	} else {
		err = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: o.users}})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr, TLSConfig: o.tls})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &broker{srv: srv, addr: addr}
	t.Cleanup(b.stop)
	return b
}

func (b *broker) stop() { b.once.Do(func() { b.srv.Close() }) }

func (b *broker) publish(t *testing.T, topic, payload string, qos byte) {
	t.Helper()
	if err := b.srv.Publish(topic, []byte(payload), false, qos); err != nil {
		t.Fatal(err)
	}
}

// sink collects what a collector emits, rendered as CSV-like rows.
type sink struct {
	mu   sync.Mutex
	reg  *telemetry.Registry
	rows []string
	// block, when set, is waited on before each emit returns.
	block chan struct{}
}

func (s *sink) emit(samples []telemetry.Sample) {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		v := fmt.Sprint(x.Value)
		if math.IsNaN(x.Value) {
			v = ""
		}
		s.rows = append(s.rows, fmt.Sprintf("%s %s %s", s.reg.Info(x.Entity).Entity.Path(), x.Metric, v))
	}
}

func (s *sink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rows)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// waitFor polls cond for up to a minute: a bound, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// running is a collector running in the background with its sink and logs.
type running struct {
	c    *Collector
	sink *sink
	logs *observer.ObservedLogs
	stop func()
}

func runCollector(t *testing.T, cfg CollectorConfig, block chan struct{}) *running {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := telemetry.NewRegistry()
	c, err := New(cfg, reg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{reg: reg, block: block}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, s.emit) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return &running{c: c, sink: s, logs: logs, stop: stop}
}

func (r *running) waitSubscribed(t *testing.T) {
	t.Helper()
	waitFor(t, "the collector to connect and subscribe", func() bool {
		h := r.c.Health()
		return h.Connected && h.Subscribed
	})
}

// logText renders every log entry with its fields.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

func collectorYAML(addr, extra string) string {
	return `
mqtt:
  - name: test
    broker: tcp://` + addr + `
    client_id: cw-test
    max_reconnect_interval: 500ms
` + extra + `
    subscriptions:
      - topic: bms/{ups}/{string}/{module}
        fields:
          - {path: "v[*]", metric: cell_voltage_volts, unit: mV}
          - {path: t, metric: module_temperature_celsius}
      - topic: val/{ups}/{string}/{metric}
        format: value
`
}

// Messages in both formats reach the consumer with their identity and
// values; the health snapshot counts them by template and source.
func TestDeliversMessages(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "")), nil)
	r.waitSubscribed(t)
	b.publish(t, "bms/ups-a/1/2", `{"v":[3300,3311],"t":25.5}`, 1)
	b.publish(t, "val/ups-a/1/string_current_amperes", "-12.5", 0)
	b.publish(t, "bms/ups-b/3/1", `{"v":[null],"t":24}`, 1)
	waitFor(t, "six samples", func() bool { return r.sink.count() >= 6 })
	want := []string{
		"ups-a/1/2/1 cell_voltage_volts 3.3",
		"ups-a/1/2/2 cell_voltage_volts 3.311",
		"ups-a/1/2 module_temperature_celsius 25.5",
		"ups-a/1 string_current_amperes -12.5",
		"ups-b/3/1/1 cell_voltage_volts ",
		"ups-b/3/1 module_temperature_celsius 24",
	}
	if got := r.sink.all(); !slices.Equal(got, want) {
		t.Errorf("samples:\n got  %q\n want %q", got, want)
	}
	h := r.c.Health()
	if h.Messages != 3 || h.Samples != 6 || h.NoReading != 1 || h.MessagesByTopic["bms/{ups}/{string}/{module}"] != 2 ||
		h.MessagesByTopic["val/{ups}/{string}/{metric}"] != 1 {
		t.Errorf("health counts: %+v", h)
	}
	if _, ok := h.LastMessage["ups-a/1"]; !ok || len(h.LastMessage) != 2 {
		t.Errorf("last message by source: %v, want ups-a/1 and ups-b/3", h.LastMessage)
	}
	if h.Bytes == 0 || h.Connects != 1 {
		t.Errorf("bytes %d, connects %d", h.Bytes, h.Connects)
	}
}

// Bad payloads of every kind are counted by reason and template, logged
// with their topic, and the collector goes on.
func TestBadPayloadsAreCountedAndSkipped(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "    max_payload_bytes: 1024\n")), nil)
	r.waitSubscribed(t)
	for _, m := range [][2]string{
		{"bms/ups-a/1/2", `{"v":[3300`},                                                   // invalid_json
		{"bms/ups-a/1/2", `{"v":["3300"],"t":true}`},                                      // wrong_type x2
		{"bms/bad ups/1/2", `{"v":[3300],"t":1}`},                                         // bad_identity x2
		{"val/ups-a/1/string_current_amperes", "NaN"},                                     // not_finite
		{"val/ups-a/1/volts", "1"},                                                        // unknown_metric
		{"bms/ups-a/1/2", `{"v":[3300],"t":1,"pad":"` + strings.Repeat("x", 2000) + `"}`}, // too_large
		{"bms/ups-a/1/2", `{"v":[3301],"t":26}`},                                          // good
	} {
		b.publish(t, m[0], m[1], 1)
	}
	waitFor(t, "the good message after the bad ones", func() bool { return r.sink.count() >= 2 })
	h := r.c.Health()
	want := map[string]uint64{"invalid_json": 1, "wrong_type": 2, "bad_identity": 2, "not_finite": 1, "unknown_metric": 1, "too_large": 1}
	for reason, n := range h.DecodeErrors {
		if n != want[reason] {
			t.Errorf("decode errors %s = %d, want %d", reason, n, want[reason])
		}
	}
	if got := h.DecodeErrorsByTopic["bms/{ups}/{string}/{module}"]; got["wrong_type"] != 2 || got["too_large"] != 1 {
		t.Errorf("by template: %v", h.DecodeErrorsByTopic)
	}
	if h.Messages != 7 {
		t.Errorf("messages %d, want 7", h.Messages)
	}
	logs := logText(r.logs)
	for _, s := range []string{"reason:invalid_json", "topic:bms/ups-a/1/2", "topic:bms/bad ups/1/2", "reason:too_large", "template:val/{ups}/{string}/{metric}"} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %q:\n%s", s, logs)
		}
	}
	if got := r.sink.all(); !slices.Equal(got, []string{"ups-a/1/2/1 cell_voltage_volts 3.301", "ups-a/1/2 module_temperature_celsius 26"}) {
		t.Errorf("samples %q", got)
	}
}

// Battery dates reach Dates() with the topic they came from, the latest
// per UPS, string and field; a bad date is counted and logged, and the
// message's readings still arrive.
func TestKeepsTheLatestBatteryDates(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	cfg := parseCollector(t, collectorYAML(b.addr, "")+`      - topic: info/{ups}/{string}
        fields:
          - {path: soh, metric: string_soh_ratio}
        dates:
          - {path: installed, field: installed}
          - {path: warranty, field: warranty_until}
`)
	r := runCollector(t, cfg, nil)
	r.waitSubscribed(t)
	b.publish(t, "info/ups-a/1", `{"soh":0.95,"installed":"2014-09-15","warranty":"2030-01-01"}`, 1)
	b.publish(t, "info/ups-a/1", `{"soh":0.94,"installed":"2014-09-15","warranty":1915142400}`, 1) // 2030-09-09
	b.publish(t, "info/ups-b/2", `{"soh":0.9,"installed":"the day we moved","warranty":null}`, 1)
	waitFor(t, "three messages", func() bool { return r.sink.count() >= 3 })
	var got []string
	for _, d := range r.c.Dates() {
		got = append(got, fmt.Sprintf("%s/%s %s %s from %s", d.UPS, d.String, d.Field, d.Date, d.Source))
	}
	want := []string{"ups-a/1 installed 2014-09-15 from mqtt info/ups-a/1", "ups-a/1 warranty_until 2030-09-09 from mqtt info/ups-a/1"}
	if !slices.Equal(got, want) {
		t.Errorf("dates:\n got  %q\n want %q", got, want)
	}
	if n := r.c.Health().DecodeErrors["bad_date"]; n != 1 {
		t.Errorf("bad dates counted %d, want 1", n)
	}
	if logs := logText(r.logs); !strings.Contains(logs, "reason:bad_date") || !strings.Contains(logs, "the day we moved") {
		t.Errorf("logs lack the bad date:\n%s", logs)
	}
}

// Repeats of one bad payload are logged once a minute, not per message,
// and still counted.
func TestBadPayloadLogsAreRateLimited(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "")), nil)
	r.waitSubscribed(t)
	for range 50 {
		b.publish(t, "bms/ups-a/1/2", `not json`, 1)
	}
	b.publish(t, "bms/ups-a/1/2", `{"v":[3300],"t":1}`, 1)
	waitFor(t, "the good message", func() bool { return r.sink.count() >= 2 })
	if n := r.c.Health().DecodeErrors["invalid_json"]; n != 50 {
		t.Errorf("counted %d, want 50", n)
	}
	if n := r.logs.FilterMessage("bad MQTT payload skipped").Len(); n != 1 {
		t.Errorf("%d log lines for 50 repeats, want 1", n)
	}
}

// When the consumer falls behind, the handler does not block the client:
// messages beyond the queue are dropped and counted, and every message is
// either delivered or counted.
func TestFullQueueDropsAndCounts(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	block := make(chan struct{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "    queue_size: 3\n")), block)
	r.waitSubscribed(t)
	for i := range 20 {
		b.publish(t, "val/ups-a/1/string_current_amperes", fmt.Sprint(i), 0)
	}
	waitFor(t, "20 messages received", func() bool { return r.c.Health().Messages == 20 })
	h := r.c.Health()
	if !h.Connected || h.Dropped[DropQueueFull] == 0 {
		t.Errorf("connected %v, dropped %v", h.Connected, h.Dropped)
	}
	close(block)
	dropped := int(h.Dropped[DropQueueFull])
	waitFor(t, "the queued messages", func() bool { return r.sink.count() == 20-dropped })
	if !strings.Contains(logText(r.logs), "reason:queue_full") {
		t.Errorf("no queue_full log:\n%s", logText(r.logs))
	}
}

// A broker restarted without the session (a fresh broker on the same
// address) gets the subscriptions again in OnConnect: telemetry resumes.
func TestResubscribesAfterBrokerRestart(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "")), nil)
	r.waitSubscribed(t)
	b.publish(t, "val/ups-a/1/string_current_amperes", "1", 1)
	waitFor(t, "the first sample", func() bool { return r.sink.count() == 1 })
	b.stop()
	waitFor(t, "the lost connection", func() bool { return !r.c.Health().Connected })
	b2 := startBroker(t, b.addr, brokerOptions{})
	r.waitSubscribed(t)
	b2.publish(t, "val/ups-a/1/string_current_amperes", "2", 1)
	waitFor(t, "a sample through the new broker", func() bool { return r.sink.count() == 2 })
	h := r.c.Health()
	if h.Connects != 2 || h.ConnectionLosses != 1 {
		t.Errorf("connects %d, losses %d", h.Connects, h.ConnectionLosses)
	}
	if got := r.sink.all(); got[1] != "ups-a/1 string_current_amperes 2" {
		t.Errorf("samples %q", got)
	}
}

// With the persistent session, QoS 1 messages published while cellwarden
// is away are delivered when it comes back with the same client id.
func TestPersistentSessionKeepsMessagesWhileAway(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	cfg := parseCollector(t, collectorYAML(b.addr, ""))
	r := runCollector(t, cfg, nil)
	r.waitSubscribed(t)
	r.stop()
	for i := range 5 {
		b.publish(t, "val/ups-a/1/string_current_amperes", fmt.Sprint(i), 1)
	}
	r2 := runCollector(t, cfg, nil)
	waitFor(t, "the messages queued by the broker", func() bool { return r2.sink.count() == 5 })
}

// The broker's $SYS dropped-message counter is in the health snapshot.
func TestBrokerDropCounterInHealth(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	r := runCollector(t, parseCollector(t, collectorYAML(b.addr, "")), nil)
	r.waitSubscribed(t)
	waitFor(t, "the broker's dropped counter", func() bool {
		_, ok := r.c.Health().Broker["$SYS/broker/messages/dropped"]
		return ok
	})
}

// Two collectors in one share group split the stream: every message is
// processed once, by one of them, and both get some.
func TestShareGroupSplitsTheStream(t *testing.T) {
	b := startBroker(t, "", brokerOptions{})
	var rs []*running
	for _, id := range []string{"cw-1", "cw-2"} {
		cfg := parseCollector(t, strings.Replace(collectorYAML(b.addr, "    share_group: cw\n"), "client_id: cw-test", "client_id: "+id, 1))
		if f := cfg.Filters(); f[0] != "$share/cw/bms/+/+/+" {
			t.Fatalf("filters %q", f)
		}
		r := runCollector(t, cfg, nil)
		r.waitSubscribed(t)
		rs = append(rs, r)
	}
	const n = 200
	for i := range n {
		b.publish(t, fmt.Sprintf("val/ups-a/%d/string_current_amperes", i), "1", 1)
	}
	waitFor(t, "every message", func() bool { return rs[0].sink.count()+rs[1].sink.count() >= n })
	seen := map[string]int{}
	for _, r := range rs {
		if r.sink.count() == 0 {
			t.Errorf("one instance got nothing")
		}
		for _, row := range r.sink.all() {
			seen[row]++
		}
	}
	for row, k := range seen {
		if k != 1 {
			t.Errorf("%s processed %d times", row, k)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages processed, want %d", len(seen), n)
	}
}

// TLS with a private CA and a client certificate, username from a file and
// password from the environment; the password appears in no log, also
// when the broker refuses it.
func TestTLSClientCertAndCredentials(t *testing.T) {
	dir := t.TempDir()
	serverTLS := writeCerts(t, dir)
	const password = "s3cret-Pa55"
	b := startBroker(t, "", brokerOptions{tls: serverTLS, users: auth.AuthRules{{Username: "cw", Password: password, Allow: true}}})
	if err := os.WriteFile(filepath.Join(dir, "user"), []byte("cw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CW_TEST_MQTT_PASSWORD", password)
	extra := fmt.Sprintf(`    username_file: %s
    password_env: CW_TEST_MQTT_PASSWORD
    tls:
      ca_file: %s
      cert_file: %s
      key_file: %s
`, filepath.Join(dir, "user"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	doc := strings.Replace(collectorYAML(b.addr, extra), "tcp://", "ssl://", 1)
	r := runCollector(t, parseCollector(t, doc), nil)
	r.waitSubscribed(t)
	b.publish(t, "val/ups-a/1/string_current_amperes", "3", 1)
	waitFor(t, "a sample over TLS", func() bool { return r.sink.count() == 1 })

	t.Setenv("CW_TEST_MQTT_PASSWORD", "wrong-"+password)
	bad := runCollector(t, parseCollector(t, strings.Replace(doc, "cw-test", "cw-bad", 1)), nil)
	waitFor(t, "the refused connection", func() bool { return bad.c.Health().LastError != "" })
	if h := bad.c.Health(); h.Connected {
		t.Error("connected with a wrong password")
	}
	for _, logs := range []string{logText(r.logs), logText(bad.logs), fmt.Sprintf("%+v", bad.c.Health())} {
		if strings.Contains(logs, password) {
			t.Errorf("the password leaked:\n%s", logs)
		}
	}
	if !strings.Contains(logText(bad.logs), "cannot connect to the MQTT broker") {
		t.Errorf("the refusal was not logged:\n%s", logText(bad.logs))
	}
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate to dir, and returns the broker's TLS configuration, which
// requires a client certificate signed by the CA.
func writeCerts(t *testing.T, dir string) *tls.Config {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kder)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	server := leaf("server", 2, x509.ExtKeyUsageServerAuth)
	leaf("client", 3, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12}
}

// newOffline returns a collector of collectorYAML that is not run: the
// tests feed its handler and consumer themselves.
func newOffline(t *testing.T) (*Collector, *telemetry.Registry) {
	t.Helper()
	reg := telemetry.NewRegistry()
	c, err := New(parseCollector(t, collectorYAML("127.0.0.1:1883", "")), reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// The consumer takes every message waiting at once and hands the samples
// of several messages to one call of emit, in arrival order, at most
// maxBatchMessages messages a call; the health counts them all.
func TestQueuedMessagesReachEmitTogether(t *testing.T) {
	c, reg := newOffline(t)
	n := maxBatchMessages + 2
	for i := range n {
		c.onMessage(nil, &fakeMessage{topic: fmt.Sprintf("bms/ups-a/1/%d", i+1), payload: []byte(`{"v":[3300],"t":25}`)})
	}
	if h := c.Health(); h.Queued != n || h.QueuedBytes != n*len(`{"v":[3300],"t":25}`) {
		t.Fatalf("queued %d messages, %d bytes", h.Queued, h.QueuedBytes)
	}
	var calls []int
	var modules []string
	c.drain(func(s []telemetry.Sample) {
		calls = append(calls, len(s))
		for _, x := range s {
			if x.Metric == telemetry.ModuleTemperatureCelsius {
				modules = append(modules, reg.Info(x.Entity).Entity.Module)
			}
		}
	})
	if !slices.Equal(calls, []int{2 * maxBatchMessages, 4}) {
		t.Errorf("emit called with %v samples, want %d then 4", calls, 2*maxBatchMessages)
	}
	for i, m := range modules {
		if m != fmt.Sprint(i+1) {
			t.Fatalf("module %s arrived in place %d", m, i+1)
		}
	}
	h := c.Health()
	if h.Queued != 0 || h.QueuedBytes != 0 || h.Messages != uint64(n) || h.Samples != uint64(2*n) ||
		h.MessagesByTopic["bms/{ups}/{string}/{module}"] != uint64(n) {
		t.Errorf("health after the drain: %+v", h)
	}
}

// The acknowledgement and read delays are bounded.
func TestAckAndReadDelayConfig(t *testing.T) {
	c := parseCollector(t, collectorYAML("127.0.0.1:1883", ""))
	if c.AckDelay.Nanos() != int64(time.Millisecond) || c.ReadDelay.Nanos() != int64(2*time.Millisecond) {
		t.Errorf("default ack_delay %v, read_delay %v, want 1ms and 2ms", c.AckDelay, c.ReadDelay)
	}
	for _, key := range []string{"ack_delay", "read_delay"} {
		for _, d := range []string{"0s", "100ms"} {
			parseCollector(t, collectorYAML("127.0.0.1:1883", "    "+key+": "+d+"\n"))
		}
		_, err := validateDoc(t, collectorYAML("127.0.0.1:1883", "    "+key+": 1s\n"))
		if want := `mqtt[0].` + key + `: "1s" must be 0s..100ms (line 7)`; !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("problems %v, want %s", err, want)
		}
	}
}

// The entity IDs kept per topic follow the messages when their readings
// change: another number of cells, a field missing, a bad identity.
func TestTopicEntityIDsFollowTheMessages(t *testing.T) {
	c, reg := newOffline(t)
	s := &sink{reg: reg}
	for _, p := range []string{`{"v":[3300,3301],"t":25}`, `{"v":[3300,3301,3302]}`, `{"v":[3300,3301],"t":25}`, `{"v":{"":3300,"x":1},"t":25}`, `{"t":26}`} {
		c.onMessage(nil, &fakeMessage{topic: "bms/ups-a/1/2", payload: []byte(p)})
		c.drain(s.emit)
	}
	want := []string{
		"ups-a/1/2/1 cell_voltage_volts 3.3", "ups-a/1/2/2 cell_voltage_volts 3.301", "ups-a/1/2 module_temperature_celsius 25",
		"ups-a/1/2/1 cell_voltage_volts 3.3", "ups-a/1/2/2 cell_voltage_volts 3.301", "ups-a/1/2/3 cell_voltage_volts 3.302",
		"ups-a/1/2/1 cell_voltage_volts 3.3", "ups-a/1/2/2 cell_voltage_volts 3.301", "ups-a/1/2 module_temperature_celsius 25",
		"ups-a/1/2/x cell_voltage_volts 0.001", "ups-a/1/2 module_temperature_celsius 25",
		"ups-a/1/2 module_temperature_celsius 26",
	}
	if got := s.all(); !slices.Equal(got, want) {
		t.Errorf("samples:\n got  %q\n want %q", got, want)
	}
	if h := c.Health(); h.DecodeErrors["bad_identity"] != 1 || h.DecodeErrors["missing_field"] != 2 {
		t.Errorf("decode errors %v", h.DecodeErrors)
	}
}

// The entity IDs kept per topic follow the messages when the names of
// their cells change: to names as long, to names that run together the
// same ("1", "23" then "12", "3"), to longer ones in the middle; and when
// the cells of a string topic are another module's.
func TestTopicEntityIDsFollowCellNames(t *testing.T) {
	reg := telemetry.NewRegistry()
	c, err := New(parseCollector(t, `
mqtt:
  - broker: tcp://127.0.0.1:1883
    subscriptions:
      - topic: bms/{ups}/{string}/{module}
        fields:
          - {path: "v[*]", metric: cell_voltage_volts, unit: mV}
          - {path: t, metric: module_temperature_celsius}
      - topic: str/{ups}/{string}
        fields:
          - {path: "m[*].c[*]", metric: cell_voltage_volts, unit: mV}
`), reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{reg: reg}
	for _, m := range []struct{ topic, payload string }{
		{"bms/u/1/2", `{"v":{"1":3300,"23":3301},"t":25}`},
		{"bms/u/1/2", `{"v":{"12":3302,"3":3303},"t":25}`},
		{"bms/u/1/2", `{"v":{"1":3304,"2":3305,"3":3306}}`},
		{"bms/u/1/2", `{"v":{"1":3307,"22":3308,"3":3309}}`},
		{"bms/u/1/2", `{"v":{"1":3310,"22":3311,"3":3312}}`},
		{"bms/u/1/2", `{"v":{"1":3313,"2":3314,"3":3315}}`},
		{"bms/u/1/2", `{"v":{"1":3340,"3":3341,"4":3342}}`},
		{"str/u/1", `{"m":{"2":{"c":{"1":3316}},"3":{"c":{"1":3317}}}}`},
		{"str/u/1", `{"m":{"3":{"c":{"1":3318}},"4":{"c":{"1":3319}}}}`},
		{"str/u/1", `{"m":{"3":{"c":{"1":3320}},"4":{"c":{"1":3321}}}}`},
	} {
		c.onMessage(nil, &fakeMessage{topic: m.topic, payload: []byte(m.payload)})
		c.drain(s.emit)
	}
	want := []string{
		"u/1/2/1 cell_voltage_volts 3.3", "u/1/2/23 cell_voltage_volts 3.301", "u/1/2 module_temperature_celsius 25",
		"u/1/2/12 cell_voltage_volts 3.302", "u/1/2/3 cell_voltage_volts 3.303", "u/1/2 module_temperature_celsius 25",
		"u/1/2/1 cell_voltage_volts 3.304", "u/1/2/2 cell_voltage_volts 3.305", "u/1/2/3 cell_voltage_volts 3.306",
		"u/1/2/1 cell_voltage_volts 3.307", "u/1/2/22 cell_voltage_volts 3.308", "u/1/2/3 cell_voltage_volts 3.309",
		"u/1/2/1 cell_voltage_volts 3.31", "u/1/2/22 cell_voltage_volts 3.311", "u/1/2/3 cell_voltage_volts 3.312",
		"u/1/2/1 cell_voltage_volts 3.313", "u/1/2/2 cell_voltage_volts 3.314", "u/1/2/3 cell_voltage_volts 3.315",
		"u/1/2/1 cell_voltage_volts 3.34", "u/1/2/3 cell_voltage_volts 3.341", "u/1/2/4 cell_voltage_volts 3.342",
		"u/1/2/1 cell_voltage_volts 3.316", "u/1/3/1 cell_voltage_volts 3.317",
		"u/1/3/1 cell_voltage_volts 3.318", "u/1/4/1 cell_voltage_volts 3.319",
		"u/1/3/1 cell_voltage_volts 3.32", "u/1/4/1 cell_voltage_volts 3.321",
	}
	if got := s.all(); !slices.Equal(got, want) {
		t.Errorf("samples:\n got  %q\n want %q", got, want)
	}
	if h := c.Health(); h.DecodeErrors["missing_field"] != 5 {
		t.Errorf("decode errors %v, want 5 missing_field", h.DecodeErrors)
	}
}

// While the reader gathers messages the handler queues them without
// waking the consumer; the reader's next read wakes it once for all of
// them. While the reader waits in a read (a message after a quiet spell,
// or one passed on late), or without a read delay, the first message
// queued wakes it; a full batch always does.
func TestConsumerWokenOncePerRead(t *testing.T) {
	woken := func(c *Collector) bool {
		select {
		case <-c.wake:
			return true
		default:
			return false
		}
	}
	msg := &fakeMessage{topic: "bms/ups-a/1/2", payload: []byte(`{"t":25}`)}
	c, _ := newOffline(t)
	n := 0
	conn := &bufferedConn{}
	c.gate.conn.Store(conn)
	c.gate.leaveRead(&bufferedConn{}) // a read of an earlier connection
	c.onMessage(nil, msg)
	if !woken(c) {
		t.Error("consumer not woken: an earlier connection's reader marked the current one busy")
	}
	c.drain(func([]telemetry.Sample) {})
	c.gate.leaveRead(conn) // a read brought messages
	for range 3 {
		c.onMessage(nil, msg)
	}
	if woken(c) {
		t.Error("consumer woken while the reader gathers")
	}
	c.gate.enterRead()
	if !woken(c) {
		t.Error("consumer not woken when the reader reads again")
	}
	c.drain(func(b []telemetry.Sample) { n += len(b) })
	if n != 3 {
		t.Errorf("%d samples, want 3", n)
	}
	c.gate.enterRead()
	if woken(c) {
		t.Error("consumer woken with nothing queued")
	}
	c.onMessage(nil, msg)
	if !woken(c) {
		t.Error("consumer not woken by a message while the reader waits in a read")
	}
	c.drain(func([]telemetry.Sample) {})
	c.gate.leaveRead(conn)
	for range maxBatchMessages {
		c.onMessage(nil, msg)
	}
	if !woken(c) {
		t.Errorf("consumer not woken by a full batch (%d messages)", maxBatchMessages)
	}

	now, err := New(parseCollector(t, collectorYAML("127.0.0.1:1883", "    read_delay: 0s\n")), telemetry.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	now.onMessage(nil, msg)
	if now.gate != nil || !woken(now) {
		t.Error("without a read delay: consumer not woken by the first message")
	}
}
