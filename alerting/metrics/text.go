package metrics

import (
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// textWriter is the sink that writes the text exposition: into a pooled
// buffer, handed on (to the response or to a gzipper) whenever it has
// grown past flushAt between two batches. It is also the io.Writer that
// expfmt writes the Gatherer's families into.
type textWriter struct {
	buf   []byte
	bp    *[]byte // where buf goes back to the pool
	pools *pools
	w     io.Writer // when gz is nil
	gz    *gzipper
	cur   *family // whose HELP and TYPE were written last
	err   error
}

const flushAt = 64 << 10

func newTextWriter(w io.Writer, compress bool, p *pools) *textWriter {
	bp := p.bufs.Get().(*[]byte)
	t := &textWriter{buf: (*bp)[:0], bp: bp, pools: p, w: w}
	if compress {
		t.gz = startGzipper(w, p)
	}
	return t
}

// close writes what is left and returns the first error.
func (t *textWriter) close() error {
	t.flush()
	if t.gz != nil {
		// The gzipper's own error says more than errGzip.
		if err := t.gz.finish(); err != nil {
			t.err = err
		}
	}
	*t.bp = t.buf[:0]
	t.pools.bufs.Put(t.bp)
	t.buf, t.bp = nil, nil
	return t.err
}

func (t *textWriter) unlocked() error {
	if len(t.buf) >= flushAt {
		return t.flush()
	}
	return t.err
}

func (t *textWriter) flush() error {
	switch {
	case t.err != nil || len(t.buf) == 0:
		t.buf = t.buf[:0]
	case t.gz != nil:
		t.buf, t.err = t.gz.swap(t.buf)
	default:
		_, t.err = t.w.Write(t.buf)
		t.buf = t.buf[:0]
	}
	return t.err
}

func (t *textWriter) start(f *family) {
	if t.cur != f {
		t.cur = f
		t.buf = append(t.buf, f.head...)
	}
	t.buf = append(t.buf, f.name...)
	t.buf = append(t.buf, '{')
}

func (t *textWriter) end(v float64) {
	t.buf = append(t.buf, '}', ' ')
	t.buf = appendFloat(t.buf, v)
	t.buf = append(t.buf, '\n')
}

func (t *textWriter) entity(f *family, _ telemetry.EntityID, cell, pairs []byte, split int, sensor string, v float64) {
	t.start(f)
	if cell != nil {
		t.buf = append(t.buf, `cell="`...)
		t.buf = append(t.buf, cell...)
		t.buf = append(t.buf, `",`...)
	}
	if sensor != "" {
		t.buf = append(t.buf, pairs[:split]...)
		t.buf = appendPair(t.buf, "sensor", sensor)
		t.buf = append(t.buf, ',')
		pairs = pairs[split:]
	}
	t.buf = append(t.buf, pairs...)
	t.end(v)
}

func (t *textWriter) series(f *family, v float64, values []string) {
	t.start(f)
	for k, i := range f.byName {
		if k > 0 {
			t.buf = append(t.buf, ',')
		}
		t.buf = appendPair(t.buf, f.labels[i], values[i])
	}
	t.end(v)
}

// Write, WriteString, WriteByte and WriteRune let expfmt write into the
// buffer directly.
func (t *textWriter) Write(p []byte) (int, error) {
	t.cur = nil
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *textWriter) WriteString(s string) (int, error) {
	t.cur = nil
	t.buf = append(t.buf, s...)
	return len(s), nil
}

func (t *textWriter) WriteByte(c byte) error {
	t.cur = nil
	t.buf = append(t.buf, c)
	return nil
}

func (t *textWriter) WriteRune(r rune) (int, error) {
	t.cur = nil
	n := len(t.buf)
	t.buf = utf8.AppendRune(t.buf, r)
	return len(t.buf) - n, nil
}

// appendFloat appends v as expfmt writes it.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 0:
		return append(b, '0') // also -0
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendPairs appends the label pairs of e (identifiers finest first, as
// their names sort) and returns the length of its finest pair with its
// comma (of all of them for a UPS).
func appendPairs(b []byte, e telemetry.Entity) ([]byte, int) {
	start, split := len(b), 0
	for _, p := range [...]struct{ name, value string }{{"cell", e.Cell}, {"module", e.Module}, {"string", e.String}, {"ups", e.UPS}} {
		if p.value == "" {
			continue
		}
		if len(b) > start {
			b = append(b, ',')
			if split == 0 {
				split = len(b) - start
			}
		}
		b = appendPair(b, p.name, p.value)
	}
	if split == 0 {
		split = len(b) - start
	}
	return b, split
}

func appendPair(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value)
	return append(b, '"')
}

// appendEscaped appends a label value escaped as the text format wants
// it: backslash, double quote and line feed.
func appendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// escapedLen is the length of v escaped.
func escapedLen(v string) int {
	n := len(v)
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '"' || c == '\n' {
			n++
		}
	}
	return n
}

// helpEscaper escapes HELP text as expfmt does.
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
