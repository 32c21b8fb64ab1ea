package csvfile

import (
	"bytes"
	"errors"
	"strings"
	"time"
	"unsafe"
)

// Representable event times: the range of int64 Unix nanoseconds, shrunk to
// whole years so the check is simple.
const (
	minYear = 1678
	maxYear = 2261
)

var errTimeRange = errors.New("out of range (years 1678 to 2261)")

// parseTime parses an RFC 3339 timestamp into Unix nanoseconds. The common
// form (YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)) is parsed by hand without
// allocating; anything else is handed to time.Parse, which has the final
// word. b is not retained.
func parseTime(b []byte) (int64, error) {
	if ns, ok := parseTimeFast(b); ok {
		return ns, nil
	}
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	str := unsafe.String(&b[0], len(b))
	if bytes.ContainsAny(b, "tz") {
		// RFC 3339 allows a lower-case "t" and "z"; time.Parse does not.
		str = strings.ToUpper(str)
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return 0, errors.New("not an RFC 3339 timestamp")
	}
	if y := t.Year(); y < minYear || y > maxYear {
		return 0, errTimeRange
	}
	return t.UnixNano(), nil
}

func digits2(b []byte, i int) (int, bool) {
	c0, c1 := b[i]-'0', b[i+1]-'0'
	if c0 > 9 || c1 > 9 {
		return 0, false
	}
	return int(c0)*10 + int(c1), true
}

// parseTimeFast accepts only well-formed timestamps it can convert exactly;
// on false the caller falls back to time.Parse.
func parseTimeFast(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	yh, ok1 := digits2(b, 0)
	yl, ok2 := digits2(b, 2)
	mo, ok3 := digits2(b, 5)
	d, ok4 := digits2(b, 8)
	h, ok5 := digits2(b, 11)
	mi, ok6 := digits2(b, 14)
	s, ok7 := digits2(b, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return 0, false
	}
	y := yh*100 + yl
	if y < minYear || y > maxYear || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	i := 19
	var frac int64
	if b[i] == '.' {
		i++
		start := i
		scale := int64(100_000_000)
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if i-start >= 9 {
				return 0, false // more than nanosecond precision: let time.Parse decide
			}
			frac += int64(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return 0, false
		}
	}
	var off int
	switch {
	case i == len(b)-1 && b[i] == 'Z':
	case i == len(b)-6 && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, ok1 := digits2(b, i+1)
		om, ok2 := digits2(b, i+4)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		off = (oh*60 + om) * 60
		if b[i] == '-' {
			off = -off
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+s) - int64(off)
	return secs*1e9 + frac, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
