package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/internal/golden"
)

// auditArgs audits the fleet of testdata/audit from every source, as of a
// fixed day; the tests run from the module root so that the sources named
// in the reports are testdata/audit/....
var auditArgs = []string{"audit", "--inventory", "testdata/audit/inventory.yaml", "--assets", "testdata/audit/assets.csv",
	"--telemetry", "testdata/audit/telemetry.csv", "--acks", "testdata/audit/acks.json", "--as-of", "2026-03-04"}

func TestAuditGolden(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	for format, file := range map[string]string{"table": "audit.txt", "csv": "audit.csv", "json": "audit.json", "markdown": "audit.md", "html": "audit.html"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append(auditArgs, "--format", format), nil, &stdout, &stderr)
			if code != 2 || stderr.Len() != 0 {
				t.Errorf("exit %d (want 2: strings past end of life), stderr %q", code, stderr.String())
			}
			golden.Compare(t, filepath.Join("testdata", "audit", file), stdout.Bytes())
		})
	}
}

func TestAuditOutFile(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	out := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	if code := run(append(auditArgs, "--format", "html", "--out", out), nil, &stdout, &stderr); code != 2 || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "audit", "audit.html"))
	if !bytes.Equal(got, want) {
		t.Error("--out wrote something else than standard output gets")
	}
	// One self-contained file: no external resources.
	for _, ref := range []string{"src=", "<link", "@import", "http://", "https://"} {
		if bytes.Contains(got, []byte(ref)) && !(ref == "http://" && bytes.Count(got, []byte(ref)) == 1 && bytes.Contains(got, []byte(`xmlns="http://www.w3.org/2000/svg"`))) {
			t.Errorf("the HTML report refers to an external resource (%s)", ref)
		}
	}
}

func TestAuditErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("ups,string\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no source", []string{"audit"}, "cellwarden audit: nothing to audit: give --inventory, --assets or a --config that names an inventory"},
		{"missing inventory", []string{"audit", "--inventory", filepath.Join(dir, "nope.yaml")}, "read inventory: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"bad asset list", []string{"audit", "--assets", bad}, bad + ":1: the first line must be exactly the header ups,string,vendor,model,serial,chemistry,manufactured,installed,design_life_years,warranty_until,replace_by"},
		{"bad as-of", []string{"audit", "--assets", bad, "--as-of", "tomorrow"}, `--as-of "tomorrow" is not a date`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, nil, &stdout, &stderr); code != auditFailed || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d (want %d), stderr %q, want it to contain %q", code, auditFailed, stderr.String(), tt.want)
			}
		})
	}
}
