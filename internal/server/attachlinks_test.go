package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// Issue 9, finding 9: attachment links a client supplies (not uploads)
// are refused by default, or reach the bot marked untrusted when the site
// says so. Uploads, data: thumbnails (what Web Chat sends) and inline
// cards always work.
func TestClientAttachmentLinksRefusedByDefault(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_mallory")
	metrics := h.base + "/metrics"
	// The start notification is delivered first; count after it.
	h.botRec.waitFor(t, "conversationUpdate", func(a map[string]any) bool { return a["type"] == "conversationUpdate" })
	for name, c := range map[string]struct {
		att   map[string]any
		field string
	}{
		"contentUrl to /metrics":  {map[string]any{"contentType": "text/plain", "contentUrl": metrics, "name": "m.txt"}, "attachments[0].contentUrl"},
		"thumbnailUrl":            {map[string]any{"contentType": "image/png", "thumbnailUrl": "http://169.254.169.254/latest/meta-data/"}, "attachments[0].thumbnailUrl"},
		"blob URL":                {map[string]any{"contentType": "image/png", "contentUrl": "blob:https://app.example/1"}, "attachments[0].contentUrl"},
		"relative link":           {map[string]any{"contentType": "image/png", "contentUrl": "/v3/attachments/x/views/original"}, "attachments[0].contentUrl"},
		"case variant ContentUrl": {map[string]any{"contentType": "image/png", "ContentUrl": metrics}, "attachments[0].ContentUrl"},
		"marker variant":          {map[string]any{"contentType": "image/png", "ParleyUntrusted": false}, "attachments[0].ParleyUntrusted"},
		"second of two":           {nil, "attachments[1].contentUrl"},
	} {
		atts := []any{c.att}
		if c.att == nil {
			atts = []any{map[string]any{"contentType": "text/plain", "content": "inline"}, map[string]any{"contentType": "image/png", "contentUrl": metrics}}
		}
		before := len(h.botRec.all())
		r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": name, "attachments": atts}, nil)
		e, _ := r.body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if r.status != 400 || r.errCode() != "BadArgument" || !strings.HasPrefix(msg, c.field+":") {
			t.Errorf("%s: %d %s, want 400 BadArgument naming %s", name, r.status, r.raw, c.field)
		}
		if len(h.botRec.all()) != before {
			t.Errorf("%s: refused, yet the bot received it", name)
		}
	}
	// The same link in an upload's activity part.
	body, ct := multipartBody(t, map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "text/plain", "name": "a.txt"},
		map[string]any{"contentType": "text/html", "contentUrl": metrics}}}, []filePart{{"a.txt", "text/plain", []byte("hi")}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil); r.status != 400 || !strings.Contains(string(r.raw), "attachments[1].contentUrl") {
		t.Errorf("upload with a client link = %d %s", r.status, r.raw)
	}

	// What stays allowed: inline cards, data: URLs, Web Chat's upload with
	// a data: thumbnail.
	for name, att := range map[string]map[string]any{
		"hero card":      {"contentType": "application/vnd.microsoft.card.hero", "content": map[string]any{"title": "t"}},
		"data: content":  {"contentType": "text/plain", "contentUrl": "data:text/plain;base64,aGk=", "name": "hi.txt"},
		"DATA: thumb":    {"contentType": "image/png", "thumbnailUrl": "DATA:image/png;base64,AAAA", "content": "x"},
		"no url at all":  {"contentType": "text/plain", "name": "n.txt"},
		"empty contentU": {"contentType": "text/plain", "contentUrl": ""},
	} {
		id := h.post(tok, conv, map[string]any{"type": "message", "text": name, "attachments": []any{att}})
		got := h.botRec.waitFor(t, name, func(a map[string]any) bool { return a["id"] == id })
		if _, marked := got["attachments"].([]any)[0].(map[string]any)["parleyUntrusted"]; marked {
			t.Errorf("%s: marked untrusted: %v", name, got["attachments"])
		}
	}
	body, ct = multipartBody(t, map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "image/png", "name": "pic.png", "thumbnailUrl": "data:image/jpeg;base64,/9j/AAAA"}}},
		[]filePart{{"pic.png", "image/png", []byte("\x89PNG")}})
	r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil)
	if r.status != 200 {
		t.Fatalf("Web Chat upload = %d %s", r.status, r.raw)
	}
	got := h.botRec.waitFor(t, "upload", func(a map[string]any) bool { return a["id"] == r.str("id") })
	att := got["attachments"].([]any)[0].(map[string]any)
	if u, _ := att["contentUrl"].(string); !strings.HasPrefix(u, h.base+"/v3/attachments/") || att["parleyUntrusted"] != nil {
		t.Errorf("uploaded file reached the bot as %v", att)
	}
}

func TestClientAttachmentLinksMarkedUntrustedWhenTheSiteSaysSo(t *testing.T) {
	h := newHarness(t)
	if err := h.st.SetSiteClientAttachmentURLs(context.Background(), h.site.ID, store.AttachmentURLsUntrusted); err != nil {
		t.Fatal(err)
	}
	tok, conv, _ := h.started("dl_alice")
	link := "https://files.example/report.pdf"
	id := h.post(tok, conv, map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "application/pdf", "contentUrl": link, "parleyUntrusted": false},
		map[string]any{"contentType": "application/vnd.microsoft.card.hero", "content": map[string]any{"title": "t"}, "parleyUntrusted": true},
		map[string]any{"contentType": "image/png", "thumbnailUrl": "https://img.example/t.png", "content": "x"},
	}})
	got := h.botRec.waitFor(t, "links", func(a map[string]any) bool { return a["id"] == id })
	atts := got["attachments"].([]any)
	for i, want := range []any{true, nil, true} {
		a := atts[i].(map[string]any)
		if a["parleyUntrusted"] != want {
			t.Errorf("attachment %d: parleyUntrusted = %v, want %v (%v)", i, a["parleyUntrusted"], want, a)
		}
	}
	if atts[0].(map[string]any)["contentUrl"] != link {
		t.Errorf("link not passed through: %v", atts[0])
	}
	// An upload on the same site: the file is Parley's own link, unmarked;
	// a client link beside it is marked.
	body, ct := multipartBody(t, map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "text/plain", "name": "a.txt"},
		map[string]any{"contentType": "text/html", "contentUrl": link}}}, []filePart{{"a.txt", "text/plain", []byte("hi")}})
	r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil)
	if r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	got = h.botRec.waitFor(t, "upload", func(a map[string]any) bool { return a["id"] == r.str("id") })
	atts = got["attachments"].([]any)
	if a := atts[0].(map[string]any); a["parleyUntrusted"] != nil || !strings.HasPrefix(a["contentUrl"].(string), h.base+"/v3/attachments/") {
		t.Errorf("uploaded file = %v", a)
	}
	if a := atts[1].(map[string]any); a["parleyUntrusted"] != true || a["contentUrl"] != link {
		t.Errorf("client link in an upload = %v", a)
	}
}

// End to end with the demo's echo bot on a site that passes links through:
// it downloads the upload through Parley's link and leaves the client's
// link to /metrics alone.
func TestEchoBotDownloadsUploadsButNotClientLinks(t *testing.T) {
	h := newHarness(t)
	echoURL := startEchoBot(t)
	site, secret, _ := provision(t, h.st, "echo", echoURL, true, []string{trustedOrigin})
	if err := h.st.SetSiteClientAttachmentURLs(context.Background(), site.ID, store.AttachmentURLsUntrusted); err != nil {
		t.Fatal(err)
	}
	g := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": "dl_alice"}}, nil)
	s := h.do("POST", "/conversations", g.str("token"), `{}`, nil)
	tok, conv := s.str("token"), s.str("conversationId")
	h.post(tok, conv, map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "text/plain", "name": "m.txt", "contentUrl": h.base + "/metrics"}}})
	body, ct := multipartBody(t, map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "text/plain", "name": "a.txt"}}},
		[]filePart{{"a.txt", "text/plain", []byte("hello")}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil); r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	acts, _ := h.history(tok, conv, "")
	var replies []string
	for _, a := range acts {
		if text, _ := a["text"].(string); fromID(a) == "echo" {
			replies = append(replies, text)
		}
	}
	all := strings.Join(replies, "\n")
	if !strings.Contains(all, "You sent a link to m.txt (text/plain); I only download files sent through the upload button.") ||
		!strings.Contains(all, "You sent a.txt (text/plain, 5 bytes).") {
		t.Fatalf("echo bot replies: %q", replies)
	}
}
