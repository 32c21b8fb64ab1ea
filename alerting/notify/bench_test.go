package notify_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/cellwarden/cellwarden/alerting/notify"
	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// BenchmarkSampleToWebhook measures what a page costs: from the sample
// that makes a cell's CellOverTemperature critical fire (the detector's
// Observe) to the webhook request arriving at a receiver on loopback,
// through routing, grouping (group_wait 0), the synced outbox write and
// the HTTP POST. Each iteration heats a cell of a fresh UPS, so that its
// alert opens a new group as a first page does. It reports the p50 and
// p99 of that latency.
//
//	go test -run '^$' -bench SampleToWebhook -benchtime 2000x ./alerting/notify
func BenchmarkSampleToWebhook(b *testing.B) {
	arrived := make(chan time.Time, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- time.Now()
	}))
	defer srv.Close()
	cfg := config(b, fmt.Sprintf(`
outbox: {path: outbox.db}
receivers:
  - name: oncall
    match: {severity: [critical]}
    webhook: {url: %q, hmac_secret: s3cret}
`, srv.URL), b.TempDir(), nil)
	n, err := notify.New(cfg, notify.Options{})
	if err != nil {
		b.Fatal(err)
	}
	n.Start(b.Context())
	defer n.Shutdown(b.Context())

	reg := telemetry.NewRegistry()
	eng := detector.New(detector.DefaultConfig(), reg, nil)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	lat := make([]time.Duration, 0, b.N)
	var out []detector.Change
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id, err := reg.Intern(telemetry.Entity{UPS: fmt.Sprintf("ups-%d", i), String: "1", Module: "1", Cell: "1"})
		if err != nil {
			b.Fatal(err)
		}
		for k := int64(0); ; k++ {
			if k == 100 {
				b.Fatal("CellOverTemperature never fired")
			}
			start := time.Now()
			out = eng.Observe(telemetry.Sample{Time: base + k*int64(10*time.Second), Entity: id,
				Metric: telemetry.CellTemperatureCelsius, Value: 61}, out[:0])
			if !slices.ContainsFunc(out, func(c detector.Change) bool { return c.Severity == detector.SeverityCritical }) {
				continue
			}
			alerts := make([]alerting.Alert, len(out))
			for j, c := range out {
				alerts[j] = alerting.FromChange(c, reg)
			}
			if err := n.Notify(alerts...); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, (<-arrived).Sub(start))
			break
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}
