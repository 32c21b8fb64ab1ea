package main

import (
	"strings"
	"testing"
)

// --runtime.gogc (or GOGC) takes a percentage of at least 1 or off, as Go
// does; anything else stops serve with a message naming the flag.
func TestParseGOGC(t *testing.T) {
	for v, want := range map[string]int{"off": -1, "1": 1, "25": 25, "100": 100} {
		if got, err := parseGOGC(v); err != nil || got != want {
			t.Errorf("parseGOGC(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "0", "-5", "25%", "OFF", "2.5"} {
		if _, err := parseGOGC(v); err == nil || !strings.Contains(err.Error(), "--runtime.gogc") {
			t.Errorf("parseGOGC(%q) = %v, want an error naming --runtime.gogc", v, err)
		}
	}
}
