package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/sim"
)

// simScenario runs sim scenarios for one short scenario into a new
// directory and returns the exit status, stderr and the directory.
func simScenario(t *testing.T, physics ...string) (int, string, string) {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := append([]string{"sim", "scenarios", "--out", out, "--only", "runaway_lfp_fast"}, physics...)
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stderr.String(), filepath.Join(out, "runaway_lfp_fast")
}

func TestSimScenariosBadPhysics(t *testing.T) {
	tests := []struct {
		name    string
		physics []string
		want    string
	}{
		{"unknown key", []string{"--physics", "tau_sprd=0.3"}, `physics: unknown key "tau_sprd"`},
		{"bad value", []string{"--physics", "temp_quantum=1", "--physics", "neighbour_heat=2"}, `physics: neighbour_heat: "2" must be a number from 0 to 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr, dir := simScenario(t, tt.physics...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want 1), stderr %q, want it to contain %q", code, stderr, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("a bad --physics wrote %s", dir)
			}
		})
	}
}

func TestSimScenariosPhysicsInLabels(t *testing.T) {
	tests := []struct {
		name    string
		physics []string
		want    string
	}{
		{"standard", nil, ""},
		{"comma-separated", []string{"--physics", "temp_quantum=0.5,step_faults=true"}, "temp_quantum=0.5,step_faults=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr, dir := simScenario(t, tt.physics...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			l, err := sim.ReadLabels(filepath.Join(dir, sim.LabelsFile))
			if err != nil {
				t.Fatal(err)
			}
			if l.Physics != tt.want {
				t.Errorf("labels.json physics %q, want %q", l.Physics, tt.want)
			}
		})
	}
}
