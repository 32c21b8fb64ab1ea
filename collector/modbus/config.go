package modbus

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/cellwarden/cellwarden/internal/yamlstrict"
	"go.yaml.in/yaml/v3"
)

// CollectorConfig is one BMS to poll, as the configuration file lists it
// under collectors.modbus.
type CollectorConfig struct {
	// Name labels the device in logs and metrics (default: address/unit).
	Name string `yaml:"name"`
	// Address is a Modbus TCP endpoint (host:port); Device a serial port
	// for Modbus RTU, with Baud and Parity (N, E or O). Exactly one.
	Address string `yaml:"address"`
	// Transport of an address: "tcp" (Modbus TCP, the default) or
	// "rtu_over_tcp" (a gateway passing raw RTU frames).
	Transport string `yaml:"transport"`
	Device    string `yaml:"device"`
	Baud      int    `yaml:"baud"`
	Parity    string `yaml:"parity"`
	// Unit is the Modbus unit id (1..247).
	Unit int `yaml:"unit"`
	// Profile names a built-in register map, or "sunspec" for discovery;
	// MapFile a register map of your own (relative to the configuration
	// file). Exactly one.
	Profile string `yaml:"profile"`
	MapFile string `yaml:"map_file"`
	// UPS and String say whose batteries the BMS manages (String is taken
	// from the device for SunSpec).
	UPS    string `yaml:"ups"`
	String string `yaml:"string"`
	// Modules sizes the map's per-cell arrays (0 keeps the map's).
	Modules  int                 `yaml:"modules"`
	Interval yamlstrict.Duration `yaml:"interval"`
	Timeout  yamlstrict.Duration `yaml:"timeout"`
	// MaxGap: unmapped registers one read may span to join two ranges.
	MaxGap int `yaml:"max_gap"`

	// Map is the loaded register map (nil for SunSpec), set by Validate.
	Map *Map `yaml:"-"`
}

// DefaultCollector returns the defaults a collector entry starts from.
func DefaultCollector() CollectorConfig {
	return CollectorConfig{Transport: "tcp", Baud: 19200, Parity: "E", Interval: yamlstrict.Duration(10 * time.Second),
		Timeout: yamlstrict.Duration(2 * time.Second)}
}

// UnmarshalYAML applies the defaults before decoding an entry.
func (c *CollectorConfig) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultCollector()
	type plain CollectorConfig
	return yamlstrict.DecodeNode(n, (*plain)(c))
}

// Endpoint names the connection an entry uses: its serial port, or its
// address with localhost and IP addresses in one spelling (no DNS:
// checking a configuration must not depend on the network). Entries with
// one endpoint share one link.
func (c *CollectorConfig) Endpoint() string {
	if c.Device != "" {
		return "serial:" + c.Device
	}
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return c.Address
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// ValidateCollectors checks every entry and loads their register maps;
// paths are below path (e.g. "collectors.modbus"), map files relative to
// baseDir. Entries that share an endpoint (units behind one gateway or on
// one bus) must agree on what the link is: one transport for an address,
// one baud rate and parity for a serial port. Each keeps its own timeout.
func ValidateCollectors(cs []CollectorConfig, p *yamlstrict.Problems, path, baseDir string) {
	seen := map[string]int{}
	links := map[string]int{} // endpoint → the first entry on it
	for i := range cs {
		c := &cs[i]
		ip := yamlstrict.Index(path, i)
		key := func(k string) string { return yamlstrict.Key(ip, k) }
		switch {
		case (c.Address == "") == (c.Device == ""):
			p.Add(ip, nil, "needs exactly one of address (Modbus TCP host:port) and device (a serial port for RTU)")
		case c.Address != "":
			if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
				p.Add(key("address"), c.Address, "must be host:port")
			} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.Add(key("address"), c.Address, "has no valid port")
			}
			if c.Transport != "tcp" && c.Transport != "rtu_over_tcp" {
				p.Add(key("transport"), c.Transport, "must be tcp or rtu_over_tcp")
			}
		default:
			if c.Transport != "tcp" {
				p.Add(key("transport"), c.Transport, "applies to an address, not to a serial device")
			}
			if c.Baud < 1200 || c.Baud > 921600 {
				p.Add(key("baud"), c.Baud, "must be 1200..921600")
			}
			if !slices.Contains([]string{"N", "E", "O"}, c.Parity) {
				p.Add(key("parity"), c.Parity, "must be N, E or O")
			}
		}
		switch {
		case c.Device != "" && (c.Unit < 1 || c.Unit > 247):
			p.Add(key("unit"), c.Unit, "must be 1..247 on a serial line")
		case c.Unit < 0 || c.Unit > 255:
			p.Add(key("unit"), c.Unit, "must be 0..255")
		}
		// localhost and 127.0.0.1 are one endpoint.
		endpoint := c.Endpoint()
		if j, dup := seen[endpoint+"#"+strconv.Itoa(c.Unit)]; dup {
			p.Add(ip, nil, "polls the same unit of the same endpoint as %s", yamlstrict.Index(path, j))
		}
		seen[endpoint+"#"+strconv.Itoa(c.Unit)] = i
		if j, shared := links[endpoint]; shared {
			checkSharedLink(p, ip, yamlstrict.Index(path, j), c, &cs[j])
		} else {
			links[endpoint] = i
		}
		switch {
		case (c.Profile == "") == (c.MapFile == ""):
			p.Add(ip, nil, "needs exactly one of profile (built-in: %v, or sunspec) and map_file", Profiles())
		case c.Profile == "sunspec":
		case c.Profile != "":
			m, err := Profile(c.Profile)
			if err != nil {
				p.Add(key("profile"), c.Profile, "is not a built-in register map (have %v, or sunspec)", Profiles())
			}
			c.Map = m
		default:
			file := c.MapFile
			if !filepath.IsAbs(file) {
				file = filepath.Join(baseDir, file)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				p.Add(key("map_file"), c.MapFile, "cannot be read: %v", err)
				break
			}
			m, err := ParseMap(data, file)
			if err != nil {
				p.Add(key("map_file"), c.MapFile, "is not a valid register map:\n%v", err)
				break
			}
			c.Map = m
		}
		if c.Map != nil && c.Modules > 0 {
			c.Map.SetModules(c.Modules)
			if err := c.Map.Check(); err != nil {
				p.Add(key("modules"), c.Modules, "does not fit the register map: %v", err)
			}
		}
		if c.Profile == "sunspec" && c.Modules != 0 {
			p.Add(key("modules"), c.Modules, "does not apply to SunSpec (the device says how many)")
		}
		if !telemetry.ValidUPS(c.UPS) {
			p.Add(key("ups"), c.UPS, "must be a UPS identifier ([A-Za-z0-9_.:-]+)")
		}
		if c.String == "" && c.Profile != "sunspec" {
			p.Add(key("string"), nil, "is required (which battery string the BMS manages)")
		}
		if c.Modules < 0 || c.Modules > 1000 {
			p.Add(key("modules"), c.Modules, "must be 0..1000")
		}
		if c.Interval.Nanos() < int64(100*time.Millisecond) {
			p.Add(key("interval"), c.Interval, "must be at least 100ms")
		}
		if c.Timeout.Nanos() <= 0 || c.Timeout.Nanos() >= c.Interval.Nanos() {
			p.Add(key("timeout"), c.Timeout, "must be above 0 and below the interval (%s)", c.Interval)
		}
		if c.MaxGap < 0 || c.MaxGap > 100 {
			p.Add(key("max_gap"), c.MaxGap, "must be 0..100")
		}
		if c.Name == "" {
			c.Name = c.Address + c.Device + "/" + strconv.Itoa(c.Unit)
		}
	}
}

// checkSharedLink reports what entry c (at path ip) says about its link
// that the first entry on the same endpoint (first, at firstPath)
// contradicts: one connection or bus cannot be two things at once.
func checkSharedLink(p *yamlstrict.Problems, ip, firstPath string, c, first *CollectorConfig) {
	key := func(k string) string { return yamlstrict.Key(ip, k) }
	if c.Device != "" {
		if c.Baud != first.Baud {
			p.Add(key("baud"), c.Baud, "differs from %s (%d) on the same serial port %s: the units of a bus share its baud rate and parity",
				yamlstrict.Key(firstPath, "baud"), first.Baud, c.Device)
		}
		if c.Parity != first.Parity {
			p.Add(key("parity"), c.Parity, "differs from %s (%s) on the same serial port %s: the units of a bus share its baud rate and parity",
				yamlstrict.Key(firstPath, "parity"), first.Parity, c.Device)
		}
		return
	}
	if c.Transport != first.Transport {
		p.Add(key("transport"), c.Transport, "differs from %s (%s) on the same endpoint %s: one connection speaks one transport",
			yamlstrict.Key(firstPath, "transport"), first.Transport, c.Address)
	}
}
