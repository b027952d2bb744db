package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/identity"
)

var activityIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}\|\d{7}$`)
var timestampPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)

func TestGenerateStartAndConversationUpdate(t *testing.T) {
	h := newHarness(t)
	// PascalCase, as the official samples send it.
	r := h.do("POST", "/tokens/generate", h.secret, `{"User":{"Id":"dl_alice"}}`, nil)
	if r.status != 200 || r.str("token") == "" || r.str("conversationId") == "" || r.body["expires_in"].(float64) != 3600 {
		t.Fatalf("generate = %d %s", r.status, r.raw)
	}
	if _, ok := r.body["streamUrl"]; ok {
		t.Fatal("generate returned a streamUrl")
	}
	tok, conv := r.str("token"), r.str("conversationId")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(conv) {
		t.Fatalf("conversation id %q is not URL-safe", conv)
	}
	// The clients read the "user" claim of the JWT.
	payload, _ := jwtPayload(tok)
	if payload["user"] != "dl_alice" {
		t.Fatalf("token user claim = %v", payload["user"])
	}
	// Web Chat's usual start body; the body's user cannot override the token.
	start := h.do("POST", "/conversations", tok, `{"user":{"id":"dl_mallory"},"locale":"fr-FR"}`, nil)
	if start.status != 201 {
		t.Fatalf("start = %d %s", start.status, start.raw)
	}
	for _, k := range []string{"conversationId", "token", "streamUrl", "referenceGrammarId"} {
		if start.str(k) == "" {
			t.Fatalf("start answer lacks %s: %s", k, start.raw)
		}
	}
	if start.str("conversationId") != conv || !strings.HasPrefix(start.str("streamUrl"), "ws://") {
		t.Fatalf("start = %s", start.raw)
	}
	cu := h.botRec.waitFor(t, "conversationUpdate", func(a map[string]any) bool { return a["type"] == "conversationUpdate" })
	members, _ := cu["membersAdded"].([]any)
	if len(members) != 2 || members[0].(map[string]any)["id"] != "bot-a" || members[1].(map[string]any)["id"] != "dl_alice" {
		t.Fatalf("membersAdded = %v", cu["membersAdded"])
	}
	if cu["locale"] != "fr-FR" || cu["serviceUrl"] != h.base+"/" || cu["channelId"] != "directline" || fromID(cu) != "dl_alice" {
		t.Fatalf("conversationUpdate = %v", cu)
	}
	// Starting again with the same token: 200, nothing new created.
	again := h.do("POST", "/conversations", tok, `{"user":{}}`, nil)
	if again.status != 200 || again.str("conversationId") != conv {
		t.Fatalf("second start = %d %s", again.status, again.raw)
	}
	time.Sleep(200 * time.Millisecond)
	n := 0
	for _, a := range h.botRec.all() {
		if a["type"] == "conversationUpdate" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bot got %d conversationUpdates, want 1", n)
	}
}

func TestStartWithSecret(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/conversations", h.secret2, `{"user":{"id":"dl_bob"}}`, nil)
	if r.status != 201 || r.str("token") == "" {
		t.Fatalf("start with secret = %d %s", r.status, r.raw)
	}
	p, _ := jwtPayload(r.str("token"))
	if p["user"] != "dl_bob" {
		t.Fatalf("returned token binds %v", p["user"])
	}
	// Enhanced auth: a secret start without a user is refused.
	r = h.do("POST", "/conversations", h.secret, `{"user":{}}`, nil)
	if r.status != 400 || r.errCode() != "BadArgument" || !strings.Contains(r.str2("message"), "missing User") {
		t.Fatalf("secret start without user = %d %s", r.status, r.raw)
	}
}

func (r resp) str2(k string) string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e[k].(string)
	return s
}

func jwtPayload(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	b, err := decodeSeg(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func TestPostEchoAndBotReply(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	id := h.post(tok, conv, map[string]any{
		"type": "message", "text": "echo:hello", "channelId": "webchat", "locale": "en-US",
		"from":        map[string]any{"id": "dl_alice", "name": "Alice", "role": "user"},
		"channelData": map[string]any{"clientActivityID": "cid-1"},
		"entities":    []any{map[string]any{"type": "ClientCapabilities"}},
		"id":          "client-chosen", "timestamp": "2001-01-01T00:00:00Z", "serviceUrl": "https://evil.example/",
		"conversation": map[string]any{"id": "other"}, "recipient": map[string]any{"id": "someone"},
	})
	if !activityIDPattern.MatchString(id) || !strings.HasPrefix(id, conv+"|") {
		t.Fatalf("activity id %q", id)
	}
	got := s.collect(5*time.Second, hasText("bot heard hello"))
	echo := got[0]
	cd, _ := echo["channelData"].(map[string]any)
	if echo["id"] != id || cd["clientActivityID"] != "cid-1" || echo["text"] != "echo:hello" {
		t.Fatalf("echo = %v", echo)
	}
	if echo["channelId"] != "directline" || echo["serviceUrl"] != h.base+"/" || echo["conversation"].(map[string]any)["id"] != conv {
		t.Fatalf("server fields not overwritten: %v", echo)
	}
	if _, ok := echo["recipient"]; ok {
		t.Fatalf("echo carries the client's recipient: %v", echo)
	}
	if !timestampPattern.MatchString(echo["timestamp"].(string)) || echo["timestamp"] == "2001-01-01T00:00:00Z" {
		t.Fatalf("timestamp %v", echo["timestamp"])
	}
	from := echo["from"].(map[string]any)
	if from["role"] != "user" || from["name"] != "Alice" || echo["locale"] != "en-US" {
		t.Fatalf("echo lost client fields: %v", echo)
	}
	reply := got[len(got)-1]
	if reply["replyToId"] != id || reply["from"].(map[string]any)["role"] != "bot" || !timestampPattern.MatchString(reply["timestamp"].(string)) {
		t.Fatalf("bot reply = %v", reply)
	}
	if reply["timestamp"].(string) <= echo["timestamp"].(string) {
		t.Fatalf("timestamps not increasing: %v then %v", echo["timestamp"], reply["timestamp"])
	}
	// What the bot received: same id, Parley's serviceUrl, the bot as recipient.
	toBot := h.botRec.waitFor(t, "the message", func(a map[string]any) bool { return a["id"] == id })
	if toBot["serviceUrl"] != h.base+"/" || toBot["recipient"].(map[string]any)["id"] != "bot-a" || toBot["channelId"] != "directline" {
		t.Fatalf("bot copy = %v", toBot)
	}
	if _, ok := toBot["entities"]; !ok {
		t.Fatal("entities not passed to the bot")
	}
}

func TestImpersonationIsRewrittenEverywhere(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	for i, from := range []any{
		map[string]any{"id": "dl_mallory", "role": "user"},
		map[string]any{"id": "bot-a", "role": "bot"}, // pretending to be the bot
		nil,
	} {
		act := map[string]any{"type": "message", "text": fmt.Sprintf("m%d", i)}
		if from != nil {
			act["from"] = from
		}
		id := h.post(tok, conv, act)
		got := h.botRec.waitFor(t, "message", func(a map[string]any) bool { return a["id"] == id })
		f := got["from"].(map[string]any)
		if f["id"] != "dl_alice" || f["role"] != "user" {
			t.Fatalf("bot saw from %v for %v", f, from)
		}
	}
	acts, _ := h.history(tok, conv, "")
	for _, a := range acts {
		if a["from"].(map[string]any)["role"] == "user" && fromID(a) != "dl_alice" {
			t.Fatalf("history shows %v", a["from"])
		}
	}
	// Upload: ?userId and the activity part both lie.
	body, ct := multipartBody(t, map[string]any{"type": "message", "from": map[string]any{"id": "dl_mallory"},
		"attachments": []any{map[string]any{"contentType": "text/plain", "name": "a.txt"}}},
		[]filePart{{"a.txt", "text/plain", []byte("hello")}})
	r := h.doRaw("POST", "/conversations/"+conv+"/upload?userId=dl_mallory", tok, body, ct, nil)
	if r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	got := h.botRec.waitFor(t, "upload", func(a map[string]any) bool { return a["id"] == r.str("id") })
	if fromID(got) != "dl_alice" {
		t.Fatalf("upload reached the bot from %v", got["from"])
	}
}

func TestCrossConversationRefusedOnEveryRoute(t *testing.T) {
	h := newHarness(t)
	tokA, convA, startA := h.started("dl_alice")
	_, convB, startB := h.started("dl_bob")
	body, ct := multipartBody(t, nil, []filePart{{"x.txt", "text/plain", []byte("x")}})
	for name, r := range map[string]resp{
		"post":      h.do("POST", "/conversations/"+convB+"/activities", tokA, `{"type":"message","text":"hi"}`, nil),
		"get":       h.do("GET", "/conversations/"+convB+"/activities", tokA, nil, nil),
		"reconnect": h.do("GET", "/conversations/"+convB+"?watermark=", tokA, nil, nil),
		"upload":    h.doRaw("POST", "/conversations/"+convB+"/upload", tokA, body, ct, nil),
	} {
		if r.status != 403 || r.errCode() != "BadArgument" {
			t.Errorf("%s with another conversation's token = %d %s", name, r.status, r.raw)
		}
	}
	// A's stream credential on B's stream path.
	sa := startA.str("streamUrl")
	crossed := strings.Replace(sa, "/conversations/"+convA+"/", "/conversations/"+convB+"/", 1)
	if _, res, err := h.dial(crossed, ""); err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("stream with another conversation's t: err=%v res=%v", err, res)
	}
	// Nothing of A's reached B.
	acts, _ := h.history(startB.str("token"), convB, "")
	for _, a := range acts {
		if a["text"] == "hi" {
			t.Fatal("cross-conversation post landed")
		}
	}
}

func TestSecretTokenConfusion(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	streamTok := start.str("streamUrl")[strings.Index(start.str("streamUrl"), "&t=")+3:]
	cases := []struct {
		name   string
		r      resp
		status int
		code   string
	}{
		{"generate with a token", h.do("POST", "/tokens/generate", tok, nil, nil), 403, "BadArgument"},
		{"refresh with a secret", h.do("POST", "/tokens/refresh", h.secret, nil, nil), 403, "BadArgument"},
		{"reconnect with a secret (enhanced auth)", h.do("GET", "/conversations/"+conv, h.secret, nil, nil), 400, "MissingProperty"},
		{"getsessionid with a secret", h.do("GET", "/session/getsessionid", h.secret, nil, hdr{"Origin": trustedOrigin}), 403, "BadArgument"},
		{"REST with the stream token", h.do("POST", "/conversations/"+conv+"/activities", streamTok, `{"type":"message"}`, nil), 403, "BadArgument"},
		{"refresh with the stream token", h.do("POST", "/tokens/refresh", streamTok, nil, nil), 403, "BadArgument"},
	}
	for _, c := range cases {
		if c.r.status != c.status || c.r.errCode() != c.code {
			t.Errorf("%s = %d %s; want %d %s", c.name, c.r.status, c.r.raw, c.status, c.code)
		}
	}
	// The conversation token cannot open the stream.
	u := h.base + "/v3/directline/conversations/" + conv + "/stream?watermark=-&t=" + tok
	if _, res, err := h.dial(strings.Replace(u, "http://", "ws://", 1), ""); err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("stream with the conversation token: err=%v", err)
	}
}

func TestBadCredentials(t *testing.T) {
	h := newHarness(t, func(c *configT) {})
	tok, conv, _ := h.started("dl_alice")
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]
	otherSecret := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	path := "/conversations/" + conv + "/activities"
	for name, c := range map[string]struct {
		auth   string
		header string
		status int
		code   string
	}{
		"missing":           {"", "", 401, "BadArgument"},
		"basic scheme":      {"", "Basic dXNlcjpwYXNz", 401, "BadArgument"},
		"empty bearer":      {"", "Bearer ", 401, "BadArgument"},
		"garbage":           {"not-a-credential", "", 403, "BadArgument"},
		"tampered token":    {tampered, "", 403, "BadArgument"},
		"unknown secret":    {otherSecret, "", 403, "BadArgument"},
		"token with no sig": {parts[0] + "." + parts[1] + ".", "", 403, "BadArgument"},
	} {
		headers := hdr{}
		if c.header != "" {
			headers["Authorization"] = c.header
		}
		r := h.do("POST", path, c.auth, `{"type":"message","text":"x"}`, headers)
		if r.status != c.status || r.errCode() != c.code {
			t.Errorf("%s: %d %s; want %d %s", name, r.status, r.raw, c.status, c.code)
		}
	}
}

func TestExpiredTokens(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.TokenTTL = durationT(time.Minute) })
	tok, conv, _ := h.started("dl_alice")
	exp := expiredToken(t, h, conv)
	for name, r := range map[string]resp{
		"post":      h.do("POST", "/conversations/"+conv+"/activities", exp, `{"type":"message"}`, nil),
		"refresh":   h.do("POST", "/tokens/refresh", exp, nil, nil),
		"reconnect": h.do("GET", "/conversations/"+conv, exp, nil, nil),
		"get":       h.do("GET", "/conversations/"+conv+"/activities", exp, nil, nil),
	} {
		if r.status != 403 || r.errCode() != "TokenExpired" {
			t.Errorf("%s with an expired token = %d %s", name, r.status, r.raw)
		}
	}
	// A live token refreshes to a new, working token for the same conversation.
	ref := h.do("POST", "/tokens/refresh", tok, nil, nil)
	if ref.status != 200 || ref.str("conversationId") != conv || ref.str("token") == tok {
		t.Fatalf("refresh = %d %s", ref.status, ref.raw)
	}
	if ref.body["expires_in"].(float64) != 60 {
		t.Fatalf("expires_in = %v, want the configured 60", ref.body["expires_in"])
	}
	h.post(ref.str("token"), conv, map[string]any{"type": "message", "text": "after refresh"})
}

func TestUntrustedOrigin(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	evil := "https://evil.example"
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"from evil"}`, hdr{"Origin": evil})
	if r.status != 403 || r.errCode() != "ServiceError" || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("post from untrusted origin = %d %s %v", r.status, r.raw, r.header)
	}
	for name, rr := range map[string]resp{
		"get":                    h.do("GET", "/conversations/"+conv+"/activities", tok, nil, hdr{"Origin": evil}),
		"start":                  h.do("POST", "/conversations", tok, `{}`, hdr{"Origin": evil}),
		"refresh":                h.do("POST", "/tokens/refresh", tok, nil, hdr{"Origin": evil}),
		"session":                h.do("GET", "/session/getsessionid", tok, nil, hdr{"Origin": evil}),
		"session without Origin": h.do("GET", "/session/getsessionid", tok, nil, nil),
	} {
		if rr.status != 403 || rr.errCode() != "ServiceError" {
			t.Errorf("%s from untrusted origin = %d %s", name, rr.status, rr.raw)
		}
	}
	if _, res, err := h.dial(start.str("streamUrl"), evil); err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("stream from untrusted origin: err=%v", err)
	}
	// The trusted origin works, with CORS that lets the browser read it.
	ok := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"fine"}`, hdr{"Origin": trustedOrigin})
	if ok.status != 200 || ok.header.Get("Access-Control-Allow-Origin") != trustedOrigin || ok.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("trusted post = %d %v", ok.status, ok.header)
	}
	if _, _, err := h.dial(start.str("streamUrl"), trustedOrigin); err != nil {
		t.Fatalf("stream from trusted origin: %v", err)
	}
	// getsessionid: credentialed CORS and an HttpOnly cookie whose hash is the id.
	s := h.do("GET", "/session/getsessionid", tok, nil, hdr{"Origin": trustedOrigin})
	if s.status != 200 || s.str("sessionId") == "" || s.header.Get("Access-Control-Allow-Credentials") != "true" || s.header.Get("Access-Control-Allow-Origin") != trustedOrigin {
		t.Fatalf("getsessionid = %d %s %v", s.status, s.raw, s.header)
	}
	ck := s.header.Get("Set-Cookie")
	if !strings.Contains(ck, "HttpOnly") || strings.Contains(ck, s.str("sessionId")) {
		t.Fatalf("session cookie %q", ck)
	}
	// Preflight allows what DLJS sends.
	req, _ := http.NewRequest("OPTIONS", h.dl+"/conversations/"+conv+"/activities", nil)
	req.Header.Set("Origin", trustedOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-ms-bot-agent,x-requested-with")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	allow := strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers"))
	for _, want := range []string{"authorization", "content-type", "x-ms-bot-agent", "x-requested-with"} {
		if !strings.Contains(allow, want) {
			t.Errorf("preflight does not allow %s: %q", want, allow)
		}
	}
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != trustedOrigin {
		t.Errorf("preflight = %d %v", pre.StatusCode, pre.Header)
	}
	acts, _ := h.history(tok, conv, "")
	for _, a := range acts {
		if a["text"] == "from evil" {
			t.Fatal("untrusted origin's post was stored")
		}
	}
}

func TestTrustedOriginsFromGenerate(t *testing.T) {
	h := newHarness(t)
	// A site without a static list takes the origins given at generate.
	st := h.site
	_ = st
	r := h.do("POST", "/tokens/generate", h.secret, `{"user":{"id":"dl_x"},"trustedOrigins":["javascript:alert(1)"]}`, nil)
	if r.status != 200 {
		// The site has a static list, which wins: the body's list is ignored.
		t.Fatalf("generate with ignored origins = %d %s", r.status, r.raw)
	}
	p, _ := jwtPayload(r.str("token"))
	if o, _ := p["origins"].([]any); len(o) != 1 || o[0] != trustedOrigin {
		t.Fatalf("token origins = %v; the site's static list must win", p["origins"])
	}
}

func TestUserIDRules(t *testing.T) {
	h := newHarness(t)
	for name, c := range map[string]struct {
		body string
		code string
	}{
		"no user":         {`{}`, "BadArgument"},
		"empty body":      {``, "BadArgument"},
		"user without id": {`{"user":{"name":"x"}}`, "BadArgument"},
		"not dl_":         {`{"user":{"id":"alice"}}`, "BadArgument"},
		"too long":        {`{"user":{"id":"dl_` + strings.Repeat("a", 200) + `"}}`, "BadArgument"},
		"control chars":   {`{"user":{"id":"dl_a\nb"}}`, "BadArgument"},
		"not json":        {`{"user":`, "BadArgument"},
		"bad origin":      {`{"user":{"id":"dl_a"},"trustedOrigins":["ftp://x"]}`, ""},
	} {
		r := h.do("POST", "/tokens/generate", h.secret, c.body, nil)
		if c.code == "" {
			continue // static origins win; covered elsewhere
		}
		if r.status != 400 || r.errCode() != c.code {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
}

func TestMalformedActivities(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	path := "/conversations/" + conv + "/activities"
	big := `{"type":"message","text":"` + strings.Repeat("a", 300<<10) + `"}`
	many := `{"type":"message","attachments":[` + strings.TrimSuffix(strings.Repeat(`{"contentType":"text/plain","content":"x"},`, 11), ",") + `]}`
	for name, c := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"empty":                {"", 400, "MissingProperty"},
		"not json":             {"hello", 400, "BadArgument"},
		"array":                {`[{"type":"message"}]`, 400, "BadArgument"},
		"null":                 {`null`, 400, "BadArgument"},
		"truncated":            {`{"type":"mess`, 400, "BadArgument"},
		"trailing":             {`{"type":"message"} {}`, 400, "BadArgument"},
		"no type":              {`{"text":"x"}`, 400, "MissingProperty"},
		"type not string":      {`{"type":5}`, 400, "BadArgument"},
		"conversationUpdate":   {`{"type":"conversationUpdate","membersAdded":[{"id":"x"}]}`, 400, "BadArgument"},
		"text not string":      {`{"type":"message","text":{"a":1}}`, 400, "BadArgument"},
		"from not object":      {`{"type":"message","from":"x"}`, 400, "BadArgument"},
		"attachments object":   {`{"type":"message","attachments":{}}`, 400, "BadArgument"},
		"too many attachments": {many, 400, "BadArgument"},
		"oversized":            {big, 413, "MessageSizeTooBig"},
		"invalid utf8":         {"{\"type\":\"message\",\"text\":\"\xff\"}", 400, "BadArgument"},
	} {
		r := h.do("POST", path, tok, c.body, nil)
		if r.status != c.status || r.errCode() != c.code {
			t.Errorf("%s: %d %s; want %d %s", name, r.status, truncate(r.raw), c.status, c.code)
		}
	}
	for _, wm := range []string{"abc", "-1", "1.5", "01", "99999999999999999999"} {
		r := h.do("GET", path+"?watermark="+wm, tok, nil, nil)
		if r.status != 400 || r.errCode() != "BadArgument" {
			t.Errorf("watermark %q: %d %s", wm, r.status, r.raw)
		}
	}
	if r := h.do("GET", "/conversations/"+conv+"?watermark=zz", tok, nil, nil); r.status != 400 {
		t.Errorf("reconnect with bad watermark: %d", r.status)
	}
	// Unknown routes and methods answer in the error shape.
	if r := h.do("GET", "/nope", tok, nil, nil); r.status != 404 || r.errCode() == "" {
		t.Errorf("unknown route: %d %s", r.status, r.raw)
	}
	if r := h.do("DELETE", "/conversations/"+conv+"/activities", tok, nil, nil); r.status != 405 || r.errCode() == "" {
		t.Errorf("wrong method: %d %s", r.status, r.raw)
	}
	// Nothing malformed was stored.
	acts, _ := h.history(tok, conv, "")
	for _, a := range acts {
		if fromID(a) == "dl_alice" {
			t.Fatalf("a malformed post was stored: %v", a)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func TestHistoryWatermarksAndTyping(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, h.post(tok, conv, map[string]any{"type": "message", "text": fmt.Sprintf("m%d", i)}))
	}
	h.post(tok, conv, map[string]any{"type": "typing"})
	all, wm := h.history(tok, conv, "")
	var mine []string
	for _, a := range all {
		if a["type"] == "typing" {
			t.Fatal("typing appears in GET history")
		}
		if fromID(a) == "dl_alice" {
			mine = append(mine, a["id"].(string))
		}
	}
	if strings.Join(mine, ",") != strings.Join(ids, ",") {
		t.Fatalf("history ids %v, want %v", mine, ids)
	}
	if wm == "" {
		t.Fatal("no watermark")
	}
	// After the first message's watermark, only the later ones.
	seq := strings.TrimLeft(strings.Split(ids[0], "|")[1], "0")
	if seq == "" {
		seq = "0"
	}
	later, _ := h.history(tok, conv, seq)
	for _, a := range later {
		if a["id"] == ids[0] {
			t.Fatal("watermark did not exclude earlier activity")
		}
	}
	if len(later) < 2 {
		t.Fatalf("after watermark got %d", len(later))
	}
	// At the end: nothing new, same watermark, and activities is an array.
	r := h.do("GET", "/conversations/"+conv+"/activities?watermark="+wm, tok, nil, nil)
	if acts, ok := r.body["activities"].([]any); !ok || len(acts) != 0 || r.str("watermark") != wm {
		t.Fatalf("at the end: %s", r.raw)
	}
}

func TestStreamReplayReconnectAndTabs(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "text": "before socket"})
	s1, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	// Replay of what happened between start and socket open.
	s1.collect(5*time.Second, hasText("before socket"))
	// A client probe ("") must not close the stream.
	if err := s1.ws.Write(t.Context(), 1, []byte("")); err != nil {
		t.Fatal(err)
	}
	// Second tab: reconnect with the last watermark.
	_, wm := h.history(tok, conv, "")
	rc := h.do("GET", "/conversations/"+conv+"?watermark="+wm, tok, nil, nil)
	if rc.status != 200 || rc.str("token") == "" || !strings.Contains(rc.str("streamUrl"), "watermark="+wm) || rc.str("conversationId") != conv {
		t.Fatalf("reconnect = %d %s", rc.status, rc.raw)
	}
	s2, _, err := h.dial(rc.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:both"})
	h.post(tok, conv, map[string]any{"type": "typing"})
	for i, s := range []*streamConn{s1, s2} {
		got := s.collect(5*time.Second, func(acts []map[string]any) bool {
			sawTyping := false
			for _, a := range acts {
				sawTyping = sawTyping || a["type"] == "typing"
			}
			return hasText("bot heard both")(acts) && sawTyping
		})
		if i == 1 {
			for _, a := range got {
				if a["text"] == "before socket" {
					t.Fatal("tab 2 replayed activities before its watermark")
				}
			}
		}
	}
	// Resume with an empty watermark replays the whole history.
	full := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
	s3, _, err := h.dial(full.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s3.collect(5*time.Second, hasText("before socket"))
}

func TestStreamExactlyOnceInOrderUnderConcurrentPosts(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": fmt.Sprintf("c%d", i)}, nil)
			if r.status != 200 {
				errs <- fmt.Errorf("post %d: %d", i, r.status)
				return
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := s.collect(10*time.Second, func(acts []map[string]any) bool {
		c := 0
		for _, a := range acts {
			if fromID(a) == "dl_alice" {
				c++
			}
		}
		return c >= n
	})
	seen := map[string]bool{}
	last := ""
	for _, a := range got {
		id := a["id"].(string)
		if seen[id] {
			t.Fatalf("activity %s delivered twice", id)
		}
		seen[id] = true
		if id <= last {
			t.Fatalf("out of order: %s after %s", id, last)
		}
		last = id
	}
}

func TestBotFailureAndRetry(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	// A bot that refuses (400): the client learns at once, with the protocol's code.
	h.botRec.mu.Lock()
	h.botRec.fail = func(a map[string]any) int {
		if a["text"] == "refused" {
			return 400
		}
		return 0
	}
	h.botRec.mu.Unlock()
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"refused"}`, nil)
	if r.status != 502 || r.errCode() != "BotRejectedActivity" {
		t.Fatalf("bot 400 = %d %s", r.status, r.raw)
	}
	// A bot that fails twice with 500, then accepts: retried with the same id.
	attempts := 0
	h.botRec.mu.Lock()
	h.botRec.fail = func(a map[string]any) int {
		if a["text"] == "flaky" {
			attempts++
			if attempts <= 2 {
				return 500
			}
		}
		return 0
	}
	h.botRec.mu.Unlock()
	id := h.post(tok, conv, map[string]any{"type": "message", "text": "flaky"})
	var ids []string
	for _, a := range h.botRec.all() {
		if a["text"] == "flaky" {
			ids = append(ids, a["id"].(string))
		}
	}
	if len(ids) != 3 || ids[0] != id || ids[2] != id {
		t.Fatalf("deliveries %v, want 3 with id %s", ids, id)
	}
	// A bot that is down: 502 after the bounded wait, never a hang.
	h.botRec.mu.Lock()
	h.botRec.fail = func(a map[string]any) int { return 503 }
	h.botRec.mu.Unlock()
	began := time.Now()
	r = h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"down"}`, nil)
	if r.status != 502 || r.errCode() != "BotRejectedActivity" {
		t.Fatalf("bot down = %d %s", r.status, r.raw)
	}
	if time.Since(began) > 10*time.Second {
		t.Fatalf("bounded wait took %v", time.Since(began))
	}
}

type filePart struct {
	name, contentType string
	data              []byte
}

// multipartBody builds an upload as DirectLineJS does: the activity part
// has filename "blob" and its own content type; files are all named "file".
func multipartBody(t *testing.T, act map[string]any, files []filePart) ([]byte, string) {
	var j []byte
	if act != nil {
		j, _ = json.Marshal(act)
	}
	return multipartParts(j, files)
}

// multipartParts is an upload whose activity part holds exactly activity
// (none when nil).
func multipartParts(activity []byte, files []filePart) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if activity != nil {
		hd := textproto.MIMEHeader{}
		hd.Set("Content-Disposition", `form-data; name="activity"; filename="blob"`)
		hd.Set("Content-Type", "application/vnd.microsoft.activity")
		w, _ := mw.CreatePart(hd)
		_, _ = w.Write(activity)
	}
	for _, f := range files {
		hd := textproto.MIMEHeader{}
		hd.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.name))
		hd.Set("Content-Type", f.contentType)
		w, _ := mw.CreatePart(hd)
		_, _ = w.Write(f.data)
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func (h *harness) doRaw(method, path, auth string, body []byte, ct string, headers hdr) resp {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.dl+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	if res.StatusCode >= 500 && res.StatusCode != 502 {
		h.t.Errorf("%s %s answered %d: %s", method, path, res.StatusCode, raw)
	}
	return r
}

func TestUpload(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.MaxUploadBytes = 64 << 10 })
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), "")
	if err != nil {
		t.Fatal(err)
	}
	png := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100)
	act := map[string]any{"type": "message", "text": "files",
		"channelData": map[string]any{"clientActivityID": "up-1", "attachmentSizes": []int{400, 5}},
		"attachments": []any{
			map[string]any{"contentType": "image/png", "name": "pic.png", "thumbnailUrl": "data:image/png;base64,AAAA"},
			map[string]any{"contentType": "text/plain", "name": "note.txt"},
		}}
	// File parts arrive in the other order than the metadata.
	body, ct := multipartBody(t, act, []filePart{{"note.txt", "text/plain", []byte("hello")}, {"pic.png", "image/png", png}})
	r := h.doRaw("POST", "/conversations/"+conv+"/upload?userId=dl_alice", tok, body, ct, nil)
	if r.status != 200 || r.str("id") == "" {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	toBot := h.botRec.waitFor(t, "upload", func(a map[string]any) bool { return a["id"] == r.str("id") })
	atts := toBot["attachments"].([]any)
	if len(atts) != 2 {
		t.Fatalf("bot attachments = %v", atts)
	}
	for i, want := range [][]byte{png, []byte("hello")} {
		a := atts[i].(map[string]any)
		res, err := http.Get(a["contentUrl"].(string))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("attachment %d (%v) download = %d, %d bytes", i, a["name"], res.StatusCode, len(got))
		}
	}
	// A download link is a capability for its own file only.
	u0, u1 := atts[0].(map[string]any)["contentUrl"].(string), atts[1].(map[string]any)["contentUrl"].(string)
	swapped := u0[:strings.Index(u0, "?")] + u1[strings.Index(u1, "?"):]
	tampered := u0[:len(u0)-3] + "AAA"
	for name, u := range map[string]string{"another file's link": swapped, "tampered link": tampered} {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Fatalf("download with %s = %d", name, res.StatusCode)
		}
	}
	// The client's echo keeps names and thumbnail, not the file URL.
	got := s.collect(5*time.Second, func(acts []map[string]any) bool {
		for _, a := range acts {
			if a["id"] == r.str("id") {
				return true
			}
		}
		return false
	})
	var echo map[string]any
	for _, a := range got {
		if a["id"] == r.str("id") {
			echo = a
		}
	}
	ea := echo["attachments"].([]any)[0].(map[string]any)
	if ea["name"] != "pic.png" || ea["thumbnailUrl"] != "data:image/png;base64,AAAA" || !strings.HasSuffix(ea["contentUrl"].(string), "/placeholder.png") {
		t.Fatalf("echoed attachment = %v", ea)
	}
	if echo["channelData"].(map[string]any)["clientActivityID"] != "up-1" {
		t.Fatalf("upload echo lacks clientActivityID: %v", echo)
	}
	// Single-file form: the body is the file.
	req, _ := http.NewRequest("POST", h.dl+"/conversations/"+conv+"/upload?userId=dl_alice", bytes.NewReader([]byte("raw file")))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Content-Disposition", `form-data; name="file"; filename="raw.txt"`)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("single-file upload = %v %v", err, res)
	}
	res.Body.Close()
	// Limits.
	huge, ct2 := multipartBody(t, nil, []filePart{{"big.bin", "application/octet-stream", make([]byte, 70<<10)}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, huge, ct2, nil); r.status != 413 || r.errCode() != "MessageSizeTooBig" {
		t.Fatalf("oversized upload = %d %s", r.status, r.raw)
	}
	orphan, ct3 := multipartBody(t, map[string]any{"type": "message", "attachments": []any{map[string]any{"name": "missing.txt"}}}, []filePart{{"other.txt", "text/plain", []byte("x")}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, orphan, ct3, nil); r.status != 400 {
		t.Fatalf("metadata without file = %d %s", r.status, r.raw)
	}
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, []byte("x"), "multipart/form-data", nil); r.status != 400 {
		t.Fatalf("multipart without boundary = %d %s", r.status, r.raw)
	}
}

func TestNoSecretsOrMessageTextInLogs(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	text := "my card is 4111 1111 1111 1111 and the word is zebra-" + conv[:6]
	h.post(tok, conv, map[string]any{"type": "message", "text": text})
	h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"`+text+`"}`, hdr{"Origin": "https://evil.example"})
	h.do("POST", "/conversations/"+conv+"/activities", "wrong-"+h.secret, `{}`, nil)
	s, _, _ := h.dial(start.str("streamUrl"), "")
	_ = s
	streamTok := start.str("streamUrl")[strings.Index(start.str("streamUrl"), "&t=")+3:]
	h.stop()
	logs := h.logs.String()
	if logs == "" {
		t.Fatal("no logs captured; the check would be vacuous")
	}
	for name, secret := range map[string]string{"secret": h.secret, "secret 2": h.secret2, "token": tok, "stream token": streamTok, "message text": "zebra-" + conv[:6], "card": "4111 1111"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the %s", name)
		}
	}
}

func TestStreamCredentialRefusals(t *testing.T) {
	h := newHarness(t)
	_, conv, start := h.started("dl_alice")
	wm := int64(-1)
	expired, _, err := h.issuer.Issue(identity.Claims{Scope: identity.ScopeStream, Bot: h.site.BotID, Site: h.site.ID, Conv: conv, User: "dl_alice", Watermark: &wm}, -2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	su := start.str("streamUrl")
	base := su[:strings.Index(su, "&t=")]
	tampered := su[:len(su)-4] + "AAAA"
	for name, u := range map[string]string{"expired": base + "&t=" + expired, "tampered": tampered, "missing": base} {
		_, res, err := h.dial(u, "")
		if err == nil || res == nil || (res.StatusCode != 403 && res.StatusCode != 401) {
			t.Errorf("stream with %s credential: err=%v res=%v", name, err, res)
		}
	}
	if _, _, err := h.dial(su, ""); err != nil {
		t.Fatalf("the genuine stream URL: %v", err)
	}
}

func TestInsecureBotOffLoopbackIsNotCalled(t *testing.T) {
	h := newHarness(t)
	// Someone edits the store directly: an insecure bot pointing off loopback.
	b, err := h.st.GetBot(t.Context(), "bot-a")
	if err != nil {
		t.Fatal(err)
	}
	b.Endpoint = "http://192.0.2.10/api/messages" // TEST-NET-1: never contacted
	if err := h.st.UpdateBot(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	tok, conv := h.generate("dl_alice")
	if r := h.do("POST", "/conversations", tok, `{}`, nil); r.status != 201 {
		t.Fatalf("start = %d", r.status)
	}
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"x"}`, nil)
	if r.status != 502 || r.errCode() != "ServiceError" || !strings.Contains(string(r.raw), "Parley refused") {
		t.Fatalf("post to an insecure off-loopback bot = %d %s", r.status, r.raw)
	}
	if !strings.Contains(h.logs.String(), "not on loopback") {
		t.Fatal("refusal not logged")
	}
}

// An idle stream gets empty keep-alive frames, never more than keep_alive
// apart, and activities still flow between them.
func TestStreamKeepAlive(t *testing.T) {
	const every = 400 * time.Millisecond
	h := newHarness(t, func(c *config.Config) { c.DirectLine.KeepAlive = config.Duration(every) })
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	last, empty, posted, seen := time.Now(), 0, false, false
	for empty < 5 || !seen {
		if empty == 2 && !posted {
			h.post(tok, conv, map[string]any{"type": "message", "text": "between keep-alives"})
			posted = true
		}
		_, data, err := s.ws.Read(ctx)
		if err != nil {
			t.Fatalf("after %d keep-alives: %v", empty, err)
		}
		if gap := time.Since(last); gap > every+300*time.Millisecond {
			t.Errorf("stream silent for %v, keep_alive is %v", gap, every)
		}
		last = time.Now()
		if len(data) == 0 {
			empty++
		} else if strings.Contains(string(data), "between keep-alives") {
			seen = true
		}
	}
}

// Shutting down tells open streams the server is going away (1001), so
// clients reconnect instead of treating it as an error.
func TestStreamClosedGoingAwayOnShutdown(t *testing.T) {
	h := newHarness(t)
	_, _, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s.collect(5*time.Second, func(a []map[string]any) bool { return true })
	done := make(chan struct{})
	go func() { h.stop(); close(done) }()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := s.ws.Read(ctx)
		if err == nil {
			continue
		}
		if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
			t.Fatalf("stream ended with %v (status %d), want going away", err, code)
		}
		break
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish shutting down")
	}
}

// An idle stream costs the server at most one goroutine, whatever number
// is open: the memory target per open conversation depends on it.
func TestIdleStreamsHoldOneGoroutineEach(t *testing.T) {
	h := newHarness(t)
	const n = 50
	urls := make([]string, n)
	for i := range urls {
		_, _, start := h.started(fmt.Sprintf("dl_idle%d", i))
		urls[i] = start.str("streamUrl")
	}
	settle := func() int {
		time.Sleep(300 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	for _, u := range urls {
		if _, _, err := h.dial(u, trustedOrigin); err != nil {
			t.Fatal(err)
		}
	}
	after := settle()
	// The test's own client sockets hold no goroutine while not read.
	if per := float64(after-before) / n; per > 1.1 {
		t.Fatalf("%d goroutines for %d idle streams (%.2f each), want at most 1 each", after-before, n, per)
	}
}

// Browsers send no Origin on a same-origin GET: a page served by Parley
// itself gets a session when Sec-Fetch-Site says same-origin (and only if
// Parley's own origin is trusted); a cross-site request without Origin
// gets none.
func TestSessionSameOriginWithoutOriginHeader(t *testing.T) {
	h := newHarness(t)
	tok, _, _ := h.started("dl_alice")
	if r := h.do("GET", "/session/getsessionid", tok, nil, hdr{"Sec-Fetch-Site": "same-origin"}); r.status != 403 {
		t.Fatalf("same-origin request while Parley's origin is not trusted: %d %s", r.status, r.raw)
	}
	if err := h.st.UpdateSitePolicy(context.Background(), h.site.ID, true, []string{trustedOrigin, h.base}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5100 * time.Millisecond) // site policy cache
	tok, _, _ = h.started("dl_bob")
	if r := h.do("GET", "/session/getsessionid", tok, nil, hdr{"Sec-Fetch-Site": "same-origin"}); r.status != 200 || r.str("sessionId") == "" {
		t.Fatalf("same-origin request from Parley's trusted origin: %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/session/getsessionid", tok, nil, hdr{"Sec-Fetch-Site": "cross-site"}); r.status != 403 {
		t.Fatalf("cross-site request without Origin: %d %s", r.status, r.raw)
	}
}
