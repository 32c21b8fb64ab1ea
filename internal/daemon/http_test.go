package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// A daemon whose listen address is taken (another instance still running)
// ends with an error that names the problem, as Prometheus does, instead
// of running on without its HTTP side and never stopping.
func TestListenAddressInUseEndsRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	config := noCollectors(t, dir)
	off, none := false, ""
	o := Options{ConfigPath: config, StateDir: filepath.Join(dir, "state"), SnapshotInterval: time.Hour, ShutdownTimeout: 10 * time.Second,
		Web: &web.FlagConfig{WebListenAddresses: &[]string{taken.Addr().String()}, WebSystemdSocket: &off, WebConfigFile: &none},
		Log: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	// No deadline here: before the fix Run never returned, and the test
	// binary's own timeout reports that with every goroutine's stack.
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "HTTP server") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Run with its address taken returned %v, want the HTTP server's address-in-use error", err)
	}
	// The state was still written on the way out.
	if _, err := os.Stat(filepath.Join(dir, "state", snapshotFile)); err != nil {
		t.Errorf("no detector snapshot after the failed start: %v", err)
	}
}

// Go's profiles are served under /debug/pprof/ like Prometheus' and
// Alertmanager's (docs/operations.md: sizing a large fleet); the heap
// profile is a gzipped protobuf.
func TestProfilesAreServed(t *testing.T) {
	dir := t.TempDir()
	config := noCollectors(t, dir)
	d := start(t, config, filepath.Join(dir, "state"), Shard{})
	code, body := get(d.url + "/debug/pprof/heap")
	if code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Fatalf("GET /debug/pprof/heap: %d, %d bytes starting %q; want 200 and a gzipped profile", code, len(body), body[:min(len(body), 16)])
	}
	if code, body := get(d.url + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/: %d, want 200 and the index of profiles", code)
	}
}

// noCollectors writes a configuration without collectors into dir and
// returns its path.
func noCollectors(t *testing.T, dir string) string {
	t.Helper()
	config := filepath.Join(dir, "cellwarden.yml")
	if err := os.WriteFile(config, []byte("collectors: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}
