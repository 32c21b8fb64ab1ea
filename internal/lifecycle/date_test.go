package lifecycle

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"2014-09-15", "2014-09-15"},
		{"  2014-09-15\t", "2014-09-15"},
		{"2014-9-5", "2014-09-05"},
		{"2014/09/15", "2014-09-15"},
		{"2001/09/25", "2001-09-25"},
		{"09/15/2014", "2014-09-15"},
		{"9/5/2014", "2014-09-05"},
		{"03/04/2014", "2014-03-04"}, // month first, always
		{"09/15/14", "2014-09-15"},
		{"15.09.2014", "2014-09-15"},
		{"5.9.2014", "2014-09-05"},
		{"20140915", "2014-09-15"},
		{"Sep 15 2014", "2014-09-15"},
		{"Sep 15, 2014", "2014-09-15"},
		{"sept 15 2014", "2014-09-15"},
		{"September 15 2014", "2014-09-15"},
		{"15 Sep 2014", "2014-09-15"},
		{"2014-09-15T23:30:00-05:00", "2014-09-15"}, // the day as written, in its own offset
		{"2014-09-15T01:00:00+09:00", "2014-09-15"},
		{"2014-09-15 08:00:00Z", "2014-09-15"},
		// Leap days.
		{"2016-02-29", "2016-02-29"},
		{"2000-02-29", "2000-02-29"},
		{"02/29/2016", "2016-02-29"},
		{"29.02.2016", "2016-02-29"},
		{"20160229", "2016-02-29"},
		{"2100-02-29", ""},
		{"1900-02-29", ""},
		{"2015-02-29", ""},
		{"Feb 29 2015", ""},
		// Not dates.
		{"", ""},
		{"2014-13-01", ""},
		{"2014-09-31", ""},
		{"15/09/2014", ""}, // month 15
		{"2014-09", ""},
		{"14-09-15", ""},
		{"2014.09.15", ""},
		{"0000-01-01", ""},
		{"20141", ""},
		{"Smarch 15 2014", ""},
		{"2014-09-15x", ""},
		{"n/a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDate(tt.in)
			if got.String() != tt.want || (err == nil) != (tt.want != "") {
				t.Errorf("ParseDate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseDateErrorSaysWhy(t *testing.T) {
	for in, want := range map[string]string{
		"2100-02-29": "is not a day of the calendar (2100-02-29)",
		"31/12/2014": "is not a day of the calendar (2014-31-12)",
		"soon":       errDateFormat.Error(),
	} {
		if _, err := ParseDate(in); err == nil || err.Error() != want {
			t.Errorf("ParseDate(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestParseExcelSerial(t *testing.T) {
	tests := []struct{ in, want string }{
		{"41897", "2014-09-15"},
		{"42429", "2016-02-29"},
		{"61", "1900-03-01"},
		{"2958465", "9999-12-31"},
		{"60", ""}, // Excel's fictitious 1900-02-29
		{"0", ""},
		{"-5", ""},
		{"41897.5", ""},
		{"2958466", ""},
	}
	for _, tt := range tests {
		got, err := ParseExcelSerial(tt.in)
		if got.String() != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("ParseExcelSerial(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func mustDate(t testing.TB, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAddYears(t *testing.T) {
	tests := []struct {
		from  string
		years float64
		want  string
	}{
		{"2014-09-15", 10, "2024-09-15"},
		{"2014-09-15", 1, "2015-09-15"},
		{"2016-02-29", 10, "2026-02-28"}, // no 29 February: the last day of February
		{"2016-02-29", 4, "2020-02-29"},
		{"2016-02-29", 84, "2100-02-28"}, // 2100 is not a leap year
		{"2000-02-29", 400, "2400-02-29"},
		{"2014-09-15", 10.5, "2025-03-16"}, // 182 days
		{"2014-09-15", 0.25, "2014-12-15"}, // 91 days
		{"2023-12-31", 1, "2024-12-31"},
		{"2014-09-15", 0, ""},
		{"2014-09-15", -1, ""},
		{"", 10, ""},
	}
	for _, tt := range tests {
		var from Date
		if tt.from != "" {
			from = mustDate(t, tt.from)
		}
		if got := AddYears(from, tt.years); got.String() != tt.want {
			t.Errorf("AddYears(%s, %v) = %q, want %q", tt.from, tt.years, got, tt.want)
		}
	}
}

func TestDaysBetween(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"2026-03-04", "2026-03-04", 0},
		{"2026-03-04", "2026-08-31", 180},
		{"2016-02-28", "2016-03-01", 2},
		{"2015-02-28", "2015-03-01", 1},
		{"2026-03-04", "2024-06-30", -612},
		{"2014-09-15", "2024-09-15", 3653},
	}
	for _, tt := range tests {
		if got := DaysBetween(mustDate(t, tt.a), mustDate(t, tt.b)); got != tt.want {
			t.Errorf("DaysBetween(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDateIn(t *testing.T) {
	// time/tzdata is embedded (tzdata.go): the zones load everywhere.
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		loc  *time.Location
		want string
	}{
		{"late evening in Chicago is the next day in UTC", time.Date(2024, 9, 14, 23, 30, 0, 0, chicago), time.UTC, "2024-09-15"},
		{"late evening in Chicago is that day in Chicago", time.Date(2024, 9, 14, 23, 30, 0, 0, chicago), chicago, "2024-09-14"},
		{"just after midnight UTC is still yesterday in Chicago", time.Date(2024, 9, 15, 0, 10, 0, 0, time.UTC), chicago, "2024-09-14"},
		{"early morning in Tokyo is yesterday in UTC", time.Date(2024, 9, 15, 7, 0, 0, 0, tokyo), time.UTC, "2024-09-14"},
		{"leap day across zones", time.Date(2016, 3, 1, 2, 0, 0, 0, time.UTC), chicago, "2016-02-29"},
		{"midnight exactly", time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.UTC, "2026-03-04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DateIn(tt.at, tt.loc); got.String() != tt.want {
				t.Errorf("DateIn(%s, %s) = %s, want %s", tt.at, tt.loc, got, tt.want)
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1970-01-01", true},
		{"2000-01-01", true},
		{"2001/09/25", true},
		{"1900-01-01", true},
		{"Jan 1 1970", true},
		{"2001-09-26", false},
		{"2014-09-15", false},
	}
	for _, tt := range tests {
		if got := IsPlaceholder(mustDate(t, tt.in)); got != tt.want {
			t.Errorf("IsPlaceholder(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
