package modbus

import (
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

// validateDoc decodes the collector entries under collectors.modbus and
// returns their problems, one line each.
func validateDoc(t *testing.T, doc string) []string {
	t.Helper()
	var f struct {
		Collectors struct {
			Modbus []CollectorConfig `yaml:"modbus"`
		} `yaml:"collectors"`
	}
	d, errs := yamlstrict.Decode([]byte(doc), &f)
	if errs != nil {
		t.Fatal(errs)
	}
	p := d.Problems()
	ValidateCollectors(f.Collectors.Modbus, p, "collectors.modbus", t.TempDir())
	if err := p.Err(); err != nil {
		return strings.Split(err.Error(), "\n")
	}
	return nil
}

// Units that share a link must agree on what it is: a serial port has one
// baud rate and parity, a TCP endpoint one transport. Their timeouts may
// differ (each request keeps its unit's). The messages name both entries.
func TestSharedLinkConflicts(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"serial port, two speeds and parities", `modbus:
  - {device: /dev/ttyUSB0, baud: 9600, parity: N, unit: 1, profile: soltaro_single_rack_vc, ups: a, string: "1"}
  - {device: /dev/ttyUSB0, baud: 19200, parity: E, unit: 2, profile: soltaro_single_rack_vc, ups: a, string: "2"}
  - {device: /dev/ttyUSB1, baud: 19200, unit: 1, profile: soltaro_single_rack_vc, ups: b, string: "1"}
`, []string{
			`collectors.modbus[1].baud: "19200" differs from collectors.modbus[0].baud (9600) on the same serial port /dev/ttyUSB0: the units of a bus share its baud rate and parity (line 4)`,
			`collectors.modbus[1].parity: "E" differs from collectors.modbus[0].parity (N) on the same serial port /dev/ttyUSB0: the units of a bus share its baud rate and parity (line 4)`,
		}},
		{"one endpoint, two transports", `modbus:
  - {address: "localhost:502", unit: 1, profile: soltaro_single_rack_vc, ups: a, string: "1"}
  - {address: "127.0.0.1:502", transport: rtu_over_tcp, unit: 2, profile: soltaro_single_rack_vc, ups: a, string: "2"}
`, []string{
			`collectors.modbus[1].transport: "rtu_over_tcp" differs from collectors.modbus[0].transport (tcp) on the same endpoint 127.0.0.1:502: one connection speaks one transport (line 4)`,
		}},
		{"timeouts may differ", `modbus:
  - {device: /dev/ttyUSB0, unit: 1, timeout: 500ms, profile: soltaro_single_rack_vc, ups: a, string: "1"}
  - {device: /dev/ttyUSB0, unit: 2, timeout: 3s, profile: soltaro_single_rack_vc, ups: a, string: "2"}
  - {address: "10.0.0.5:502", unit: 1, timeout: 1s, profile: soltaro_single_rack_vc, ups: b, string: "1"}
  - {address: "10.0.0.5:502", unit: 2, timeout: 2s, profile: sunspec, ups: b}
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validateDoc(t, "collectors:\n  "+strings.ReplaceAll(strings.TrimSuffix(tt.doc, "\n"), "\n", "\n  ")+"\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// localhost and 127.0.0.1 (and two spellings of one IPv6 address) are one
// endpoint, so the fleet opens one connection to a one-client gateway.
func TestEndpointNormalisesHosts(t *testing.T) {
	tests := []struct{ a, b CollectorConfig }{
		{CollectorConfig{Address: "localhost:502"}, CollectorConfig{Address: "127.0.0.1:502"}},
		{CollectorConfig{Address: "[::1]:502"}, CollectorConfig{Address: "[0:0::1]:502"}},
		{CollectorConfig{Device: "/dev/ttyUSB0", Baud: 9600}, CollectorConfig{Device: "/dev/ttyUSB0", Baud: 9600, Unit: 3}},
	}
	for _, tt := range tests {
		if ea, eb := tt.a.Endpoint(), tt.b.Endpoint(); ea != eb {
			t.Errorf("%+v → %q and %+v → %q: want one endpoint", tt.a, ea, tt.b, eb)
		}
	}
	if a, b := (&CollectorConfig{Address: "10.0.0.5:502"}).Endpoint(), (&CollectorConfig{Address: "10.0.0.5:503"}).Endpoint(); a == b {
		t.Errorf("two ports are one endpoint %q", a)
	}
}
