package yamlstrict

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in configuration files as a Go
// duration ("90s", "1h30m") or with a day or week unit as Prometheus
// allows ("2d", "1w"). It marshals back to its shortest form.
type Duration time.Duration

// ParseDuration parses the forms Duration accepts. Negative durations and
// durations beyond about 292 years are rejected.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	invalid := errors.New("is not a valid duration")
	if s[0] == '-' || s[0] == '+' {
		return 0, invalid
	}
	var total time.Duration
	add := func(d time.Duration) bool {
		if d < 0 || total > math.MaxInt64-d {
			return false
		}
		total += d
		return true
	}
	rest := s
	// Peel leading "<n>w" and "<n>d" parts, then hand the rest to Go.
	for _, u := range []struct {
		suffix byte
		unit   time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		i := strings.IndexByte(rest, u.suffix)
		if i < 0 {
			continue
		}
		n, err := strconv.ParseUint(rest[:i], 10, 63)
		if err != nil || n > uint64(math.MaxInt64/u.unit) || !add(time.Duration(n)*u.unit) {
			return 0, invalid
		}
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || rest[0] == '-' || rest[0] == '+' || !add(d) {
			return 0, invalid
		}
	}
	return Duration(total), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("is not a valid duration")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration as Go does ("1m30s"); zero is "0s".
func (d Duration) String() string { return time.Duration(d).String() }

// Duration is d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// Nanos returns the duration in nanoseconds, the unit of event times.
func (d Duration) Nanos() int64 { return int64(d) }
