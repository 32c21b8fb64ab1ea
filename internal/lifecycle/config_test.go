package lifecycle

import (
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/internal/yamlstrict"
)

func mustValidate(t testing.TB, c *Config) {
	t.Helper()
	doc, _ := yamlstrict.Decode(nil, &struct{}{})
	p := doc.Problems()
	c.Validate(p, "lifecycle")
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, inv, err := ParseConfig([]byte("inventory: inv.yaml\ndetector: {anything: 1}\n"), "/etc/cellwarden/cellwarden.yml")
	if err != nil {
		t.Fatal(err)
	}
	if inv != "/etc/cellwarden/inv.yaml" {
		t.Errorf("inventory = %q, want it resolved against the file", inv)
	}
	if cfg.HorizonDays() != 180 || cfg.SOHLimit != 0.80 || cfg.Location() != time.UTC || cfg.DesignLifeYears["LFP"] != 15 {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseConfigKeepsDefaultDesignLives(t *testing.T) {
	cfg, _, err := ParseConfig([]byte("lifecycle:\n  design_life_years: {LFP: 12}\n  time_zone: Europe/Berlin\n  horizon: 26w\n"), "c.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DesignLifeYears["LFP"] != 12 || cfg.DesignLifeYears["NMC"] != 10 || cfg.Location().String() != "Europe/Berlin" || cfg.HorizonDays() != 182 {
		t.Errorf("got %v, %s, %d days", cfg.DesignLifeYears, cfg.Location(), cfg.HorizonDays())
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", "lifecycle:\n  horizon_days: 90\n",
			"c.yml: lifecycle.horizon_days: unknown field (line 2)"},
		{"soh limit as a percentage", "lifecycle:\n  soh_limit: 80\n",
			`c.yml: lifecycle.soh_limit: "80" must be between 0 and 1 (a ratio: 0.80 is 80 %) (line 2)`},
		{"horizon not in days", "lifecycle:\n  horizon: 36h\n",
			`c.yml: lifecycle.horizon: "36h0m0s" must be a whole number of days (180d) (line 2)`},
		{"zero horizon", "lifecycle:\n  horizon: 0s\n",
			`c.yml: lifecycle.horizon: "0s" must be more than 0 (line 2)`},
		{"bad time zone", "lifecycle:\n  time_zone: Mars/Olympus\n",
			`c.yml: lifecycle.time_zone: "Mars/Olympus" must be an IANA time zone such as UTC or Europe/Berlin (line 2)`},
		{"unknown chemistry", "lifecycle:\n  design_life_years: {NiCd: 20}\n",
			`c.yml: lifecycle.design_life_years.NiCd: is not a chemistry: use NMC, NCA, LFP, LTO or unknown (line 2)`},
		{"design life out of range", "lifecycle:\n  design_life_years: {NMC: 0}\n",
			`c.yml: lifecycle.design_life_years.NMC: "0" must be more than 0 and at most 50 (years) (line 2)`},
		{"policy without selector", "lifecycle:\n  policies:\n    - {design_life_years: 8}\n",
			`c.yml: lifecycle.policies[0]: must select batteries by vendor, model or chemistry (line 3)`},
		{"policy without values", "lifecycle:\n  policies:\n    - {vendor: APC}\n",
			`c.yml: lifecycle.policies[0]: must set design_life_years, warranty_years, replace_after_years or soh_limit (line 3)`},
		{"policy with bad values", "lifecycle:\n  policies:\n    - {vendor: APC, warranty_years: 60, soh_limit: 1.2}\n",
			"c.yml: lifecycle.policies[0].soh_limit: \"1.2\" must be between 0 and 1 (a ratio: 0.80 is 80 %) (line 3)\n" +
				`c.yml: lifecycle.policies[0].warranty_years: "60" must be more than 0 and at most 50 (years) (line 3)`},
		{"bad chemistry in a policy", "lifecycle:\n  policies:\n    - {chemistry: NiCd, design_life_years: 8}\n",
			`c.yml: lifecycle.policies[0].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 3)`},
		{"placeholder not a date", "lifecycle:\n  placeholder_dates: [2010-13-01]\n",
			`c.yml: lifecycle.placeholder_dates[0]: "2010-13-01" is not a date (YYYY-MM-DD) (line 2)`},
		{"soh window", "lifecycle:\n  soh_window: 12h\n  soh_min_points: 2\n",
			"c.yml: lifecycle.soh_min_span: \"336h0m0s\" must be at least 6h and at most soh_window (12h0m0s) (line 1)\n" +
				"c.yml: lifecycle.soh_window: \"12h0m0s\" must be at least 1d (line 2)\n" +
				`c.yml: lifecycle.soh_min_points: "2" must be at least 3 (line 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseConfig([]byte(tt.doc), "c.yml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
