package mqtt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON payloads are read by a scanner of our own rather than
// encoding/json: it validates the payload and records every value on a
// tape that it reuses from message to message, so that decoding a message
// allocates nothing once the tape has grown. It accepts exactly what
// encoding/json's Decoder accepts for one value (RFC 8259, at most 10000
// nested arrays and objects, invalid UTF-8 in strings replaced by U+FFFD
// when a string is read, the last of duplicate object keys wins), so the
// reasons and readings are those the encoding/json decoder gave.

// Kinds of JSON values on the tape.
const (
	jsonNull uint8 = iota + 1
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// maxJSONDepth is encoding/json's limit of nested arrays and objects.
const maxJSONDepth = 10000

// maxTapeKept bounds the tape a document keeps between messages (about
// 1 MiB): the tape of a larger message is dropped after use.
const maxTapeKept = 1 << 16

// maxKeyStrings bounds the object keys a document keeps as identifiers.
const maxKeyStrings = 4096

// jnode is one value on the tape. An object's members follow it as key
// and value nodes, an array's elements as value nodes.
type jnode struct {
	// start and end delimit the value in the payload: a string without
	// its quotes, a number or literal as written, a container from its
	// bracket to its closing bracket.
	start, end int32
	// next is the index of the node after this value and its members
	// or elements: its next sibling.
	next int32
	kind uint8
	// plain: a string without escapes or non-ASCII bytes, whose bytes are
	// its text.
	plain bool
}

// document is a parsed JSON payload and the scratch space of decoding.
// It belongs to one goroutine; its tape and buffers are reused by the next
// parse.
type document struct {
	src   []byte
	nodes []jnode
	open  []int32 // containers open while parsing
	text  []byte  // a string's unquoted text
	// members lists an object's members for [*], sorted by key; order
	// keeps the keys of the last object listed, in payload order, and
	// their sorted order (see sortedMembers).
	members []member
	order   struct {
		keys   []string
		sorted []int32
	}
	// keys holds object keys bound as identifiers, so that a key seen
	// before costs no allocation.
	keys map[string]string
	// lastTime and lastTimeNs cache the last RFC 3339 time read: the
	// messages of one poll share it.
	lastTime   []byte
	lastTimeNs int64
}

// member is an object member as [*] visits it.
type member struct {
	key string
	val int32
}

// jsonError is a syntax error, in encoding/json's words.
type jsonError struct {
	msg string
	off int
}

func (e *jsonError) Error() string { return e.msg }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(src []byte, i int) int {
	for i < len(src) && isSpace(src[i]) {
		i++
	}
	return i
}

// quoteChar formats c as encoding/json does in its errors.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}

// parse validates src as exactly one JSON value with optional white space
// around it and records it on the tape; the root is node 0. A failure
// reads like encoding/json's Decoder.
func (d *document) parse(src []byte) error {
	if len(src) > 1<<31-1 {
		return &jsonError{"payload too large for JSON", 0}
	}
	d.src = src
	d.nodes = d.nodes[:0]
	d.open = d.open[:0]
	d.members = d.members[:0]
	i := skipSpace(src, 0)
	if i == len(src) {
		return &jsonError{"EOF", i}
	}
	for {
		// A value starts at i.
		if i >= len(src) {
			return &jsonError{"unexpected EOF", i}
		}
		c := src[i]
		switch {
		case c == '{' || c == '[':
			kind := jsonArray
			if c == '{' {
				kind = jsonObject
			}
			d.open = append(d.open, int32(len(d.nodes)))
			d.nodes = append(d.nodes, jnode{start: int32(i), kind: kind})
			if len(d.open) > maxJSONDepth {
				return &jsonError{"exceeded max depth", i}
			}
			i = skipSpace(src, i+1)
			if i < len(src) && (c == '{' && src[i] == '}' || c == '[' && src[i] == ']') {
				i = d.close(i)
				break
			}
			if c == '[' {
				continue
			}
			var err error
			if i, err = d.key(i); err != nil {
				return err
			}
			continue
		case c == '"':
			end, plain, err := scanString(src, i)
			if err != nil {
				return err
			}
			d.nodes = append(d.nodes, jnode{start: int32(i + 1), end: int32(end - 1), next: int32(len(d.nodes) + 1), kind: jsonString, plain: plain})
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end, err := scanNumber(src, i)
			if err != nil {
				return err
			}
			d.nodes = append(d.nodes, jnode{start: int32(i), end: int32(end), next: int32(len(d.nodes) + 1), kind: jsonNumber})
			i = end
		case c == 't' || c == 'f' || c == 'n':
			lit, kind := "null", jsonNull
			if c == 't' {
				lit, kind = "true", jsonTrue
			} else if c == 'f' {
				lit, kind = "false", jsonFalse
			}
			for k := 1; k < len(lit); k++ {
				if i+k >= len(src) {
					return &jsonError{"unexpected EOF", i + k}
				}
				if src[i+k] != lit[k] {
					return &jsonError{fmt.Sprintf("invalid character %s in literal %s (expecting %s)", quoteChar(src[i+k]), lit, quoteChar(lit[k])), i + k}
				}
			}
			d.nodes = append(d.nodes, jnode{start: int32(i), end: int32(i + len(lit)), next: int32(len(d.nodes) + 1), kind: kind})
			i += len(lit)
		default:
			return &jsonError{fmt.Sprintf("invalid character %s looking for beginning of value", quoteChar(c)), i}
		}
		// After a value: close the containers it ends, or go on to the
		// next element or member.
		for {
			i = skipSpace(src, i)
			if len(d.open) == 0 {
				if i < len(src) {
					return &jsonError{"data after the JSON value", i}
				}
				return nil
			}
			if i >= len(src) {
				return &jsonError{"unexpected EOF", i}
			}
			top := &d.nodes[d.open[len(d.open)-1]]
			c := src[i]
			switch {
			case c == ',' && top.kind == jsonArray:
				i = skipSpace(src, i+1)
			case c == ',':
				var err error
				if i, err = d.key(skipSpace(src, i+1)); err != nil {
					return err
				}
			case c == ']' && top.kind == jsonArray, c == '}' && top.kind == jsonObject:
				i = d.close(i)
				continue
			case top.kind == jsonArray:
				return &jsonError{fmt.Sprintf("invalid character %s after array element", quoteChar(c)), i}
			default:
				return &jsonError{fmt.Sprintf("invalid character %s after object key:value pair", quoteChar(c)), i}
			}
			break
		}
	}
}

// close ends the innermost open container at its closing bracket i and
// returns the offset after it.
func (d *document) close(i int) int {
	n := d.open[len(d.open)-1]
	d.open = d.open[:len(d.open)-1]
	d.nodes[n].end = int32(i + 1)
	d.nodes[n].next = int32(len(d.nodes))
	return i + 1
}

// key reads an object key and its colon at i and returns the offset of
// the member's value.
func (d *document) key(i int) (int, error) {
	if i >= len(d.src) {
		return i, &jsonError{"unexpected EOF", i}
	}
	if d.src[i] != '"' {
		return i, &jsonError{fmt.Sprintf("invalid character %s looking for beginning of object key string", quoteChar(d.src[i])), i}
	}
	end, plain, err := scanString(d.src, i)
	if err != nil {
		return i, err
	}
	d.nodes = append(d.nodes, jnode{start: int32(i + 1), end: int32(end - 1), next: int32(len(d.nodes) + 1), kind: jsonString, plain: plain})
	i = skipSpace(d.src, end)
	if i >= len(d.src) {
		return i, &jsonError{"unexpected EOF", i}
	}
	if d.src[i] != ':' {
		return i, &jsonError{fmt.Sprintf("invalid character %s after object key", quoteChar(d.src[i])), i}
	}
	return skipSpace(d.src, i+1), nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanString checks the string whose opening quote is at i and returns
// the offset after its closing quote; plain reports a string without
// escapes and non-ASCII bytes.
func scanString(src []byte, i int) (end int, plain bool, err error) {
	plain = true
	for j := i + 1; j < len(src); j++ {
		switch c := src[j]; {
		case c == '"':
			return j + 1, plain, nil
		case c == '\\':
			plain = false
			j++
			if j >= len(src) {
				return 0, false, &jsonError{"unexpected EOF", j}
			}
			switch src[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 1; k <= 4; k++ {
					if j+k >= len(src) {
						return 0, false, &jsonError{"unexpected EOF", j + k}
					}
					if !isHex(src[j+k]) {
						return 0, false, &jsonError{fmt.Sprintf("invalid character %s in \\u hexadecimal character escape", quoteChar(src[j+k])), j + k}
					}
				}
				j += 4
			default:
				return 0, false, &jsonError{fmt.Sprintf("invalid character %s in string escape code", quoteChar(src[j])), j}
			}
		case c < 0x20:
			return 0, false, &jsonError{fmt.Sprintf("invalid character %s in string literal", quoteChar(c)), j}
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return 0, false, &jsonError{"unexpected EOF", len(src)}
}

// scanNumber checks the number at i (JSON's grammar: -?(0|[1-9][0-9]*)
// (.[0-9]+)?([eE][+-]?[0-9]+)?) and returns the offset after it.
func scanNumber(src []byte, i int) (int, error) {
	j := i
	if src[j] == '-' {
		j++
	}
	var err error
	if j < len(src) && src[j] == '0' {
		j++
	} else if j, err = scanDigits(src, j, "in numeric literal"); err != nil {
		return j, err
	}
	if j < len(src) && src[j] == '.' {
		if j, err = scanDigits(src, j+1, "after decimal point in numeric literal"); err != nil {
			return j, err
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		j++
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j, err = scanDigits(src, j, "in exponent of numeric literal"); err != nil {
			return j, err
		}
	}
	return j, nil
}

// scanDigits checks that at least one digit is at j and returns the
// offset after the digits.
func scanDigits(src []byte, j int, what string) (int, error) {
	if j >= len(src) {
		return j, &jsonError{"unexpected EOF", j}
	}
	if src[j] < '0' || src[j] > '9' {
		return j, &jsonError{fmt.Sprintf("invalid character %s %s", quoteChar(src[j]), what), j}
	}
	for j < len(src) && src[j] >= '0' && src[j] <= '9' {
		j++
	}
	return j, nil
}

// release drops the tape after a large message, so that one large
// payload does not keep its tape for the collector's lifetime.
func (d *document) release() {
	d.src = nil
	if cap(d.nodes) > maxTapeKept {
		d.nodes = nil
	}
	if cap(d.text) > 1<<16 {
		d.text = nil
	}
	if cap(d.members) > maxTapeKept {
		d.members = nil
	}
	if cap(d.order.keys) > maxTapeKept {
		d.order.keys, d.order.sorted = nil, nil
	}
	if cap(d.open) > maxTapeKept {
		d.open = nil
	}
}

// raw returns the bytes of node n: a string's between its quotes.
func (d *document) raw(n int32) []byte { return d.src[d.nodes[n].start:d.nodes[n].end] }

// str returns the text of string node n, unquoted as encoding/json does
// (invalid UTF-8 and lone surrogates become U+FFFD). The slice is valid
// until the next call.
func (d *document) str(n int32) []byte {
	if d.nodes[n].plain {
		return d.raw(n)
	}
	d.text = appendUnquoted(d.text[:0], d.raw(n))
	return d.text
}

// keyIs reports whether key node n is key.
func (d *document) keyIs(n int32, key string) bool {
	if d.nodes[n].plain {
		return string(d.raw(n)) == key
	}
	return string(d.str(n)) == key
}

// keyString returns the text of key node n as a string, kept for the
// next messages while the document holds fewer than maxKeyStrings.
func (d *document) keyString(n int32) string {
	b := d.str(n)
	if s, ok := d.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.keys == nil {
		d.keys = map[string]string{}
	}
	if len(d.keys) < maxKeyStrings {
		d.keys[s] = s
	}
	return s
}

// member returns the value of key in object node obj (the last one when
// the key repeats), or -1.
func (d *document) member(obj int32, key string) int32 {
	found := int32(-1)
	for k := obj + 1; k < d.nodes[obj].next; k = d.nodes[k+1].next {
		if d.keyIs(k, key) {
			found = k + 1
		}
	}
	return found
}

// element returns element i of array node arr, or -1.
func (d *document) element(arr int32, i int) int32 {
	for k := arr + 1; k < d.nodes[arr].next; k = d.nodes[k].next {
		if i == 0 {
			return k
		}
		i--
	}
	return -1
}

// sortedMembers lists the members of object node obj by key, each key
// once with its last value, as encoding/json's map holds them. The list
// sits at the end of the document's member scratch, from mark on: a
// nested [*] lists its members after it, and the caller gives the space
// back with d.members = d.members[:mark] when done.
//
// Gateways send the same keys in the same order in every message, so the
// keys and their order of the last object are kept: when the next object
// has the same keys in the same order, neither are the keys looked up nor
// sorted again.
func (d *document) sortedMembers(obj int32) (ms []member, mark int) {
	mark = len(d.members)
	same := true
	i := 0
	for k := obj + 1; k < d.nodes[obj].next; k = d.nodes[k+1].next {
		var key string
		if same && i < len(d.order.keys) && d.nodes[k].plain && string(d.raw(k)) == d.order.keys[i] {
			key = d.order.keys[i]
		} else {
			same = false
			key = d.keyString(k)
		}
		d.members = append(d.members, member{key: key, val: k + 1})
		i++
	}
	all := d.members[mark:]
	if !same || len(all) != len(d.order.keys) {
		d.order.keys = d.order.keys[:0]
		for _, m := range all {
			d.order.keys = append(d.order.keys, m.key)
		}
		d.order.sorted = d.order.sorted[:0]
		for j := range all {
			d.order.sorted = append(d.order.sorted, int32(j))
		}
		keys := d.order.keys
		slices.SortStableFunc(d.order.sorted, func(a, b int32) int { return strings.Compare(keys[a], keys[b]) })
		// Of equal keys, the last in the payload wins.
		out := d.order.sorted[:0]
		for j, p := range d.order.sorted {
			if j+1 < len(d.order.sorted) && keys[d.order.sorted[j+1]] == keys[p] {
				continue
			}
			out = append(out, p)
		}
		d.order.sorted = out
	}
	for _, p := range d.order.sorted {
		d.members = append(d.members, all[p])
	}
	return d.members[mark+len(all):], mark
}

// kindOf returns the kind of node n, 0 for -1 (absent).
func (d *document) kindOf(n int32) uint8 {
	if n < 0 {
		return 0
	}
	return d.nodes[n].kind
}

// describe names the kind of node n for messages, as the encoding/json
// based decoder did.
func (d *document) describe(n int32) string {
	switch d.kindOf(n) {
	case jsonString:
		return "a string"
	case jsonTrue, jsonFalse:
		return "a boolean"
	case jsonArray:
		return "an array"
	case jsonObject:
		return "an object"
	}
	return "a value"
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber returns the value of the (valid) JSON number b, as
// strconv.ParseFloat does. Readings such as 3.301 take a short way: a
// mantissa below 2^52 and a power of ten up to 10^22 are both exact in a
// float64, so one multiplication or division gives the correctly rounded
// value, as strconv's own exact path does; every other number goes to
// strconv.
func parseNumber(b []byte) (float64, error) {
	i, neg := 0, false
	if b[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	nd, exp := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if mant != 0 || b[i] != '0' {
			nd++
		}
		mant = mant*10 + uint64(b[i]-'0')
		if nd > 18 {
			return strconv.ParseFloat(string(b), 64)
		}
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if mant != 0 || b[i] != '0' {
				nd++
			}
			mant = mant*10 + uint64(b[i]-'0')
			exp--
			if nd > 18 {
				return strconv.ParseFloat(string(b), 64)
			}
		}
	}
	if i < len(b) { // e or E
		i++
		eneg := false
		if b[i] == '+' || b[i] == '-' {
			eneg = b[i] == '-'
			i++
		}
		e := 0
		for ; i < len(b); i++ {
			if e = e*10 + int(b[i]-'0'); e > 1000 {
				return strconv.ParseFloat(string(b), 64)
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if mant>>52 != 0 {
		return strconv.ParseFloat(string(b), 64)
	}
	f := float64(mant)
	if neg {
		f = -f
	}
	switch {
	case exp == 0:
		return f, nil
	case exp < 0 && exp >= -22:
		return f / pow10[-exp], nil
	case exp > 0 && exp <= 22:
		return f * pow10[exp], nil
	}
	return strconv.ParseFloat(string(b), 64)
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendUnquoted appends the text of the (valid) JSON string body s, as
// encoding/json unquotes it.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}
