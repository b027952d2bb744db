package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// readyz answers GET /readyz: its status and body.
func (h *harness) readyz() (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postNoCheck posts an activity without the harness's 5xx check: on a
// full disk a 5xx is the right answer.
func (h *harness) postNoCheck(tok, conv string, act map[string]any) resp {
	h.t.Helper()
	b, _ := json.Marshal(act)
	return h.doVia(http.DefaultClient, "POST", "/conversations/"+conv+"/activities", tok, b, "application/json", nil)
}

// Readiness on a full disk, for real: the data directory is a small tmpfs
// that a filler file fills up. While commits fail, /readyz answers 503
// (with a short reason, no paths) and a POST fails with a 5xx in the
// Direct Line error shape; once space returns, /readyz is 200 again
// without any client write, writes work, and every acknowledged activity
// is in the history exactly once.
func TestReadinessOnAFullDisk(t *testing.T) {
	dir := tmpfsDataDir(t, "the SQLite store's full-store test (max_page_count) still runs")
	h := newHarness(t, func(c *config.Config) { c.DataDir, c.MasterKeyFile = dir, filepath.Join(dir, "master.key") })
	tok, conv, _ := h.started("dl_full")
	pad := strings.Repeat("x", 2000)
	acked := map[string]string{h.post(tok, conv, map[string]any{"type": "message", "text": "before " + pad}): "before " + pad}
	if code, body := h.readyz(); code != 200 {
		t.Fatalf("healthy store: /readyz %d %q", code, body)
	}

	filler := fillDisk(t, dir)

	// Commits that still fit (a reused WAL) are acknowledged; the first
	// that does not fit is refused, never acknowledged.
	var refused string
	for i := 0; i < 500 && refused == ""; i++ {
		text := fmt.Sprintf("full %d %s", i, pad)
		r := h.postNoCheck(tok, conv, map[string]any{"type": "message", "text": text})
		switch {
		case r.status == 200 && r.str("id") != "":
			acked[r.str("id")] = text
		case r.status >= 500 && r.errCode() != "":
			if r.status != http.StatusServiceUnavailable || strings.Contains(string(r.raw), dir) {
				t.Fatalf("POST refused on a full disk: %d %s, want 503 without paths", r.status, r.raw)
			}
			refused = text
		default:
			t.Fatalf("POST on a full disk: %d %s, want 200 or a 5xx in the Direct Line error shape", r.status, r.raw)
		}
	}
	if refused == "" {
		t.Fatal("500 POSTs on a full disk were all acknowledged")
	}
	code, body := h.readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "full") {
		t.Fatalf("full disk: /readyz %d %q, want 503 saying the storage is full", code, body)
	}
	if strings.Contains(body, dir) || strings.Contains(body, "parley.db") {
		t.Fatalf("/readyz reveals paths: %q", body)
	}

	// Space returns; readiness follows without any client write (the
	// load balancer sends none while it is 503).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := h.readyz()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("space is back but /readyz still answers %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	acked[h.post(tok, conv, map[string]any{"type": "message", "text": "after"})] = "after"

	seen := map[string]int{}
	var texts []string
	wm := ""
	for {
		acts, next := h.history(tok, conv, wm)
		if len(acts) == 0 || next == wm {
			break
		}
		for _, a := range acts {
			id, _ := a["id"].(string)
			seen[id]++
			if s, _ := a["text"].(string); s != "" {
				texts = append(texts, s)
			}
		}
		wm = next
	}
	for id, text := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged activity %s (%.12s…) is in the history %d times", id, text, seen[id])
		}
	}
	for _, s := range texts {
		if s == refused {
			t.Errorf("the refused activity (%.12s…) is in the history", refused)
		}
	}
	t.Logf("%d activities acknowledged on the way to a full disk", len(acked))
}

// The data directory deleted while the gateway serves (a cleanup script, a
// volume gone): SQLite would go on committing to the unlinked file, and
// every activity acknowledged after it would vanish at the next start.
// Writes are refused with 503 instead, /readyz says why, and moving the
// file back makes the gateway ready again (review: 200s and "ready").
func TestDatabaseRemovedWhileServing(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	q := h.post(tok, conv, map[string]any{"type": "message", "text": "before"})
	db := filepath.Join(h.cfg.DataDir, "parley.db")
	aside := filepath.Join(t.TempDir(), "parley.db")
	if err := os.Rename(db, aside); err != nil { // as rm -rf would unlink it, but restorable
		t.Fatal(err)
	}
	r := h.postNoCheck(tok, conv, map[string]any{"type": "message", "text": "after the removal"})
	if r.status != http.StatusServiceUnavailable || strings.Contains(string(r.raw), h.cfg.DataDir) {
		t.Fatalf("POST with the database gone: %d %s, want 503 without paths", r.status, r.raw)
	}
	if code, body := h.readyz(); code != 503 || !strings.Contains(body, "removed or replaced") {
		t.Fatalf("/readyz with the database gone: %d %q", code, body)
	}
	// The bot's reply is refused the same way (503: try again later).
	res, err := http.Post(h.base+convPath(conv)+"/activities/"+url.PathEscape(q), "application/json", strings.NewReader(`{"type":"message","text":"a reply"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("bot reply with the database gone: %d, want 503", res.StatusCode)
	}
	if err := os.Rename(aside, db); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := h.readyz()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz stayed 503 after the file came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.post(tok, conv, map[string]any{"type": "message", "text": "after the restore"})
}
