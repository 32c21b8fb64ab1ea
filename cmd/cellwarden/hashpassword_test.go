package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The hash printed is one the web configuration's basic auth accepts for
// the password given, and the password itself is printed nowhere.
func TestHashPasswordMakesAUsableBcryptHash(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"hash-password", "--cost", "4"}, strings.NewReader("c0rrect horse\r\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	hash := strings.TrimSpace(stdout.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("c0rrect horse")); err != nil {
		t.Errorf("hash %q does not match the password: %v", hash, err)
	}
	if strings.Contains(stdout.String()+stderr.String(), "horse") {
		t.Errorf("the password was printed: %q %q", stdout.String(), stderr.String())
	}
}

func TestHashPasswordRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no password", "", nil, "no password on standard input"},
		{"empty line", "\n", nil, "no password on standard input"},
		{"too long for bcrypt", strings.Repeat("x", 73), nil, "longer than bcrypt's 72 bytes"},
		{"cost out of range", "pw", []string{"--cost", "40"}, "--cost must be between 4 and 31"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"hash-password"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tt.want) || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit 1 and %q", code, stdout.String(), stderr.String(), tt.want)
			}
		})
	}
}
