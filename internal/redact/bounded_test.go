package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBoundedRedactsBeforeCutting(t *testing.T) {
	in := strings.Repeat("a", 243) + " 4111111111111111"
	got := Bounded(in, 256)
	if strings.Contains(got, "4111") || !strings.HasSuffix(got, "[card]") {
		t.Fatalf("Bounded = %q", got[240:])
	}
	long := strings.Repeat("é", 200) // 400 bytes
	if got := Bounded(long, 255); len(got) > 255 || !utf8.ValidString(got) {
		t.Fatalf("Bounded cut inside a rune: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := Bounded("short", 256); got != "short" {
		t.Fatalf("Bounded(short) = %q", got)
	}
}
