package main

import (
	"bytes"
	"strings"
	"testing"
)

// cli runs cellwarden with args and returns its exit status and output.
func cli(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAcknowledgeCLI(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := cli("acknowledge", "--state.dir", dir, "--ups", "dc1-ups-a", "--string", "1", "--state", "end_of_life",
		"--owner", "facilities-dc1", "--planned", "05/15/2099", "--expires", "2099-05-31", "--note", "CHG-1042")
	if code != 0 || !strings.Contains(out, "acknowledged dc1-ups-a/1 state end_of_life: owner facilities-dc1, replacement planned 2099-05-15, until 2099-05-31") {
		t.Fatalf("acknowledge: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cli("acknowledge", "--state.dir", dir, "--list")
	if code != 0 || !strings.Contains(out, "dc1-ups-a  1       end_of_life  facilities-dc1  2099-05-15  2099-05-31  yes     CHG-1042") {
		t.Errorf("--list: exit %d\n%s", code, out)
	}
	if code, out, errOut = cli("acknowledge", "--state.dir", dir, "--remove", "--ups", "dc1-ups-a", "--string", "1", "--state", "end_of_life"); code != 0 {
		t.Errorf("--remove: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ = cli("acknowledge", "--state.dir", dir, "--list"); strings.Contains(out, "dc1-ups-a") {
		t.Errorf("--list after --remove:\n%s", out)
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no UPS", []string{"--state", "soon"}, "--ups is required"},
		{"a state that cannot be acknowledged", []string{"--ups", "u", "--state", "ok"}, `--state "ok" must be end_of_life or soon`},
		{"dates that are not days", []string{"--ups", "u", "--state", "soon", "--owner", "o", "--planned", "2026-02-30", "--expires", "soon"},
			`--planned "2026-02-30" `},
		{"nothing but the state", []string{"--ups", "u", "--state", "soon"}, "acknowledgement: owner is required; planned date is required; expiry date is required"},
		{"already expired", []string{"--ups", "u", "--state", "soon", "--owner", "o", "--planned", "2020-01-01", "--expires", "2020-01-02"}, "expires 2020-01-02 is before the day it is recorded"},
		{"removing what is not there", []string{"--remove", "--ups", "u", "--state", "soon"}, "no acknowledgement of ups u state soon"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(append([]string{"acknowledge", "--state.dir", dir}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d (want 1), stderr %q, want %q", code, errOut, tt.want)
			}
		})
	}
}

func TestMaintenanceCLI(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := cli("maintenance", "start", "--state.dir", dir, "--ups", "dc1-ups-a", "--string", "2", "--by", "alice", "--reason", "PTW-7")
	if code != 0 || !strings.Contains(out, "maintenance of dc1-ups-a/2 by alice until ") {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cli("maintenance", "list", "--state.dir", dir)
	if code != 0 || !strings.Contains(out, "dc1-ups-a  2       alice") || !strings.Contains(out, "yes     PTW-7") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, out, errOut = cli("maintenance", "stop", "--state.dir", dir, "--ups", "dc1-ups-a", "--string", "2"); code != 0 || !strings.Contains(out, "stopped") {
		t.Errorf("stop: exit %d\n%s%s", code, out, errOut)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"stop what is not under maintenance", []string{"stop", "--state.dir", dir, "--ups", "dc1-ups-a", "--string", "2"}, "dc1-ups-a/2 has no maintenance window"},
		{"a window of no length", []string{"start", "--state.dir", dir, "--ups", "u", "--by", "a", "--for", "0s"}, "--for 0s must be positive"},
		{"a bad UPS", []string{"start", "--state.dir", dir, "--ups", "u v", "--by", "a"}, `ups "u v" must match`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(append([]string{"maintenance"}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d (want 1), stderr %q, want %q", code, errOut, tt.want)
			}
		})
	}
}
