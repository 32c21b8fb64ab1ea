package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
)

func fmtAny(v any) string { return fmt.Sprintf("%v %+v %#v", v, v, v) }

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// labelsOf returns an alert's labels as a payload carries them.
func labelsOf(a alerting.Alert) map[string]string {
	m := map[string]string{"alertname": a.Labels.Alertname, "severity": a.Labels.Severity}
	for k, v := range map[string]string{"ups": a.Labels.UPS, "string": a.Labels.String, "module": a.Labels.Module, "cell": a.Labels.Cell} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
