// Package csvfile reads telemetry in the long-format CSV of
// shared/spec/interfaces.md §1:
//
//	time,ups,string,module,cell,metric,value
//
// one reading per row. Files ending in .gz (or starting with the gzip magic
// bytes) are decompressed; "-" is standard input. Every malformed row is
// reported with its file and line, counted by reason and skipped; the rest
// keeps flowing. The reader never panics on input.
//
// The common row (no quotes, a timestamp in the usual RFC 3339 form, a
// known entity) is parsed without allocating.
package csvfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cellwarden/cellwarden/internal/telemetry"
)

// Header is the exact first line of a telemetry file.
const Header = "time,ups,string,module,cell,metric,value"

// MaxLineBytes is the longest row the reader accepts; longer rows are
// skipped as ReasonTooLong.
const MaxLineBytes = 64 << 10

// Column indexes of a row.
const (
	colTime = iota
	colUPS
	colString
	colModule
	colCell
	colMetric
	colValue
	numCols
)

type entityEntry struct {
	id    telemetry.EntityID
	level telemetry.Level
}

// Reader reads Samples from one telemetry file. It is not safe for
// concurrent use.
type Reader struct {
	// OnBadRow, when set, is called for every skipped row before Next
	// goes on to the following row. The BadRow does not alias reader
	// memory.
	OnBadRow func(BadRow)

	source string
	br     *bufio.Reader
	reg    *telemetry.Registry
	closer io.Closer
	line   int
	stats  Stats

	entities map[string]entityEntry // raw "ups,string,module,cell" bytes -> entity
	prevTime [64]byte               // raw time field of the previous row
	prevLen  int                    // 0: no cached time
	prevNS   int64
	lastNS   int64 // time of the last accepted row
	started  bool  // lastNS is meaningful

	held      []heldRow          // rows after a jump ahead, awaiting a verdict
	heldTimes int                // distinct times among held
	ready     []telemetry.Sample // accepted rows to return before reading on
	readyPos  int
	fields    [numCols][]byte
}

// Open opens path for reading ("-" is standard input) and checks the
// header. The caller must Close the reader.
func Open(path string, reg *telemetry.Registry) (*Reader, error) {
	var f io.ReadCloser
	source := path
	if path == "-" {
		f = io.NopCloser(os.Stdin)
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		f = file
	}
	r, err := newReader(f, source, reg, strings.HasSuffix(path, ".gz"))
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader reads telemetry from rd, naming it source in messages, and
// checks the header. Gzip input is recognised by its magic bytes.
func NewReader(rd io.Reader, source string, reg *telemetry.Registry) (*Reader, error) {
	return newReader(io.NopCloser(rd), source, reg, false)
}

func newReader(rc io.ReadCloser, source string, reg *telemetry.Registry, gz bool) (*Reader, error) {
	br := bufio.NewReaderSize(rc, MaxLineBytes)
	if !gz {
		if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
			gz = true
		}
	}
	closer := io.Closer(rc)
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: not a gzip file: %w", source, err)
		}
		br = bufio.NewReaderSize(zr, MaxLineBytes)
		closer = multiCloser{zr, rc}
	}
	r := &Reader{
		source:   source,
		br:       br,
		reg:      reg,
		closer:   closer,
		entities: make(map[string]entityEntry),
	}
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	return r, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (r *Reader) readHeader() error {
	line, err := r.readLine()
	if err == io.EOF {
		return fmt.Errorf("%s: empty file: no header", r.source)
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%s:1: first line longer than %d bytes: not a telemetry CSV (or lines end in CR only)", r.source, MaxLineBytes)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.source, err)
	}
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if string(line) != Header {
		if len(line) > 120 {
			line = append(line[:120:120], "..."...)
		}
		return fmt.Errorf("%s:1: header must be %q, got %q", r.source, Header, line)
	}
	return nil
}

// readLine returns the next line without its line ending. The slice is
// valid until the next call. A line longer than the buffer is consumed and
// returned truncated with bufio.ErrBufferFull.
func (r *Reader) readLine() ([]byte, error) {
	r.line++
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, bufio.ErrBufferFull
	}
	if err != nil {
		if err != io.EOF || len(line) == 0 {
			return nil, err
		}
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, nil
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Source returns the name used in messages.
func (r *Reader) Source() string { return r.source }

// Close releases the underlying file.
func (r *Reader) Close() error { return r.closer.Close() }

// Next returns the next valid Sample, skipping (and reporting) bad rows. It
// returns io.EOF at the end of the input and any other error only when the
// input cannot be read further.
//
// Rows must be in non-decreasing time order. A row more than JumpAhead
// later than the previous one is held back, with the rows after it, until
// the file shows which timeline is right: if a row close to the old one
// follows, the held rows were a mistyped clock and are skipped as
// bad_time outliers; once the held rows span three distinct later times
// (or the file ends) the jump was a real gap and they are returned.
func (r *Reader) Next() (telemetry.Sample, error) {
	for {
		if r.readyPos < len(r.ready) {
			s := r.ready[r.readyPos]
			r.readyPos++
			return s, nil
		}
		r.ready, r.readyPos = r.ready[:0], 0
		line, err := r.readLine()
		if errors.Is(err, bufio.ErrBufferFull) {
			r.stats.Rows++
			r.bad(r.line, ReasonTooLong, fmt.Sprintf("row longer than %d bytes", MaxLineBytes))
			continue
		}
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("%s:%d: %w", r.source, r.line, err)
			} else if len(r.held) > 0 {
				r.release()
				continue
			}
			return telemetry.Sample{}, err
		}
		if len(line) == 0 {
			continue
		}
		r.stats.Rows++
		s, reason, detail := r.parse(line)
		if reason != 0 {
			r.bad(r.line, reason, detail)
			continue
		}
		if r.order(s, r.line) {
			return s, nil
		}
	}
}

// JumpAhead is how far a row's time may run ahead of the previous row's
// before the reader suspects a mistyped clock (see Next).
const JumpAhead = time.Hour

// heldTimes is how many distinct times the held rows must span for a jump
// to be taken as real; maxHeld bounds the memory held rows take.
const (
	heldTimes = 3
	maxHeld   = 1 << 16
)

type heldRow struct {
	s    telemetry.Sample
	line int
}

// order enforces time order on a parsed row. It returns true when s is to
// be returned at once; otherwise s was skipped, held back, or queued in
// r.ready.
func (r *Reader) order(s telemetry.Sample, line int) bool {
	if len(r.held) == 0 {
		switch {
		case r.started && s.Time < r.lastNS:
			r.bad(line, ReasonBackwards, fmt.Sprintf("time %s is before the previous row's %s (rows must be in time order)",
				fmtTime(s.Time), fmtTime(r.lastNS)))
			return false
		case r.started && s.Time-r.lastNS > int64(JumpAhead):
			r.held = append(r.held, heldRow{s, line})
			r.heldTimes = 1
			return false
		}
		r.accept(s)
		return true
	}
	last := r.held[len(r.held)-1].s.Time
	switch {
	case s.Time >= r.lastNS && s.Time-r.lastNS <= int64(JumpAhead):
		// Back on the old timeline: the held rows were outliers.
		for _, h := range r.held {
			r.bad(h.line, ReasonTime, fmt.Sprintf("time %s is %s ahead of the rows around it; skipped as an outlier",
				fmtTime(h.s.Time), time.Duration(h.s.Time-r.lastNS).Round(time.Second)))
		}
		r.held = r.held[:0]
		r.accept(s)
		return true
	case s.Time < last:
		r.bad(line, ReasonBackwards, fmt.Sprintf("time %s is before the previous row's %s (rows must be in time order)",
			fmtTime(s.Time), fmtTime(last)))
		return false
	}
	if s.Time != last {
		r.heldTimes++
	}
	r.held = append(r.held, heldRow{s, line})
	if r.heldTimes >= heldTimes || len(r.held) >= maxHeld {
		r.release()
	}
	return false
}

// release accepts every held row: the jump was real.
func (r *Reader) release() {
	for _, h := range r.held {
		r.accept(h.s)
		r.ready = append(r.ready, h.s)
	}
	r.held = r.held[:0]
}

func (r *Reader) accept(s telemetry.Sample) {
	r.started, r.lastNS = true, s.Time
	r.stats.Samples++
	if math.IsNaN(s.Value) {
		r.stats.NoReading++
	}
}

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func (r *Reader) bad(line int, reason Reason, detail string) {
	r.stats.Skipped[reason]++
	if r.OnBadRow != nil {
		r.OnBadRow(BadRow{Source: r.source, Line: line, Reason: reason, Detail: detail})
	}
}

// split cuts line into the 7 fields without allocating and returns the
// number of fields. Quoted rows go the slow way; broken quoting returns
// -column (1-based) of the offending field.
func (r *Reader) split(line []byte) int {
	if bytes.IndexByte(line, '"') >= 0 {
		return r.splitQuoted(line)
	}
	n := 0
	for ; n < numCols-1; n++ {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			r.fields[n] = line
			return n + 1
		}
		r.fields[n] = line[:i]
		line = line[i+1:]
	}
	r.fields[n] = line
	return numCols + bytes.Count(line, []byte{','})
}

// splitQuoted handles RFC 4180 quoting ("a,b" and "" inside quotes).
func (r *Reader) splitQuoted(line []byte) int {
	n := 0
	for {
		var field []byte
		if len(line) > 0 && line[0] == '"' {
			line = line[1:]
			for {
				i := bytes.IndexByte(line, '"')
				if i < 0 {
					return -(n + 1) // unterminated quote
				}
				field = append(field, line[:i]...)
				line = line[i+1:]
				if len(line) > 0 && line[0] == '"' {
					field = append(field, '"')
					line = line[1:]
					continue
				}
				break
			}
			if len(line) > 0 && line[0] != ',' {
				return -(n + 1) // text after closing quote
			}
		} else {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				i = len(line)
			}
			field = line[:i]
			if bytes.IndexByte(field, '"') >= 0 {
				return -(n + 1) // bare quote inside unquoted field
			}
			line = line[i:]
		}
		if n < numCols {
			r.fields[n] = field
		}
		n++
		if len(line) == 0 {
			return n
		}
		line = line[1:] // the comma
	}
}

func (r *Reader) parse(line []byte) (telemetry.Sample, Reason, string) {
	var s telemetry.Sample
	switch n := r.split(line); {
	case n < 0:
		return s, ReasonColumns, fmt.Sprintf("malformed quoting in column %d", -n)
	case n != numCols:
		return s, ReasonColumns, fmt.Sprintf("expected %d columns, got %d", numCols, n)
	}
	f := &r.fields

	// Time, with a one-entry cache: rows of one poll share a timestamp.
	tf := f[colTime]
	if r.prevLen > 0 && string(tf) == string(r.prevTime[:r.prevLen]) {
		s.Time = r.prevNS
	} else {
		ns, err := parseTime(tf)
		if err != nil {
			return s, ReasonTime, fmt.Sprintf("time %q: %v", tf, err)
		}
		s.Time = ns
		if len(tf) <= len(r.prevTime) {
			r.prevLen = copy(r.prevTime[:], tf)
			r.prevNS = ns
		} else {
			r.prevLen = 0
		}
	}
	m, ok := telemetry.ParseMetric(bytesString(f[colMetric]))
	if !ok {
		return s, ReasonMetric, fmt.Sprintf("unknown metric %q", f[colMetric])
	}
	s.Metric = m

	ent, reason, detail := r.entity(line)
	if reason != 0 {
		return s, reason, detail
	}
	if ent.level != m.Level() {
		info := r.reg.Info(ent.id)
		return s, ReasonLevel, fmt.Sprintf("metric %s is %s-level but the row names %s %q",
			m, m.Level(), ent.level, info.Entity.Path())
	}
	s.Entity = ent.id

	v, err := parseValue(f[colValue])
	if err != nil {
		return s, ReasonValue, fmt.Sprintf("value %q: %v", f[colValue], err)
	}
	s.Value = v
	return s, 0, ""
}

// entity resolves the identity columns, caching by their raw bytes.
func (r *Reader) entity(line []byte) (entityEntry, Reason, string) {
	f := &r.fields
	var key []byte
	if inLine(line, f[colUPS]) && inLine(line, f[colCell]) {
		// Unquoted row: the four identity fields are one contiguous span.
		start := offset(line, f[colUPS])
		end := offset(line, f[colCell]) + len(f[colCell])
		key = line[start:end]
		if e, ok := r.entities[string(key)]; ok {
			return e, 0, ""
		}
	}
	e := telemetry.Entity{
		UPS:    string(f[colUPS]),
		String: string(f[colString]),
		Module: string(f[colModule]),
		Cell:   string(f[colCell]),
	}
	id, err := r.reg.Intern(e)
	if err != nil {
		return entityEntry{}, ReasonIdentity, fmt.Sprintf("entity ups=%q string=%q module=%q cell=%q: %v",
			e.UPS, e.String, e.Module, e.Cell, err)
	}
	entry := entityEntry{id: id, level: e.Level()}
	if key != nil {
		r.entities[string(key)] = entry
	}
	return entry, 0, ""
}

// inLine reports whether field is a sub-slice of line (false for fields
// rebuilt by splitQuoted).
func inLine(line, field []byte) bool {
	if len(line) == 0 {
		return false
	}
	lp := uintptr(unsafe.Pointer(unsafe.SliceData(line)))
	fp := uintptr(unsafe.Pointer(unsafe.SliceData(field)))
	return fp >= lp && fp+uintptr(len(field)) <= lp+uintptr(len(line))
}

func offset(line, field []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(field))) - uintptr(unsafe.Pointer(unsafe.SliceData(line))))
}

// bytesString views b as a string for calls that do not retain it.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseValue accepts an empty field or NaN (no reading) and plain decimal
// numbers with optional sign, fraction and exponent. Hexadecimal, Inf,
// underscores and spaces are rejected.
func parseValue(b []byte) (float64, error) {
	if len(b) == 0 || (len(b) == 3 && (b[0]|0x20) == 'n' && (b[1]|0x20) == 'a' && (b[2]|0x20) == 'n') {
		return math.NaN(), nil
	}
	if !isDecimal(b) {
		return 0, errors.New("not a decimal number")
	}
	v, err := strconv.ParseFloat(bytesString(b), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, errors.New("out of range")
	}
	return v, nil
}

func isDecimal(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	mant := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
		mant++
	}
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			mant++
		}
	}
	if mant == 0 {
		return false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		exp := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(b)
}
