package redact

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

// A typical 200-byte log attribute, without and with PII.
var (
	benchClean = "bot delivery failed; will retry: post to bot: Post \"https://bot.example.net/api/messages\": dial tcp 10.0.0.12:443: connect: connection refused (conversation Xr3Lq0vZ1g8yT5uWm2Kp7A, attempt 3)"
	benchPII   = "user wrote: please charge 4242 4242 4242 4242 exp 12/27 and mail the receipt to jane.doe@example.com or call +1 415 555 2671 today; my bank account IBAN is DE89 3704 0044 0532 0130 00, ok?"
)

func BenchmarkString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{{"clean", benchClean}, {"pii", benchPII}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			b.ReportAllocs()
			for b.Loop() {
				_ = String(bc.s)
			}
		})
	}
}

func BenchmarkHandler(b *testing.B) {
	ps, _ := NewPseudonymizer("k", bytes.Repeat([]byte{1}, 32))
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"plain", slog.NewJSONHandler(io.Discard, nil)},
		{"redacting", NewHandler(slog.NewJSONHandler(io.Discard, nil), ps)},
	} {
		l := slog.New(bc.h)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Warn("bot delivery failed; will retry", "conversation", "Xr3Lq0vZ1g8yT5uWm2Kp7A", "status", 502, "err", benchClean, "client_addr", "203.0.113.7")
			}
		})
	}
}
