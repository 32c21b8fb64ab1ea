package notify

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	"go.yaml.in/yaml/v3"
)

// Config is the alerting section of the configuration file: where
// notifications go and the outbox that holds them until they are
// delivered.
type Config struct {
	// ExternalURL is how people reach this cellwarden; it is the
	// externalURL of webhook payloads. Optional.
	ExternalURL string `yaml:"external_url"`
	// Outbox is the durable queue of notifications.
	Outbox OutboxConfig `yaml:"outbox"`
	// Receivers are the webhooks and Alertmanagers alerts are sent to.
	// Every alert goes to every receiver whose matchers it satisfies.
	Receivers []ReceiverConfig `yaml:"receivers"`
}

// OutboxConfig places and bounds the outbox.
type OutboxConfig struct {
	// Path of the bbolt database, relative to the configuration file.
	// Required when there are receivers.
	Path string `yaml:"path"`
	// MaxEntries bounds the queued notifications; when it is reached the
	// oldest is dropped (and counted). 0 means the default, 10000.
	MaxEntries int `yaml:"max_entries"`
}

// DefaultOutbox returns the outbox defaults.
func DefaultOutbox() OutboxConfig { return OutboxConfig{MaxEntries: 10000} }

// UnmarshalYAML applies the defaults before decoding.
func (c *OutboxConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultOutbox()
	type plain OutboxConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// ReceiverConfig is one destination of notifications: exactly one of
// Webhook and Alertmanager.
type ReceiverConfig struct {
	// Name identifies the receiver in payloads, logs and metrics
	// ([A-Za-z0-9_.-]+, unique).
	Name string `yaml:"name"`
	// Match: label name → accepted values; an alert matches when each
	// listed label has one of its values. Missing labels are "".
	Match map[string][]string `yaml:"match"`
	// MatchRE: label name → regular expression the whole value must match.
	MatchRE map[string]string `yaml:"match_re"`
	// Timeout bounds one HTTP request.
	Timeout yamlstrict.Duration `yaml:"timeout"`
	// Retry spaces the attempts after a 5xx, 429 or network error.
	Retry RetryConfig `yaml:"retry"`
	// HTTPConfig: TLS (CA, client certificate, server name) and basic or
	// bearer authentication of the requests.
	HTTPConfig   HTTPConfig          `yaml:"http_config"`
	Webhook      *WebhookConfig      `yaml:"webhook"`
	Alertmanager *AlertmanagerConfig `yaml:"alertmanager"`

	matchRE map[string]*regexp.Regexp
}

// DefaultReceiver returns the defaults a receiver entry starts from.
func DefaultReceiver() ReceiverConfig {
	return ReceiverConfig{Timeout: yamlstrict.Duration(10 * time.Second), Retry: RetryConfig{
		MinBackoff: yamlstrict.Duration(500 * time.Millisecond), MaxBackoff: yamlstrict.Duration(time.Minute)}}
}

// UnmarshalYAML applies the defaults before decoding.
func (c *ReceiverConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultReceiver()
	type plain ReceiverConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// RetryConfig is exponential backoff with jitter: the n-th wait is drawn
// from [d/2, d] with d = min(MinBackoff × 2ⁿ, MaxBackoff). Attempts go on
// until the notification is delivered, refused with a 4xx, or dropped from
// a full outbox.
type RetryConfig struct {
	MinBackoff yamlstrict.Duration `yaml:"min_backoff"`
	MaxBackoff yamlstrict.Duration `yaml:"max_backoff"`
}

// WebhookConfig posts Alertmanager-compatible webhook payloads (version
// "4") to a URL, one per alert group.
type WebhookConfig struct {
	// URL, or URLFile holding it (for URLs that carry a token). Exactly one.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// The HMAC-SHA256 key that signs each body, from at most one of
	// HMACSecret, HMACSecretFile and HMACSecretEnv (an environment
	// variable). Without one, bodies are not signed.
	HMACSecret     Secret `yaml:"hmac_secret"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
	HMACSecretEnv  string `yaml:"hmac_secret_env"`
	// GroupBy: alerts with the same values of these labels are notified
	// together.
	GroupBy []string `yaml:"group_by"`
	// GroupWait: how long a new group waits for more alerts before its
	// first notification.
	GroupWait yamlstrict.Duration `yaml:"group_wait"`
	// GroupInterval: how long after a notification a changed group waits
	// before the next.
	GroupInterval yamlstrict.Duration `yaml:"group_interval"`
	// RepeatInterval: how long after a notification an unchanged group with
	// firing alerts is notified again.
	RepeatInterval yamlstrict.Duration `yaml:"repeat_interval"`
	// SendResolved: notify when alerts resolve.
	SendResolved bool `yaml:"send_resolved"`

	url    string
	secret Secret
}

// DefaultWebhook returns the defaults a webhook starts from.
func DefaultWebhook() WebhookConfig {
	return WebhookConfig{GroupBy: []string{"ups", "string"}, GroupInterval: yamlstrict.Duration(time.Minute),
		RepeatInterval: yamlstrict.Duration(4 * time.Hour), SendResolved: true}
}

// UnmarshalYAML applies the defaults before decoding.
func (c *WebhookConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultWebhook()
	type plain WebhookConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// AlertmanagerConfig pushes alerts to the /api/v2/alerts endpoint of one
// or more Alertmanagers (the members of one HA cluster), as Prometheus
// does: every change at once, and every firing alert again each
// ResendInterval; firing alerts carry endsAt = send time + 4 ×
// ResendInterval, so that Alertmanager resolves them if cellwarden
// disappears.
type AlertmanagerConfig struct {
	// URLs are the base URLs (http://host:9093) of the members of one
	// Alertmanager cluster. Every push goes to every member (members share
	// silences and the notification log, not alerts); it is delivered when
	// one of them accepts it, and the next resend brings a member that
	// missed it up to date.
	URLs []string `yaml:"urls"`
	// ResendInterval: how often firing alerts are pushed again.
	ResendInterval yamlstrict.Duration `yaml:"resend_interval"`
}

// DefaultAlertmanager returns the defaults an Alertmanager receiver starts
// from.
func DefaultAlertmanager() AlertmanagerConfig {
	return AlertmanagerConfig{ResendInterval: yamlstrict.Duration(time.Minute)}
}

// UnmarshalYAML applies the defaults before decoding.
func (c *AlertmanagerConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultAlertmanager()
	type plain AlertmanagerConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// Secret is a string that never shows: it formats, marshals and logs as
// "<secret>".
type Secret string

// String hides the secret.
func (Secret) String() string { return "<secret>" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return "<secret>" }

// MarshalYAML hides the secret.
func (Secret) MarshalYAML() (any, error) { return "<secret>", nil }

// MarshalJSON hides the secret.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<secret>"`), nil }

var (
	receiverName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	labelName    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	severities   = []string{"info", "warning", "critical"}
)

// Validate checks the section at path (e.g. "alerting") and completes it:
// relative paths resolve against baseDir, URL and secret files are read,
// secret environment variables looked up (lookupEnv; os.LookupEnv when
// nil). Problems are added to p.
func (c *Config) Validate(p *yamlstrict.Problems, path, baseDir string, lookupEnv func(string) (string, bool)) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add(key("external_url"), c.ExternalURL, "must be an http or https URL")
		}
	}
	ob := key("outbox")
	switch {
	case c.Outbox.Path == "" && len(c.Receivers) > 0:
		p.Add(yamlstrict.Key(ob, "path"), nil, "is required when there are receivers (the file that keeps undelivered notifications)")
	case c.Outbox.Path != "" && !filepath.IsAbs(c.Outbox.Path):
		c.Outbox.Path = filepath.Join(baseDir, c.Outbox.Path)
	}
	if c.Outbox.MaxEntries == 0 {
		c.Outbox.MaxEntries = DefaultOutbox().MaxEntries
	}
	if c.Outbox.MaxEntries < 1 || c.Outbox.MaxEntries > 10_000_000 {
		p.Add(yamlstrict.Key(ob, "max_entries"), c.Outbox.MaxEntries, "must be 1..10000000")
	}
	seen := map[string]int{}
	for i := range c.Receivers {
		ip := yamlstrict.Index(key("receivers"), i)
		c.Receivers[i].validate(p, ip, baseDir, lookupEnv)
		name := c.Receivers[i].Name
		if j, dup := seen[name]; dup && name != "" {
			p.Add(yamlstrict.Key(ip, "name"), name, "is also the name of receivers[%d]", j)
		}
		seen[name] = i
	}
}

func (r *ReceiverConfig) validate(p *yamlstrict.Problems, path, baseDir string, lookupEnv func(string) (string, bool)) {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if !receiverName.MatchString(r.Name) {
		p.Add(key("name"), r.Name, "must match [A-Za-z0-9_.-]+")
	}
	for _, l := range sortedKeys(r.Match) {
		lp := yamlstrict.Key(key("match"), l)
		if !labelName.MatchString(l) {
			p.Add(lp, nil, "is not a label name")
		}
		if len(r.Match[l]) == 0 {
			p.Add(lp, nil, "needs at least one value")
		}
		for j, v := range r.Match[l] {
			if l == "severity" && !slices.Contains(severities, v) {
				p.Add(yamlstrict.Index(lp, j), v, "is not a severity (info, warning, critical)")
			}
		}
	}
	r.matchRE = map[string]*regexp.Regexp{}
	for _, l := range sortedKeys(r.MatchRE) {
		lp := yamlstrict.Key(key("match_re"), l)
		if !labelName.MatchString(l) {
			p.Add(lp, nil, "is not a label name")
		}
		re, err := regexp.Compile("^(?:" + r.MatchRE[l] + ")$")
		if err != nil {
			p.Add(lp, r.MatchRE[l], "is not a regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			continue
		}
		r.matchRE[l] = re
	}
	if r.Timeout.Nanos() <= 0 {
		p.Add(key("timeout"), r.Timeout, "must be above 0")
	}
	rp := key("retry")
	if r.Retry.MinBackoff.Nanos() <= 0 {
		p.Add(yamlstrict.Key(rp, "min_backoff"), r.Retry.MinBackoff, "must be above 0")
	}
	if r.Retry.MaxBackoff.Nanos() < r.Retry.MinBackoff.Nanos() {
		p.Add(yamlstrict.Key(rp, "max_backoff"), r.Retry.MaxBackoff, "must be at least min_backoff (%s)", r.Retry.MinBackoff)
	}
	r.HTTPConfig.validate(p, key("http_config"), baseDir, lookupEnv)
	switch {
	case (r.Webhook == nil) == (r.Alertmanager == nil):
		p.Add(path, nil, "needs exactly one of webhook and alertmanager")
	case r.Webhook != nil:
		r.Webhook.validate(p, key("webhook"), baseDir, lookupEnv)
	default:
		r.Alertmanager.validate(p, key("alertmanager"))
	}
}

func (w *WebhookConfig) validate(p *yamlstrict.Problems, path, baseDir string, lookupEnv func(string) (string, bool)) {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	switch {
	case (w.URL == "") == (w.URLFile == ""):
		p.Add(path, nil, "needs exactly one of url and url_file")
	case w.URL != "":
		w.url = w.URL
		checkURL(p, key("url"), w.URL, true)
	default:
		data, err := os.ReadFile(resolve(baseDir, w.URLFile))
		if err != nil {
			p.Add(key("url_file"), w.URLFile, "cannot be read: %v", pathError(err))
			break
		}
		w.url = strings.TrimSpace(string(data))
		checkURL(p, key("url_file"), w.url, false)
	}
	w.secret = loadSecret(p, path, "hmac_secret", secretSources{inline: w.HMACSecret, file: &w.HMACSecretFile, env: w.HMACSecretEnv,
		inlineOK: true}, baseDir, lookupEnv)
	for j, l := range w.GroupBy {
		if !labelName.MatchString(l) {
			p.Add(yamlstrict.Index(key("group_by"), j), l, "is not a label name")
		}
	}
	if w.GroupWait.Nanos() < 0 {
		p.Add(key("group_wait"), w.GroupWait, "must not be negative")
	}
	if w.GroupInterval.Nanos() <= 0 {
		p.Add(key("group_interval"), w.GroupInterval, "must be above 0")
	}
	if w.RepeatInterval.Nanos() < w.GroupInterval.Nanos() {
		p.Add(key("repeat_interval"), w.RepeatInterval, "must be at least group_interval (%s)", w.GroupInterval)
	}
}

func (a *AlertmanagerConfig) validate(p *yamlstrict.Problems, path string) {
	key := func(k string) string { return yamlstrict.Key(path, k) }
	if len(a.URLs) == 0 {
		p.Add(key("urls"), nil, "needs at least one Alertmanager URL")
	}
	for j, u := range a.URLs {
		checkURL(p, yamlstrict.Index(key("urls"), j), u, true)
	}
	if a.ResendInterval.Nanos() < int64(time.Second) {
		p.Add(key("resend_interval"), a.ResendInterval, "must be at least 1s")
	}
}

// checkURL adds a problem unless u is an absolute http(s) URL. The URL is
// shown redacted (scheme and host) and only when show is set: URLs may
// carry tokens.
func checkURL(p *yamlstrict.Problems, path, u string, show bool) {
	parsed, err := url.Parse(u)
	if err == nil && (parsed.Scheme == "http" || parsed.Scheme == "https") && parsed.Host != "" {
		return
	}
	var v any
	if show {
		v = Redact(u)
	}
	p.Add(path, v, "must be an http or https URL")
}

// Redact returns the scheme and host of a URL, for logs and messages: the
// path, query and user info may carry credentials.
func Redact(u string) string {
	parsed, err := url.Parse(u)
	switch {
	case err != nil || parsed.Scheme == "":
		return "<unparsable URL>"
	case parsed.Host == "":
		return parsed.Scheme + ":<redacted>"
	}
	return parsed.Scheme + "://" + parsed.Host
}

// pathError drops the path from an *os.PathError: the configuration names
// the file already.
func pathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func resolve(baseDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// String describes the receiver for logs: its name and kind, never a URL
// or secret.
func (r *ReceiverConfig) String() string {
	if r.Webhook != nil {
		return fmt.Sprintf("webhook %s", r.Name)
	}
	return fmt.Sprintf("alertmanager %s", r.Name)
}
