package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitStatus(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.csv")
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrHas  string
		stdoutHas  string
		stdoutNone bool
	}{
		{name: "help", args: []string{"--help"}, code: 0, stderrHas: "replay --input=INPUT"},
		{name: "help for a command", args: []string{"help", "replay"}, code: 0, stderrHas: "--alerts-out"},
		{name: "unknown flag", args: []string{"replay", "--inptu", "x"}, code: 2, stderrHas: "unknown long flag '--inptu'"},
		{name: "missing required flag", args: []string{"replay"}, code: 2, stderrHas: "required flag(s) '--input' not provided"},
		{name: "bad log level", args: []string{"--log.level=loud", "demo"}, code: 2, stderrHas: "log.level"},
		{name: "unreadable input", args: []string{"replay", "--input", missing}, code: 1, stderrHas: "missing.csv: no such file or directory", stdoutNone: true},
		{name: "bad config for replay", args: []string{"replay", "--input", "-", "--config", missing}, code: 1, stderrHas: "missing.csv"},
		{name: "stdin", args: []string{"replay", "--input", "-"}, code: 1, stderrHas: "-: empty file: no header"},
		{name: "demo", args: []string{"demo", "--replay"}, code: 0, stdoutHas: "CellOverTemperature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.stderrHas) || !strings.Contains(stdout.String(), tt.stdoutHas) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stderr containing %q, stdout containing %q",
					code, tt.code, stdout.String(), stderr.String(), tt.stderrHas, tt.stdoutHas)
			}
			if tt.stdoutNone && stdout.Len() != 0 {
				t.Errorf("stdout should be empty, got %q", stdout.String())
			}
		})
	}
}
