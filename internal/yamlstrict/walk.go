package yamlstrict

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Tags of the YAML core schema, as yaml.Node.ShortTag reports them.
const (
	nullTag  = "!!null"
	intTag   = "!!int"
	floatTag = "!!float"
	mergeTag = "!!merge"
)

// baseVisits and visitsPerByte bound the work of one decode: nodes reached
// through aliases count each time, so a "billion laughs" document stops
// with an error instead of running for ever.
const (
	baseVisits    = 1 << 18
	visitsPerByte = 8
)

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	obsoleteType    = reflect.TypeFor[obsoleteUnmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
	digitsOnly      = regexp.MustCompile(`^[-+]?[0-9_]+$`)
)

// obsoleteUnmarshaler is the function-based interface of yaml.v2, which
// yaml.v3 still honours.
type obsoleteUnmarshaler interface {
	UnmarshalYAML(unmarshal func(any) error) error
}

// walker decodes a node tree into a Go value, collecting problems.
type walker struct {
	doc       *Doc
	errs      Errors
	document  bool // the root is a whole document, not a node of one
	visits    int  // budget left
	exhausted bool
	expanding map[*yaml.Node]bool // anchors being expanded, against cycles
	structs   map[reflect.Type]*structInfo
}

func newWalker(doc *Doc, size int, document bool) *walker {
	return &walker{
		doc:       doc,
		document:  document,
		visits:    baseVisits + visitsPerByte*size,
		expanding: make(map[*yaml.Node]bool),
		structs:   make(map[reflect.Type]*structInfo),
	}
}

func (w *walker) add(path string, line int, value, msg string) {
	w.errs = append(w.errs, FieldError{Path: path, Line: line, Value: value, Msg: msg})
}

// spend takes one visit from the budget and reports whether there was one.
func (w *walker) spend() bool {
	if w.exhausted {
		return false
	}
	w.visits--
	if w.visits < 0 {
		w.exhausted = true
		w.add("", 0, "", "document is too complex: excessive aliasing")
		return false
	}
	return true
}

func (w *walker) decodeTop(n *yaml.Node, v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		w.add("", 0, "", fmt.Sprintf("yamlstrict: cannot decode into %s: need a non-nil pointer", typeName(reflect.TypeOf(v))))
		return
	}
	if n == nil {
		return
	}
	for n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	w.doc.record("", n.Line)
	w.decode("", n.Line, n, rv.Elem())
}

// decode decodes n into v, which must be settable. path and line locate
// the value: line is that of its key or list item, which for an alias is
// where the alias is used.
func (w *walker) decode(path string, line int, n *yaml.Node, v reflect.Value) {
	if !w.spend() {
		return
	}
	if v.Type() == nodeType {
		w.recordTree(path, line, n)
		v.Set(reflect.ValueOf(n).Elem())
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		w.alias(path, line, n, func(target *yaml.Node) { w.decode(path, line, target, v) })
		return
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			w.decode(path, line, n.Content[0], v)
		}
		return
	case yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode:
	default:
		w.add(path, line, "", fmt.Sprintf("unsupported YAML node kind %d", n.Kind))
		return
	}
	if isNull(n) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			p.Elem().Set(v.Elem())
		}
		w.decode(path, line, n, p.Elem())
		v.Set(p)
		return
	}
	if w.custom(path, line, n, v) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		w.decodeStruct(path, line, n, v)
	case reflect.Map:
		w.decodeMap(path, line, n, v)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 && n.Kind == yaml.ScalarNode {
			w.fallback(path, line, n, v) // []byte from !!binary or text
			return
		}
		w.decodeSlice(path, line, n, v)
	case reflect.Array:
		w.decodeArray(path, line, n, v)
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		w.decodeScalar(path, line, n, v)
	default: // interfaces and anything yaml.v3 may know better
		w.fallback(path, line, n, v)
	}
}

// alias resolves the alias n and calls f with its target, unless the
// target is already being expanded (a self-referencing anchor).
func (w *walker) alias(path string, line int, n *yaml.Node, f func(target *yaml.Node)) {
	t := n.Alias
	if t == nil {
		w.add(path, line, "", fmt.Sprintf("unknown anchor %q", n.Value))
		return
	}
	if w.expanding[t] {
		w.add(path, line, "", fmt.Sprintf("anchor %q refers to itself", n.Value))
		return
	}
	w.expanding[t] = true
	defer delete(w.expanding, t)
	f(t)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

// scalarValue returns the text of n when it is a scalar.
func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// custom decodes n into v when v's type decodes itself or is one that
// yaml.v3 treats specially, and reports whether it did.
func (w *walker) custom(path string, line int, n *yaml.Node, v reflect.Value) bool {
	pt := reflect.PointerTo(v.Type())
	switch {
	case pt.Implements(unmarshalerType):
		u := v.Addr().Interface().(yaml.Unmarshaler)
		w.recordTree(path, line, n)
		w.unmarshalErr(path, line, n, protect(func() error { return u.UnmarshalYAML(n) }))
	case pt.Implements(obsoleteType):
		u := v.Addr().Interface().(obsoleteUnmarshaler)
		w.recordTree(path, line, n)
		w.unmarshalErr(path, line, n, protect(func() error {
			return u.UnmarshalYAML(func(x any) error { return DecodeNode(n, x) })
		}))
	case v.Type() == durationType:
		d, err := time.ParseDuration(scalarValue(n))
		if n.Kind != yaml.ScalarNode || err != nil {
			w.add(path, line, scalarValue(n), "is not a valid duration")
			return true
		}
		v.SetInt(int64(d))
	case v.Type() == timeType:
		var t time.Time
		if n.Kind != yaml.ScalarNode || protect(func() error { return n.Decode(&t) }) != nil {
			w.add(path, line, scalarValue(n), "is not a valid timestamp")
			return true
		}
		v.Set(reflect.ValueOf(t))
	case pt.Implements(textType) && n.Kind == yaml.ScalarNode:
		u := v.Addr().Interface().(encoding.TextUnmarshaler)
		w.unmarshalErr(path, line, n, protect(func() error { return u.UnmarshalText([]byte(n.Value)) }))
	default:
		return false
	}
	return true
}

// unmarshalErr records the error of an unmarshalling method. Errors and
// *yaml.TypeError keep their own structure; any other error becomes one
// problem whose message is the error's text.
func (w *walker) unmarshalErr(path string, line int, n *yaml.Node, err error) {
	if err == nil {
		return
	}
	var es Errors
	var se *SourceErrors
	switch {
	case errors.As(err, &se):
		es = se.Errs
	case errors.As(err, &es):
	default:
		var fe FieldError
		if errors.As(err, &fe) {
			es = Errors{fe}
			break
		}
		w.errs = append(w.errs, yamlErrors(path, line, scalarValue(n), err)...)
		return
	}
	for _, e := range es {
		e.Path = join(path, e.Path)
		if e.Line == 0 {
			e.Line = line
		}
		w.errs = append(w.errs, e)
	}
}

// fallback lets yaml.v3 decode n into v, for interfaces and other types
// without a stricter rule.
func (w *walker) fallback(path string, line int, n *yaml.Node, v reflect.Value) {
	w.recordTree(path, line, n)
	p := reflect.New(v.Type())
	if err := protect(func() error { return n.Decode(p.Interface()) }); err != nil {
		w.errs = append(w.errs, yamlErrors(path, line, scalarValue(n), err)...)
		return
	}
	v.Set(p.Elem())
}

// recordTree records the lines of n and everything below it, for values
// that are decoded by other code than the walker.
func (w *walker) recordTree(path string, line int, n *yaml.Node) {
	if !w.spend() {
		return
	}
	w.doc.record(path, line)
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil && !w.expanding[n.Alias] {
			w.expanding[n.Alias] = true
			w.recordTree(path, line, n.Alias)
			delete(w.expanding, n.Alias)
		}
	case yaml.MappingNode:
		for _, e := range w.entries(path, n, false) {
			w.recordTree(Key(path, e.name), e.line, e.val)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			w.recordTree(Index(path, i), c.Line, c)
		}
	}
}

func (w *walker) mismatch(path string, line int, n *yaml.Node, msg string) {
	if path == "" && w.document {
		w.add("", line, "", "the document "+msg)
		return
	}
	w.add(path, line, scalarValue(n), msg)
}

// decodeScalar decodes n into v of a basic kind.
func (w *walker) decodeScalar(path string, line int, n *yaml.Node, v reflect.Value) {
	k := v.Kind()
	if n.Kind != yaml.ScalarNode {
		w.mismatch(path, line, n, kindMessage(k))
		return
	}
	tag := n.ShortTag()
	switch k {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || n.Decode(&b) != nil {
			w.add(path, line, n.Value, "is not a boolean")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !w.integer(path, line, n, tag) {
			return
		}
		var i int64
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			w.add(path, line, n.Value, "is out of range")
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if !w.integer(path, line, n, tag) {
			return
		}
		var u uint64
		if n.Decode(&u) != nil {
			var i int64
			if n.Decode(&i) == nil && i < 0 {
				w.add(path, line, n.Value, "must not be negative")
				return
			}
			w.add(path, line, n.Value, "is out of range")
			return
		}
		if v.OverflowUint(u) {
			w.add(path, line, n.Value, "is out of range")
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != intTag && tag != floatTag) || n.Decode(&f) != nil {
			w.add(path, line, n.Value, "is not a number")
			return
		}
		if v.OverflowFloat(f) {
			w.add(path, line, n.Value, "is out of range")
			return
		}
		v.SetFloat(f)
	}
}

// integer checks that n is written as an integer.
func (w *walker) integer(path string, line int, n *yaml.Node, tag string) bool {
	switch {
	case tag == intTag:
		return true
	case tag == floatTag && digitsOnly.MatchString(n.Value):
		w.add(path, line, n.Value, "is out of range")
	case tag == floatTag:
		w.add(path, line, n.Value, "is not a whole number")
	default:
		w.add(path, line, n.Value, "is not a number")
	}
	return false
}

func kindMessage(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "is not a string"
	case reflect.Bool:
		return "is not a boolean"
	case reflect.Float32, reflect.Float64:
		return "is not a number"
	case reflect.Struct, reflect.Map:
		return "must be a mapping"
	case reflect.Slice, reflect.Array:
		return "must be a list"
	}
	return "is not a whole number"
}

// entry is one key and value of a mapping, after merge keys are applied.
type entry struct {
	name string
	line int
	val  *yaml.Node
}

// entries returns the entries of the mapping n: its own keys in order, then
// those merged in with "<<" that it does not set itself. With report, it
// records duplicate and non-scalar keys and bad merges as problems.
func (w *walker) entries(path string, n *yaml.Node, report bool) []entry {
	var own, merged []entry
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !w.spend() {
			return nil
		}
		kr := k
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			kr = k.Alias
		}
		if kr.Kind == yaml.ScalarNode && kr.ShortTag() == mergeTag {
			merged = append(merged, w.merge(path, k.Line, val, report)...)
			continue
		}
		if kr.Kind != yaml.ScalarNode {
			if report {
				w.add(path, k.Line, "", "mapping keys must be scalars")
			}
			continue
		}
		if first, dup := seen[kr.Value]; dup {
			if report {
				w.add(Key(path, kr.Value), k.Line, "", fmt.Sprintf("duplicate key (first defined at line %d)", first))
			}
			continue
		}
		seen[kr.Value] = k.Line
		own = append(own, entry{name: kr.Value, line: k.Line, val: val})
	}
	for _, e := range merged {
		if _, dup := seen[e.name]; !dup {
			seen[e.name] = e.line
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries that the value of a "<<" key merges in: a
// mapping, or a list of mappings of which the earlier win.
func (w *walker) merge(path string, line int, val *yaml.Node, report bool) []entry {
	const msg = "the value of a merge key (<<) must be a mapping or a list of mappings"
	var out []entry
	var one func(n *yaml.Node, list bool)
	one = func(n *yaml.Node, list bool) {
		switch n.Kind {
		case yaml.AliasNode:
			w.alias(path, line, n, func(t *yaml.Node) { one(t, list) })
		case yaml.MappingNode:
			out = append(out, w.entries(path, n, false)...)
		case yaml.SequenceNode:
			if !list {
				for _, c := range n.Content {
					one(c, true)
				}
				return
			}
			fallthrough
		default:
			if report {
				w.add(path, line, "", msg)
			}
		}
	}
	one(val, false)
	return out
}

// structInfo describes how the keys of a mapping map to a struct's fields.
type structInfo struct {
	fields map[string][]int // yaml name → field index path
	inline []int            // index path of an inline map, nil if none
	err    error            // the struct cannot be decoded into
}

func (w *walker) structInfo(t reflect.Type) *structInfo {
	if si, ok := w.structs[t]; ok {
		return si
	}
	si := &structInfo{fields: make(map[string][]int)}
	w.structs[t] = si
	si.err = si.add(t, nil, map[reflect.Type]bool{})
	return si
}

func (si *structInfo) add(t reflect.Type, prefix []int, inlining map[reflect.Type]bool) error {
	if inlining[t] {
		return fmt.Errorf("yamlstrict: %s inlines itself", t)
	}
	inlining[t] = true
	defer delete(inlining, t)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := append(append([]int(nil), prefix...), i)
		if hasOption(opts, "inline") {
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String:
				if si.inline != nil {
					return fmt.Errorf("yamlstrict: %s has more than one inline map", t)
				}
				si.inline = index
			case ft.Kind() == reflect.Struct:
				if err := si.add(ft, index, inlining); err != nil {
					return err
				}
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				if err := si.add(ft.Elem(), index, inlining); err != nil {
					return err
				}
			default:
				return fmt.Errorf("yamlstrict: option ,inline needs a struct or a map with string keys, not %s in %s", ft, t)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, dup := si.fields[name]; dup {
			return fmt.Errorf("yamlstrict: key %q appears twice in %s", name, t)
		}
		si.fields[name] = index
	}
	return nil
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// field returns the field of v at index, allocating nil pointers to
// inline structs on the way. It returns false when the field cannot be set.
func field(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, v.CanSet()
}

func (w *walker) decodeStruct(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		w.mismatch(path, line, n, "must be a mapping")
		return
	}
	si := w.structInfo(v.Type())
	if si.err != nil {
		w.add(path, line, "", si.err.Error())
		return
	}
	var extra reflect.Value
	for _, e := range w.entries(path, n, true) {
		p := Key(path, e.name)
		index, ok := si.fields[e.name]
		if !ok && si.inline == nil {
			w.add(p, e.line, "", "unknown field")
			continue
		}
		w.doc.record(p, e.line)
		if !ok {
			if !extra.IsValid() {
				extra = reflect.MakeMap(v.FieldByIndex(si.inline).Type())
			}
			w.mapEntry(p, e, extra)
			continue
		}
		f, ok := field(v, index)
		if !ok {
			w.add(p, e.line, "", fmt.Sprintf("yamlstrict: field for %q in %s cannot be set", e.name, v.Type()))
			continue
		}
		w.decode(p, e.line, e.val, f)
	}
	if extra.IsValid() {
		if f, ok := field(v, si.inline); ok {
			f.Set(extra)
		}
	}
}

func (w *walker) decodeMap(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		w.mismatch(path, line, n, "must be a mapping")
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, e := range w.entries(path, n, true) {
		p := Key(path, e.name)
		w.doc.record(p, e.line)
		w.mapEntry(p, e, m)
	}
	v.Set(m)
}

// mapEntry decodes the entry e, at path p, into the map m.
func (w *walker) mapEntry(p string, e entry, m reflect.Value) {
	t := m.Type()
	k := reflect.New(t.Key()).Elem()
	if t.Key().Kind() == reflect.String {
		k.SetString(e.name)
	} else {
		before := len(w.errs)
		w.decode(p, e.line, &yaml.Node{Kind: yaml.ScalarNode, Value: e.name, Line: e.line}, k)
		if len(w.errs) > before {
			return
		}
	}
	val := reflect.New(t.Elem()).Elem()
	w.decode(p, e.line, e.val, val)
	m.SetMapIndex(k, val)
}

func (w *walker) decodeSlice(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		w.mismatch(path, line, n, "must be a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		p := Index(path, i)
		w.doc.record(p, c.Line)
		w.decode(p, c.Line, c, s.Index(i))
	}
	v.Set(s)
}

func (w *walker) decodeArray(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		w.mismatch(path, line, n, "must be a list")
		return
	}
	if len(n.Content) != v.Len() {
		w.add(path, line, "", fmt.Sprintf("must be a list of %d items", v.Len()))
		return
	}
	a := reflect.New(v.Type()).Elem()
	for i, c := range n.Content {
		p := Index(path, i)
		w.doc.record(p, c.Line)
		w.decode(p, c.Line, c, a.Index(i))
	}
	v.Set(a)
}
