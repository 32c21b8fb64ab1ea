// Package yamlstrict decodes YAML documents strictly and reports every
// problem of a document in one run, each with the path of the field, the
// offending value and the line it is on.
//
// Decode walks the parsed document alongside the Go type it decodes into.
// Unknown and duplicate keys, values of the wrong type and errors returned
// by UnmarshalYAML methods are all collected instead of stopping at the
// first one, so that a person fixing a file sees everything at once:
//
//	detector.cell_over_temprature: unknown field (line 4)
//	detector.cell_over_temperature.for: "5 minutes" is not a valid duration (line 7)
//
// Decode returns a Doc that remembers the line of every path it saw, so
// that validation after decoding can report lines too (see Doc.Problems).
//
// Paths name mapping keys with dots and list items with brackets:
// "batteries[2].chemistry". Map keys that are not made of letters, digits,
// '_' and '-' only are quoted: `labels["a.b"]`. Key and Index build paths
// in the same way Decode does.
package yamlstrict

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxValueLen is the longest value, in bytes, that FieldError.Error shows;
// longer values are cut and end in "...".
const maxValueLen = 80

// FieldError is one problem in a YAML document.
type FieldError struct {
	// Path names the field, e.g. "detector.cell_over_temperature.for" or
	// "batteries[2].chemistry"; it is empty for document-level problems.
	Path string
	// Line is the 1-based line of the problem, 0 when unknown.
	Line int
	// Value is the offending scalar as written, empty when there is none.
	Value string
	// Msg says what is wrong, e.g. "unknown field" or "must be > 0".
	Msg string
}

// Error renders the problem as `PATH: "VALUE" MSG (line N)`. The value part
// is left out when Value is empty and the line part when Line is 0; without
// a path the line comes first: `line N: MSG`. Values longer than 80 bytes
// are shortened.
func (e FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Path != "":
		b.WriteString(e.Path)
		b.WriteString(": ")
	case e.Line > 0:
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Value != "" {
		b.WriteString(strconv.Quote(shorten(e.Value)))
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	if e.Path != "" && e.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(')')
	}
	return b.String()
}

func shorten(s string) string {
	if len(s) <= maxValueLen {
		return s
	}
	cut := maxValueLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Errors is a list of problems found in one document. It is an error
// itself: Error joins the problems with newlines. Decode and Problems
// return it sorted by line, then path.
//
// Errors is a slice: a nil Errors stored in an error variable is not a nil
// error. Use Err to get an error that is nil when the list is empty.
type Errors []FieldError

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as individual errors, so that errors.As can
// find a FieldError.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Err returns es as an error, or nil when es is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// In returns es as a *SourceErrors naming source, typically a file name,
// or nil when es is empty.
func (es Errors) In(source string) error {
	if len(es) == 0 {
		return nil
	}
	return &SourceErrors{Source: source, Errs: es}
}

// sort orders es by line, then path, keeping the order of equal entries.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Path, b.Path))
	})
}

// SourceErrors is the problems found in a named source such as a file.
type SourceErrors struct {
	// Source names where the document came from; it may be empty.
	Source string
	// Errs is the problems found.
	Errs Errors
}

// Error renders one problem per line, each prefixed with "SOURCE: " when
// Source is not empty:
//
//	inv.yaml: batteries[1].chemistry: "NiCd" must be one of NMC, LFP, LTO, NCA (line 9)
func (e *SourceErrors) Error() string {
	if e.Source == "" {
		return e.Errs.Error()
	}
	var b strings.Builder
	for i, fe := range e.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source)
		b.WriteString(": ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so that errors.As can find the Errors.
func (e *SourceErrors) Unwrap() error { return e.Errs }

// Doc is a decoded document. It remembers the line of every path it saw so
// that validation after decoding can report lines too. A Doc is not safe
// for concurrent modification, but its methods only read it.
type Doc struct {
	lines map[string]int
}

func newDoc() *Doc { return &Doc{lines: make(map[string]int)} }

// record notes the line of path, keeping the first line seen.
func (d *Doc) record(path string, line int) {
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = line
	}
}

// Line returns the line of path in the document: the line of its key for
// a mapping entry, of the item for a list item. It returns 0 if the path was
// not in the document. The path "" is the document itself.
func (d *Doc) Line(path string) int {
	if d == nil {
		return 0
	}
	return d.lines[path]
}

// Has reports whether path was in the document, even with an empty value.
func (d *Doc) Has(path string) bool {
	if d == nil {
		return false
	}
	_, ok := d.lines[path]
	return ok
}

// Problems returns an empty collector of validation problems whose lines
// come from d.
func (d *Doc) Problems() *Problems {
	return &Problems{doc: d, paths: make(map[string]bool)}
}

// Problems collects validation problems against a Doc. It is not safe for
// concurrent use.
type Problems struct {
	doc   *Doc
	errs  Errors
	paths map[string]bool
}

// Add records a problem at path, unless one is already recorded at exactly
// that path: a field that failed to decode is not reported again by its
// validation. value is the offending value, rendered with %v, or nil for
// none; format and args make the message. The line is that of path in the
// document, or of its nearest ancestor that is there, so that a missing
// required field points at its parent; a missing top-level key has no line.
func (p *Problems) Add(path string, value any, format string, args ...any) {
	if p.paths[path] {
		return
	}
	e := FieldError{Path: path, Line: p.lineOf(path), Msg: fmt.Sprintf(format, args...)}
	if value != nil {
		e.Value = fmt.Sprint(value)
	}
	p.paths[path] = true
	p.errs = append(p.errs, e)
}

// Append records errs as they are, for example the problems Decode
// returned, so that decoding and validation are reported together.
func (p *Problems) Append(errs ...FieldError) {
	for _, e := range errs {
		p.paths[e.Path] = true
		p.errs = append(p.errs, e)
	}
}

// Has reports whether a problem is recorded at path.
func (p *Problems) Has(path string) bool { return p.paths[path] }

// Errs returns the problems collected so far, sorted by line, then path.
func (p *Problems) Errs() Errors {
	es := slices.Clone(p.errs)
	es.sort()
	return es
}

// Err returns nil when no problem was collected, else the sorted Errors.
func (p *Problems) Err() error { return p.Errs().Err() }

// lineOf returns the line of path or of its nearest ancestor other than
// the document itself.
func (p *Problems) lineOf(path string) int {
	if path == "" {
		return p.doc.Line("")
	}
	for ; path != ""; path = parent(path) {
		if l := p.doc.Line(path); l > 0 {
			return l
		}
	}
	return 0
}

// Key returns the path of the entry key of the mapping at path parent:
// "parent.key", or `parent["key"]` when key is not made of ASCII letters,
// digits, '_' and '-' only. Key("", "a") is "a".
func Key(parent, key string) string {
	if !plainKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index returns the path of item i of the list at path parent: "parent[i]".
func Index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// join appends the relative path rel to base.
func join(base, rel string) string {
	switch {
	case rel == "":
		return base
	case base == "" || strings.HasPrefix(rel, "["):
		return base + rel
	}
	return base + "." + rel
}

// parent returns the path one level up from path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "". Quoted keys are skipped as a whole.
func parent(path string) string {
	last := 0 // start of the last segment, including its separator
	for i := 0; i < len(path); {
		switch path[i] {
		case '.':
			last = i
			i++
		case '[':
			last = i
			if strings.HasPrefix(path[i:], `["`) {
				q, err := strconv.QuotedPrefix(path[i+1:])
				if err != nil {
					return path[:i] // not a path Key built; stop here
				}
				i += 1 + len(q)
			}
			if j := strings.IndexByte(path[i:], ']'); j >= 0 {
				i += j + 1
			} else {
				i = len(path)
			}
		default:
			i++
		}
	}
	return path[:last]
}
