package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/echobot"
)

// The members Parley owns on an activity: what a bot (or a client) reads
// there must be Parley's value, whatever its decoder's case and duplicate
// rules.
var reservedMembers = []string{"id", "timestamp", "conversation", "from", "recipient", "channelId", "serviceUrl", "callerId"}

// botView is how a Go bot decodes an activity: encoding/json matches member
// names case-insensitively (Unicode simple folding) and the last duplicate
// wins. Newtonsoft (.NET) bots behave alike.
type botView struct {
	Id           string
	Timestamp    string
	Conversation struct{ Id string }
	From         struct{ Id, Role string }
	Recipient    struct{ Id string }
	ChannelId    string
	ServiceUrl   string
	CallerId     string
}

// rawBot records the exact bytes Parley delivers.
type rawBot struct {
	url string
	mu  sync.Mutex
	got [][]byte
}

func newRawBot(t *testing.T) *rawBot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBot{url: "http://" + ln.Addr().String() + "/api/messages"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, raw)
		b.mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b
}

// delivery returns the raw delivery whose id (as Parley's exact "id"
// member, or any case variant) is id, waiting for it.
func (b *rawBot) delivery(t *testing.T, id string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		got := append([][]byte(nil), b.got...)
		b.mu.Unlock()
		for _, raw := range got {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			for k, v := range m {
				if strings.EqualFold(k, "id") && string(v) == `"`+id+`"` {
					return raw
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("bot never received %s", id)
	return nil
}

func (b *rawBot) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

// foldedNames lists, for each reserved member, every top-level member name
// of raw that a case-insensitive decoder would read as it (duplicates
// included, in order).
func foldedNames(t *testing.T, raw []byte) map[string][]string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	out := map[string][]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		for _, r := range reservedMembers {
			if strings.EqualFold(name, r) {
				out[r] = append(out[r], name)
			}
		}
	}
	return out
}

// checkOnlyParleys fails unless each reserved member appears at most once,
// under its exact name: then first-wins and last-wins, case-sensitive and
// case-insensitive decoders all read the same, Parley's, value.
func checkOnlyParleys(t *testing.T, what string, raw []byte) {
	t.Helper()
	for r, names := range foldedNames(t, raw) {
		if len(names) != 1 || names[0] != r {
			t.Errorf("%s: members read as %q: %q in %s", what, r, names, raw)
		}
	}
}

// refusedOrClean accepts a 400 BadArgument naming the member, or an
// acceptance after which the bot's case-insensitive decoder reads
// Parley's values.
func refusedOrClean(t *testing.T, name, member string, r resp) bool {
	t.Helper()
	if r.status == 400 {
		msg, _ := r.body["error"].(map[string]any)["message"].(string)
		if r.errCode() != "BadArgument" || !strings.Contains(msg, member) {
			t.Errorf("%s: refused as %s %q, want BadArgument naming %q", name, r.errCode(), msg, member)
		}
		return true
	}
	if r.status != 200 {
		t.Errorf("%s: %d %s", name, r.status, r.raw)
		return true
	}
	return false
}

func TestCaseVariantsOfReservedMembersFromClients(t *testing.T) {
	h := newHarness(t)
	rb := newRawBot(t)
	_, secret, _ := provision(t, h.st, "bot-raw", rb.url, true, []string{trustedOrigin})
	start := func(user string) (string, string) {
		r := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": user}}, nil)
		if r.status != 200 {
			t.Fatalf("generate: %d %s", r.status, r.raw)
		}
		s := h.do("POST", "/conversations", r.str("token"), `{}`, nil)
		if s.status != 201 {
			t.Fatalf("start: %d %s", s.status, s.raw)
		}
		return s.str("token"), s.str("conversationId")
	}
	_, victimConv := start("dl_victim")
	tok, conv := start("dl_mallory")
	// Both start notifications reach the bot first; count after them.
	for deadline := time.Now().Add(10 * time.Second); rb.count() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cases := []struct {
		name, member string
		act          map[string]any
	}{
		{"Conversation", "Conversation", map[string]any{"Conversation": map[string]any{"id": victimConv}}},
		{"CONVERSATION beside conversation", "CONVERSATION", map[string]any{"conversation": map[string]any{"id": conv}, "CONVERSATION": map[string]any{"id": victimConv}}},
		{"Id", "Id", map[string]any{"Id": "forged-id"}},
		{"ID", "ID", map[string]any{"ID": "forged-id"}},
		{"Timestamp", "Timestamp", map[string]any{"Timestamp": "1999-01-01T00:00:00Z"}},
		{"long s timestamp", "timeſtamp", map[string]any{"timeſtamp": "1999-01-01T00:00:00Z"}},
		{"From", "From", map[string]any{"From": map[string]any{"id": "dl_victim", "role": "bot"}}},
		{"Recipient", "Recipient", map[string]any{"Recipient": map[string]any{"id": "another-bot"}}},
		{"ChannelId", "ChannelId", map[string]any{"ChannelId": "msteams"}},
		{"ServiceUrl", "ServiceUrl", map[string]any{"ServiceUrl": "https://evil.example/"}},
		{"long s serviceUrl", "ſerviceUrl", map[string]any{"ſerviceUrl": "https://evil.example/"}},
		{"CallerId", "CallerId", map[string]any{"CallerId": "urn:botframework:azure"}},
	}
	for _, c := range cases {
		act := map[string]any{"type": "message", "text": "attack " + c.name}
		for k, v := range c.act {
			act[k] = v
		}
		before := rb.count()
		r := h.do("POST", "/conversations/"+conv+"/activities", tok, act, nil)
		if refusedOrClean(t, c.name, c.member, r) {
			if r.status == 400 && rb.count() != before {
				t.Errorf("%s: refused, yet the bot received it", c.name)
			}
			continue
		}
		raw := rb.delivery(t, r.str("id"))
		checkOnlyParleys(t, c.name, raw)
		var v botView
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(time.RFC3339Nano, v.Timestamp)
		if v.Id != r.str("id") || v.Conversation.Id != conv || v.From.Id != "dl_mallory" || v.From.Role != "user" ||
			v.Recipient.Id != "bot-raw" || v.ChannelId != "directline" || v.ServiceUrl != h.base+"/" || v.CallerId != "" ||
			err != nil || time.Since(ts) > time.Hour {
			t.Errorf("%s: a Go bot reads %+v", c.name, v)
		}
	}
	// Nested: a variant inside from is refused too (Parley also writes
	// from whole, so the bot would read Parley's anyway).
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": "nested", "from": map[string]any{"id": "x", "ID": "dl_victim"}}, nil)
	if !refusedOrClean(t, "nested from", "from.ID", r) {
		var v botView
		if err := json.Unmarshal(rb.delivery(t, r.str("id")), &v); err != nil || v.From.Id != "dl_mallory" {
			t.Errorf("nested from variant: a Go bot reads from %+v", v.From)
		}
	}
	// Ordinary camelCase and unrelated members are untouched.
	id := h.post(tok, conv, map[string]any{"type": "message", "text": "fine", "localTimestamp": "2026-12-01T05:00:00+01:00", "localTimezone": "Europe/Paris",
		"channelData": map[string]any{"clientActivityID": "c1", "ClientActivityId": "nested data is the sender's own"}})
	checkOnlyParleys(t, "ordinary", rb.delivery(t, id))
}

func TestCaseVariantsOfReservedMembersInUploads(t *testing.T) {
	h := newHarness(t)
	rb := newRawBot(t)
	_, secret, _ := provision(t, h.st, "bot-raw", rb.url, true, []string{trustedOrigin})
	r := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": "dl_mallory"}}, nil)
	s := h.do("POST", "/conversations", r.str("token"), `{}`, nil)
	tok, conv := s.str("token"), s.str("conversationId")
	metrics := h.base + "/metrics"
	cases := []struct {
		name, member string
		act          map[string]any
	}{
		{"Conversation", "Conversation", map[string]any{"Conversation": map[string]any{"id": "victim-conversation"}}},
		{"Id", "Id", map[string]any{"Id": "forged-id"}},
		{"Timestamp", "Timestamp", map[string]any{"Timestamp": "1999-01-01T00:00:00Z"}},
		{"ServiceUrl", "ServiceUrl", map[string]any{"ServiceUrl": "https://evil.example/"}},
		// Parley writes the bot's download link into contentUrl; the
		// client's variant must not sit beside it.
		{"attachment ContentUrl", "ContentUrl", map[string]any{"attachments": []any{map[string]any{"name": "a.txt", "contentType": "text/plain", "ContentUrl": metrics}}}},
	}
	for _, c := range cases {
		act := map[string]any{"type": "message", "text": "upload " + c.name,
			"attachments": []any{map[string]any{"name": "a.txt", "contentType": "text/plain"}}}
		for k, v := range c.act {
			act[k] = v
		}
		body, ct := multipartBody(t, act, []filePart{{"a.txt", "text/plain", []byte("hello")}})
		r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil)
		if refusedOrClean(t, c.name, c.member, r) {
			continue
		}
		raw := rb.delivery(t, r.str("id"))
		checkOnlyParleys(t, c.name, raw)
		var v struct {
			botView
			Attachments []struct{ ContentUrl string }
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		if v.Id != r.str("id") || v.Conversation.Id != conv || v.ServiceUrl != h.base+"/" || strings.HasPrefix(v.Timestamp, "1999") {
			t.Errorf("%s: a Go bot reads %+v", c.name, v.botView)
		}
		var atts []map[string]json.RawMessage
		var top map[string]json.RawMessage
		_ = json.Unmarshal(raw, &top)
		_ = json.Unmarshal(top["attachments"], &atts)
		for i, a := range atts {
			for k, u := range a {
				if strings.EqualFold(k, "contentUrl") && strings.Contains(string(u), "/metrics") {
					t.Errorf("%s: attachment %d carries the client's %s %s beside Parley's link", c.name, i, k, u)
				}
			}
		}
	}
}

func TestCaseVariantsOfReservedMembersFromBots(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	_, other, _ := h.started("dl_bob")
	cases := []struct {
		name, member string
		act          map[string]any
	}{
		{"Conversation", "Conversation", map[string]any{"Conversation": map[string]any{"id": other}}},
		{"Id", "Id", map[string]any{"Id": "forged-id"}},
		{"Timestamp", "Timestamp", map[string]any{"Timestamp": "1999-01-01T00:00:00Z"}},
		{"From", "From", map[string]any{"From": map[string]any{"id": "dl_alice", "role": "user"}}},
		{"ChannelId", "ChannelId", map[string]any{"ChannelId": "msteams"}},
		{"ServiceUrl", "ServiceUrl", map[string]any{"ServiceUrl": "https://evil.example/"}},
		{"Recipient", "Recipient", map[string]any{"Recipient": map[string]any{"id": "dl_bob"}}},
		{"CallerId", "CallerId", map[string]any{"CallerId": "urn:botframework:azure"}},
	}
	for _, c := range cases {
		act := map[string]any{"type": "message", "text": "bot " + c.name}
		for k, v := range c.act {
			act[k] = v
		}
		r := h.bot("POST", convPath(conv)+"/activities", act)
		if refusedOrClean(t, c.name, c.member, r) {
			continue
		}
		// What a client decoding case-insensitively (the .NET Direct Line
		// client uses Newtonsoft) reads from history.
		hr := h.do("GET", "/conversations/"+conv+"/activities", tok, nil, nil)
		var set struct{ Activities []json.RawMessage }
		_ = json.Unmarshal(hr.raw, &set)
		found := false
		for _, raw := range set.Activities {
			var v botView
			_ = json.Unmarshal(raw, &v)
			if !strings.Contains(string(raw), `"bot `+c.name+`"`) {
				continue
			}
			found = true
			checkOnlyParleys(t, c.name, raw)
			if v.Id != r.str("id") || v.Conversation.Id != conv || v.From.Id != "bot-a" || v.From.Role != "bot" || v.ChannelId != "directline" || strings.HasPrefix(v.Timestamp, "1999") {
				t.Errorf("%s: a case-insensitive client reads %+v", c.name, v)
			}
		}
		if !found {
			t.Errorf("%s: accepted but not in history", c.name)
		}
	}
	// An update goes through the same reading.
	r := h.bot("POST", convPath(conv)+"/activities", map[string]any{"type": "message", "text": "to edit"})
	up := h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(r.str("id")), map[string]any{"type": "message", "text": "edited", "Timestamp": "1999-01-01T00:00:00Z"})
	if !refusedOrClean(t, "update", "Timestamp", up) {
		t.Errorf("update with a Timestamp variant accepted: %s", up.raw)
	}
}

// The attack of issue 9: a client names another user's conversation in a
// case variant; the demo's echo bot (a Go bot) replied there.
func TestClientCannotMakeTheEchoBotReplyIntoAnotherConversation(t *testing.T) {
	h := newHarness(t)
	echoURL := startEchoBot(t)
	_, secret, _ := provision(t, h.st, "echo", echoURL, true, []string{trustedOrigin})
	start := func(user string) (string, string) {
		r := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": user}}, nil)
		s := h.do("POST", "/conversations", r.str("token"), `{}`, nil)
		if s.status != 201 {
			t.Fatalf("start: %d %s", s.status, s.raw)
		}
		return s.str("token"), s.str("conversationId")
	}
	aliceTok, aliceConv := start("dl_alice")
	malTok, malConv := start("dl_mallory")
	r := h.do("POST", "/conversations/"+malConv+"/activities", malTok,
		map[string]any{"type": "message", "text": "planted by mallory", "Conversation": map[string]any{"id": aliceConv}}, nil)
	if r.status != 400 && r.status != 200 {
		t.Fatalf("attack post = %d %s", r.status, r.raw)
	}
	// The echo bot answers before it acknowledges the delivery, so its
	// reply (wherever it went) is in the log by now; a control message
	// to Alice proves her history is read after it.
	h.post(aliceTok, aliceConv, map[string]any{"type": "message", "text": "control"})
	acts, _ := h.history(aliceTok, aliceConv, "")
	for _, a := range acts {
		if text, _ := a["text"].(string); strings.Contains(text, "planted by mallory") {
			t.Fatalf("the echo bot replied into Alice's conversation: %q (attack answered %d)", text, r.status)
		}
	}
	if r.status == 400 && !strings.Contains(string(r.raw), "Conversation") {
		t.Errorf("refusal does not name the member: %s", r.raw)
	}
}

// startEchoBot serves the demo's echo bot (an insecure loopback bot) and
// returns its messaging endpoint.
func startEchoBot(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: echobot.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/api/messages"
}

// Bad bot tokens on the Bot Connector API are counted, each one, but
// logged at a bounded rate and never with the request's path (which the
// caller chooses: here 6,000 bytes each). Before, every refusal wrote its
// own line with the raw path (review: 300 requests, 1.9 MB of log).
func TestConnectorAuthFailuresDoNotFloodTheLog(t *testing.T) {
	h := newHarness(t)
	before := len(h.logs.String())
	long := strings.Repeat("A", 6000)
	const n = 300
	// The Direct Line side logs refusals by route too (first: the
	// connector's 300 below use up the log's burst).
	for _, path := range []string{"/v3/directline/conversations/" + long + "/activities", "/v3/directline/conversations/" + long} {
		req, _ := http.NewRequest("GET", h.base+path, nil) // no credential: 401
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	for range n {
		req, _ := http.NewRequest("POST", h.base+"/v3/conversations/"+long+"/activities", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer x.y.z")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", res.StatusCode)
		}
	}
	logs := h.logs.String()[before:]
	if strings.Contains(logs, long[:100]) {
		t.Fatal("the request path is in the log")
	}
	lines := strings.Count(logs, `"surface":"connector"`)
	if lines == 0 || lines > 150 {
		t.Fatalf("%d log lines for %d refused tokens, want some and at most about the burst (100) plus the rate", lines, n)
	}
	if got := h.metric(`parley_auth_failures_total{reason="invalid_bot_token",surface="connector"}`); got != strconv.Itoa(n) {
		t.Fatalf("counted %q failures, want %d", got, n)
	}
}

// On a conversation that binds no user, the client names its sender; ids
// that read as Parley's bound ids ("dl_…") are refused, also in another
// case or in fullwidth forms that a bot comparing ids ignoring case or
// after Unicode normalization would take for one (review: DL_admin,
// ｄｌ_admin and dl＿admin reached the bot).
func TestUnboundSenderCannotLookBound(t *testing.T) {
	h := newHarness(t)
	_, secret, _ := provision(t, h.st, "bot-open", h.botRec.url, false, nil)
	r := h.do("POST", "/conversations", secret, map[string]any{}, nil)
	tok, conv := r.str("token"), r.str("conversationId")
	for _, id := range []string{"dl_admin", "DL_admin", "Dl_admin", "ｄｌ_admin", "dl＿admin", "ＤＬ＿admin"} {
		p := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": "hi", "from": map[string]any{"id": id}}, nil)
		if p.status != 400 || p.errCode() != "BadArgument" {
			t.Errorf("from.id %q: %d %s, want 400 BadArgument", id, p.status, p.raw)
		}
	}
	if p := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": "hi", "from": map[string]any{"id": "dlx_admin"}}, nil); p.status != 200 {
		t.Errorf("from.id dlx_admin: %d %s, want 200", p.status, p.raw)
	}
}
