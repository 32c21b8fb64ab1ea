package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// A detector snapshot written after an alert change shows in
// cellwarden_snapshot_last_success_timestamp_seconds; one that cannot be
// written (a directory where its temporary file goes) is counted in
// cellwarden_snapshot_failures_total while the daemon goes on, and the
// next one is written once the way is clear.
func TestSnapshotOutcomesAreExported(t *testing.T) {
	bms := startBMS(t, 2, 1)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	path := testConfig{bmsAddr: bms.addr, modules: 2, units: []modbusUnit{{"rack-1", "ups-a", 1}}}.write(t, dir)
	d := start(t, path, state, Shard{})
	defer d.stop(t)

	waitFor(t, "the cells in /metrics", func() bool { return upss(d.scrape())["ups-a"] == 24 })
	bms.heat(t, d, 1, "ups-a", "2", "3", 25, 66)
	var written float64
	waitFor(t, "the snapshot of the alert change written", func() bool {
		v, ok := d.scrape().Value("cellwarden_snapshot_last_success_timestamp_seconds", nil)
		written = v
		return ok && v > 0
	})

	blocker := filepath.Join(state, "detector.snapshot.tmp")
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	bms.heat(t, d, 1, "ups-a", "2", "4", 25, 66)
	waitFor(t, "the failed snapshot counted", func() bool {
		v, ok := d.scrape().Value("cellwarden_snapshot_failures_total", nil)
		return ok && v >= 1
	})
	if v, _ := d.scrape().Value("cellwarden_snapshot_last_success_timestamp_seconds", nil); v != written {
		t.Errorf("a failed snapshot moved the last success from %v to %v", written, v)
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	bms.heat(t, d, 1, "ups-a", "2", "4", 66, 25)
	waitFor(t, "the next snapshot written", func() bool {
		v, ok := d.scrape().Value("cellwarden_snapshot_last_success_timestamp_seconds", nil)
		return ok && v > written
	})
}
