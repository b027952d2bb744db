package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// bot calls the Bot Connector API as a bot would (no bearer: the test bots
// are registered as insecure loopback development bots).
func (h *harness) bot(method, path string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, h.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	if res.StatusCode >= 500 {
		h.t.Errorf("%s %s answered %d: %s", method, path, res.StatusCode, raw)
	}
	return r
}

func convPath(conv string) string { return "/v3/conversations/" + url.PathEscape(conv) }

func TestConnectorSendReplyUpdateDelete(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), "")
	if err != nil {
		t.Fatal(err)
	}
	userAct := h.post(tok, conv, map[string]any{"type": "message", "text": "question"})

	// Reply to a known id (percent-encoded |) sets replyToId.
	r := h.bot("POST", convPath(conv)+"/activities/"+url.PathEscape(userAct), map[string]any{"type": "message", "text": "answer", "from": map[string]any{"id": "bot-a"}})
	if r.status != 200 || r.str("id") == "" {
		t.Fatalf("reply = %d %s", r.status, r.raw)
	}
	replyID := r.str("id")
	// Reply to an unknown id (proactive code does this) is a plain send.
	r = h.bot("POST", convPath(conv)+"/activities/"+"6f0c2c5e-unknown", map[string]any{"type": "message", "text": "proactive"})
	if r.status != 200 {
		t.Fatalf("reply to unknown id = %d %s", r.status, r.raw)
	}
	got := s.collect(5*time.Second, hasText("proactive"))
	for _, a := range got {
		if a["id"] == replyID && a["replyToId"] != userAct {
			t.Fatalf("reply replyToId = %v", a["replyToId"])
		}
		if a["text"] == "proactive" {
			if _, ok := a["replyToId"]; ok {
				t.Fatalf("unknown reply target kept: %v", a["replyToId"])
			}
			if a["from"].(map[string]any)["id"] != "bot-a" || a["from"].(map[string]any)["role"] != "bot" {
				t.Fatalf("bot from = %v", a["from"])
			}
		}
	}
	// Update: same id, new text, pushed to the stream and kept in history.
	r = h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(replyID), map[string]any{"type": "message", "text": "answer (edited)", "id": replyID})
	if r.status != 200 || r.str("id") != replyID {
		t.Fatalf("update = %d %s", r.status, r.raw)
	}
	upd := s.collect(5*time.Second, hasText("answer (edited)"))
	if upd[len(upd)-1]["id"] != replyID {
		t.Fatalf("update pushed under id %v", upd[len(upd)-1]["id"])
	}
	// A bot cannot edit or delete the user's activities.
	if r := h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(userAct), map[string]any{"type": "message", "text": "forged"}); r.status != 403 {
		t.Fatalf("bot editing a user activity = %d", r.status)
	}
	if r := h.bot("DELETE", convPath(conv)+"/activities/"+url.PathEscape(userAct), nil); r.status != 403 {
		t.Fatalf("bot deleting a user activity = %d", r.status)
	}
	// Delete: gone from history.
	if r := h.bot("DELETE", convPath(conv)+"/activities/"+url.PathEscape(replyID), nil); r.status != 200 {
		t.Fatalf("delete = %d %s", r.status, r.raw)
	}
	acts, _ := h.history(tok, conv, "")
	for _, a := range acts {
		if a["id"] == replyID {
			t.Fatal("deleted activity still in history")
		}
		if a["text"] == "answer (edited)" {
			t.Fatal("deleted activity content still in history")
		}
	}
	if r := h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(replyID), map[string]any{"type": "message"}); r.status != 404 {
		t.Fatalf("update of a deleted activity = %d", r.status)
	}
}

func TestConnectorMembersAndAttachments(t *testing.T) {
	h := newHarness(t)
	_, conv, _ := h.started("dl_alice")
	r := h.bot("GET", convPath(conv)+"/members", nil)
	var members []map[string]any
	_ = json.Unmarshal(r.raw, &members)
	if r.status != 200 || len(members) != 2 || members[0]["id"] != "dl_alice" || members[1]["id"] != "bot-a" {
		t.Fatalf("members = %d %s", r.status, r.raw)
	}
	if r := h.bot("GET", convPath(conv)+"/pagedmembers?pageSize=10", nil); r.status != 200 || len(r.body["members"].([]any)) != 2 {
		t.Fatalf("pagedmembers = %d %s", r.status, r.raw)
	}
	if r := h.bot("GET", convPath(conv)+"/members/dl_alice", nil); r.status != 200 || r.str("id") != "dl_alice" {
		t.Fatalf("member = %d %s", r.status, r.raw)
	}
	if r := h.bot("GET", convPath(conv)+"/members/dl_nobody", nil); r.status != 404 {
		t.Fatalf("unknown member = %d", r.status)
	}
	data := []byte("%PDF-1.7 fake")
	r = h.bot("POST", convPath(conv)+"/attachments", map[string]any{"type": "application/pdf", "name": "doc.pdf", "originalBase64": base64.StdEncoding.EncodeToString(data)})
	if r.status != 200 || r.str("id") == "" {
		t.Fatalf("upload attachment = %d %s", r.status, r.raw)
	}
	id := r.str("id")
	info := h.bot("GET", "/v3/attachments/"+id, nil)
	if info.status != 200 || info.str("name") != "doc.pdf" || info.str("type") != "application/pdf" {
		t.Fatalf("attachment info = %d %s", info.status, info.raw)
	}
	res, err := http.Get(h.base + "/v3/attachments/" + id + "/views/original")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, data) || res.Header.Get("Content-Type") != "application/pdf" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("attachment view = %d %q %v", res.StatusCode, got, res.Header)
	}
	for name, body := range map[string]any{
		"bad base64": map[string]any{"type": "text/plain", "name": "x", "originalBase64": "***"},
		"no type":    map[string]any{"name": "x", "originalBase64": "eA=="},
		"not json":   "nope",
	} {
		if r := h.bot("POST", convPath(conv)+"/attachments", body); r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
}

func TestConnectorAuthorization(t *testing.T) {
	h := newHarness(t)
	tokA, convA, _ := h.started("dl_alice")
	ctx := context.Background()
	// Bot B: a second insecure bot with its own site and conversation.
	siteB, secretB, _ := provision(t, h.st, "bot-b", h.botRec.url, true, []string{trustedOrigin})
	_ = siteB
	rb := h.do("POST", "/tokens/generate", secretB, `{"user":{"id":"dl_bob"}}`, nil)
	tokB := rb.str("token")
	convB := rb.str("conversationId")
	if r := h.do("POST", "/conversations", tokB, `{}`, nil); r.status != 201 {
		t.Fatalf("start B: %d %s", r.status, r.raw)
	}
	// A secure bot (not insecure): calls without a bearer token are refused.
	if err := h.st.CreateBot(ctx, store.Bot{ID: "bot-secure", Name: "Secure", Endpoint: "https://127.0.0.1:1/api/messages", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, secretS, _ := provisionSite(t, h.st, "bot-secure")
	rs := h.do("POST", "/tokens/generate", secretS, `{"user":{"id":"dl_carol"}}`, nil)
	convS := rs.str("conversationId")
	if r := h.do("POST", "/conversations", rs.str("token"), `{}`, nil); r.status != 201 {
		t.Fatalf("start S: %d", r.status)
	}

	cases := []struct {
		name   string
		r      resp
		status int
	}{
		// Bot B speaks as itself (from bot-b) into A's conversation.
		{"bot B into A's conversation", h.bot("POST", convPath(convA)+"/activities", map[string]any{"type": "message", "text": "intruder", "from": map[string]any{"id": "bot-b"}}), 403},
		{"impersonating the user", h.bot("POST", convPath(convA)+"/activities", map[string]any{"type": "message", "text": "intruder", "from": map[string]any{"id": "dl_alice"}}), 403},
		{"body conversation mismatch", h.bot("POST", convPath(convA)+"/activities", map[string]any{"type": "message", "text": "intruder", "conversation": map[string]any{"id": convB}}), 400},
		{"secure bot without token", h.bot("POST", convPath(convS)+"/activities", map[string]any{"type": "message", "text": "intruder"}), 401},
		{"unknown conversation", h.bot("POST", convPath("nope")+"/activities", map[string]any{"type": "message", "text": "intruder"}), 401},
		{"malformed activity", h.bot("POST", convPath(convA)+"/activities", map[string]any{"text": "no type"}), 400},
	}
	for _, c := range cases {
		if c.r.status != c.status {
			t.Errorf("%s = %d %s; want %d", c.name, c.r.status, c.r.raw, c.status)
		}
	}
	// A Direct Line client token is not a bot credential.
	req, _ := http.NewRequest("POST", h.base+convPath(convA)+"/activities", strings.NewReader(`{"type":"message","text":"intruder"}`))
	req.Header.Set("Authorization", "Bearer "+tokA)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("Direct Line token on the Bot Connector API = %d", res.StatusCode)
	}
	acts, _ := h.history(tokA, convA, "")
	for _, a := range acts {
		if a["text"] == "intruder" {
			t.Fatalf("a refused call reached the conversation: %v", a)
		}
	}
}
