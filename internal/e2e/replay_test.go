package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build compiles cellwarden once per test process. It first stats every
// source file of the module: go test caches results by the files a test
// touches, and the compiler runs in a child process it cannot see.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		filepath.WalkDir(filepath.Join("..", ".."), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
				os.Stat(path)
			}
			return nil
		})
		if binDir, buildErr = os.MkdirTemp("", "cellwarden-e2e"); buildErr != nil {
			return
		}
		binary = filepath.Join(binDir, "cellwarden")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/cellwarden/cellwarden/cmd/cellwarden").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building cellwarden: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

type result struct {
	stdout, stderr string
	code           int
}

func cellwarden(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(build(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

const replayDir = "../../testdata/replay"

func golden(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join(replayDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplayFileStdinAndGzipAgree(t *testing.T) {
	input := filepath.Join(replayDir, "bad_rows", "input.csv")
	raw, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "bad_rows/alerts.ndjson")

	fromFile := cellwarden(t, nil, "replay", "--input", input)
	if fromFile.code != 0 || fromFile.stdout != want {
		t.Fatalf("replay of file: exit %d, stdout:\n%s\nstderr:\n%s", fromFile.code, fromFile.stdout, fromFile.stderr)
	}
	// Every bad row is named with file and line on standard error.
	if !strings.Contains(fromFile.stderr, input+":") || !strings.Contains(fromFile.stderr, `unknown metric "cell_voltage"`) {
		t.Errorf("bad rows not reported with file and line:\n%s", fromFile.stderr)
	}

	fromStdin := cellwarden(t, raw, "replay", "--input", "-")
	if fromStdin.code != 0 || fromStdin.stdout != want {
		t.Errorf("replay of stdin: exit %d, alerts differ", fromStdin.code)
	}
	if !strings.Contains(fromStdin.stderr, "-:") {
		t.Errorf("stdin bad rows should be reported as -:LINE:\n%s", fromStdin.stderr)
	}

	gz := filepath.Join(t.TempDir(), "input.csv.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	os.WriteFile(gz, buf.Bytes(), 0o644)
	fromGz := cellwarden(t, nil, "replay", "--input", gz)
	if fromGz.code != 0 || fromGz.stdout != want {
		t.Errorf("replay of gzip: exit %d, alerts differ", fromGz.code)
	}

	out := filepath.Join(t.TempDir(), "alerts.ndjson")
	toFile := cellwarden(t, nil, "replay", "--input", input, "--alerts-out", out)
	got, _ := os.ReadFile(out)
	if toFile.code != 0 || toFile.stdout != "" || string(got) != want {
		t.Errorf("--alerts-out: exit %d, stdout %q, file differs: %v", toFile.code, toFile.stdout, string(got) != want)
	}
}

func TestReplayUnreadableInputFailsWithOneLine(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "missing.csv"), "no such file or directory"},
		{"not telemetry", "replay_test.go", "header must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cellwarden(t, nil, "replay", "--input", tt.input)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code == 0 || len(lines) != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q: want non-zero and one line containing %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	good := cellwarden(t, nil, "check-config", "--config", filepath.Join(replayDir, "lfp_overcharge", "config.yaml"))
	if good.code != 0 || !strings.Contains(good.stdout, "configuration is valid") {
		t.Errorf("valid config: exit %d, %s%s", good.code, good.stdout, good.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`detector:
  cell_over_temperature:
    warning_celsius: 70
    critical_celsius: 60
    for: soon
  telemetry_stale:
    multipel: 3
`), 0o644)
	r := cellwarden(t, nil, "check-config", "--config", bad)
	for _, want := range []string{
		"detector.cell_over_temperature.critical_celsius",
		"detector.cell_over_temperature.for",
		"detector.telemetry_stale.multipel",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("missing error for %s in:\n%s", want, r.stderr)
		}
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
}

func TestDemoFindsTheInjectedFaults(t *testing.T) {
	r := cellwarden(t, nil, "demo", "--replay")
	if r.code != 0 {
		t.Fatalf("demo exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		`firing +critical +ThermalRunawayRisk +ups-a/1/3/5`,
		`firing +warning +TelemetryStale +ups-b/1/4`,
		`2 of 2 injected faults detected, 0 false alerts`,
		`flagged [0-9hms]+ before it reached 80 °C; a static BMS alarm \(50/60 °C\) would have fired [0-9ms]+ before`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
