package guard

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Failures come from outside at an attacker's pace: every one is counted,
// but the log gets a bounded number of lines, and the next line says how
// many were left out.
func TestAuthFailuresLogIsBoundedCounterIsNot(t *testing.T) {
	var logs bytes.Buffer
	f := NewAuthFailures(nil, slog.New(slog.NewJSONHandler(&logs, nil)), Proxies{})
	r := httptest.NewRequest("GET", "/v3/directline/conversations", nil)
	r.RemoteAddr = "203.0.113.9:4000"
	const n = 5000
	for range n {
		f.Record(r, "directline", "invalid_credential")
	}
	if got := f.Count("directline", "invalid_credential"); got != n {
		t.Fatalf("counted %v failures, want %d", got, n)
	}
	lines := strings.Count(logs.String(), "\n")
	if lines < 1 || lines > logBurst+logPerSecond {
		t.Fatalf("%d failures in a burst wrote %d log lines; want at most about %d", n, lines, logBurst)
	}
	time.Sleep(100 * time.Millisecond) // a token for one more line
	logs.Reset()
	f.Record(r, "directline", "invalid_credential")
	if !strings.Contains(logs.String(), `"not_logged_before":`) || !strings.Contains(logs.String(), "203.0.113.9") {
		t.Fatalf("the line after a suppressed burst = %s; want not_logged_before and the client address", logs.String())
	}
}
