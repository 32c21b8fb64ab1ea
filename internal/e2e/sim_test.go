package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The simulator writes the same bytes for the same seed, and its files
// replay and score end to end.
func TestSimReplayScoreLoop(t *testing.T) {
	dir := t.TempDir()
	only := []string{"--only", "runaway_lfp_fast", "--only", "lost_telemetry"}
	gen := func(out, seed string) {
		r := cellwarden(t, nil, append([]string{"sim", "scenarios", "--out", out, "--seed", seed}, only...)...)
		if r.code != 0 {
			t.Fatalf("sim scenarios: exit %d: %s", r.code, r.stderr)
		}
	}
	gen(filepath.Join(dir, "a"), "4")
	gen(filepath.Join(dir, "b"), "4")
	gen(filepath.Join(dir, "c"), "5")
	read := func(sub, scenario, file string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, sub, scenario, file))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, f := range []string{"telemetry.csv.gz", "inventory.yaml", "labels.json"} {
		if !bytes.Equal(read("a", "lost_telemetry", f), read("b", "lost_telemetry", f)) {
			t.Errorf("%s differs between two runs with seed 4", f)
		}
	}
	if bytes.Equal(read("a", "lost_telemetry", "telemetry.csv.gz"), read("c", "lost_telemetry", "telemetry.csv.gz")) {
		t.Error("seeds 4 and 5 gave the same telemetry")
	}

	var args []string
	for _, sc := range []string{"runaway_lfp_fast", "lost_telemetry"} {
		d := filepath.Join(dir, "a", sc)
		for _, mode := range []struct{ out, flag string }{{"alerts.ndjson", ""}, {"baseline.ndjson", "--baseline"}} {
			rargs := []string{"replay", "--input", filepath.Join(d, "telemetry.csv.gz"), "--inventory", filepath.Join(d, "inventory.yaml"),
				"--alerts-out", filepath.Join(d, mode.out)}
			if mode.flag != "" {
				rargs = append(rargs, mode.flag)
			}
			r := cellwarden(t, nil, rargs...)
			if r.code != 0 || !strings.Contains(r.stderr, "rows skipped: 0") {
				t.Fatalf("replay %s: exit %d\n%s", sc, r.code, r.stderr)
			}
		}
		args = append(args, "--labels", filepath.Join(d, "labels.json"), "--alerts", filepath.Join(d, "alerts.ndjson"),
			"--baseline-alerts", filepath.Join(d, "baseline.ndjson"))
	}
	md := filepath.Join(dir, "quality.md")
	r := cellwarden(t, nil, append([]string{"score", "--markdown", md}, args...)...)
	if r.code != 0 {
		t.Fatalf("score: exit %d: %s", r.code, r.stderr)
	}
	// Our rules see the lost telemetry; the static baseline cannot.
	for _, want := range []string{"thermal_runaway  1", "lost_telemetry   3       100.0% (3/3)", "static BMS baseline"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("score output lacks %q:\n%s", want, r.stdout)
		}
	}
	report, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Detection quality", "| lost_telemetry | recall | 100.0% (3/3) | 0.0% (0/3) |"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("markdown report lacks %q", want)
		}
	}
}
