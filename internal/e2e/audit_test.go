package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fleet is testdata/audit: strings past design life, past warranty, past
// the vendor's replace-by, due within 180 days, fine, with placeholder
// dates and with sources that disagree.
var fleet = filepath.Join("..", "..", "testdata", "audit")

func TestAuditFleet(t *testing.T) {
	r := cellwarden(t, nil, "audit", "--inventory", filepath.Join(fleet, "inventory.yaml"), "--assets", filepath.Join(fleet, "assets.csv"),
		"--as-of", "2026-03-04")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (past end of life)\nstderr: %s", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	// The table: most urgent first, every string on its line.
	wantRows := []string{
		"end_of_life  nirs-ups   1       2024-06-30   612 d ago",
		"end_of_life  dc1-ups-a  1       2025-01-20   408 d ago",
		"end_of_life  dc1-ups-a  2       2025-05-01   307 d ago",
		"end_of_life  dc1-ups-b  1       2026-01-31   32 d ago",
		"soon         dc1-ups-b  2       2026-06-01   in 89 d",
	}
	for i, want := range wantRows {
		if !strings.HasPrefix(lines[4+i], want) {
			t.Errorf("table row %d = %q, want it to start with %q", i+1, lines[4+i], want)
		}
	}
	for _, want := range []string{
		"4 past end of life, 1 due soon, 3 with data problems, 2 fine",
		"  vendor replace-by 2024-06-30 passed\n  past design life on 2024-09-15 (10 y from installed 2014-09-15)\n  warranty ended 2024-09-15\n",
		"  past design life on 2025-01-20 (10 y from installed 2015-01-20)\n",
		"  warranty ended 2025-05-01\n",
		"  vendor replace-by 2026-01-31 passed\n",
		"  warranty ends 2026-06-01\n",
		"dc3-ups-f/1: ok, end of life 2034-09-01 (in 3103 d)\n",
		"data problem (placeholder): installed 2001-09-25 (../../testdata/audit/inventory.yaml:64) is a placeholder",
		"data problem (unknown_age): age unknown",
		"data problem (conflict): installed 2020-02-10 (../../testdata/audit/inventory.yaml:71) and 2019-11-04 (../../testdata/audit/assets.csv:3) disagree; using the earliest, 2019-11-04",
		"data problem (placeholder): manufactured 1970-01-01 (../../testdata/audit/assets.csv:4) is a placeholder",
		"installed 2014-09-15 (../../testdata/audit/inventory.yaml:5, ../../testdata/audit/assets.csv:5)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestAuditExitStatus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fine := write("fine.yaml", "batteries:\n  - {ups: a, string: '1', chemistry: LFP, installed: 2024-09-01, warranty_until: 2034-09-01}\n")
	soon := write("soon.yaml", "batteries:\n  - {ups: a, string: '1', chemistry: NMC, installed: 2016-06-01, design_life_years: 12, warranty_until: 2026-06-01}\n")
	placeholder := write("placeholder.yaml", "batteries:\n  - {ups: a, string: '1', chemistry: LFP, installed: 1970-01-01}\n")
	acks := write("acks.json", `{"version": 1, "acknowledgements": [{"ups": "a", "string": "1", "state": "soon", "owner": "facilities",
  "planned": "2026-05-15", "expires": "2026-05-31", "created": "2026-03-01T00:00:00Z"}]}`)
	shortHorizon := write("cellwarden.yml", "inventory: soon.yaml\nlifecycle:\n  horizon: 30d\n")
	badInventory := write("bad.yaml", "batteries:\n  - {ups: a, chemistry: NiCd}\n")
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"all fine", []string{"--inventory", fine}, 0, "0 past end of life, 0 due soon, 0 with data problems, 1 fine", ""},
		{"due soon", []string{"--inventory", soon}, 1, "warranty ends 2026-06-01", ""},
		{"soon but acknowledged", []string{"--inventory", soon, "--acks", acks}, 0, "acknowledged (soon) by facilities, replacement planned 2026-05-15, until 2026-05-31", ""},
		{"the acknowledgement has expired", []string{"--inventory", soon, "--acks", acks, "--as-of", "2026-06-01"}, 2, "warranty ended 2026-06-01", ""},
		{"a shorter horizon from the configuration", []string{"--config", shortHorizon}, 0, "horizon 30 days", ""},
		{"data problems do not fail by default", []string{"--inventory", placeholder}, 0, "data problem (placeholder)", ""},
		{"data problems fail with --strict", []string{"--inventory", placeholder, "--strict"}, 1, "data problem (unknown_age)", ""},
		{"the audit cannot run", []string{"--inventory", badInventory}, 3, "", `bad.yaml: batteries[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 2)`},
		{"past end of life in CSV", []string{"--inventory", soon, "--format", "csv", "--as-of", "2026-06-02"}, 2, "end_of_life,a,1,2026-06-01,-1,", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"audit"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--as-of") {
				args = append(args, "--as-of", "2026-03-04")
			}
			r := cellwarden(t, nil, args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdoutHas) || !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout containing %q, stderr containing %q",
					r.code, tt.code, r.stdout, r.stderr, tt.stdoutHas, tt.stderrHas)
			}
		})
	}
}

func TestAuditHTMLReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "audit.html")
	r := cellwarden(t, nil, "audit", "--inventory", filepath.Join(fleet, "inventory.yaml"), "--as-of", "2026-03-04", "--format", "html", "--out", out)
	if r.code != 2 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg xmlns="http://www.w3.org/2000/svg"`, `class="today"`, "as of 2026-03-04", `<rect class="horizon"`,
		"<title>nirs-ups/1: end of life 2024-06-30 (612 d ago)</title>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
}
