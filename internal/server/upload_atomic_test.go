package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// attachmentRows counts the attachment rows in the gateway's SQLite file.
func (h *harness) attachmentRows() int {
	h.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.cfg.DataDir, "parley.db")+"?mode=ro")
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM attachments`).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// An upload that is refused, for whatever reason, stores nothing: the files
// are checked before anything is written and stored in the transaction
// that appends the activity. An accepted upload stores each file once.
func TestRefusedUploadsStoreNoFiles(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.MaxUploadBytes = 64 << 10 })
	tok, conv, _ := h.started("dl_alice")
	// A site without enhanced auth: the client names its own from.id.
	_, openSecret, _ := provision(t, h.st, "bot-open", h.botRec.url, false, []string{trustedOrigin})
	small := []byte("hello")
	file := func(name string) filePart { return filePart{name, "text/plain", small} }
	// An inline card: it counts against max_attachments like a file, and
	// (unlike a link) every site accepts it.
	link := func(i int) map[string]any {
		return map[string]any{"contentType": "application/vnd.microsoft.card.hero", "content": map[string]any{"title": fmt.Sprintf("card %d", i)}}
	}
	type upload struct {
		act   map[string]any
		files []filePart
		raw   string // the activity part's raw bytes, when act is nil
	}
	many := []filePart{}
	for i := range 11 {
		many = append(many, file(fmt.Sprintf("f%d.txt", i)))
	}
	links := []any{}
	for i := range 9 {
		links = append(links, link(i))
	}
	refused := map[string]upload{
		"too many file parts": {act: map[string]any{"type": "message"}, files: many},
		"too many attachments, links and files together": {act: map[string]any{"type": "message", "attachments": links},
			files: []filePart{file("a.txt"), file("b.txt")}},
		"too large":         {act: map[string]any{"type": "message"}, files: []filePart{file("a.txt"), {"big.bin", "application/octet-stream", make([]byte, 65<<10)}}},
		"bad activity JSON": {raw: `{"type":`, files: []filePart{file("a.txt")}},
		"rejected type":     {act: map[string]any{"type": "conversationUpdate"}, files: []filePart{file("a.txt")}},
		"bad content type":  {act: map[string]any{"type": "message"}, files: []filePart{file("a.txt"), {"b.txt", "text/", small}}},
		"metadata without file": {act: map[string]any{"type": "message", "attachments": []any{
			map[string]any{"name": "a.txt", "contentType": "text/plain"}, map[string]any{"name": "missing.txt", "contentType": "text/plain"}}},
			files: []filePart{file("a.txt")}},
		"bad metadata content type": {act: map[string]any{"type": "message", "attachments": []any{
			map[string]any{"name": "a.txt", "contentType": "not a type"}}}, files: []filePart{file("a.txt")}},
	}
	stored := 0 // rows left by refused uploads (0 once fixed)
	for name, u := range refused {
		before := h.attachmentRows()
		body, ct := multipartBody(t, u.act, u.files)
		if u.raw != "" {
			body, ct = multipartRawActivity(u.raw, u.files)
		}
		r := h.doRaw("POST", "/conversations/"+conv+"/upload?userId=dl_alice", tok, body, ct, nil)
		if r.status < 400 || r.status >= 500 || r.errCode() == "" {
			t.Errorf("%s: %d %s, want a 4xx in the Direct Line error shape", name, r.status, r.raw)
		}
		if n := h.attachmentRows() - before; n != 0 {
			t.Errorf("%s: refused (%d %s) but %d attachment rows were stored", name, r.status, r.raw, n)
		}
	}
	stored = h.attachmentRows()

	// A refusal after parsing: a reserved from.id on a site without
	// enhanced auth.
	g := h.do("POST", "/tokens/generate", openSecret, nil, nil)
	otok, oconv := g.str("token"), g.str("conversationId")
	if s := h.do("POST", "/conversations", otok, nil, nil); s.status != 201 && s.status != 200 {
		t.Fatalf("start: %d %s", s.status, s.raw)
	}
	body, ct := multipartBody(t, map[string]any{"type": "message", "from": map[string]any{"id": "dl_mallory"}}, []filePart{file("a.txt")})
	if r := h.doRaw("POST", "/conversations/"+oconv+"/upload", otok, body, ct, nil); r.status != 400 {
		t.Fatalf("reserved from.id: %d %s", r.status, r.raw)
	}
	if n := h.attachmentRows() - stored; n != 0 {
		t.Errorf("reserved from.id refused but %d attachment rows were stored", n)
	}
	stored = h.attachmentRows()

	// Accepted: each file stored exactly once.
	body, ct = multipartBody(t, map[string]any{"type": "message", "attachments": []any{link(0)}}, []filePart{file("a.txt"), {"b.png", "image/png", small}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload?userId=dl_alice", tok, body, ct, nil); r.status != 200 {
		t.Fatalf("accepted upload: %d %s", r.status, r.raw)
	}
	if n := h.attachmentRows() - stored; n != 2 {
		t.Fatalf("accepted upload of 2 files stored %d attachment rows", n)
	}
}

// multipartRawActivity is multipartBody with the activity part's bytes as given.
func multipartRawActivity(activity string, files []filePart) ([]byte, string) {
	return multipartParts([]byte(activity), files)
}
