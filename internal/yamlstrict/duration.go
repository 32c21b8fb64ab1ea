package yamlstrict

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in configuration files as a Go
// duration ("90s", "1h30m") or with a day or week unit as Prometheus
// allows ("2d", "1w"). It marshals back to its shortest form.
type Duration time.Duration

// ParseDuration parses the forms Duration accepts. Negative durations are
// rejected.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, errors.New("is empty")
	}
	var total time.Duration
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
		n, err := strconv.ParseUint(rest[:i], 10, 32)
		if err != nil {
			return 0, errors.New("is not a valid duration")
		}
		total += time.Duration(n) * u.unit
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 || strings.HasPrefix(rest, "+") {
			return 0, errors.New("is not a valid duration")
		}
		total += d
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

// Nanos returns the duration in nanoseconds, the unit of event times.
func (d Duration) Nanos() int64 { return int64(d) }
