// Package mosquittotest runs Debian's mosquitto broker for tests and
// benchmarks: on a free loopback port, with its persistence in a
// directory of the test, stopped by PID when the test ends. A missing
// mosquitto fails the test (it never skips): .ci/run installs it.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"
)

// Broker is one mosquitto process and its configuration.
type Broker struct {
	Port string // loopback port
	Dir  string // configuration, persistence and log
	conf string
	cmd  *exec.Cmd
}

// bin finds a Debian tool: on PATH, or in /usr/sbin, which is not on every
// user's PATH.
func bin(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p
	}
	t.Fatalf("%s is not installed (Debian: apt-get install mosquitto mosquitto-clients; .ci/run installs them)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Start writes a configuration (persistence saved every second, $SYS
// every second, a queue of 100000 messages per client, plus extra lines)
// and starts the broker for the rest of the test.
func Start(t testing.TB, extra string) *Broker {
	t.Helper()
	bin(t, "mosquitto_pub")
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	b := &Broker{Port: port, Dir: t.TempDir()}
	b.conf = filepath.Join(b.Dir, "mosquitto.conf")
	// Started as root, mosquitto would drop to its own user, which cannot
	// write to the test's directory: run it as whoever runs the test.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"autosave_interval 1\nsys_interval 1\nmax_queued_messages 100000\nuser %s\n%s", port, b.Dir, me.Username, extra)
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Restart(t)
	t.Cleanup(b.Kill)
	return b
}

// Restart starts the broker again (after Kill) with the same
// configuration and persistence, and waits until it listens.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.cmd = exec.Command(bin(t, "mosquitto"), "-c", b.conf)
	logf, err := os.OpenFile(filepath.Join(b.Dir, "mosquitto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+b.Port); err == nil {
			c.Close()
			return
		}
		if i == 300 {
			log, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
			t.Fatalf("mosquitto never listened on %s:\n%s", b.Port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the broker with SIGKILL, as a crash would.
func (b *Broker) Kill() {
	if b.cmd != nil && b.cmd.ProcessState == nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
}

// SavedAfter reports whether the broker wrote its persistence file after t.
func (b *Broker) SavedAfter(t time.Time) bool {
	st, err := os.Stat(filepath.Join(b.Dir, "mosquitto.db"))
	return err == nil && st.ModTime().After(t)
}

// Pub returns a mosquitto_pub command for the broker with args appended.
func (b *Broker) Pub(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command(bin(t, "mosquitto_pub"), append([]string{"-h", "127.0.0.1", "-p", b.Port}, args...)...)
}

// FreeAddr returns a loopback host:port nothing listens on at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
