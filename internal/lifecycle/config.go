package lifecycle

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// Defaults of Config.
const (
	// DefaultHorizon is how far ahead a life date makes a battery "soon".
	DefaultHorizon = 180 * 24 * time.Hour
	// DefaultSOHLimit is the state of health below which a battery is at
	// end of life.
	DefaultSOHLimit = 0.80
	// DefaultSOHWindow is how much state-of-health history the trend fits.
	DefaultSOHWindow = 90 * 24 * time.Hour
	// DefaultSOHMinSpan is how long the history must span before the trend
	// is projected.
	DefaultSOHMinSpan = 14 * 24 * time.Hour
	// DefaultSOHMinPoints is how many SoHBucket buckets must hold readings
	// before the trend is projected.
	DefaultSOHMinPoints = 7
)

// DefaultDesignLifeYears is the design life assumed, by chemistry, for a
// battery whose inventory gives none and that no policy covers: the
// figures vendors typically give for UPS batteries at 25 °C. "unknown"
// applies when the chemistry is not known either; it is the shortest.
func DefaultDesignLifeYears() map[string]float64 {
	return map[string]float64{"NMC": 10, "NCA": 10, "LFP": 15, "LTO": 20, "unknown": 10}
}

// Config is the `lifecycle:` section of the configuration file. Start from
// DefaultConfig; FillDefaults completes a decoded one and Validate checks
// it.
type Config struct {
	// Horizon is how far ahead a life date makes a battery "soon".
	Horizon yamlstrict.Duration `yaml:"horizon"`
	// SOHLimit is the state of health (0..1) below which a battery is at
	// end of life.
	SOHLimit float64 `yaml:"soh_limit"`
	// SOHWindow is how much state-of-health history the trend fits.
	SOHWindow yamlstrict.Duration `yaml:"soh_window"`
	// SOHMinSpan and SOHMinPoints: the trend is projected only when the
	// history in the window spans SOHMinSpan and fills SOHMinPoints
	// six-hour buckets.
	SOHMinSpan   yamlstrict.Duration `yaml:"soh_min_span"`
	SOHMinPoints int                 `yaml:"soh_min_points"`
	// TimeZone is the IANA zone whose calendar days the dates are: an
	// instant is on the day a person there would write. Default UTC.
	TimeZone string `yaml:"time_zone"`
	// DesignLifeYears is the design life by chemistry (NMC, NCA, LFP, LTO,
	// unknown) for batteries whose inventory gives none and that no
	// policy covers. Entries given replace the defaults one by one.
	DesignLifeYears map[string]float64 `yaml:"design_life_years"`
	// PlaceholderDates are more dates to treat as "nobody entered one",
	// beyond the built-in DefaultPlaceholders.
	PlaceholderDates []Date `yaml:"placeholder_dates"`
	// Policies are vendor or model rules; see Policy.
	Policies []Policy `yaml:"policies"`

	loc *time.Location
}

// Policy is what a vendor says about a battery family. A policy applies to
// a battery when every selector it sets (Vendor, Model, Chemistry) matches
// (vendor and model case-insensitively). For each value the most specific
// applicable policy that sets it wins (more selectors set is more
// specific; between equals, the first in the file). A battery's own
// inventory record always wins over a policy: policies fill what it
// leaves out.
type Policy struct {
	Vendor    string              `yaml:"vendor"`
	Model     string              `yaml:"model"`
	Chemistry inventory.Chemistry `yaml:"chemistry"`
	// DesignLifeYears is the design life, from installation.
	DesignLifeYears float64 `yaml:"design_life_years"`
	// WarrantyYears is the warranty, from installation, for batteries
	// whose warranty_until is not known.
	WarrantyYears float64 `yaml:"warranty_years"`
	// ReplaceAfterYears is the vendor's advice to replace, from
	// installation, for batteries without a replace_by date.
	ReplaceAfterYears float64 `yaml:"replace_after_years"`
	// SOHLimit replaces Config.SOHLimit for these batteries.
	SOHLimit float64 `yaml:"soh_limit"`
}

// DefaultConfig returns the lifecycle configuration a user gets without a
// file.
func DefaultConfig() Config {
	return Config{
		Horizon:         yamlstrict.Duration(DefaultHorizon),
		SOHLimit:        DefaultSOHLimit,
		SOHWindow:       yamlstrict.Duration(DefaultSOHWindow),
		SOHMinSpan:      yamlstrict.Duration(DefaultSOHMinSpan),
		SOHMinPoints:    DefaultSOHMinPoints,
		TimeZone:        "UTC",
		DesignLifeYears: DefaultDesignLifeYears(),
		loc:             time.UTC,
	}
}

// FillDefaults adds the default design life of every chemistry the
// decoded DesignLifeYears map leaves out (a map in the file replaces the
// default map as a whole).
func (c *Config) FillDefaults() {
	if c.DesignLifeYears == nil {
		c.DesignLifeYears = map[string]float64{}
	}
	for k, v := range DefaultDesignLifeYears() {
		if _, ok := c.DesignLifeYears[k]; !ok {
			c.DesignLifeYears[k] = v
		}
	}
}

// Validate records every problem of c under the path prefix (normally
// "lifecycle") and resolves the time zone.
func (c *Config) Validate(p *yamlstrict.Problems, prefix string) {
	at := func(f string) string { return yamlstrict.Key(prefix, f) }
	if c.Horizon <= 0 {
		p.Add(at("horizon"), c.Horizon, "must be more than 0")
	}
	if c.Horizon.Duration()%(24*time.Hour) != 0 {
		p.Add(at("horizon"), c.Horizon, "must be a whole number of days (180d)")
	}
	limit(p, at("soh_limit"), c.SOHLimit)
	if c.SOHWindow.Duration() < 24*time.Hour {
		p.Add(at("soh_window"), c.SOHWindow, "must be at least 1d")
	}
	if c.SOHMinSpan.Duration() < 6*time.Hour || c.SOHMinSpan > c.SOHWindow {
		p.Add(at("soh_min_span"), c.SOHMinSpan, "must be at least 6h and at most soh_window (%s)", c.SOHWindow)
	}
	if c.SOHMinPoints < 3 {
		p.Add(at("soh_min_points"), c.SOHMinPoints, "must be at least 3")
	}
	loc, err := time.LoadLocation(c.TimeZone)
	switch {
	case c.TimeZone == "":
		c.loc = time.UTC
	case err != nil || strings.EqualFold(c.TimeZone, "local"):
		p.Add(at("time_zone"), c.TimeZone, "must be an IANA time zone such as UTC or Europe/Berlin")
	default:
		c.loc = loc
	}
	for _, k := range slices.Sorted(maps.Keys(c.DesignLifeYears)) {
		path := yamlstrict.Key(at("design_life_years"), k)
		if _, ok := inventory.ParseChemistry(k); !ok && k != "unknown" {
			p.Add(path, nil, "is not a chemistry: use NMC, NCA, LFP, LTO or unknown")
			continue
		}
		years(p, path, c.DesignLifeYears[k])
	}
	for i, pol := range c.Policies {
		path := yamlstrict.Index(at("policies"), i)
		if pol.Vendor == "" && pol.Model == "" && pol.Chemistry == 0 && !p.Has(yamlstrict.Key(path, "chemistry")) {
			p.Add(path, nil, "must select batteries by vendor, model or chemistry")
		}
		if pol.DesignLifeYears == 0 && pol.WarrantyYears == 0 && pol.ReplaceAfterYears == 0 && pol.SOHLimit == 0 {
			p.Add(path, nil, "must set design_life_years, warranty_years, replace_after_years or soh_limit")
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"design_life_years", pol.DesignLifeYears}, {"warranty_years", pol.WarrantyYears}, {"replace_after_years", pol.ReplaceAfterYears}} {
			if f.v != 0 {
				years(p, yamlstrict.Key(path, f.name), f.v)
			}
		}
		if pol.SOHLimit != 0 {
			limit(p, yamlstrict.Key(path, "soh_limit"), pol.SOHLimit)
		}
	}
}

func years(p *yamlstrict.Problems, path string, v float64) {
	if !(v > 0 && v <= 50) {
		p.Add(path, v, "must be more than 0 and at most 50 (years)")
	}
}

func limit(p *yamlstrict.Problems, path string, v float64) {
	if !(v > 0 && v < 1) || math.IsNaN(v) {
		p.Add(path, v, "must be between 0 and 1 (a ratio: 0.80 is 80 %%)")
	}
}

// Location is the time zone of the calendar days, after Validate (UTC
// before).
func (c *Config) Location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// HorizonDays is the horizon in whole days.
func (c *Config) HorizonDays() int { return int(c.Horizon.Duration() / (24 * time.Hour)) }

// ParseConfig decodes a YAML document whose only top-level key is
// `lifecycle:` or, with other keys allowed, takes the `lifecycle:` and
// `inventory:` keys of a whole cellwarden configuration file, ignoring
// its other sections (config.Load validates those). It returns the
// validated lifecycle configuration and the inventory path the file
// names, resolved against the file's directory ("" when none). Problems
// are reported like the configuration file's:
//
//	FILE: lifecycle.soh_limit: "80" must be between 0 and 1 (a ratio: 0.80 is 80 %) (line 3)
func ParseConfig(data []byte, source string) (Config, string, error) {
	var f struct {
		Inventory string         `yaml:"inventory"`
		Lifecycle Config         `yaml:"lifecycle"`
		Rest      map[string]any `yaml:",inline"`
	}
	f.Lifecycle = DefaultConfig()
	doc, errs := yamlstrict.Decode(data, &f)
	p := doc.Problems()
	p.Append(errs...)
	f.Lifecycle.FillDefaults()
	f.Lifecycle.Validate(p, "lifecycle")
	if err := p.Errs().In(source); err != nil {
		return Config{}, "", err
	}
	inv := f.Inventory
	if inv != "" && !filepath.IsAbs(inv) && source != "" {
		inv = filepath.Join(filepath.Dir(source), inv)
	}
	return f.Lifecycle, inv, nil
}

// LoadConfig reads a configuration file with ParseConfig.
func LoadConfig(path string) (Config, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, "", fmt.Errorf("read configuration: %w", err)
	}
	return ParseConfig(data, path)
}
