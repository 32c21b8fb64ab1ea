package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// Default broker statistics subscribed to: the counters of messages a
// broker dropped (mosquitto's, then mochi-mqtt's and others').
var defaultBrokerStats = []string{"$SYS/broker/publish/messages/dropped", "$SYS/broker/messages/dropped"}

// CollectorConfig is one broker connection, as the configuration file lists
// it under collectors.mqtt.
type CollectorConfig struct {
	// Name labels the collector in logs and metrics (default: the broker's
	// host:port).
	Name string `yaml:"name"`
	// Broker is the broker URL: tcp:// or mqtt:// (plain), ssl://, tls://
	// or mqtts:// (TLS), ws:// or wss:// (websockets), with a port.
	Broker string `yaml:"broker"`
	// ClientID is the MQTT client identifier. With a persistent session it
	// must stay the same across restarts and differ between instances
	// (default: cellwarden-HOSTNAME-NAME).
	ClientID string `yaml:"client_id"`
	// CleanSession off (the default) keeps the session, its subscriptions
	// and the QoS 1 messages queued while cellwarden was away.
	CleanSession bool `yaml:"clean_session"`
	// ShareGroup, when set, subscribes through $share/GROUP/ so that the
	// instances of one group split the messages.
	ShareGroup string `yaml:"share_group"`
	// QoS of every subscription: 0 or 1.
	QoS int `yaml:"qos"`
	// KeepAlive is the MQTT keepalive; ConnectTimeout bounds each connection
	// attempt; reconnects back off up to MaxReconnectInterval.
	KeepAlive            yamlstrict.Duration `yaml:"keepalive"`
	ConnectTimeout       yamlstrict.Duration `yaml:"connect_timeout"`
	MaxReconnectInterval yamlstrict.Duration `yaml:"max_reconnect_interval"`
	// AckDelay is how long the acknowledgement (PUBACK) of a QoS 1
	// message may wait to be written with the next ones: one system call
	// and one wake-up of the broker for many messages. 0 writes each at
	// once. The broker's in-flight window (mosquitto's
	// max_inflight_messages) must not fill up within it.
	AckDelay yamlstrict.Duration `yaml:"ack_delay"`
	// ReadDelay is how long the reader waits, once it has taken every
	// message read, before it reads the connection again: the messages
	// that arrive meanwhile are read, passed through paho and acknowledged
	// together, with one wake-up of each of paho's goroutines for many
	// messages. A message after a quiet spell is read at once, and a read
	// of maxAcksWaiting QoS 1 messages or more (perhaps the broker's whole
	// in-flight window) is followed by the next at once. 0 reads as soon
	// as data arrives.
	ReadDelay yamlstrict.Duration `yaml:"read_delay"`
	// Credentials: at most one of each trio (inline, a file relative to the
	// configuration file, an environment variable). Never logged.
	Username     string `yaml:"username"`
	UsernameFile string `yaml:"username_file"`
	UsernameEnv  string `yaml:"username_env"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TLS settings for ssl://, tls://, mqtts:// and wss:// brokers.
	TLS TLSConfig `yaml:"tls"`
	// QueueSize and QueueBytes bound the messages waiting for the
	// consumer; beyond either, messages are dropped and counted.
	QueueSize  int `yaml:"queue_size"`
	QueueBytes int `yaml:"queue_bytes"`
	// MaxPayloadBytes: larger messages are rejected as too_large.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// BrokerStats are $SYS topics whose numeric values are kept in the
	// health snapshot (default: the brokers' dropped-message counters).
	BrokerStats []string `yaml:"broker_stats"`
	// Subscriptions map topics to telemetry.
	Subscriptions []SubscriptionConfig `yaml:"subscriptions"`

	subs []*subscription // compiled by ValidateCollectors
}

// TLSConfig holds the TLS settings of a broker connection. Paths are
// relative to the configuration file.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SubscriptionConfig maps the topics of one template to telemetry.
type SubscriptionConfig struct {
	// Topic is the template, e.g. "bms/{ups}/{string}/{module}"; it is
	// subscribed to with each placeholder as "+".
	Topic string `yaml:"topic"`
	// Format of the payloads: "json" (the default) or "value" (one
	// decimal number).
	Format string `yaml:"format"`
	// UPS and String fix identity levels the topic does not carry.
	UPS    string `yaml:"ups"`
	String string `yaml:"string"`
	// Metric, Unit and Scale apply to the value format: the metric (unless
	// the topic has {metric}), the payload's unit, and a factor applied
	// before the unit conversion.
	Metric string  `yaml:"metric"`
	Unit   string  `yaml:"unit"`
	Scale  float64 `yaml:"scale"`
	// TimeField is the path of the payload's timestamp (RFC 3339 text, or
	// a number in TimeUnit since the epoch: s, ms, us or ns); without it
	// a message takes its receive time.
	TimeField string `yaml:"time_field"`
	TimeUnit  string `yaml:"time_unit"`
	// IndexBase is the identifier of an array's first element bound by
	// [*] (default 1: cells "1", "2", ...).
	IndexBase int `yaml:"index_base"`
	// Fields map JSON values to metrics.
	Fields []FieldConfig `yaml:"fields"`
	// Dates map JSON values to battery dates of the topic's UPS and
	// string, for the battery-age rules.
	Dates []DateConfig `yaml:"dates"`
}

// DateConfig maps one JSON path (without [*]) to a battery date: text in
// any format lifecycle.ParseDate reads, or a number of seconds since the
// Unix epoch.
type DateConfig struct {
	Path string `yaml:"path"`
	// Field is the lifecycle field: manufactured, installed,
	// warranty_until or replace_by.
	Field string `yaml:"field"`
}

// FieldConfig maps one JSON path to a metric.
type FieldConfig struct {
	// Path: keys separated by dots, [N] for an array element, [*] for every
	// element (array index + index_base) or member (its key) of an array or
	// object, binding the next identity level (module, then cell).
	Path   string  `yaml:"path"`
	Metric string  `yaml:"metric"`
	Unit   string  `yaml:"unit"`
	Scale  float64 `yaml:"scale"`
}

// DefaultCollector returns the defaults a collector entry starts from.
func DefaultCollector() CollectorConfig {
	return CollectorConfig{QoS: 1, KeepAlive: yamlstrict.Duration(30 * time.Second),
		ConnectTimeout:       yamlstrict.Duration(2 * time.Second),
		MaxReconnectInterval: yamlstrict.Duration(10 * time.Second),
		AckDelay:             yamlstrict.Duration(time.Millisecond),
		ReadDelay:            yamlstrict.Duration(2 * time.Millisecond),
		QueueSize:            10000, QueueBytes: 32 << 20, MaxPayloadBytes: 64 << 10,
		BrokerStats: slices.Clone(defaultBrokerStats)}
}

// UnmarshalYAML applies the defaults before decoding an entry.
func (c *CollectorConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultCollector()
	type plain CollectorConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// UnmarshalYAML applies the defaults before decoding a subscription.
func (s *SubscriptionConfig) UnmarshalYAML(n *yaml.Node) error {
	*s = SubscriptionConfig{Format: formatJSON, Scale: 1, TimeUnit: "s", IndexBase: 1}
	type plain SubscriptionConfig
	return yamlstrict.DecodeNode(n, (*plain)(s))
}

// UnmarshalYAML applies the defaults before decoding a field.
func (f *FieldConfig) UnmarshalYAML(n *yaml.Node) error {
	*f = FieldConfig{Scale: 1}
	type plain FieldConfig
	return yamlstrict.DecodeNode(n, (*plain)(f))
}

var schemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

func tlsScheme(s string) bool { return s == "ssl" || s == "tls" || s == "mqtts" || s == "wss" }

var timeUnits = map[string]int64{"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1}

// ValidateCollectors checks every entry, resolves its file paths against
// baseDir and compiles its subscriptions; problems are reported below path
// (e.g. "collectors.mqtt").
func ValidateCollectors(cs []CollectorConfig, p *yamlstrict.Problems, path, baseDir string) {
	names := map[string]int{}
	ids := map[string]int{}
	for i := range cs {
		c := &cs[i]
		ip := yamlstrict.Index(path, i)
		key := func(k string) string { return yamlstrict.Key(ip, k) }
		u, err := url.Parse(c.Broker)
		switch {
		case c.Broker == "":
			p.Add(key("broker"), nil, "is required (e.g. tcp://127.0.0.1:1883)")
		case err != nil || !slices.Contains(schemes, u.Scheme):
			p.Add(key("broker"), redactURL(c.Broker), "must be a URL with scheme %s", strings.Join(schemes, ", "))
		case u.User != nil:
			p.Add(key("broker"), redactURL(c.Broker), "must not carry credentials: use username and password(_file/_env)")
		default:
			if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
				p.Add(key("broker"), c.Broker, "needs host:port")
			} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.Add(key("broker"), c.Broker, "has no valid port")
			}
			if !tlsScheme(u.Scheme) && c.TLS != (TLSConfig{}) {
				p.Add(key("tls"), nil, "applies to ssl://, tls://, mqtts:// and wss:// brokers, not %s://", u.Scheme)
			}
		}
		if c.Name == "" && u != nil {
			c.Name = u.Host
		}
		if j, dup := names[c.Name]; dup && c.Name != "" {
			p.Add(key("name"), c.Name, "is also the name of collectors.mqtt[%d]", j)
		}
		names[c.Name] = i
		if c.ClientID != "" {
			if j, dup := ids[c.ClientID]; dup {
				p.Add(key("client_id"), c.ClientID, "is also the client id of collectors.mqtt[%d]: the broker would disconnect one for the other", j)
			}
			ids[c.ClientID] = i
		}
		if strings.ContainsAny(c.ShareGroup, "/+#") {
			p.Add(key("share_group"), c.ShareGroup, "must not contain /, + or #")
		}
		if c.QoS != 0 && c.QoS != 1 {
			p.Add(key("qos"), c.QoS, "must be 0 or 1")
		}
		if ka := c.KeepAlive.Nanos(); ka < int64(time.Second) || ka > int64(18*time.Hour) {
			p.Add(key("keepalive"), c.KeepAlive, "must be 1s..18h")
		}
		if ct := c.ConnectTimeout.Nanos(); ct < int64(100*time.Millisecond) || ct > int64(time.Minute) {
			p.Add(key("connect_timeout"), c.ConnectTimeout, "must be 100ms..1m")
		}
		if ri := c.MaxReconnectInterval.Nanos(); ri < int64(100*time.Millisecond) || ri > int64(10*time.Minute) {
			p.Add(key("max_reconnect_interval"), c.MaxReconnectInterval, "must be 100ms..10m")
		}
		if ad := c.AckDelay.Nanos(); ad < 0 || ad > int64(100*time.Millisecond) {
			p.Add(key("ack_delay"), c.AckDelay, "must be 0s..100ms")
		}
		if rd := c.ReadDelay.Nanos(); rd < 0 || rd > int64(100*time.Millisecond) {
			p.Add(key("read_delay"), c.ReadDelay, "must be 0s..100ms")
		}
		validateSecret(p, ip, "username", c.Username, &c.UsernameFile, c.UsernameEnv, baseDir)
		validateSecret(p, ip, "password", c.Password, &c.PasswordFile, c.PasswordEnv, baseDir)
		if c.Password+c.PasswordFile+c.PasswordEnv != "" && c.Username+c.UsernameFile+c.UsernameEnv == "" {
			p.Add(key("password"), nil, "needs a username (MQTT 3.1.1 sends no password without one)")
		}
		validateTLS(p, key("tls"), &c.TLS, baseDir)
		if c.QueueSize < 1 || c.QueueSize > 1<<20 {
			p.Add(key("queue_size"), c.QueueSize, "must be 1..1048576")
		}
		if c.MaxPayloadBytes < 16 || c.MaxPayloadBytes > 16<<20 {
			p.Add(key("max_payload_bytes"), c.MaxPayloadBytes, "must be 16..16777216")
		}
		if c.QueueBytes < c.MaxPayloadBytes || c.QueueBytes > 1<<30 {
			p.Add(key("queue_bytes"), c.QueueBytes, "must be at least max_payload_bytes (%d) and at most 1073741824", c.MaxPayloadBytes)
		}
		for j, t := range c.BrokerStats {
			if !strings.HasPrefix(t, "$SYS/") || strings.ContainsAny(t, "+#") {
				p.Add(yamlstrict.Index(key("broker_stats"), j), t, "must be a $SYS topic without wildcards")
			}
		}
		if len(c.Subscriptions) == 0 {
			p.Add(key("subscriptions"), nil, "needs at least one subscription")
		}
		c.subs = nil
		filters := map[string]int{}
		for j := range c.Subscriptions {
			sp := yamlstrict.Index(key("subscriptions"), j)
			s := compileSubscription(&c.Subscriptions[j], p, sp)
			if s == nil {
				continue
			}
			if k, dup := filters[s.tmpl.Filter()]; dup {
				p.Add(yamlstrict.Key(sp, "topic"), c.Subscriptions[j].Topic,
					"subscribes to the same filter (%s) as subscriptions[%d]: a message would only be decoded by the first", s.tmpl.Filter(), k)
			}
			filters[s.tmpl.Filter()] = j
			c.subs = append(c.subs, s)
		}
	}
}

// validateSecret checks that at most one source of a credential is set and
// that a file is readable; the file path is resolved against baseDir. The
// secret's value never appears in a problem.
func validateSecret(p *yamlstrict.Problems, ip, name, inline string, file *string, env, baseDir string) {
	n := 0
	for _, v := range []string{inline, *file, env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		p.Add(yamlstrict.Key(ip, name), nil, "is set more than one way: use one of %s, %s_file and %s_env", name, name, name)
	}
	if *file != "" {
		orig := *file
		*file = resolve(baseDir, *file)
		if _, err := os.ReadFile(*file); err != nil {
			p.Add(yamlstrict.Key(ip, name+"_file"), orig, "cannot be read: %v", unwrapPathError(err))
		}
	}
	if env != "" && strings.ContainsAny(env, "= \x00") {
		p.Add(yamlstrict.Key(ip, name+"_env"), env, "is not an environment variable name")
	}
}

// validateTLS resolves and loads the TLS files.
func validateTLS(p *yamlstrict.Problems, tp string, t *TLSConfig, baseDir string) {
	if t.CAFile != "" {
		orig := t.CAFile
		t.CAFile = resolve(baseDir, t.CAFile)
		if pem, err := os.ReadFile(t.CAFile); err != nil {
			p.Add(yamlstrict.Key(tp, "ca_file"), orig, "cannot be read: %v", unwrapPathError(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.Add(yamlstrict.Key(tp, "ca_file"), orig, "holds no PEM certificate")
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.Add(tp, nil, "needs both cert_file and key_file for a client certificate")
	} else if t.CertFile != "" {
		orig := t.CertFile
		t.CertFile, t.KeyFile = resolve(baseDir, t.CertFile), resolve(baseDir, t.KeyFile)
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			p.Add(yamlstrict.Key(tp, "cert_file"), orig, "with key_file is not a usable client certificate: %v", unwrapPathError(err))
		}
	}
}

// compileSubscription validates one subscription and returns its compiled
// form, or nil when it has problems.
func compileSubscription(sc *SubscriptionConfig, p *yamlstrict.Problems, sp string) *subscription {
	key := func(k string) string { return yamlstrict.Key(sp, k) }
	ok := true
	bad := func(path string, value any, format string, args ...any) {
		p.Add(path, value, format, args...)
		ok = false
	}
	s := &subscription{format: sc.Format, indexBase: sc.IndexBase}
	t, err := ParseTemplate(sc.Topic)
	if err != nil {
		bad(key("topic"), sc.Topic, "%v", err)
		return nil
	}
	s.tmpl = t
	// The identity bound by the topic and the fixed levels must run from
	// the UPS down without a hole.
	for k, fixed := range []string{sc.UPS, sc.String} {
		if fixed == "" {
			continue
		}
		if t.has[k] {
			bad(key(slotNames[k]), fixed, "is fixed here and bound by the topic's {%s} too", slotNames[k])
		}
		s.fixed[k] = fixed
	}
	if sc.UPS != "" && !telemetry.ValidUPS(sc.UPS) {
		bad(key("ups"), sc.UPS, "must be a UPS identifier ([A-Za-z0-9_.:-]+)")
	}
	bound := [4]bool{t.has[slotUPS] || sc.UPS != "", t.has[slotString] || sc.String != "", t.has[slotModule], t.has[slotCell]}
	for l, b := range bound {
		if b {
			s.depth = telemetry.Level(l + 1)
		}
	}
	for l := 0; l < int(s.depth); l++ {
		if !bound[l] {
			bad(key("topic"), sc.Topic, "binds {%s} but not {%s} (set %s: for a fixed value)", slotNames[s.depth-1], slotNames[l], slotNames[l])
			break
		}
	}
	if s.depth == 0 {
		bad(key("topic"), sc.Topic, "binds no identity: it needs {ups} (or a fixed ups:)")
	}
	if sc.IndexBase < 0 {
		bad(key("index_base"), sc.IndexBase, "must be >= 0")
	}
	switch sc.Format {
	case formatValue:
		if len(sc.Fields) > 0 {
			bad(key("fields"), nil, "apply to the json format, not to value")
		}
		if len(sc.Dates) > 0 {
			bad(key("dates"), nil, "apply to the json format, not to value")
		}
		if sc.TimeField != "" {
			bad(key("time_field"), sc.TimeField, "applies to the json format: a plain value takes its receive time")
		}
		if badScale(sc.Scale) {
			bad(key("scale"), sc.Scale, "must be a non-zero finite number")
		}
		switch {
		case t.has[slotMetric] && sc.Metric != "":
			bad(key("metric"), sc.Metric, "is set and the topic's {metric} names it too")
		case t.has[slotMetric] && sc.Unit != "":
			bad(key("unit"), sc.Unit, "cannot apply when {metric} names the metric: publish base units")
		case t.has[slotMetric]:
			s.conv = newFactor(sc.Scale, 0)
		default:
			m, mok := telemetry.ParseMetric(sc.Metric)
			if !mok {
				bad(key("metric"), sc.Metric, "must be a metric of the catalogue (or the topic needs {metric})")
				break
			}
			if m.Level() != s.depth && s.depth != 0 {
				bad(key("metric"), sc.Metric, "is a %s metric but the topic names a %s", m.Level(), s.depth)
			}
			s.metric = m
			if s.conv, mok = newConversion(m, sc.Unit, sc.Scale); !mok {
				bad(key("unit"), sc.Unit, "is not a unit of %s (have %s)", m, strings.Join(unitNames(m.Unit()), ", "))
			}
		}
	case formatJSON:
		if t.has[slotMetric] {
			bad(key("topic"), sc.Topic, "has {metric}, which applies to the value format; json fields name their metrics")
		}
		for _, k := range []string{"metric", "unit"} {
			if v := map[string]string{"metric": sc.Metric, "unit": sc.Unit}[k]; v != "" {
				bad(key(k), v, "applies to the value format; json fields name their own")
			}
		}
		if len(sc.Fields) == 0 && len(sc.Dates) == 0 {
			bad(key("fields"), nil, "are required for the json format (or dates)")
		}
		s.dates = compileDates(sc.Dates, bad, key("dates"))
		if sc.TimeField != "" {
			tp, err := parsePath(sc.TimeField)
			if err == nil && tp.stars() > 0 {
				bad(key("time_field"), sc.TimeField, "cannot contain [*]")
			} else if err != nil {
				bad(key("time_field"), sc.TimeField, "%v", err)
			}
			s.timePath = tp
			if s.timeUnit = timeUnits[sc.TimeUnit]; s.timeUnit == 0 {
				bad(key("time_unit"), sc.TimeUnit, "must be s, ms, us or ns")
			}
		}
		seen := map[string]int{}
		for j, fc := range sc.Fields {
			fp := yamlstrict.Index(key("fields"), j)
			m, mok := telemetry.ParseMetric(fc.Metric)
			if !mok {
				bad(yamlstrict.Key(fp, "metric"), fc.Metric, "must be a metric of the catalogue")
			}
			pp, err := parsePath(fc.Path)
			if err != nil {
				bad(yamlstrict.Key(fp, "path"), fc.Path, "%v", err)
				continue
			}
			if k, dup := seen[fc.Path]; dup {
				bad(yamlstrict.Key(fp, "path"), fc.Path, "is also mapped by fields[%d]", k)
			}
			seen[fc.Path] = j
			if badScale(fc.Scale) {
				bad(yamlstrict.Key(fp, "scale"), fc.Scale, "must be a non-zero finite number")
			}
			if !mok {
				continue
			}
			want := max(0, int(m.Level())-int(s.depth))
			if got := pp.stars(); got != want && s.depth != 0 {
				bad(yamlstrict.Key(fp, "path"), fc.Path, "has %d [*] but %s (a %s metric) under a topic naming a %s needs %d",
					got, m, m.Level(), s.depth, want)
			}
			conv, cok := newConversion(m, fc.Unit, fc.Scale)
			if !cok {
				bad(yamlstrict.Key(fp, "unit"), fc.Unit, "is not a unit of %s (have %s)", m, strings.Join(unitNames(m.Unit()), ", "))
			}
			s.fields = append(s.fields, field{text: fc.Path, path: pp, metric: m, conv: conv})
		}
	default:
		bad(key("format"), sc.Format, "must be json or value")
	}
	if !ok {
		return nil
	}
	s.many = len(s.fields) > 1 || len(s.fields) == 1 && s.fields[0].path.stars() > 0
	return s
}

// compileDates validates the dates of a json subscription.
func compileDates(dcs []DateConfig, bad func(string, any, string, ...any), dp string) []dateField {
	var out []dateField
	seen := map[string]int{}
	for j, dc := range dcs {
		ep := yamlstrict.Index(dp, j)
		f, fok := lifecycle.ParseField(dc.Field)
		if !fok {
			bad(yamlstrict.Key(ep, "field"), dc.Field, "must be manufactured, installed, warranty_until or replace_by")
		} else if k, dup := seen[dc.Field]; dup {
			bad(yamlstrict.Key(ep, "field"), dc.Field, "is also read by dates[%d]", k)
		}
		seen[dc.Field] = j
		pp, err := parsePath(dc.Path)
		switch {
		case err != nil:
			bad(yamlstrict.Key(ep, "path"), dc.Path, "%v", err)
		case pp.stars() > 0:
			bad(yamlstrict.Key(ep, "path"), dc.Path, "cannot contain [*]: a date belongs to the topic's UPS or string")
		case fok:
			out = append(out, dateField{text: dc.Path, path: pp, field: f})
		}
	}
	return out
}

// badScale reports a scale that is zero, not finite or absurdly large.
func badScale(f float64) bool { return f == 0 || math.IsNaN(f) || math.Abs(f) > 1e12 }

func resolve(baseDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// unwrapPathError drops the path from a file error: the problem already
// names the configured value.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// redactURL hides any password in a broker URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Validate checks one collector configuration on its own (the
// configuration file's loader checks them all with their paths and lines)
// and compiles its subscriptions. Relative paths resolve against baseDir.
func (c *CollectorConfig) Validate(baseDir string) error {
	cs := []CollectorConfig{*c}
	p := (*yamlstrict.Doc)(nil).Problems()
	ValidateCollectors(cs, p, "mqtt", baseDir)
	if err := p.Err(); err != nil {
		return err
	}
	*c = cs[0]
	return nil
}

// Filters returns the topic filters the collector subscribes to, with the
// share prefix when a share group is set.
func (c *CollectorConfig) Filters() []string {
	var fs []string
	for _, s := range c.subs {
		f := s.tmpl.Filter()
		if c.ShareGroup != "" {
			f = "$share/" + c.ShareGroup + "/" + f
		}
		fs = append(fs, f)
	}
	return fs
}

// String describes the collector without its credentials.
func (c *CollectorConfig) String() string {
	return fmt.Sprintf("%s (%s)", c.Name, redactURL(c.Broker))
}
