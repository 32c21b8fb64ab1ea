package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMQTTCollectorConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yml")
	doc := `
collectors:
  mqtt:
    - broker: tcp://127.0.0.1:1883
      client_id: cw-1
      share_group: cellwarden
      username: cw
      password_file: pw
      subscriptions:
        - topic: bms/{ups}/{string}/{module}
          time_field: time
          fields:
            - {path: "cells[*].v", metric: cell_voltage_volts, unit: mV}
        - topic: bms/{ups}/{string}/{module}/{cell}/{metric}
          format: value
`
	cfg, err := Parse([]byte(doc), path)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Collectors.MQTT[0]
	if c.Name != "127.0.0.1:1883" || c.QoS != 1 || c.CleanSession || c.PasswordFile != filepath.Join(dir, "pw") {
		t.Errorf("defaults or paths not applied: %+v", c)
	}
	if got, want := c.Filters(), []string{"$share/cellwarden/bms/+/+/+", "$share/cellwarden/bms/+/+/+/+/+"}; !reflect.DeepEqual(got, want) {
		t.Errorf("filters %q, want %q", got, want)
	}
}

func TestBadMQTTConfigs(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{
			name: "broker, session and limits",
			doc: `collectors:
  mqtt:
    - broker: http://u:hunter2@127.0.0.1:1883
      qos: 2
      keepalive: 0s
      share_group: a/b
      queue_size: 0
      subscriptions: []
    - broker: tcp://127.0.0.1
      subscriptions:
        - topic: x/{ups}
          format: value
          metric: ambient_temperature_celsius
`,
			want: []string{
				`c.yml: collectors.mqtt[0].broker: "http://u:xxxxx@127.0.0.1:1883" must be a URL with scheme tcp, mqtt, ssl, tls, mqtts, ws, wss (line 3)`,
				`c.yml: collectors.mqtt[0].qos: "2" must be 0 or 1 (line 4)`,
				`c.yml: collectors.mqtt[0].keepalive: "0s" must be 1s..18h (line 5)`,
				`c.yml: collectors.mqtt[0].share_group: "a/b" must not contain /, + or # (line 6)`,
				`c.yml: collectors.mqtt[0].queue_size: "0" must be 1..1048576 (line 7)`,
				`c.yml: collectors.mqtt[0].subscriptions: needs at least one subscription (line 8)`,
				`c.yml: collectors.mqtt[1].broker: "tcp://127.0.0.1" needs host:port (line 9)`,
			},
		},
		{
			name: "credentials and TLS; no secret in any message",
			doc: `collectors:
  mqtt:
    - broker: tcp://127.0.0.1:1883
      password: hunter2
      password_env: MQTT_PW
      username_file: missing-user
      tls:
        ca_file: missing-ca.pem
      subscriptions:
        - {topic: "a/{ups}", format: value, metric: ambient_temperature_celsius}
`,
			want: []string{
				`c.yml: collectors.mqtt[0].password: is set more than one way: use one of password, password_file and password_env (line 4)`,
				`c.yml: collectors.mqtt[0].username_file: "missing-user" cannot be read: no such file or directory (line 6)`,
				`c.yml: collectors.mqtt[0].tls: applies to ssl://, tls://, mqtts:// and wss:// brokers, not tcp:// (line 7)`,
				`c.yml: collectors.mqtt[0].tls.ca_file: "missing-ca.pem" cannot be read: no such file or directory (line 8)`,
			},
		},
		{
			name: "templates and mappings",
			doc: `collectors:
  mqtt:
    - broker: tcp://127.0.0.1:1883
      subscriptions:
        - topic: bms/{string}/{module}
          fields:
            - {path: "v[*]", metric: cell_voltage_volts}
        - topic: bms/{ups}/{string}/{module}
          time_unit: min
          time_field: ts
          fields:
            - {path: "v", metric: cell_voltage_volts, unit: mA}
            - {path: "t[*]", metric: module_temperature_celsius}
            - {path: "x[", metric: cell_volts}
        - topic: v/{ups}/{string}/{metric}
          format: value
          unit: mV
        - topic: w/{ups}/{rack}
          format: value
        - topic: bms/{ups}/{string}/{cell}
          format: binary
`,
			want: []string{
				`c.yml: collectors.mqtt[0].subscriptions[0].topic: "bms/{string}/{module}" binds {module} but not {ups} (set ups: for a fixed value) (line 5)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].time_unit: "min" must be s, ms, us or ns (line 9)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].fields[0].path: "v" has 0 [*] but cell_voltage_volts (a cell metric) under a topic naming a module needs 1 (line 12)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].fields[0].unit: "mA" is not a unit of cell_voltage_volts (have V, mV) (line 12)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].fields[1].path: "t[*]" has 1 [*] but module_temperature_celsius (a module metric) under a topic naming a module needs 0 (line 13)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].fields[2].metric: "cell_volts" must be a metric of the catalogue (line 14)`,
				`c.yml: collectors.mqtt[0].subscriptions[1].fields[2].path: "x[" has an unclosed or stray bracket (line 14)`,
				`c.yml: collectors.mqtt[0].subscriptions[2].unit: "mV" cannot apply when {metric} names the metric: publish base units (line 17)`,
				`c.yml: collectors.mqtt[0].subscriptions[3].topic: "w/{ups}/{rack}" has an unknown placeholder {rack} (have {ups}, {string}, {module}, {cell}, {metric}) (line 18)`,
				`c.yml: collectors.mqtt[0].subscriptions[4].topic: "bms/{ups}/{string}/{cell}" binds {cell} but not {module} (set module: for a fixed value) (line 20)`,
				`c.yml: collectors.mqtt[0].subscriptions[4].format: "binary" must be json or value (line 21)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "c.yml")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a password appears in the errors:\n%v", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}
