package notify_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting/notify"
)

// childEnv makes the test binary act as a cellwarden that gets killed:
// "DIR URL fire" notifies the script below, "DIR URL resume" only
// delivers what the outbox holds.
const childEnv = "CELLWARDEN_NOTIFY_CHILD"

// script is what the killed process notifies, 300 ms apart. group_interval
// is 2 s, so at the kill some groups have changes not yet notified.
var script = []struct{ status, name, path string }{
	{"firing", "CellOverTemperature", "ups-a/1/1/1"},
	{"firing", "ThermalRunawayRisk", "ups-a/1/1/1"},
	{"firing", "CellOverTemperature", "ups-a/2/1/1"},
	{"resolved", "CellOverTemperature", "ups-a/1/1/1"},
	{"firing", "CoolingFailure", "ups-a/3"},
	{"resolved", "CellOverTemperature", "ups-a/2/1/1"},
}

const crashSecret = "crash-test-secret"

func crashConfig(url string) string {
	return fmt.Sprintf(`
outbox: {path: outbox.db}
receivers:
  - name: hook
    retry: {min_backoff: 20ms, max_backoff: 100ms}
    webhook:
      url: %q
      hmac_secret: %s
      group_interval: 2s
`, url, crashSecret)
}

// TestNotifierProcess is not a test: run by TestKill9WhileReceiverDown
// with childEnv set, it is the process that gets killed.
func TestNotifierProcess(t *testing.T) {
	args := strings.Fields(os.Getenv(childEnv))
	if len(args) != 3 {
		return
	}
	dir, url, phase := args[0], args[1], args[2]
	n, err := notify.New(config(t, crashConfig(url), dir, nil), notify.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	n.Start(t.Context())
	if phase == "fire" {
		for i, s := range script {
			a := mk(s.status, s.name, "critical", s.path, time.Now())
			if err := n.Notify(a); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Printf("notified %d %d\n", i, a.Time.UnixNano())
			time.Sleep(300 * time.Millisecond)
		}
	}
	fmt.Println("ready")
	select {}
}

// receiver is a webhook sink on loopback that can be down (503).
type receiver struct {
	mu       sync.Mutex
	up       bool
	attempts int
	got      []notify.WebhookMessage
	keys     []string
	problems []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if !rc.up {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get(notify.HeaderSignature) != notify.Sign([]byte(crashSecret), body) {
		rc.problems = append(rc.problems, "bad signature")
	}
	var m notify.WebhookMessage
	if err := json.Unmarshal(body, &m); err != nil {
		rc.problems = append(rc.problems, err.Error())
	}
	rc.got = append(rc.got, m)
	rc.keys = append(rc.keys, r.Header.Get(notify.HeaderIdempotencyKey))
}

// states returns the (fingerprint, status, startsAt) of every alert
// received: the key a receiver deduplicates by.
func (rc *receiver) states() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, m := range rc.got {
		for _, a := range m.Alerts {
			k := a.Fingerprint + " " + a.Status + " " + a.StartsAt.Format(time.RFC3339Nano)
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// runChild starts the child in phase and returns once it printed "ready",
// with what it printed before.
func runChild(t *testing.T, dir, url, phase string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifierProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir+" "+url+" "+phase)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go io.Copy(io.Discard, out)
			return cmd, lines
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatalf("child: %s", sc.Text())
		}
		lines = append(lines, sc.Text())
	}
	t.Fatalf("child %s ended before it was ready: %v", phase, lines)
	return nil, nil
}

// The receiver is down while alerts fire and resolve; the process is
// killed with SIGKILL, some of its groups not yet notified; the receiver
// comes back and the process restarts: every firing and resolved state
// arrives, identified by (fingerprint, status, startsAt), and nothing
// else.
func TestKill9WhileReceiverDown(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dir := t.TempDir()

	cmd, lines := runChild(t, dir, srv.URL+"/hook", "fire")
	var want []string
	firing := map[string]string{} // fingerprint → startsAt
	for i, s := range script {
		var j int
		var at int64
		if _, err := fmt.Sscanf(lines[i], "notified %d %d", &j, &at); err != nil || j != i {
			t.Fatalf("child said %q", lines[i])
		}
		a := mk(s.status, s.name, "critical", s.path, time.Unix(0, at))
		fp := notify.Fingerprint(labelsOf(a))
		start := time.Unix(0, at).UTC().Format(time.RFC3339Nano)
		if s.status == "firing" {
			firing[fp] = start
		} else {
			start = firing[fp]
		}
		want = append(want, fp+" "+s.status+" "+start)
	}
	slices.Sort(want)
	for deadline := time.Now().Add(10 * time.Second); ; {
		rc.mu.Lock()
		n := rc.attempts
		rc.mu.Unlock()
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts reached the receiver while it was down", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	rc.mu.Lock()
	rc.up = true
	rc.mu.Unlock()
	runChild(t, dir, srv.URL+"/hook", "resume")
	for deadline := time.Now().Add(20 * time.Second); !slices.Equal(rc.states(), want); {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := rc.states(); !slices.Equal(got, want) {
		t.Errorf("states received after the restart:\n got  %q\n want %q", got, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.problems) > 0 {
		t.Errorf("bad requests: %v", rc.problems)
	}
}
