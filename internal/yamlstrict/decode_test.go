package yamlstrict

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// level decodes itself, like an enum of a real config.
type level int

const (
	low level = iota + 1
	high
)

func (l *level) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "low":
		*l = low
	case "high":
		*l = high
	default:
		return errors.New("must be low or high")
	}
	return nil
}

// oldStyle uses the function-based UnmarshalYAML of yaml.v2.
type oldStyle struct{ A int }

func (o *oldStyle) UnmarshalYAML(unmarshal func(any) error) error {
	type plain oldStyle
	return unmarshal((*plain)(o))
}

// hostPort decodes itself from text.
type hostPort string

func (h *hostPort) UnmarshalText(b []byte) error {
	if !strings.Contains(string(b), ":") {
		return errors.New("must be host:port")
	}
	*h = hostPort(b)
	return nil
}

// boom panics or fails with a FieldError of its own.
type boom struct{}

func (*boom) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "panic" {
		panic("boom")
	}
	return FieldError{Path: "[1]", Msg: "is odd"}
}

// Inner is inlined into config through a pointer.
type Inner struct {
	Depth int `yaml:"depth"`
}

// anything accepts any value.
type anything struct{}

func (*anything) UnmarshalYAML(*yaml.Node) error { return nil }

type rule struct {
	For   time.Duration `yaml:"for"`
	Limit float64       `yaml:"limit"`
	Level level         `yaml:"level"`
}

// plainRule sets its own defaults and decodes strictly with DecodeNode.
type plainRule rule

func (r *plainRule) UnmarshalYAML(n *yaml.Node) error {
	*r = plainRule{For: time.Minute}
	type plain rule
	return DecodeNode(n, (*plain)(r))
}

// Common is inlined into config.
type Common struct {
	Name string `yaml:"name"`
}

type detector struct {
	CellOverTemperature rule `yaml:"cell_over_temperature"`
	Interval            time.Duration
}

type config struct {
	Common   `yaml:",inline"`
	Enabled  bool            `yaml:"enabled,omitempty"`
	Count    int             `yaml:"count"`
	Small    uint8           `yaml:"small"`
	Ratio    float64         `yaml:"ratio"`
	Tags     []string        `yaml:"tags"`
	Pair     [2]int          `yaml:"pair"`
	Rules    map[string]rule `yaml:"rules"`
	ByNumber map[int]string  `yaml:"by_number"`
	Detector detector        `yaml:"detector"`
	Ptr      *rule           `yaml:"ptr"`
	Plain    plainRule       `yaml:"plain"`
	Extra    any             `yaml:"extra"`
	Raw      yaml.Node       `yaml:"raw"`
	When     time.Time       `yaml:"when"`
	Ignored  string          `yaml:"-"`
	Old      oldStyle        `yaml:"old"`
	Addr     hostPort        `yaml:"addr"`
	Boom     boom            `yaml:"boom"`
	*Inner   `yaml:",inline"`
}

func defaults() config {
	return config{
		Common:   Common{Name: "default"},
		Count:    3,
		Ratio:    0.5,
		Tags:     []string{"x", "y"},
		Rules:    map[string]rule{"kept": {Limit: 1}},
		Detector: detector{CellOverTemperature: rule{For: 5 * time.Minute, Limit: 60, Level: high}},
		Ignored:  "ignored",
	}
}

func TestDecodeBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "unknown key at depth",
			doc:  "detector:\n  interval: 1m\n  cell_over_temprature:\n    for: 5m\n",
			want: `detector.cell_over_temprature: unknown field (line 3)`,
		},
		{
			name: "unknown key at the top",
			doc:  "count: 1\nbogus: 2\n",
			want: `bogus: unknown field (line 2)`,
		},
		{
			name: "ignored field is unknown",
			doc:  "Ignored: x\n",
			want: `Ignored: unknown field (line 1)`,
		},
		{
			name: "duplicate key",
			doc:  "count: 1\nname: a\ncount: 2\n",
			want: `count: duplicate key (first defined at line 1) (line 3)`,
		},
		{
			name: "duplicate key in a map",
			doc:  "rules:\n  a: {}\n  a: {}\n",
			want: `rules.a: duplicate key (first defined at line 2) (line 3)`,
		},
		{
			name: "not a number",
			doc:  "count: many\n",
			want: `count: "many" is not a number (line 1)`,
		},
		{
			name: "quoted number",
			doc:  "ratio: \"0.5\"\n",
			want: `ratio: "0.5" is not a number (line 1)`,
		},
		{
			name: "fraction into an integer",
			doc:  "count: 1.5\n",
			want: `count: "1.5" is not a whole number (line 1)`,
		},
		{
			name: "out of range",
			doc:  "small: 300\n",
			want: `small: "300" is out of range (line 1)`,
		},
		{
			name: "huge integer",
			doc:  "count: 123456789012345678901234567890\n",
			want: `count: "123456789012345678901234567890" is out of range (line 1)`,
		},
		{
			name: "negative unsigned",
			doc:  "small: -1\n",
			want: `small: "-1" must not be negative (line 1)`,
		},
		{
			name: "not a boolean",
			doc:  "enabled: maybe\n",
			want: `enabled: "maybe" is not a boolean (line 1)`,
		},
		{
			name: "quoted boolean",
			doc:  "enabled: 'true'\n",
			want: `enabled: "true" is not a boolean (line 1)`,
		},
		{
			name: "scalar for a list",
			doc:  "tags: foo\n",
			want: `tags: "foo" must be a list (line 1)`,
		},
		{
			name: "mapping for a list",
			doc:  "tags:\n  a: b\n",
			want: `tags: must be a list (line 1)`,
		},
		{
			name: "array length",
			doc:  "pair: [1, 2, 3]\n",
			want: `pair: must be a list of 2 items (line 1)`,
		},
		{
			name: "scalar for a mapping",
			doc:  "detector: 5\n",
			want: `detector: "5" must be a mapping (line 1)`,
		},
		{
			name: "list for a string",
			doc:  "name: [a]\n",
			want: `name: is not a string (line 1)`,
		},
		{
			name: "list item of the wrong type",
			doc:  "tags:\n  - a\n  - {b: c}\n",
			want: `tags[1]: is not a string (line 3)`,
		},
		{
			name: "mapping for a boolean",
			doc:  "enabled: {}\n",
			want: `enabled: is not a boolean (line 1)`,
		},
		{
			name: "list for a number",
			doc:  "ratio: [1]\n",
			want: `ratio: is not a number (line 1)`,
		},
		{
			name: "field of an inline pointer",
			doc:  "depth: deep\n",
			want: `depth: "deep" is not a number (line 1)`,
		},
		{
			name: "function-based UnmarshalYAML decodes strictly",
			doc:  "old: {a: x, b: 1}\n",
			want: "old.a: \"x\" is not a number (line 1)\nold.b: unknown field (line 1)",
		},
		{
			name: "UnmarshalText error",
			doc:  "addr: nohost\n",
			want: `addr: "nohost" must be host:port (line 1)`,
		},
		{
			name: "panic in UnmarshalYAML",
			doc:  "boom: panic\n",
			want: `boom: "panic" internal error: boom (line 1)`,
		},
		{
			name: "FieldError from UnmarshalYAML",
			doc:  "count: 1\nboom: [a, b]\n",
			want: `boom[1]: is odd (line 2)`,
		},
		{
			name: "bad duration",
			doc:  "detector:\n  cell_over_temperature:\n    for: 5 minutes\n",
			want: `detector.cell_over_temperature.for: "5 minutes" is not a valid duration (line 3)`,
		},
		{
			name: "bad map key",
			doc:  "by_number:\n  one: x\n",
			want: `by_number.one: "one" is not a number (line 2)`,
		},
		{
			name: "bad timestamp",
			doc:  "when: tomorrow\n",
			want: `when: "tomorrow" is not a valid timestamp (line 1)`,
		},
		{
			name: "bad custom value",
			doc:  "rules:\n  hot:\n    level: extreme\n",
			want: `rules.hot.level: "extreme" must be low or high (line 3)`,
		},
		{
			name: "bad custom value under a quoted key",
			doc:  "rules:\n  \"a.b\": {level: extreme}\n",
			want: `rules["a.b"].level: "extreme" must be low or high (line 2)`,
		},
		{
			name: "strict decoding inside UnmarshalYAML",
			doc:  "plain:\n  limit: 1\n  bogus: 2\n  level: extreme\n",
			want: "plain.bogus: unknown field (line 3)\n" +
				`plain.level: "extreme" must be low or high (line 4)`,
		},
		{
			name: "several errors at once, in line order",
			doc: "count: x\n" +
				"detector:\n" +
				"  cell_over_temperature:\n" +
				"    limit: hot\n" +
				"    for: soon\n" +
				"bogus: 1\n" +
				"tags: [a, [b]]\n",
			want: `count: "x" is not a number (line 1)` + "\n" +
				`detector.cell_over_temperature.limit: "hot" is not a number (line 4)` + "\n" +
				`detector.cell_over_temperature.for: "soon" is not a valid duration (line 5)` + "\n" +
				`bogus: unknown field (line 6)` + "\n" +
				`tags[1]: is not a string (line 7)`,
		},
		{
			name: "syntax error",
			doc:  "count: 1\n  name: x\n",
			want: `line 2: invalid YAML: mapping values are not allowed in this context`,
		},
		{
			name: "unclosed flow list (reported at the end of the input)",
			doc:  "count: 1\ntags: [a,\n",
			want: `line 3: invalid YAML: did not find expected node content`,
		},
		{
			name: "syntax error on the first line",
			doc:  "count: 1: 2\n",
			want: `line 1: invalid YAML: mapping values are not allowed in this context`,
		},
		{
			name: "parser error",
			doc:  "count: 1\nname: x\n- x\n",
			want: `line 3: invalid YAML: did not find expected key`,
		},
		{
			name: "tab indentation",
			doc:  "detector:\n\tinterval: 1m\n",
			want: `line 2: invalid YAML: found character that cannot start any token`,
		},
		{
			name: "invalid UTF-8",
			doc:  "count: 1\nname: \xff\n",
			want: `line 2: invalid YAML: invalid leading UTF-8 octet`,
		},
		{
			name: "control character",
			doc:  "count: 1\n\nname: a\x01\n",
			want: `line 3: invalid YAML: control characters are not allowed`,
		},
		{
			name: "unknown anchor",
			doc:  "count: 1\nname: *nope\n",
			want: `line 2: invalid YAML: unknown anchor 'nope' referenced`,
		},
		{
			name: "document is a list",
			doc:  "- a\n- b\n",
			want: `line 1: the document must be a mapping`,
		},
		{
			name: "document is a scalar",
			doc:  "hello\n",
			want: `line 1: the document must be a mapping`,
		},
		{
			name: "two documents",
			doc:  "count: 1\n---\ncount: 2\n",
			want: `line 2: only one YAML document is allowed`,
		},
		{
			name: "syntax error in a second document",
			doc:  "count: 1\n---\n[\n",
			want: `line 4: invalid YAML: did not find expected node content`,
		},
		{
			name: "anchor containing itself",
			doc:  "tags: &t [a, *t]\n",
			want: `tags[1]: is not a string (line 1)`,
		},
		{
			name: "bad merge value",
			doc:  "detector:\n  <<: 5\n",
			want: `detector: the value of a merge key (<<) must be a mapping or a list of mappings (line 2)`,
		},
		{
			name: "unknown key brought in by a merge",
			doc:  "ptr: &r {limit: 1, bogus: 2}\ndetector:\n  cell_over_temperature:\n    <<: *r\n",
			want: "detector.cell_over_temperature.bogus: unknown field (line 1)\nptr.bogus: unknown field (line 1)",
		},
		{
			name: "non-scalar key",
			doc:  "? [a]\n: b\n",
			want: `line 1: mapping keys must be scalars`,
		},
		{
			name: "yaml.v3 error for an interface",
			doc:  "extra: {a: 1, a: 2}\n",
			want: `extra: mapping key "a" already defined at line 1 (line 1)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			doc, errs := Decode([]byte(tt.doc), &c)
			if got := errs.Error(); got != tt.want {
				t.Errorf("Decode errors =\n%s\nwant\n%s", got, tt.want)
			}
			if doc == nil {
				t.Errorf("Decode returned a nil Doc")
			}
		})
	}
}

func TestDecodeGood(t *testing.T) {
	shared := &rule{Limit: 7, Level: low}
	tests := []struct {
		name string
		doc  string
		in   func() config
		want func() config
	}{
		{
			name: "empty document keeps defaults",
			doc:  "",
			in:   defaults,
			want: defaults,
		},
		{
			name: "comments only",
			doc:  "# nothing here\n",
			in:   defaults,
			want: defaults,
		},
		{
			name: "explicit empty document",
			doc:  "---\n...\n",
			in:   defaults,
			want: defaults,
		},
		{
			name: "absent keys keep defaults, nested too",
			doc:  "count: 4\ndetector:\n  cell_over_temperature:\n    limit: 55\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Count = 4
				c.Detector.CellOverTemperature.Limit = 55
				return c
			},
		},
		{
			name: "strings keep their text",
			doc:  "name: 07\ntags: [07, 1.50, yes, 2014-06-01, ~x]\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Name = "07"
				c.Tags = []string{"07", "1.50", "yes", "2014-06-01", "~x"}
				return c
			},
		},
		{
			name: "a list replaces the list and a mapping the map",
			doc:  "tags: [z]\nrules:\n  new: {level: low}\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Tags = []string{"z"}
				c.Rules = map[string]rule{"new": {Level: low}}
				return c
			},
		},
		{
			name: "empty list",
			doc:  "tags: []\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Tags = []string{}
				return c
			},
		},
		{
			name: "null keeps values but clears lists, maps and pointers",
			doc:  "count:\nname: ~\ntags:\nrules: null\nptr:\ndetector:\n",
			in: func() config {
				c := defaults()
				c.Ptr = shared
				return c
			},
			want: func() config {
				c := defaults()
				c.Tags = nil
				c.Rules = nil
				return c
			},
		},
		{
			name: "a pointer gets a copy of its default",
			doc:  "ptr:\n  limit: 9\n",
			in: func() config {
				c := defaults()
				c.Ptr = shared
				return c
			},
			want: func() config {
				c := defaults()
				c.Ptr = &rule{Limit: 9, Level: low}
				return c
			},
		},
		{
			name: "scalars of every kind",
			doc: "enabled: yes\ncount: -0x10\nsmall: 255\nratio: 1e3\npair: [1, 2]\n" +
				"by_number: {1: one, 0o2: two}\ndetector: {interval: 90s}\nwhen: 2014-06-01\n",
			in: defaults,
			want: func() config {
				c := defaults()
				c.Enabled = true
				c.Count = -16
				c.Small = 255
				c.Ratio = 1000
				c.Pair = [2]int{1, 2}
				c.ByNumber = map[int]string{1: "one", 2: "two"}
				c.Detector.Interval = 90 * time.Second
				c.When = time.Date(2014, 6, 1, 0, 0, 0, 0, time.UTC)
				return c
			},
		},
		{
			name: "anchors, aliases and merge keys",
			doc: "ptr: &base {limit: 1, level: low, for: 1s}\n" +
				"rules:\n" +
				"  a: *base\n" +
				"  b:\n" +
				"    <<: *base\n" +
				"    limit: 2\n" +
				"  c:\n" +
				"    <<: [{limit: 3}, *base]\n" +
				"tags: &t [p, q]\n" +
				"extra: *t\n",
			in: defaults,
			want: func() config {
				c := defaults()
				c.Ptr = &rule{Limit: 1, Level: low, For: time.Second}
				c.Rules = map[string]rule{
					"a": {Limit: 1, Level: low, For: time.Second},
					"b": {Limit: 2, Level: low, For: time.Second},
					"c": {Limit: 3, Level: low, For: time.Second},
				}
				c.Tags = []string{"p", "q"}
				c.Extra = []any{"p", "q"}
				return c
			},
		},
		{
			name: "inline pointer, text and function-based unmarshalers",
			doc:  "depth: 3\naddr: host:1\nold: {a: 2}\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Inner = &Inner{Depth: 3}
				c.Addr = "host:1"
				c.Old = oldStyle{A: 2}
				return c
			},
		},
		{
			name: "UnmarshalYAML with defaults",
			doc:  "plain: {limit: 2}\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Plain = plainRule{For: time.Minute, Limit: 2}
				return c
			},
		},
		{
			name: "other fields are decoded when one is wrong",
			doc:  "count: x\nname: n\nratio: 2\n",
			in:   defaults,
			want: func() config {
				c := defaults()
				c.Name = "n"
				c.Ratio = 2
				return c
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in()
			_, _ = Decode([]byte(tt.doc), &got)
			got.Raw = yaml.Node{}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	if *shared != (rule{Limit: 7, Level: low}) {
		t.Errorf("a shared default was modified: %+v", *shared)
	}
}

func TestDecodeClean(t *testing.T) {
	tests := []string{
		"",
		"count: 1\n",
		"count: 1\n---\n",
		"raw: {any: [thing, 1]}\nextra: {a: [1, 2]}\n",
		"rules:\n  a: {level: high}\n",
	}
	for _, doc := range tests {
		t.Run(doc, func(t *testing.T) {
			c := defaults()
			if _, errs := Decode([]byte(doc), &c); errs != nil {
				t.Errorf("Decode errors: %v", errs)
			}
		})
	}
}

func TestDocLines(t *testing.T) {
	data := "count: 1\n" +
		"detector:\n" +
		"  cell_over_temperature:\n" +
		"    for: 1m\n" +
		"tags:\n" +
		"  - a\n" +
		"  - b\n" +
		"plain:\n" +
		"  limit: 3\n" +
		"extra:\n" +
		"  k: [1]\n"
	var c config
	doc, errs := Decode([]byte(data), &c)
	if errs != nil {
		t.Fatalf("Decode errors: %v", errs)
	}
	tests := []struct {
		path string
		want int
	}{
		{path: "", want: 1},
		{path: "count", want: 1},
		{path: "detector", want: 2},
		{path: "detector.cell_over_temperature", want: 3},
		{path: "detector.cell_over_temperature.for", want: 4},
		{path: "tags", want: 5},
		{path: "tags[1]", want: 7},
		{path: "plain.limit", want: 9},
		{path: "extra.k[0]", want: 11},
		{path: "ratio", want: 0},
		{path: "tags[2]", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := doc.Line(tt.path); got != tt.want {
				t.Errorf("Line(%q) = %d, want %d", tt.path, got, tt.want)
			}
			if got := doc.Has(tt.path); got != (tt.want > 0) {
				t.Errorf("Has(%q) = %v", tt.path, got)
			}
		})
	}
}

func TestDecodeTargets(t *testing.T) {
	var n int
	var m map[string]int
	var s []string
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "nil", v: nil, want: "yamlstrict: cannot decode into nil: need a non-nil pointer"},
		{name: "not a pointer", v: config{}, want: "yamlstrict: cannot decode into yamlstrict.config: need a non-nil pointer"},
		{name: "nil pointer", v: (*config)(nil), want: "yamlstrict: cannot decode into *yamlstrict.config: need a non-nil pointer"},
		{name: "int", v: &n, want: `line 1: the document is not a whole number`},
		{name: "map", v: &m, want: `a: "x" is not a number (line 1)`},
		{name: "slice", v: &s, want: `line 1: the document must be a list`},
		{name: "bad inline", v: &struct {
			X int `yaml:",inline"`
		}{}, want: `line 1: yamlstrict: option ,inline needs a struct or a map with string keys, not int in struct { X int "yaml:\",inline\"" }`},
		{name: "clashing names", v: &struct {
			A int `yaml:"a"`
			B int `yaml:"a"`
		}{}, want: `line 1: yamlstrict: key "a" appears twice in struct { A int "yaml:\"a\""; B int "yaml:\"a\"" }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Decode([]byte("a: x\n"), tt.v)
			if got := errs.Error(); got != tt.want {
				t.Errorf("Decode errors =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestInlineMap(t *testing.T) {
	type withRest struct {
		Name string         `yaml:"name"`
		Rest map[string]int `yaml:",inline"`
	}
	got := withRest{Rest: map[string]int{"old": 1}}
	_, errs := Decode([]byte("name: n\na: 1\nb: x\n"), &got)
	want := withRest{Name: "n", Rest: map[string]int{"a": 1, "b": 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if want := `b: "x" is not a number (line 3)`; errs.Error() != want {
		t.Errorf("errors = %v, want %s", errs, want)
	}
}

func TestSelfReference(t *testing.T) {
	type tree struct {
		Kids []tree `yaml:"kids"`
	}
	var v tree
	_, errs := Decode([]byte("kids: &k\n  - kids: *k\n"), &v)
	if want := `kids[0].kids[0].kids: anchor "k" refers to itself (line 2)`; errs.Error() != want {
		t.Errorf("errors = %v, want %s", errs, want)
	}
}

func TestExcessiveAliasing(t *testing.T) {
	// A "billion laughs": ten levels of ten aliases to the level below.
	doc := "a0: &a0 [" + strings.Repeat("x, ", 9) + "x]\n"
	for i := 1; i < 10; i++ {
		below := fmt.Sprintf("*a%d", i-1)
		doc += fmt.Sprintf("a%d: &a%d [%s]\n", i, i, strings.Repeat(below+", ", 9)+below)
	}
	tests := []struct {
		name string
		v    any
	}{
		{name: "typed", v: &struct {
			A9 [][][][][][][][][][]string `yaml:"a9"`
			// The other levels go to yaml.Node values, whose lines are
			// recorded all the same.
			Rest map[string]yaml.Node `yaml:",inline"`
		}{}},
		{name: "yaml.Node", v: &map[string]yaml.Node{}},
		{name: "custom", v: &map[string]anything{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Decode([]byte(doc), tt.v)
			if want := "document is too complex: excessive aliasing"; errs.Error() != want {
				t.Errorf("errors = %.500v, want %s", errs, want)
			}
		})
	}
}
