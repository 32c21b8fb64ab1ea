// Package config loads cellwarden's configuration file: one strict YAML
// document (unknown keys are errors), built-in defaults for everything it
// leaves out, and every problem reported at once with its field path, the
// bad value and the line.
package config

import (
	"os"
	"path/filepath"

	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/collector/modbus"
	"github.com/cellwarden/cellwarden/collector/mqtt"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/inventory"
	"github.com/cellwarden/cellwarden/internal/lifecycle"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// Config is the whole configuration file.
type Config struct {
	// Inventory is the path of the battery inventory (interfaces.md §2),
	// relative to the configuration file. Optional.
	Inventory string `yaml:"inventory"`
	// Detector tunes the detection rules.
	Detector detector.Config `yaml:"detector"`
	// Collectors are the sources polled or subscribed to.
	Collectors Collectors `yaml:"collectors"`
	// Alerting says where notifications go (docs/alerting.md).
	Alerting notify.Config `yaml:"alerting"`
	// Assets is the path of an asset-list CSV with battery dates
	// (docs/lifecycle.md), relative to the configuration file. Optional.
	Assets string `yaml:"assets"`
	// Lifecycle is the battery-age policy (docs/lifecycle.md).
	Lifecycle lifecycle.Config `yaml:"lifecycle"`

	// Source is the file the configuration was read from ("" for the
	// built-in defaults).
	Source string `yaml:"-"`
}

// Collectors lists the sources by transport.
type Collectors struct {
	// Modbus lists the BMSs to poll over Modbus TCP or RTU.
	Modbus []modbus.CollectorConfig `yaml:"modbus"`
	// MQTT lists the brokers to subscribe to.
	MQTT []mqtt.CollectorConfig `yaml:"mqtt"`
}

// Default returns the configuration a user gets without a file.
func Default() *Config {
	return &Config{Detector: detector.DefaultConfig(), Lifecycle: lifecycle.DefaultConfig()}
}

// Load reads and validates the configuration file at path. Relative paths
// inside it resolve against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse decodes and validates a configuration document read from source.
// On failure the error is a *yamlstrict.SourceErrors listing every problem,
// one per line: "FILE: PATH: "VALUE" MESSAGE (line N)".
func Parse(data []byte, source string) (*Config, error) {
	cfg := Default()
	cfg.Source = source
	doc, errs := yamlstrict.Decode(data, cfg)
	p := doc.Problems()
	p.Append(errs...)
	cfg.Detector.FillDefaults()
	cfg.Detector.Validate(p, "detector")
	base := "."
	if source != "" {
		base = filepath.Dir(source)
	}
	modbus.ValidateCollectors(cfg.Collectors.Modbus, p, "collectors.modbus", base)
	mqtt.ValidateCollectors(cfg.Collectors.MQTT, p, "collectors.mqtt", base)
	cfg.Alerting.Validate(p, "alerting", base, nil)
	cfg.Lifecycle.FillDefaults()
	cfg.Lifecycle.Validate(p, "lifecycle")
	if err := p.Errs().In(source); err != nil {
		return nil, err
	}
	if cfg.Inventory != "" {
		cfg.Inventory = resolve(source, cfg.Inventory)
	}
	if cfg.Assets != "" {
		cfg.Assets = resolve(source, cfg.Assets)
	}
	return cfg, nil
}

// LoadInventory loads the inventory the configuration names, or returns nil
// when it names none. override, when non-empty, takes precedence (the
// --inventory flag).
func (c *Config) LoadInventory(override string) (*inventory.Inventory, error) {
	path := c.Inventory
	if override != "" {
		path = override
	}
	if path == "" {
		return nil, nil
	}
	return inventory.Load(path)
}

// Engine returns the detector of this configuration over reg and inv,
// with the battery-age rules (the lifecycle policy and the asset list)
// unless ages is false (the static baseline has none).
func (c *Config) Engine(reg *telemetry.Registry, inv *inventory.Inventory, ages bool) (*detector.Engine, error) {
	eng := detector.New(c.Detector, reg, inv)
	if !ages {
		return eng, nil
	}
	if err := c.SetAges(eng); err != nil {
		return nil, err
	}
	return eng, nil
}

// SetAges turns on (or, on a reload, reconfigures) the engine's
// battery-age rules with this configuration's lifecycle policy and asset
// list. When the asset list cannot be read the policy still applies and
// the error says why the assets are missing.
func (c *Config) SetAges(eng *detector.Engine) error {
	eng.SetLifecycle(c.Lifecycle)
	if c.Assets == "" {
		return nil
	}
	assets, err := lifecycle.LoadAssets(c.Assets)
	if err != nil {
		return err
	}
	eng.Lifecycle().SetAssets(assets)
	return nil
}

func resolve(source, p string) string {
	if filepath.IsAbs(p) || source == "" {
		return p
	}
	return filepath.Join(filepath.Dir(source), p)
}
