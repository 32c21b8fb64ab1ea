//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/collector/mqtt/mosquittotest"
)

// pub publishes one message with mosquitto_pub at QoS 1 and reports
// whether the broker acknowledged it.
func pub(t *testing.T, m *mosquittotest.Broker, topic, payload string) bool {
	return m.Pub(t, "-q", "1", "-t", topic, "-m", payload).Run() == nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mqttRead runs cellwarden mqtt read with a configuration and collects its
// CSV rows and log.
type mqttRead struct {
	cmd    *exec.Cmd
	rows   *rows
	stderr *syncBuffer
	done   chan struct{}
}

func startMQTTRead(t *testing.T, config string) *mqttRead {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cellwarden.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &mqttRead{cmd: exec.Command(build(t), "mqtt", "read", "--config", path, "--health-interval", "0"),
		rows: &rows{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.rows.mu.Lock()
			r.rows.lines = append(r.rows.lines, sc.Text())
			r.rows.mu.Unlock()
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	waitFor(t, "cellwarden to subscribe", func() bool { return strings.Contains(r.stderr.String(), "\tsubscribed\t") })
	return r
}

// stop ends cellwarden with SIGTERM and waits for its last rows and log.
func (r *mqttRead) stop(t *testing.T) {
	if r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	<-r.done
	if err := r.cmd.Wait(); err != nil {
		t.Errorf("cellwarden mqtt read: %v\n%s", err, r.stderr.String())
	}
}

func (r *mqttRead) all() []string {
	r.rows.mu.Lock()
	defer r.rows.mu.Unlock()
	return append([]string(nil), r.rows.lines...)
}

// mqttConfig is a configuration for the reference JSON layout, a vendor
// gateway's JSON and plain values, against the broker on port.
func mqttConfig(port, extra string) string {
	return `collectors:
  mqtt:
    - name: e2e
      broker: tcp://127.0.0.1:` + port + `
      max_reconnect_interval: 1s
` + extra + `      subscriptions:
        - topic: bms/{ups}/{string}/{module}
          time_field: time
          fields:
            - {path: "cell_voltage_volts[*]", metric: cell_voltage_volts}
            - {path: "cell_temperature_celsius[*]", metric: cell_temperature_celsius}
            - {path: module_temperature_celsius, metric: module_temperature_celsius}
        - topic: bms/{ups}/{string}
          time_field: time
          fields:
            - {path: string_current_amperes, metric: string_current_amperes}
        - topic: gw/{ups}/{string}
          time_field: ts
          time_unit: ms
          fields:
            - {path: "modules[*].cells[*].mv", metric: cell_voltage_volts, unit: mV}
        - topic: val/{ups}/{string}/{metric}
          format: value
`
}

// Messages published with mosquitto_pub in the documented formats come out
// of the real binary with the right identity, values and times; a bad
// payload among them is counted and logged with its topic and changes
// nothing else; the broker's dropped-message counter is in the health.
func TestMQTTMosquittoPubFormatsReachTheOutput(t *testing.T) {
	m := mosquittotest.Start(t, "")
	r := startMQTTRead(t, mqttConfig(m.Port, "      client_id: e2e-formats\n"))
	for _, msg := range [][2]string{
		{"bms/ups-a/1/3", `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[3.301,null,3.303],"cell_temperature_celsius":[25.1,25.2,25.3],"module_temperature_celsius":24.5}`},
		{"bms/ups-a/1", `{"time":"2026-03-01T04:05:00Z","string_current_amperes":-12.5}`},
		{"gw/ups-b/2", `{"ts":1772337901500,"modules":[{"cells":[{"mv":3290},{"mv":3291}]},{"cells":[{"mv":3300}]}]}`},
		{"bms/ups-a/1/4", `{"time":"2026-03-01T04:05:00Z","cell_voltage_volts":[3.3`},
		{"val/ups-c/7/string_soc_ratio", "0.87"},
	} {
		if !pub(t, m, msg[0], msg[1]) {
			t.Fatalf("mosquitto_pub %s failed", msg[0])
		}
	}
	waitFor(t, "the plain value published last", func() bool { return r.rows.count(",ups-c,7,,,string_soc_ratio,0.87") == 1 })
	r.stop(t)
	got := r.all()
	want := []string{
		"time,ups,string,module,cell,metric,value",
		"2026-03-01T04:05:00Z,ups-a,1,3,1,cell_voltage_volts,3.301",
		"2026-03-01T04:05:00Z,ups-a,1,3,2,cell_voltage_volts,",
		"2026-03-01T04:05:00Z,ups-a,1,3,3,cell_voltage_volts,3.303",
		"2026-03-01T04:05:00Z,ups-a,1,3,1,cell_temperature_celsius,25.1",
		"2026-03-01T04:05:00Z,ups-a,1,3,2,cell_temperature_celsius,25.2",
		"2026-03-01T04:05:00Z,ups-a,1,3,3,cell_temperature_celsius,25.3",
		"2026-03-01T04:05:00Z,ups-a,1,3,,module_temperature_celsius,24.5",
		"2026-03-01T04:05:00Z,ups-a,1,,,string_current_amperes,-12.5",
		"2026-03-01T04:05:01.5Z,ups-b,2,1,1,cell_voltage_volts,3.29",
		"2026-03-01T04:05:01.5Z,ups-b,2,1,2,cell_voltage_volts,3.291",
		"2026-03-01T04:05:01.5Z,ups-b,2,2,1,cell_voltage_volts,3.3",
	}
	if len(got) != len(want)+1 || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s\n(then the plain value at its receive time)", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	log := r.stderr.String()
	for _, s := range []string{`"reason": "invalid_json"`, `"topic": "bms/ups-a/1/4"`, `"decode_errors": {"invalid_json":1}`,
		`"$SYS/broker/publish/messages/dropped":0`, `"messages": 5`} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %s:\n%s", s, log)
		}
	}
}

// mosquitto is killed (SIGKILL) and restarted mid-stream: cellwarden
// reconnects by itself, its persistent session brings the subscription
// back, and nothing mosquitto acknowledged at QoS 1 after the restart is
// lost.
func TestMQTTSurvivesMosquittoKillAndRestart(t *testing.T) {
	m := mosquittotest.Start(t, "")
	r := startMQTTRead(t, mqttConfig(m.Port, "      client_id: e2e-restart\n      qos: 1\n"))
	seq := 0
	publish := func(n int) (acked []int) {
		for range n {
			seq++
			if pub(t, m, "val/ups-a/1/string_current_amperes", strconv.Itoa(seq)) {
				acked = append(acked, seq)
			}
		}
		return acked
	}
	row := func(i int) string { return ",ups-a,1,,,string_current_amperes," + strconv.Itoa(i) }
	before := publish(20)
	waitFor(t, "the messages before the kill", func() bool { return r.rows.count(row(before[len(before)-1])) == 1 })
	// Let mosquitto save the session (autosave every second) before the
	// crash, as a broker in service would have long since.
	mark := time.Now()
	waitFor(t, "mosquitto to save its state", func() bool { return m.SavedAfter(mark) })
	m.Kill()
	if down := publish(3); len(down) != 0 {
		t.Fatalf("mosquitto_pub succeeded with the broker down: %v", down)
	}
	m.Restart(t)
	after := publish(50)
	if len(after) != 50 {
		t.Fatalf("only %d of 50 publishes after the restart were acknowledged", len(after))
	}
	waitFor(t, "every message published after the restart", func() bool {
		for _, i := range after {
			if r.rows.count(row(i)) == 0 {
				return false
			}
		}
		return true
	})
	r.stop(t)
	log := r.stderr.String()
	if !strings.Contains(log, "connection to the MQTT broker lost") || strings.Count(log, "\tsubscribed\t") < 2 {
		t.Errorf("no lost connection and second subscription in the log:\n%s", log)
	}
	if !strings.Contains(log, `"connection_losses": 1`) {
		t.Errorf("health does not show the lost connection:\n%s", log)
	}
}

// Two instances in one share group split the stream: each processes some,
// together all, and no message is processed twice.
func TestMQTTShareGroupSplitsTheStream(t *testing.T) {
	m := mosquittotest.Start(t, "")
	var rs []*mqttRead
	for _, id := range []string{"e2e-share-1", "e2e-share-2"} {
		rs = append(rs, startMQTTRead(t, mqttConfig(m.Port, "      client_id: "+id+"\n      share_group: cw\n")))
	}
	// One mosquitto_pub per message: in line mode (-l) at QoS 1,
	// mosquitto_pub 2.0.11 exits at the end of its input with messages
	// unsent.
	const n = 200
	for i := 1; i <= n; i++ {
		if !pub(t, m, "val/ups-a/1/string_current_amperes", strconv.Itoa(i)) {
			t.Fatalf("mosquitto_pub of message %d failed", i)
		}
	}
	total := func() int {
		return rs[0].rows.count(",string_current_amperes,") + rs[1].rows.count(",string_current_amperes,")
	}
	waitFor(t, "every message", func() bool { return total() >= n })
	for _, r := range rs {
		r.stop(t)
	}
	seen := map[string]int{}
	for k, r := range rs {
		got := 0
		for _, l := range r.all()[1:] {
			_, v, _ := strings.Cut(l, ",string_current_amperes,")
			seen[v]++
			got++
		}
		if got == 0 {
			t.Errorf("instance %d processed nothing", k+1)
		}
		t.Logf("instance %d processed %d of %d", k+1, got, n)
	}
	for i := 1; i <= n; i++ {
		if k := seen[strconv.Itoa(i)]; k != 1 {
			t.Errorf("message %d processed %d times", i, k)
		}
	}
}
