package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cellwarden/cellwarden/internal/inventory"
)

// Date is a calendar day without a time of day or a zone: the inventory's
// date type. The zero value means "not known".
type Date = inventory.Date

var errDateFormat = errors.New("is not a date in a known format (2014-09-15, 2014/09/15, 09/15/2014, 09/15/14, 15.09.2014, 20140915, Sep 15 2014, 15 Sep 2014)")

// ParseDate parses a date as vendors and tools write it. Surrounding
// white space is ignored. The formats, tried in this order:
//
//	2014-09-15                ISO 8601 (the inventory's format); also 2014-9-15
//	2014-09-15T10:00:00+02:00 RFC 3339: the calendar day as written, in its own offset
//	2014/09/15                year first with slashes (NUT battery.date, APC "2001/09/25")
//	09/15/2014                US month/day/year (NUT, apcupsd, APC front panels)
//	09/15/14                  US with a two-digit year, which means 20YY (APC EEPROM)
//	15.09.2014                European day.month.year
//	20140915                  eight digits, YYYYMMDD
//	Sep 15 2014, Sep 15, 2014, September 15 2014, 15 Sep 2014 (month names in English, any case)
//
// Slashes with the year last are always month first: 03/04/2014 is
// March 4. The day must exist (2016-02-29 does, 2100-02-29 does not) and
// the year must be between 1 and 9999. Placeholder dates such as
// 1970-01-01 parse; see IsPlaceholder.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return Date{}, errDateFormat
	}
	if len(s) > 10 && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && s[4] == '-' {
		if t, err := time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "T", 1)); err == nil {
			return inventory.DateOf(t), nil
		}
	}
	switch {
	case split3(s, '-') != nil:
		p := split3(s, '-')
		return civil(p[0], 4, 4, p[1], p[2])
	case split3(s, '/') != nil:
		p := split3(s, '/')
		switch {
		case len(p[0]) == 4:
			return civil(p[0], 4, 4, p[1], p[2])
		case len(p[2]) == 2:
			return civil("20"+p[2], 4, 4, p[0], p[1])
		}
		return civil(p[2], 4, 4, p[0], p[1])
	case split3(s, '.') != nil:
		p := split3(s, '.')
		return civil(p[2], 4, 4, p[1], p[0])
	case len(s) == 8 && digits(s):
		return civil(s[:4], 4, 4, s[4:6], s[6:])
	}
	return named(s)
}

// split3 splits s into three non-empty parts at sep, or returns nil.
func split3(s string, sep byte) []string {
	p := strings.Split(s, string(sep))
	if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
		return nil
	}
	return p
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// civil builds the date year-month-day from decimal parts: the year with
// minLen..maxLen digits, month and day with one or two.
func civil(year string, minLen, maxLen int, month, day string) (Date, error) {
	if len(year) < minLen || len(year) > maxLen || !digits(year) || len(month) > 2 || !digits(month) || len(day) > 2 || !digits(day) {
		return Date{}, errDateFormat
	}
	y, _ := strconv.Atoi(year)
	m, _ := strconv.Atoi(month)
	d, _ := strconv.Atoi(day)
	return makeDate(y, time.Month(m), d)
}

// makeDate returns the date y-m-d, or an error when there is no such day.
func makeDate(y int, m time.Month, d int) (Date, error) {
	t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if y < 1 || y > 9999 || t.Month() != m || t.Day() != d {
		return Date{}, fmt.Errorf("is not a day of the calendar (%04d-%02d-%02d)", y, int(m), d)
	}
	return inventory.DateOf(t), nil
}

// named parses "Sep 15 2014", "Sep 15, 2014", "September 15 2014" and
// "15 Sep 2014".
func named(s string) (Date, error) {
	f := strings.Fields(strings.ReplaceAll(s, ",", " "))
	if len(f) != 3 {
		return Date{}, errDateFormat
	}
	if m, ok := monthName(f[0]); ok {
		return civil(f[2], 4, 4, strconv.Itoa(int(m)), f[1])
	}
	if m, ok := monthName(f[1]); ok {
		return civil(f[2], 4, 4, strconv.Itoa(int(m)), f[0])
	}
	return Date{}, errDateFormat
}

func monthName(s string) (time.Month, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	for m := time.January; m <= time.December; m++ {
		full := strings.ToLower(m.String())
		if s == full || s == full[:3] || (m == time.September && s == "sept") {
			return m, true
		}
	}
	return 0, false
}

// excelEpoch is day 0 of Excel's 1900 date system. Serial 60 is Excel's
// fictitious 1900-02-29, so serials from 61 on count from this day.
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// ParseExcelSerial parses a spreadsheet serial day number in the 1900 date
// system, as a spreadsheet exports a date cell formatted as a number:
// 41897 is 2014-09-15. Only whole numbers from 61 (1900-03-01) to 2958465
// (9999-12-31) are accepted; lower serials are off by one in that system
// and never a battery's date.
func ParseExcelSerial(s string) (Date, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || !digits(s) || n < 61 || n > 2958465 {
		return Date{}, errors.New("is not a spreadsheet serial day number from 61 to 2958465")
	}
	return inventory.DateOf(excelEpoch.AddDate(0, 0, n)), nil
}

// DateIn returns the calendar day of the instant t in loc: the day a
// person in that zone would write on a form. 2024-09-14T23:30:00-05:00 is
// 2024-09-15 in UTC and 2024-09-14 in America/Chicago.
func DateIn(t time.Time, loc *time.Location) Date {
	return inventory.DateOf(t.In(loc))
}

// AddYears returns the day years after d: whole years on the calendar
// (2014-09-15 + 10 is 2024-09-15; a 29 February start ends on 28
// February of a year that has none), then any fraction of a year as whole
// days of 365.25 rounded down (2014-09-15 + 10.5 is 2025-03-16). It
// returns the zero Date for the zero Date or years that are not finite
// or not positive.
func AddYears(d Date, years float64) Date {
	if d.IsZero() || !(years > 0) || math.IsInf(years, 0) || years > 9999 {
		return Date{}
	}
	whole := math.Floor(years)
	t := d.Time()
	y, m, day := t.Date()
	ny := y + int(whole)
	if m == time.February && day == 29 && !isLeap(ny) {
		day = 28
	}
	if ny > 9999 {
		return Date{}
	}
	t = time.Date(ny, m, day, 0, 0, 0, 0, time.UTC)
	extra := int(math.Floor((years - whole) * 365.25))
	return inventory.DateOf(t.AddDate(0, 0, extra))
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// AddDays returns the day n days after d (before for negative n); the zero
// Date for the zero Date.
func AddDays(d Date, n int) Date {
	if d.IsZero() {
		return Date{}
	}
	return inventory.DateOf(d.Time().AddDate(0, 0, n))
}

// DaysBetween returns the number of days from a to b: positive when b is
// later. Both must be known.
func DaysBetween(a, b Date) int {
	return int(b.Time().Sub(a.Time()).Hours() / 24)
}

// DefaultPlaceholders are the dates devices, tools and spreadsheets write
// when nobody entered one. A placeholder is never used as a battery's date;
// it is reported as a data problem instead.
var DefaultPlaceholders = []struct {
	Date string
	Why  string
}{
	{"0001-01-01", "the zero date of many programs"},
	{"1899-12-30", "day 0 of spreadsheets"},
	{"1899-12-31", "day 0 of spreadsheets"},
	{"1900-01-01", "an empty date in spreadsheets and ERP systems"},
	{"1970-01-01", "the Unix epoch: a timestamp of 0"},
	{"1980-01-01", "the DOS/FAT epoch"},
	{"2000-01-01", "day 0 of SunSpec 802 WarrDt and of many firmware clocks"},
	{"2001-09-25", "the factory default battery date of APC units (2001/09/25)"},
}

// placeholderWhy returns why d is a placeholder, or "".
func placeholderWhy(d Date, extra []Date) string {
	s := d.String()
	for _, p := range DefaultPlaceholders {
		if p.Date == s {
			return p.Why
		}
	}
	for _, e := range extra {
		if e == d {
			return "listed in lifecycle.placeholder_dates"
		}
	}
	return ""
}

// IsPlaceholder reports whether d is one of DefaultPlaceholders.
func IsPlaceholder(d Date) bool { return placeholderWhy(d, nil) != "" }
