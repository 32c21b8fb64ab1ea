package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/golden"
)

// goldenCases lists the directories of testdata/replay. Each holds
// input.csv (or input.csv.gz), optionally config.yaml and inventory.yaml,
// and the expected alerts.ndjson and summary.txt (standard error without
// the throughput line).
func goldenCases(t *testing.T) []string {
	dirs, err := filepath.Glob("../../testdata/replay/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	return dirs
}

func replayArgs(dir string) []string {
	args := []string{"replay"}
	for _, in := range []string{"input.csv", "input.csv.gz"} {
		if _, err := os.Stat(filepath.Join(dir, in)); err == nil {
			args = append(args, "--input", in)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); err == nil {
		args = append(args, "--config", "config.yaml")
	} else if _, err := os.Stat(filepath.Join(dir, "inventory.yaml")); err == nil {
		args = append(args, "--inventory", "inventory.yaml")
	}
	return args
}

// stableSummary drops the throughput line, the only one that varies.
func stableSummary(stderr string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(l, "  throughput: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

func TestReplayGolden(t *testing.T) {
	for _, dir := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(abs)
			var stdout, stderr bytes.Buffer
			if code := run(replayArgs("."), nil, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			checkNDJSON(t, stdout.Bytes())
			golden.Compare(t, "alerts.ndjson", stdout.Bytes())
			golden.Compare(t, "summary.txt", []byte(stableSummary(stderr.String())))

			// Deterministic: a second run gives byte-identical alerts.
			var again bytes.Buffer
			run(replayArgs("."), nil, &again, &bytes.Buffer{})
			if !bytes.Equal(again.Bytes(), stdout.Bytes()) {
				t.Error("second replay differs from the first")
			}
		})
	}
}

// checkNDJSON asserts every line is a JSON object of interfaces.md §3.
func checkNDJSON(t *testing.T, out []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		var a struct {
			Time        string            `json:"time"`
			Status      string            `json:"status"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %d is not JSON: %v", n, err)
		}
		if a.Time == "" || (a.Status != "firing" && a.Status != "resolved") || a.Labels["alertname"] == "" ||
			a.Labels["ups"] == "" || a.Annotations["summary"] == "" {
			t.Errorf("line %d lacks required fields: %s", n, sc.Text())
		}
		switch a.Labels["severity"] {
		case "info", "warning", "critical":
		default:
			t.Errorf("line %d: severity %q", n, a.Labels["severity"])
		}
	}
}
