package identity

import (
	"testing"
	"time"
)

func BenchmarkIssueToken(b *testing.B) {
	is, _ := newIssuer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := is.Issue(base(), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenFirstUse is a token's first verification (signature).
func BenchmarkVerifyTokenFirstUse(b *testing.B) {
	is, _ := newIssuer(b)
	toks := make([]string, 0, 1024)
	for range 1024 {
		t, _, _ := is.Issue(Claims{Scope: ScopeStream, Bot: "b", Site: "s", Conv: "c"}, time.Hour) // stream tokens are not cached
		toks = append(toks, t)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := is.Verify(toks[i%len(toks)], ScopeStream); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyTokenCached is a conversation token used again.
func BenchmarkVerifyTokenCached(b *testing.B) {
	is, _ := newIssuer(b)
	tok, _, _ := is.Issue(base(), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.Verify(tok, ScopeConversation); err != nil {
			b.Fatal(err)
		}
	}
}
