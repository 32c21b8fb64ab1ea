// Package promtest reads a Prometheus text exposition for tests: a scrape
// of /metrics as series by family name, and lookups by labels.
package promtest

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Series is one scraped sample.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Exposition is one scrape by family name.
type Exposition map[string][]Series

// Scrape reads url (a /metrics endpoint) with client (http.DefaultClient
// when nil).
func Scrape(client *http.Client, url string) (Exposition, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return Parse(string(body))
}

// Parse reads a text exposition.
func Parse(text string) (Exposition, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := Exposition{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := Series{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				s.Value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s.Value = m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				s.Value = m.GetUntyped().GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// Find returns the series of name whose labels include match.
func (e Exposition) Find(name string, match map[string]string) []Series {
	var out []Series
next:
	for _, s := range e[name] {
		for k, v := range match {
			if s.Labels[k] != v {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// Value returns the value of the one series of name matching, and whether
// there is exactly one.
func (e Exposition) Value(name string, match map[string]string) (float64, bool) {
	s := e.Find(name, match)
	if len(s) != 1 {
		return 0, false
	}
	return s[0].Value, true
}

// Count returns how many series of name each value of label has.
func (e Exposition) Count(name, label string) map[string]int {
	out := map[string]int{}
	for _, s := range e[name] {
		out[s.Labels[label]]++
	}
	return out
}
