package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

func TestEmptyFileGivesDefaults(t *testing.T) {
	cfg, err := Parse([]byte("# nothing but a comment\n"), "c.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Detector, detector.DefaultConfig()) || cfg.Inventory != "" {
		t.Errorf("got %+v, want the defaults", cfg)
	}
}

// The shipped example documents every key with its default value, and
// names an inventory next to it.
func TestShippedExampleIsTheDefaults(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "examples", "cellwarden.yml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Detector, detector.DefaultConfig()) {
		t.Errorf("example detector config differs from the defaults:\n got  %+v\n want %+v", cfg.Detector, detector.DefaultConfig())
	}
	def := Default().Lifecycle
	def.FillDefaults()
	def.Validate(&yamlstrict.Problems{}, "lifecycle")
	if got := cfg.Lifecycle; !reflect.DeepEqual(got, def) {
		t.Errorf("example lifecycle config differs from the defaults:\n got  %+v\n want %+v", got, def)
	}
	if want := filepath.Join("..", "..", "deploy", "examples", "inventory.yml"); cfg.Inventory != want {
		t.Errorf("inventory = %q, want %q (relative to the config file)", cfg.Inventory, want)
	}
	inv, err := cfg.LoadInventory("")
	if err != nil || len(inv.Batteries) == 0 {
		t.Errorf("example inventory: %v", err)
	}
}

func TestPartialOverridesKeepOtherDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
detector:
  cell_over_temperature:
    warning_celsius: 45
    for: 1m
  cell_voltage_out_of_range:
    limits:
      LFP: {critical_low_volts: 2.5, warning_low_volts: 2.8, warning_high_volts: 3.6, critical_high_volts: 3.75}
`), "c.yml")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Detector
	def := detector.DefaultConfig()
	if d.CellOverTemperature.WarningCelsius != 45 || d.CellOverTemperature.For != yamlstrict.Duration(time.Minute) {
		t.Errorf("overrides not applied: %+v", d.CellOverTemperature)
	}
	if d.CellOverTemperature.CriticalCelsius != def.CellOverTemperature.CriticalCelsius ||
		d.CellOverTemperature.ClearFor != def.CellOverTemperature.ClearFor {
		t.Errorf("untouched keys lost their defaults: %+v", d.CellOverTemperature)
	}
	if d.CellVoltageOutOfRange.Limits["LFP"].WarningHigh != 3.6 {
		t.Errorf("LFP limits not replaced: %+v", d.CellVoltageOutOfRange.Limits["LFP"])
	}
	if d.CellVoltageOutOfRange.Limits["NMC"] != def.CellVoltageOutOfRange.Limits["NMC"] {
		t.Errorf("NMC limits lost: %+v", d.CellVoltageOutOfRange.Limits)
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{
			name: "unknown keys at every depth",
			doc:  "detectr: {}\ndetector:\n  cell_over_temprature: {}\n  telemetry_stale:\n    multipel: 3\n",
			want: []string{
				"c.yml: detectr: unknown field (line 1)",
				"c.yml: detector.cell_over_temprature: unknown field (line 3)",
				"c.yml: detector.telemetry_stale.multipel: unknown field (line 5)",
			},
		},
		{
			name: "wrong types and bad durations",
			doc:  "detector:\n  cell_over_temperature:\n    enabled: maybe\n    warning_celsius: hot\n    for: 5 minutes\n",
			want: []string{
				`c.yml: detector.cell_over_temperature.enabled: "maybe" is not a boolean (line 3)`,
				`c.yml: detector.cell_over_temperature.warning_celsius: "hot" is not a number (line 4)`,
				`c.yml: detector.cell_over_temperature.for: "5 minutes" is not a valid duration (line 5)`,
			},
		},
		{
			name: "validation errors with values and lines",
			doc: `detector:
  cell_over_temperature:
    warning_celsius: 70
    critical_celsius: 60
  telemetry_stale:
    multiple: 1
  cell_voltage_out_of_range:
    limits:
      NiCd: {critical_low_volts: 1, warning_low_volts: 1.1, warning_high_volts: 1.4, critical_high_volts: 1.5}
      LFP: {critical_low_volts: 2.5, warning_low_volts: 2.0, warning_high_volts: 3.6, critical_high_volts: 3.75}
  plausible:
    max_celsius: -60
`,
			want: []string{
				`c.yml: detector.cell_over_temperature.critical_celsius: "60" must be above warning_celsius (70) (line 4)`,
				`c.yml: detector.telemetry_stale.multiple: "1" must be between 1.5 (a reading one interval late is not stale) and 1000 (line 6)`,
				`c.yml: detector.cell_voltage_out_of_range.limits.NiCd: unknown chemistry: must be one of NMC, LFP, LTO, NCA, default (line 9)`,
				`c.yml: detector.cell_voltage_out_of_range.limits.LFP: limits must satisfy critical_low_volts < warning_low_volts < warning_high_volts < critical_high_volts (got 2.5 < 2 < 3.6 < 3.75) (line 10)`,
				`c.yml: detector.plausible.max_celsius: "-60" must be above min_celsius (-50) (line 12)`,
			},
		},
		{
			name: "values that would silently disable a rule",
			doc: `detector:
  cell_over_temperature:
    warning_celsius: .nan
    hysteresis_celsius: 5
  module_over_temperature:
    hysteresis_celsius: 500
  cell_voltage_out_of_range:
    hysteresis_volts: 1.0
    limits:
      lfp: {critical_low_volts: 2.5, warning_low_volts: 2.8, warning_high_volts: 3.45, critical_high_volts: 3.75}
  telemetry_stale:
    multiple: .inf
`,
			want: []string{
				`c.yml: detector.cell_over_temperature.warning_celsius: "NaN" must be a finite number (line 3)`,
				`c.yml: detector.module_over_temperature.hysteresis_celsius: "500" is too large: a warning would only clear below -450 °C, under plausible.min_celsius (-50) (line 6)`,
				`c.yml: detector.cell_voltage_out_of_range.hysteresis_volts: "1" is too large for the LFP limits: a warning could never clear (needs less than half of 2.5..3.65 V) (line 8)`,
				`c.yml: detector.cell_voltage_out_of_range.limits.lfp: write the chemistry as "LFP" (line 10)`,
				`c.yml: detector.telemetry_stale.multiple: "+Inf" must be a finite number (line 12)`,
			},
		},
		{
			name: "peer groups",
			doc: `detector:
  peers:
    min_peers: 2
    min_modules: 2
    load_step_volts: -0.005
`,
			want: []string{
				`c.yml: detector.peers.min_peers: "2" must be >= 3 (a median of two is no peer group) (line 3)`,
				`c.yml: detector.peers.min_modules: "2" must be >= 3 (a median of two is no peer group) (line 4)`,
				`c.yml: detector.peers.load_step_volts: "-0.005" must be >= 0 (0: never inferred) (line 5)`,
			},
		},
		{
			name: "early-warning rules",
			doc: `detector:
  module_temperature_rising:
    window: 1m
    celsius_per_hour: 0
  cooling_failure:
    fast_rise_celsius: 6
    fast_window: 30s
    fast_celsius_per_hour: -1
    fast_follow_celsius: -0.1
    fast_strings_rise_celsius: -1
    fast_strings_window: 1m
    spread_factor: -1
    level_climb_celsius: -1
    level_settled_factor: 0.5
`,
			want: []string{
				`c.yml: detector.module_temperature_rising.window: "1m0s" must be at least 2m (line 3)`,
				`c.yml: detector.module_temperature_rising.celsius_per_hour: "0" must be > 0 (line 4)`,
				`c.yml: detector.cooling_failure.fast_rise_celsius: "6" must be between 0 (off) and warning_rise_celsius (5) (line 6)`,
				`c.yml: detector.cooling_failure.fast_window: "30s" must be at least 2m (line 7)`,
				`c.yml: detector.cooling_failure.fast_celsius_per_hour: "-1" must be > 0 (line 8)`,
				`c.yml: detector.cooling_failure.fast_follow_celsius: "-0.1" must be >= 0 (line 9)`,
				`c.yml: detector.cooling_failure.fast_strings_rise_celsius: "-1" must be between 0 (off) and warning_rise_celsius (5) (line 10)`,
				`c.yml: detector.cooling_failure.fast_strings_window: "1m0s" must be at least 2m (line 11)`,
				`c.yml: detector.cooling_failure.spread_factor: "-1" must be >= 0 (0: off) (line 12)`,
				`c.yml: detector.cooling_failure.level_climb_celsius: "-1" must be >= 0 (0: off) (line 13)`,
				`c.yml: detector.cooling_failure.level_settled_factor: "0.5" must be >= 1 (line 14)`,
			},
		},
		{
			name: "syntax error",
			doc:  "detector:\n  cell_over_temperature:\n    for: [20s\n",
			want: []string{"c.yml: line 3: invalid YAML: did not find expected ',' or ']'"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "c.yml")
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestInventoryOverride(t *testing.T) {
	cfg := Default()
	if inv, err := cfg.LoadInventory(""); inv != nil || err != nil {
		t.Errorf("no inventory configured: got %v, %v", inv, err)
	}
	_, err := cfg.LoadInventory(filepath.Join(t.TempDir(), "missing.yml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("missing override inventory: got %v, want an error naming the file", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("detector:\n  cell_over_temperature:\n    for: 20s\n")
	f.Add("inventory: x.yml\ndetector: {telemetry_stale: {multiple: 2}}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := Parse([]byte(doc), "f.yml")
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned cfg=%v err=%v", cfg, err)
		}
	})
}

// Every configuration shipped in deploy/examples loads and validates.
func TestShippedExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "examples", "*.yml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		switch filepath.Base(f) {
		case "inventory.yml", "web-config.yml":
			continue // an inventory and the web server's configuration (TestShippedDeploymentsServeTLS)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.LoadInventory(""); err != nil {
				t.Fatal(err)
			}
			for _, c := range cfg.Collectors.Modbus {
				if c.Map == nil && c.Profile != "sunspec" {
					t.Errorf("collector %s has no register map loaded", c.Name)
				}
			}
		})
	}
}

func TestBadModbusCollectors(t *testing.T) {
	doc := `collectors:
  modbus:
    - {address: 10.0.0.5, unit: 1, profile: soltaro_single_rack_vc, ups: a, string: "1"}
    - {address: 10.0.0.6:502, device: /dev/ttyS0, unit: 300, profile: nope, ups: "a b", string: "1"}
    - {address: 10.0.0.7:502, unit: 1, ups: a, interval: 1s, timeout: 5s}
    - {address: 10.0.0.7:502, unit: 1, map_file: missing.yaml, ups: a, string: "2"}
`
	_, err := Parse([]byte(doc), "c.yml")
	want := []string{
		`c.yml: collectors.modbus[0].address: "10.0.0.5" must be host:port (line 3)`,
		`c.yml: collectors.modbus[1]: needs exactly one of address (Modbus TCP host:port) and device (a serial port for RTU) (line 4)`,
		`c.yml: collectors.modbus[1].unit: "300" must be 1..247 on a serial line (line 4)`,
		`c.yml: collectors.modbus[1].profile: "nope" is not a built-in register map (have [pylontech_powercube_m2 soltaro_single_rack_vc], or sunspec) (line 4)`,
		`c.yml: collectors.modbus[1].ups: "a b" must be a UPS identifier ([A-Za-z0-9_.:-]+) (line 4)`,
		`c.yml: collectors.modbus[2]: needs exactly one of profile (built-in: [pylontech_powercube_m2 soltaro_single_rack_vc], or sunspec) and map_file (line 5)`,
		`c.yml: collectors.modbus[2].string: is required (which battery string the BMS manages) (line 5)`,
		`c.yml: collectors.modbus[2].timeout: "5s" must be above 0 and below the interval (1s) (line 5)`,
		`c.yml: collectors.modbus[3]: polls the same unit of the same endpoint as collectors.modbus[2] (line 6)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing error %q in:\n%s", w, err)
		}
	}
	if !strings.Contains(err.Error(), `collectors.modbus[3].map_file: "missing.yaml" cannot be read`) {
		t.Errorf("missing map_file error in:\n%s", err)
	}
}
