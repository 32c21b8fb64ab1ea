package yamlstrict

import (
	"errors"
	"strings"
	"testing"
)

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{
			name: "path value line",
			err:  FieldError{Path: "detector.cell_over_temperature.for", Line: 7, Value: "5 minutes", Msg: "is not a valid duration"},
			want: `detector.cell_over_temperature.for: "5 minutes" is not a valid duration (line 7)`,
		},
		{
			name: "no value",
			err:  FieldError{Path: "detector.x", Line: 4, Msg: "unknown field"},
			want: `detector.x: unknown field (line 4)`,
		},
		{
			name: "no line",
			err:  FieldError{Path: "a", Value: "b", Msg: "is bad"},
			want: `a: "b" is bad`,
		},
		{
			name: "no path",
			err:  FieldError{Line: 3, Msg: "invalid YAML: oops"},
			want: `line 3: invalid YAML: oops`,
		},
		{
			name: "nothing but a message",
			err:  FieldError{Msg: "invalid YAML: oops"},
			want: `invalid YAML: oops`,
		},
		{
			name: "quotes are escaped",
			err:  FieldError{Path: "a", Line: 1, Value: "say \"hi\"\n", Msg: "is bad"},
			want: `a: "say \"hi\"\n" is bad (line 1)`,
		},
		{
			name: "long values are shortened",
			err:  FieldError{Path: "a", Line: 1, Value: strings.Repeat("é", 50), Msg: "is bad"},
			want: `a: "` + strings.Repeat("é", 40) + `..." is bad (line 1)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestErrorsAndSource(t *testing.T) {
	es := Errors{
		{Path: "a", Line: 1, Msg: "unknown field"},
		{Line: 2, Msg: "only one YAML document is allowed"},
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "errors", err: es, want: "a: unknown field (line 1)\nline 2: only one YAML document is allowed"},
		{name: "source", err: es.In("x.yaml"), want: "x.yaml: a: unknown field (line 1)\nx.yaml: line 2: only one YAML document is allowed"},
		{name: "empty source", err: es.In(""), want: "a: unknown field (line 1)\nline 2: only one YAML document is allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
			var got Errors
			if !errors.As(tt.err, &got) || len(got) != len(es) {
				t.Errorf("errors.As(Errors) = %v", got)
			}
			var fe FieldError
			if !errors.As(tt.err, &fe) || fe != es[0] {
				t.Errorf("errors.As(FieldError) = %v", fe)
			}
		})
	}
}

func TestEmptyErrors(t *testing.T) {
	var es Errors
	if es.Err() != nil || es.In("x") != nil {
		t.Errorf("empty Errors must give nil errors")
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{got: Key("", "a"), want: "a"},
		{got: Key("a", "b_c-d"), want: "a.b_c-d"},
		{got: Key("a", "b.c"), want: `a["b.c"]`},
		{got: Key("", ""), want: `[""]`},
		{got: Index("a", 3), want: "a[3]"},
		{got: Index(Key("a", "x y"), 0), want: `a["x y"][0]`},
		{got: join("a", "b"), want: "a.b"},
		{got: join("a", "[1]"), want: "a[1]"},
		{got: join("", "b"), want: "b"},
		{got: join("a", ""), want: "a"},
		{got: parent("a.b[2]"), want: "a.b"},
		{got: parent("a.b"), want: "a"},
		{got: parent("a"), want: ""},
		{got: parent(""), want: ""},
		{got: parent(`a["x.]y"]`), want: "a"},
		{got: parent(`a["x.]y"].b`), want: `a["x.]y"]`},
		{got: parent(`a["bad`), want: "a"},
		{got: parent(`a[2`), want: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	type entry struct {
		Name string `yaml:"name"`
		Size int    `yaml:"size"`
	}
	type doc struct {
		Entries []entry `yaml:"entries"`
	}
	data := []byte("entries:\n  - name: a\n    size: -1\n  - size: many\n")
	var d doc
	yd, errs := Decode(data, &d)
	p := yd.Problems()
	p.Append(errs...)
	p.Add("entries[0].size", d.Entries[0].Size, "must be > 0")
	p.Add("entries[1].size", nil, "must be > 0") // already reported by Decode
	p.Add("entries[1].name", nil, "is required")
	p.Add("entries[7].name", nil, "is required")
	p.Add("", nil, "needs %d entries", 3)
	p.Add("title", nil, "is required")
	want := "title: is required\n" +
		"line 1: needs 3 entries\n" +
		"entries[7].name: is required (line 1)\n" +
		`entries[0].size: "-1" must be > 0 (line 3)` + "\n" +
		"entries[1].name: is required (line 4)\n" +
		`entries[1].size: "many" is not a number (line 4)`
	if got := p.Err().Error(); got != want {
		t.Errorf("Err() =\n%s\nwant\n%s", got, want)
	}
	if !p.Has("entries[1].name") || p.Has("entries[0].name") {
		t.Errorf("Has is wrong")
	}
	if got := (&Doc{}).Problems().Err(); got != nil {
		t.Errorf("empty Problems: Err() = %v, want nil", got)
	}
}
