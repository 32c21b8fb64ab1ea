package mqtt

import (
	"fmt"
	"strings"
)

// Placeholders a topic template may bind, each to one whole topic level.
const (
	slotUPS = iota
	slotString
	slotModule
	slotCell
	slotMetric
	numSlots
)

var slotNames = [numSlots]string{"ups", "string", "module", "cell", "metric"}

// level is one level of a topic template.
type level struct {
	literal string // matched byte for byte, when slot < 0 and !any
	slot    int    // the placeholder bound here, or -1
	any     bool   // "+": any one level, not bound
}

// Template is a parsed topic template such as "bms/{ups}/{string}/{module}".
// Placeholders bind one topic level each; "+" matches any one level and "#"
// (last) any number of remaining levels, neither binding anything.
type Template struct {
	text   string
	levels []level
	multi  bool // ends in "#"
	has    [numSlots]bool
}

// ParseTemplate parses a topic template. Placeholders are {ups}, {string},
// {module}, {cell} and {metric}, each at most once and filling a whole
// level.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{text: s}
	if s == "" {
		return nil, fmt.Errorf("is empty")
	}
	if strings.HasPrefix(s, "$share/") || strings.HasPrefix(s, "$queue/") {
		return nil, fmt.Errorf("must not carry the share prefix: set share_group instead")
	}
	parts := strings.Split(s, "/")
	for i, p := range parts {
		switch {
		case p == "#":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("has # before its last level")
			}
			t.multi = true
		case p == "+":
			t.levels = append(t.levels, level{slot: -1, any: true})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			slot := -1
			for k, n := range slotNames {
				if n == name {
					slot = k
				}
			}
			if slot < 0 {
				return nil, fmt.Errorf("has an unknown placeholder %s (have {ups}, {string}, {module}, {cell}, {metric})", p)
			}
			if t.has[slot] {
				return nil, fmt.Errorf("binds %s twice", p)
			}
			t.has[slot] = true
			t.levels = append(t.levels, level{slot: slot})
		case strings.ContainsAny(p, "+#{}\x00"):
			return nil, fmt.Errorf("level %q mixes text with a wildcard or placeholder (a placeholder fills a whole level)", p)
		default:
			t.levels = append(t.levels, level{literal: p, slot: -1})
		}
	}
	return t, nil
}

// String returns the template as configured.
func (t *Template) String() string { return t.text }

// Filter returns the MQTT topic filter that subscribes to every topic the
// template can match: each placeholder becomes "+".
func (t *Template) Filter() string {
	var b strings.Builder
	for i, l := range t.levels {
		if i > 0 {
			b.WriteByte('/')
		}
		if l.slot < 0 && !l.any {
			b.WriteString(l.literal)
		} else {
			b.WriteByte('+')
		}
	}
	if t.multi {
		if len(t.levels) > 0 {
			b.WriteByte('/')
		}
		b.WriteByte('#')
	}
	return b.String()
}

// Has reports whether the template binds the placeholder named name.
func (t *Template) Has(name string) bool {
	for k, n := range slotNames {
		if n == name {
			return t.has[k]
		}
	}
	return false
}

// Match matches topic against the template and returns the level bound to
// each placeholder (substrings of topic; empty when not bound).
func (t *Template) Match(topic string) (b [numSlots]string, ok bool) {
	rest := topic
	for i, l := range t.levels {
		var seg string
		j := strings.IndexByte(rest, '/')
		last := j < 0
		if last {
			seg, rest = rest, ""
		} else {
			seg, rest = rest[:j], rest[j+1:]
		}
		switch {
		case l.slot >= 0:
			b[l.slot] = seg
		case l.any:
		case seg != l.literal:
			return [numSlots]string{}, false
		}
		if last && i < len(t.levels)-1 {
			return [numSlots]string{}, false // topic shorter than the template
		}
		if last {
			// The whole topic is consumed: it matches unless more levels
			// were required (a "#" also matches its parent level).
			return b, true
		}
	}
	// Levels remain in the topic.
	if !t.multi {
		return [numSlots]string{}, false
	}
	return b, true
}
