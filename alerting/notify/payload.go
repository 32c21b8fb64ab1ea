package notify

import (
	"encoding/json"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/cellwarden/cellwarden/alerting"
	"github.com/prometheus/common/model"
)

// Alert states in payloads.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// alertRecord is one alert as a group holds it and as the outbox stores
// it.
type alertRecord struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      string            `json:"status"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitzero"`
	Fingerprint string            `json:"fingerprint"`
	// Notified is the status last included in a notification of the
	// group ("" when none was).
	Notified string `json:"notified,omitempty"`
}

// record is one notification as the outbox stores it: what to send, not
// how. The payload is encoded at send time, so that an Alertmanager push
// that waited in the outbox carries an endsAt counted from when it is
// sent.
type record struct {
	Receiver    string            `json:"receiver"`
	GroupKey    string            `json:"groupKey"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []alertRecord     `json:"alerts"`
	// Created is when the notification was queued.
	Created time.Time `json:"created"`
}

// labelMap returns the alert's labels without the empty ones.
func labelMap(l alerting.Labels) map[string]string {
	m := make(map[string]string, 6)
	for k, v := range map[string]string{"alertname": l.Alertname, "severity": l.Severity,
		"ups": l.UPS, "string": l.String, "module": l.Module, "cell": l.Cell} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// annotationMap returns the alert's annotations: its summary and, when
// there is one, its value.
func annotationMap(a *alerting.Alert) map[string]string {
	m := map[string]string{"summary": a.Annotations.Summary}
	if !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) {
		m["value"] = strconv.FormatFloat(a.Value, 'g', -1, 64)
	}
	return m
}

// Fingerprint identifies an alert by its labels. It is the fingerprint
// Alertmanager computes for the same label set (16 hex digits).
func Fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// groupKeyOf renders a group's identity as Alertmanager does:
// receiver:{label="value", ...}.
func groupKeyOf(receiver string, labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return receiver + ":" + ls.String()
}

// WebhookMessage is the body of a webhook notification: Alertmanager's
// webhook payload, version 4, so that receivers written for Alertmanager
// work unchanged.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage. EndsAt is the zero time
// ("0001-01-01T00:00:00Z") while the alert fires. Fingerprint, Status and
// StartsAt together identify one state of one alert: the key a receiver
// deduplicates by.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookBody encodes r as a webhook payload.
func webhookBody(r *record, externalURL string) ([]byte, error) {
	msg := WebhookMessage{Version: "4", GroupKey: r.GroupKey, Status: statusResolved, Receiver: r.Receiver,
		GroupLabels: r.GroupLabels, ExternalURL: externalURL, Alerts: make([]WebhookAlert, len(r.Alerts))}
	if msg.GroupLabels == nil {
		msg.GroupLabels = map[string]string{}
	}
	for i, a := range r.Alerts {
		if a.Status == statusFiring {
			msg.Status = statusFiring
		}
		msg.Alerts[i] = WebhookAlert{Status: a.Status, Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: externalURL, Fingerprint: a.Fingerprint}
	}
	msg.CommonLabels = common(r.Alerts, func(a *alertRecord) map[string]string { return a.Labels })
	msg.CommonAnnotations = common(r.Alerts, func(a *alertRecord) map[string]string { return a.Annotations })
	return json.Marshal(&msg)
}

// common returns the pairs every alert has.
func common(as []alertRecord, of func(*alertRecord) map[string]string) map[string]string {
	if len(as) == 0 {
		return map[string]string{}
	}
	c := maps.Clone(of(&as[0]))
	for i := 1; i < len(as); i++ {
		m := of(&as[i])
		maps.DeleteFunc(c, func(k, v string) bool { return m[k] != v })
	}
	return c
}

// postableAlert is an alert of Alertmanager's POST /api/v2/alerts.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerBody encodes r for /api/v2/alerts, sent at now: firing
// alerts end at now + validFor unless pushed again, resolved ones at the
// time they resolved.
func alertmanagerBody(r *record, now time.Time, validFor time.Duration, externalURL string) ([]byte, error) {
	as := make([]postableAlert, len(r.Alerts))
	for i, a := range r.Alerts {
		end := a.EndsAt
		if a.Status == statusFiring {
			end = now.Add(validFor)
		}
		as[i] = postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: end, GeneratorURL: externalURL}
	}
	return json.Marshal(as)
}
