package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// While the gateway stays not ready, /readyz logs again at most once a
// minute however often it is polled (fake clock); being ready again is
// logged once, and a later outage is logged at once.
func TestReadinessLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newReadinessLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	l.now = func() time.Time { return now }
	lines := func() int { n := strings.Count(buf.String(), "\n"); buf.Reset(); return n }
	full := errors.Join(store.ErrFull, errors.New("database or disk is full"))

	for range 100 {
		l.ready()
	}
	if n := lines(); n != 0 {
		t.Fatalf("a ready gateway polled 100 times logged %d lines", n)
	}
	for i := range 600 { // ten minutes of polling every second
		l.notReady("not ready: store cannot commit writes", full)
		now = now.Add(time.Second)
		if i == 0 {
			if n := lines(); n != 1 {
				t.Fatalf("becoming not ready logged %d lines; want 1", n)
			}
		}
	}
	if n := lines(); n < 9 || n > 10 {
		t.Errorf("ten minutes not ready, polled every second: %d more lines; want one a minute (9 or 10)", n)
	}
	l.notReady("not ready: store unreadable", full)
	if n := lines(); n != 1 {
		t.Errorf("a new reason logged %d lines; want 1", n)
	}
	for range 100 {
		l.ready()
	}
	if out := buf.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "ready again") {
		t.Errorf("ready again, polled 100 times, logged %q; want one line", out)
	}
	buf.Reset()
	l.notReady("not ready: store cannot commit writes", full)
	if n := lines(); n != 1 {
		t.Errorf("a new outage logged %d lines; want 1", n)
	}
}
