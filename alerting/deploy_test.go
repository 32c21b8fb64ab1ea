package alerting_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cellwarden/cellwarden/alerting/metrics"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

var metricName = regexp.MustCompile(`\bcellwarden_[a-zA-Z0-9_]+`)

// exported returns every metric name cellwarden exposes, with the
// _bucket, _sum and _count series of its histograms.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	descs := make(chan *prometheus.Desc, 1000)
	metrics.NewCollector(metrics.NewStore(telemetry.NewRegistry(), metrics.StoreOptions{})).Describe(descs)
	notify.NewMetrics(nil).Describe(descs)
	close(descs)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		names[fq.FindStringSubmatch(d.String())[1]] = true
	}
	reg := prometheus.NewRegistry()
	metrics.NewSelf(reg, map[string][]string{"modbus": {"timeout"}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	names["cellwarden_build_info"] = true
	for _, h := range []string{"cellwarden_notification_latency_seconds"} {
		names[h+"_bucket"], names[h+"_sum"], names[h+"_count"] = true, true, true
	}
	return names
}

// exprs collects the strings under the given keys anywhere in a decoded
// JSON or YAML document.
func exprs(v any, keys ...string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && slices.Contains(keys, k) {
				out = append(out, s)
			}
			out = append(out, exprs(e, keys...)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, exprs(e, keys...)...)
		}
	}
	return out
}

// checkNames fails for every cellwarden_ metric the queries use that
// cellwarden does not export.
func checkNames(t *testing.T, what string, queries []string, names map[string]bool) {
	t.Helper()
	used := map[string]bool{}
	for _, q := range queries {
		for _, n := range metricName.FindAllString(q, -1) {
			used[n] = true
			if !names[n] {
				t.Errorf("%s uses %s, which cellwarden does not export (in %q)", what, n, q)
			}
		}
	}
	if len(used) < 5 {
		t.Errorf("%s uses only %d cellwarden metrics: the queries were not found", what, len(used))
	}
}

// The Grafana dashboard queries only metrics that exist.
func TestDashboardMetricNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "cellwarden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	qs := exprs(dash, "expr", "definition")
	checkNames(t, "the dashboard", qs, exported(t))
	// What an operator opens it for.
	all := strings.Join(qs, "\n")
	for _, want := range []string{"cellwarden_cell_temperature_celsius", "cellwarden_cell_temperature_residual_celsius",
		"cellwarden_alert_start_timestamp_seconds", "cellwarden_battery_installed_timestamp_seconds", "cellwarden_outbox_entries"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// The Prometheus rules for the daemon query only metrics that exist.
func TestRuleMetricNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "cellwarden.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules any
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	checkNames(t, "the rules", exprs(rules, "expr"), exported(t))
}
