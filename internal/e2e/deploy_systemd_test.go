//go:build integration

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdAnalyze has systemd check the unit as it would load it:
// `systemd-analyze verify` (syntax, directives, that every Exec command is
// executable) and `systemd-analyze security` (the exposure score), alone
// and with the RS-485 drop-in. The unit names /usr/local/bin/cellwarden;
// the copy checked here names the binary just built instead.
func TestSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)")
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot, "deploy/systemd/cellwarden.service"))
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile(filepath.Join(repoRoot, "deploy/systemd/rs485.conf"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command(analyze, append(args, filepath.Join(dir, "cellwarden.service"))...).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tests := []struct {
		name     string
		dropIn   bool
		security []string // lines systemd-analyze security must show
	}{
		{"unit", false, []string{"✓ PrivateDevices=", "✓ PrivateUsers=", "✓ CapabilityBoundingSet=~CAP_SYS_ADMIN"}},
		{"with rs485.conf", true, []string{"/dev/ttyUSB0:rw", "✗ SupplementaryGroups=", "✓ CapabilityBoundingSet=~CAP_SYS_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeUnit := func(name string, data []byte) {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			writeUnit("cellwarden.service", []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/cellwarden", build(t))))
			if tt.dropIn {
				writeUnit("cellwarden.service.d/rs485.conf", dropIn)
			}
			if out := run(t, dir, "verify"); out != "" {
				t.Errorf("systemd-analyze verify complains:\n%s", out)
			}
			// Exposure at most 2.0 of 10 ("OK"); the unit scores 1.4, 1.7
			// with the serial drop-in (systemd 252).
			out := run(t, dir, "security", "--offline=true", "--threshold=20")
			for _, want := range tt.security {
				if !strings.Contains(out, want) {
					t.Errorf("systemd-analyze security lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
