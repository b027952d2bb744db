package directline

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

func entry(seq int64, vis store.Visibility, size int) conversation.Entry {
	b, _ := json.Marshal(map[string]string{"type": "message", "text": strings.Repeat("x", size)})
	return conversation.Entry{Seq: seq, Visibility: vis, JSON: b}
}

func TestSetWriterBoundsAndVisibility(t *testing.T) {
	for _, c := range []struct {
		name    string
		stream  bool
		entries []conversation.Entry
		want    int // activities written before the set is full
	}{
		{"small fit", false, []conversation.Entry{entry(1, store.VisibleAll, 10), entry(2, store.VisibleAll, 10)}, 2},
		{"typing only on the stream", false, []conversation.Entry{entry(1, store.VisibleStream, 10), entry(2, store.VisibleAll, 10)}, 1},
		{"typing on the stream", true, []conversation.Entry{entry(1, store.VisibleStream, 10), entry(2, store.VisibleAll, 10)}, 2},
		{"deleted skipped", true, []conversation.Entry{{Seq: 1, Visibility: store.VisibleNone}, entry(2, store.VisibleAll, 10)}, 1},
		{"stops at 4 MiB", false, []conversation.Entry{entry(1, store.VisibleAll, 3<<20), entry(2, store.VisibleAll, 2<<20)}, 1},
		{"one oversized still fits alone", false, []conversation.Entry{entry(1, store.VisibleAll, 5<<20), entry(2, store.VisibleAll, 1)}, 1},
	} {
		var b bytes.Buffer
		sw := &setWriter{w: &b, stream: c.stream}
		for _, e := range c.entries {
			if !sw.fits(e) {
				break
			}
			sw.add(e)
		}
		if err := sw.finish("7"); err != nil {
			t.Fatal(err)
		}
		var set struct {
			Activities []json.RawMessage `json:"activities"`
			Watermark  string            `json:"watermark"`
		}
		if err := json.Unmarshal(b.Bytes(), &set); err != nil {
			t.Fatalf("%s: not JSON: %v", c.name, err)
		}
		if len(set.Activities) != c.want || set.Watermark != "7" || sw.n != b.Len() {
			t.Errorf("%s: %d activities, watermark %q, counted %d of %d bytes; want %d", c.name, len(set.Activities), set.Watermark, sw.n, b.Len(), c.want)
		}
		if c.want > 1 && b.Len() > maxSetBytes {
			t.Errorf("%s: set of %d bytes", c.name, b.Len())
		}
	}
	var b bytes.Buffer
	if err := (&setWriter{w: &b}).finish(""); err != nil || b.String() != `{"activities":[]}` {
		t.Fatalf("empty set = %s", b.String())
	}
}

func TestGateCapsPerClientAndGlobally(t *testing.T) {
	g := newGate(2, 1)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if !g.claim(a) || g.claim(a) || !g.claim(b) {
		t.Fatal("per-client cap: one each")
	}
	g.unclaim(a)
	if !g.claim(a) {
		t.Fatal("a released claim is reusable")
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if !g.acquireSlot(ctx, 0) {
			t.Fatalf("global slot %d refused", i+1)
		}
	}
	if g.acquireSlot(ctx, 10*time.Millisecond) {
		t.Fatal("a third slot past the global cap")
	}
	go func() { time.Sleep(20 * time.Millisecond); g.releaseSlot() }()
	if !g.acquireSlot(ctx, 5*time.Second) {
		t.Fatal("a slot freed while waiting was not taken")
	}
	g.unclaim(a)
	g.unclaim(b)
	if len(g.inUse) != 0 {
		t.Fatalf("claims left behind: %v", g.inUse)
	}
}

func TestMemoryTicketsSingleUseAndExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	m := &memoryTickets{used: map[string]time.Time{}, now: func() time.Time { return now }}
	if !m.Use("a", now.Add(time.Minute)) || m.Use("a", now.Add(time.Minute)) {
		t.Fatal("a ticket opens exactly one stream")
	}
	if !m.Use("b", now.Add(time.Minute)) {
		t.Fatal("another ticket is independent")
	}
	now = now.Add(2 * time.Minute) // both expired: the set forgets them
	m.Use("c", now.Add(time.Minute))
	if m.Len() != 1 {
		t.Fatalf("expired tickets kept: %d entries", m.Len())
	}
}

func TestHandshakeError(t *testing.T) {
	good := func() *http.Request {
		r := httptest.NewRequest("GET", "/v3/directline/conversations/c/stream", nil)
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Upgrade", "WebSocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		return r
	}
	if e := handshakeError(httptest.NewRecorder(), good()); e != nil {
		t.Fatalf("a browser's handshake refused: %v", e)
	}
	for name, mod := range map[string]func(*http.Request){
		"POST":          func(r *http.Request) { r.Method = "POST" },
		"no Connection": func(r *http.Request) { r.Header.Del("Connection") },
		"no Upgrade":    func(r *http.Request) { r.Header.Set("Upgrade", "h2c") },
		"version 8":     func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") },
		"short key":     func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "abc") },
	} {
		r := good()
		mod(r)
		if e := handshakeError(httptest.NewRecorder(), r); e == nil || e.status < 400 || e.status >= 500 {
			t.Errorf("%s: %v", name, e)
		}
	}
}
