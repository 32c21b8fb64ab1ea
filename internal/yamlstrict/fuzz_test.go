package yamlstrict

import (
	"slices"
	"testing"
)

func FuzzDecode(f *testing.F) {
	seeds := []string{
		"",
		"count: 1\nname: 07\ntags: [a, b]\n",
		"detector:\n  cell_over_temperature:\n    for: 5m\n    limit: 60\n    level: high\n",
		"rules:\n  a: &r {level: low}\n  b:\n    <<: *r\n    limit: 2\n",
		"tags: &t [a, *t]\n",
		"ptr: &p {limit: 1}\nplain: *p\nextra: {x: *p}\nraw: *p\n",
		"count: 1\n---\ncount: 2\n",
		"- a\n",
		"? [a]\n: b\n",
		"count: 1.5\nsmall: -1\nenabled: maybe\npair: [1]\nby_number: {x: 1}\nwhen: now\n",
		"detector: {<<: [5]}\n",
		"name: !!binary aGk=\n",
		"a: &a {<<: *a}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaults()
		doc, errs := Decode(data, &c)
		if doc == nil {
			t.Fatal("nil Doc")
		}
		sorted := slices.IsSortedFunc(errs, func(a, b FieldError) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return 0
		})
		if !sorted {
			t.Errorf("errors are not sorted by line: %v", errs)
		}
		for _, e := range errs {
			if e.Msg == "" {
				t.Errorf("error without a message: %#v", e)
			}
		}
		var m map[string]any
		_, _ = Decode(data, &m)
	})
}
