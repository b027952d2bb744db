package redact

import (
	"strings"
	"testing"
)

// FuzzRedact: String never panics, and its output never contains a
// Luhn-valid 16-digit card number (first digit 2-6, 8 or 9, as 16-digit
// card numbers start) that stood alone in the input (between spaces or
// line ends: digits inside a word or a longer number are not card numbers).
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"card 4242 4242 4242 4242 12/27", "4242-4242-4242-4242", "a@b.io", "+44 (0)20 7946 0958",
		"DE89 3704 0044 0532 0130 00", "Bearer abcdefghijkl", "eyJhbGciOiJub25lIn0.eyJ9.", "123-45-6789",
		"(555) 123-4567", "2026-12-01 10:30:00", "", "@", "+", "(", "eyJ..", "x@y.zz.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if len(s) > 0 && out == "" {
			t.Fatalf("String(%q) is empty", s)
		}
		for _, run := range standaloneCards(s) {
			if standsAlone(out, run) {
				t.Fatalf("card %s survived: %q -> %q", run, s, out)
			}
		}
		_ = Replace(s, PII, LastFour)
	})
}

// standaloneCards lists the 16-digit runs of s that a card detector must
// catch: Luhn-valid, first digit 2 to 6, not touching a letter, digit or
// a character that joins numbers.
func standaloneCards(s string) []string {
	var out []string
	for i := 0; i+16 <= len(s); i++ {
		run := s[i : i+16]
		ok := run[0] >= '2' && run[0] <= '6' || run[0] == '8' || run[0] == '9'
		for k := 0; ok && k < 16; k++ {
			ok = isDigit(run[k])
		}
		if !ok || !luhn(run) {
			continue
		}
		if i > 0 && !isSpace(s[i-1]) || i+16 < len(s) && !isSpace(s[i+16]) {
			continue
		}
		out = append(out, run)
	}
	return out
}

// standsAlone reports whether run occurs in s between spaces or line ends.
// The same digits inside a longer number are not the card: the input
// "222222222222200001 2222222222222000" keeps its first, longer number.
func standsAlone(s, run string) bool {
	for from := 0; ; {
		i := strings.Index(s[from:], run)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(run)
		if (i == 0 || isSpace(s[i-1])) && (end == len(s) || isSpace(s[end])) {
			return true
		}
		from = i + 1
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' }
