package score

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Alert statuses of the NDJSON stream.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one line of an alerts NDJSON file.
type Alert struct {
	// Time is the event time of the state change.
	Time time.Time
	// Status is StatusFiring or StatusResolved.
	Status string
	// Labels holds alertname, severity and the entity labels ups, string,
	// module and cell (down to the most specific entity).
	Labels map[string]string
	// Value is the optional value of the line; nil when absent or null.
	Value *float64
}

// alertLine is the wire form of an Alert; annotations are read and dropped.
type alertLine struct {
	Time        *time.Time        `json:"time"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       *float64          `json:"value"`
}

// ReadAlerts reads an alerts NDJSON file: one JSON object per line, blank
// lines skipped. A line that is not a JSON object, lacks time or
// labels.alertname, or has a status other than firing or resolved is an
// error naming file:line.
func ReadAlerts(path string) ([]Alert, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAlerts(f, path)
}

func readAlerts(r io.Reader, name string) ([]Alert, error) {
	br := bufio.NewReader(r)
	var alerts []Alert
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			a, perr := parseAlert(line)
			if perr != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, perr)
			}
			alerts = append(alerts, a)
		}
		if errors.Is(err, io.EOF) {
			return alerts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
}

func parseAlert(line []byte) (Alert, error) {
	var l alertLine
	if err := json.Unmarshal(line, &l); err != nil {
		return Alert{}, err
	}
	switch {
	case l.Time == nil:
		return Alert{}, errors.New("missing time")
	case l.Status != StatusFiring && l.Status != StatusResolved:
		return Alert{}, fmt.Errorf("status %q is neither %q nor %q", l.Status, StatusFiring, StatusResolved)
	case l.Labels["alertname"] == "":
		return Alert{}, errors.New("missing labels.alertname")
	}
	return Alert{Time: *l.Time, Status: l.Status, Labels: l.Labels, Value: l.Value}, nil
}
