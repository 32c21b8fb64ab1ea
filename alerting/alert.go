// Package alerting is what leaves the process: alerts rendered for people
// and machines. This file holds the alert as it is published and its NDJSON
// form (shared/spec/interfaces.md §3).
package alerting

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"time"

	"github.com/cellwarden/cellwarden/detector"
	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Labels identify an alert. The field order is the order of the NDJSON
// output: alertname, severity, then the entity from UPS down to the most
// specific level the alert concerns.
type Labels struct {
	Alertname string `json:"alertname"`
	Severity  string `json:"severity"`
	UPS       string `json:"ups,omitempty"`
	String    string `json:"string,omitempty"`
	Module    string `json:"module,omitempty"`
	Cell      string `json:"cell,omitempty"`
}

// Annotations are free text for people.
type Annotations struct {
	Summary string `json:"summary"`
}

// Alert is one alert state change as published.
type Alert struct {
	Time        time.Time
	Status      string // "firing" or "resolved"
	Labels      Labels
	Annotations Annotations
	Value       float64 // NaN when there is none
}

// FromChange renders a detector change, resolving its entity in reg.
func FromChange(c detector.Change, reg *telemetry.Registry) Alert {
	ent := reg.Info(c.Entity).Entity
	return Alert{
		Time:   time.Unix(0, c.Time).UTC(),
		Status: c.Status.String(),
		Labels: Labels{
			Alertname: c.Name,
			Severity:  c.Severity.String(),
			UPS:       ent.UPS,
			String:    ent.String,
			Module:    ent.Module,
			Cell:      ent.Cell,
		},
		Annotations: Annotations{Summary: c.Summary},
		Value:       c.Value,
	}
}

type alertJSON struct {
	Time        string       `json:"time"`
	Status      string       `json:"status"`
	Labels      *Labels      `json:"labels"`
	Annotations *Annotations `json:"annotations"`
	Value       *float64     `json:"value,omitempty"`
}

// NDJSONWriter writes alerts as newline-delimited JSON, one object per
// line, in the order given. Output is byte-for-byte deterministic. It
// buffers: call Flush when done.
type NDJSONWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// NewNDJSONWriter writes to w.
func NewNDJSONWriter(w io.Writer) *NDJSONWriter {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &NDJSONWriter{bw: bw, enc: enc}
}

// Write appends one alert.
func (w *NDJSONWriter) Write(a *Alert) error {
	j := alertJSON{
		Time:        a.Time.UTC().Format(time.RFC3339Nano),
		Status:      a.Status,
		Labels:      &a.Labels,
		Annotations: &a.Annotations,
	}
	if !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) {
		v := a.Value
		j.Value = &v
	}
	return w.enc.Encode(&j)
}

// Flush writes buffered output.
func (w *NDJSONWriter) Flush() error { return w.bw.Flush() }
