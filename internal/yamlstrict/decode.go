package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Decode parses data and decodes it into v, which must be a non-nil
// pointer, normally to a struct. v may be pre-filled with defaults: keys
// absent from the document keep the value v had.
//
// Decode returns a Doc, non-nil even on errors so that validation can go
// on, and every problem found: YAML syntax errors, unknown keys, duplicate
// keys, values of the wrong type and errors returned by UnmarshalYAML
// methods. Where one field is wrong the others are still decoded, and the
// wrong one keeps its previous value. An empty document is fine. A
// document that is not a mapping gives one error when v is a struct.
//
// Decoding follows yaml.v3 with these differences:
//   - Struct fields are matched by their yaml tag names (with ",inline"
//     structs and maps, "-" skipped) and any other key is an error, unless
//     the struct has an inline map to catch it.
//   - A list replaces the whole slice and a mapping decoded into a map
//     replaces the whole map; a pointer gets a fresh copy of what it
//     pointed to. Defaults shared between values are never modified.
//   - Integer fields reject fractions ("1.5" is not truncated) and
//     out-of-range values; strings keep the scalar as written ("07").
//   - A null value ("key:" or "key: ~") leaves the field as it was, except
//     that pointers, maps, slices and interfaces become nil.
//   - A value whose type implements yaml.Unmarshaler (or the older
//     function-based UnmarshalYAML) is decoded by that method; its error
//     becomes a problem at the value's path. Errors returned by DecodeNode
//     keep their own paths, below the value's.
//   - Anchors, aliases and merge keys ("<<") work; a self-referencing
//     anchor or excessive aliasing is an error, not a hang.
//   - A second document in the stream is an error.
func Decode(data []byte, v any) (*Doc, Errors) {
	doc := newDoc()
	root, errs := parse(data)
	w := newWalker(doc, len(data), true)
	w.errs = errs
	if root != nil || len(errs) == 0 {
		w.decodeTop(root, v)
	}
	w.errs.sort()
	return doc, w.errs
}

// DecodeNode decodes n into v as Decode decodes a document; the paths of
// the problems are relative to n. It lets an UnmarshalYAML method decode
// strictly, for example to set defaults first:
//
//	func (c *Config) UnmarshalYAML(n *yaml.Node) error {
//		*c = DefaultConfig
//		type plain Config
//		return yamlstrict.DecodeNode(n, (*plain)(c))
//	}
//
// Decode places the problems below the path of the value being
// unmarshalled. The error is nil or Errors.
func DecodeNode(n *yaml.Node, v any) error {
	w := newWalker(newDoc(), 0, false)
	w.decodeTop(n, v)
	w.errs.sort()
	return w.errs.Err()
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// parse parses the single document of data. It returns nil and no error
// for an empty document.
func parse(data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := protect(func() error { return dec.Decode(&doc) })
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, Errors{syntaxError(data, err)}
	}
	var next yaml.Node
	err = protect(func() error { return dec.Decode(&next) })
	switch {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		return &doc, Errors{syntaxError(data, err)}
	case !emptyDocument(&next):
		return &doc, Errors{{Line: next.Line, Msg: "only one YAML document is allowed"}}
	}
	return &doc, nil
}

func emptyDocument(n *yaml.Node) bool {
	if len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return len(n.Content) == 1 && c.Kind == yaml.ScalarNode && c.ShortTag() == nullTag && c.Value == "" && c.Anchor == ""
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner), for which it reports the 0-based line of the construct the
// problem is in.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// readerProblems are the messages of yaml.v3's input reader, which reports
// no line at all.
var readerProblems = map[string]bool{
	"invalid leading UTF-8 octet":        true,
	"incomplete UTF-8 octet sequence":    true,
	"invalid trailing UTF-8 octet":       true,
	"invalid length of a UTF-8 sequence": true,
	"invalid Unicode character":          true,
	"control characters are not allowed": true,
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// syntaxError turns a parse error of yaml.v3 into a problem with the line
// it is on. yaml.v3 leaves the line out when it is the first and gives the
// line before for parser errors; this puts both right, and finds the line
// of bad input bytes and unknown anchors in data.
func syntaxError(data []byte, err error) FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	switch {
	case parserProblems[msg]:
		line++
	case readerProblems[msg]:
		line = badInputLine(data)
	case unknownAnchor.MatchString(msg):
		line = lineOf(data, bytes.Index(data, []byte("*"+unknownAnchor.FindStringSubmatch(msg)[1])))
	case strings.HasPrefix(msg, "attempted to go past"):
	case line == 0:
		line = 1
	}
	return FieldError{Line: line, Msg: "invalid YAML: " + msg}
}

// badInputLine returns the line of the first byte of data that YAML does
// not allow: invalid UTF-8 or a control character. It returns 0 if there
// is none.
func badInputLine(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		ok := r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
			(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff)
		if !ok || (r == utf8.RuneError && size == 1) {
			return lineOf(data, i)
		}
		i += size
	}
	return 0
}

// lineOf returns the 1-based line of byte offset i of data, or 0 when i is
// negative.
func lineOf(data []byte, i int) int {
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

// protect calls f and turns a panic into an error, so that a bug in the
// yaml package or in an UnmarshalYAML method never crashes a caller.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return f()
}

// yamlErrors turns an error of the yaml package into problems at path:
// every "line N: msg" of a *yaml.TypeError becomes one problem.
func yamlErrors(path string, line int, value string, err error) Errors {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{{Path: path, Line: line, Value: value, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	es := make(Errors, 0, len(te.Errors))
	for _, s := range te.Errors {
		e := FieldError{Path: path, Line: line, Msg: s}
		if m := yamlLine.FindStringSubmatch(s); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		es = append(es, e)
	}
	return es
}

// typeName names t for messages about misuse of the package.
func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}
