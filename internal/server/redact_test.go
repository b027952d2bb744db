package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// Canaries: a Luhn-valid test card, an email address, a user id.
const (
	canaryCard       = "4242424242424242"
	canaryCardSpaced = "4242 4242 4242 4242"
	canaryEmail      = "canary.e10@example.org"
	canaryUser       = "dl_RedactCanaryUser42"
)

// pseudonymizer loads the server's log pseudonym key the way the server
// does, to compute the pseudonyms a log line must show.
func (h *harness) pseudonymizer(t *testing.T) *redact.Pseudonymizer {
	t.Helper()
	keys, err := server.OpenKeys(context.Background(), h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	id, raw, err := keys.Set.HMACKey(keyring.PurposeLogPseudonym)
	if err != nil {
		t.Fatalf("log pseudonym key: %v", err)
	}
	rows, _ := h.st.ListKeys(context.Background(), keyring.PurposeLogPseudonym)
	for _, r := range rows {
		if strings.Contains(string(r.Sealed), string(raw)) {
			t.Fatal("log pseudonym key stored in the clear")
		}
	}
	ps, err := redact.NewPseudonymizer(id, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

var (
	userPseudonym = regexp.MustCompile(`^u_[0-9a-f]{16}$`)
	addrPseudonym = regexp.MustCompile(`^a_[0-9a-f]{16}$`)
)

// Every log line of a conversation whose messages carry a card number, an
// email address and a site secret: none of them appears, nor the user id
// or the client's address in the clear; user ids and client addresses
// appear as the deployment's keyed pseudonyms.
func TestLogsCarryNoPIIAndPseudonymizeIDs(t *testing.T) {
	h := newHarness(t)
	ps := h.pseudonymizer(t)
	// A bot that fails once makes the delivery worker log a retry.
	failed := false
	h.setBotFail(func(act map[string]any) int {
		if text, _ := act["text"].(string); strings.Contains(text, "fail once") && !failed {
			failed = true
			return http.StatusServiceUnavailable
		}
		return 0
	})
	tok, conv, _ := h.started(canaryUser)
	secretText := "my card is " + canaryCardSpaced + ", mail " + canaryEmail + ", site secret " + h.secret
	h.post(tok, conv, map[string]any{"type": "message", "text": secretText, "from": map[string]string{"id": "x"}})
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:" + canaryCard + " " + canaryEmail})
	h.post(tok, conv, map[string]any{"type": "message", "text": "fail once " + canaryCard,
		"attachments": []map[string]any{{"contentType": "application/json", "content": map[string]string{"pan": canaryCard, "mail": canaryEmail}}}})
	// Refusals that log: an untrusted origin, a wrong secret, a bad token.
	// Headers that reach log lines carry canaries too.
	h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": secretText}, hdr{"Origin": "https://" + canaryEmail})
	h.do("POST", "/conversations/"+conv+"/activities", "AAAA"+h.secret[4:], map[string]any{"type": "message", "text": secretText}, hdr{"User-Agent": "agent " + canaryCard + " " + canaryEmail})
	h.do("POST", "/tokens/generate", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln", map[string]any{"user": map[string]string{"id": canaryUser}}, nil)
	acts, _ := h.history(tok, conv, "")
	if len(acts) < 4 {
		t.Fatalf("history has %d activities", len(acts))
	}
	metrics := h.getMetrics(t)
	h.stop()

	logs := h.logs.String()
	if logs == "" {
		t.Fatal("no logs captured; the check would be vacuous")
	}
	for name, canary := range map[string]string{"card": canaryCard, "spaced card": canaryCardSpaced, "email": canaryEmail,
		"site secret": h.secret, "user id": canaryUser, "message text": "my card is", "token": tok} {
		if strings.Contains(logs, canary) {
			t.Errorf("logs contain the %s", name)
		}
		if strings.Contains(metrics, canary) {
			t.Errorf("metrics contain the %s", name)
		}
	}
	wantUser, wantAddr := ps.User(canaryUser), ps.Addr("127.0.0.1")
	if strings.Contains(metrics, wantUser) {
		t.Error("metrics carry a user pseudonym")
	}
	sawUser, sawAddr := false, false
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		walkLog(rec, func(k string, v any) {
			s, _ := v.(string)
			switch strings.ToLower(k) {
			case "user", "user_id":
				if !userPseudonym.MatchString(s) {
					t.Errorf("%s = %q is not a pseudonym: %s", k, s, line)
				}
				sawUser = sawUser || s == wantUser
			case "client", "client_addr", "client_ip", "addr", "remote":
				if !addrPseudonym.MatchString(s) {
					t.Errorf("%s = %q is not a pseudonym: %s", k, s, line)
				}
				sawAddr = sawAddr || s == wantAddr
			}
		})
	}
	if !sawUser || !sawAddr {
		t.Errorf("no line shows the user's (%v) or the client's (%v) pseudonym; the check is vacuous:\n%s", sawUser, sawAddr, logs)
	}
	if !strings.Contains(logs, "bot delivery failed; will retry") || !strings.Contains(logs, "client authentication failed") {
		t.Errorf("the failure paths did not log:\n%s", logs)
	}
}

func walkLog(m map[string]any, fn func(k string, v any)) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			walkLog(sub, fn)
			continue
		}
		fn(k, v)
	}
}

func (h *harness) get(t *testing.T, path string) string {
	t.Helper()
	res, err := http.Get(h.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// The log pseudonym key is created once and survives restarts (same key,
// same pseudonyms).
func TestLogPseudonymKeyIsStable(t *testing.T) {
	dir := t.TempDir()
	var ids [2]string
	for i := range 2 {
		_, stop := runServer(t, dir, func(s *server.Server) {
			keys, err := s.Store().ListKeys(context.Background(), keyring.PurposeLogPseudonym)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if !k.ActivatedAt.IsZero() && k.RetiredAt.IsZero() {
					if ids[i] != "" {
						t.Fatalf("start %d: two active log pseudonym keys", i+1)
					}
					ids[i] = k.ID
				}
			}
		})
		stop()
	}
	if ids[0] != ids[1] {
		t.Fatalf("key changed across restarts: %s -> %s", ids[0], ids[1])
	}
}

// Masking with --cards: the bot receives, and history shows, the card
// number reduced to its last four digits; with --all-pii the email and
// phone too; with masking off (the default) the text is unchanged.
func TestSiteMaskingBeforeStorageAndBot(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	echo, echoSecret, _ := provision(t, h.st, "bot-echo", startEchoBot(t), true, []string{trustedOrigin})
	if err := h.st.SetSiteMasking(ctx, echo.ID, store.MaskingCards); err != nil {
		t.Fatal(err)
	}
	text := "pay with " + canaryCardSpaced + " exp 12/27, mail " + canaryEmail
	maskedText := "pay with **** **** **** 4242 exp 12/27, mail " + canaryEmail

	// The echo bot answers "You said: <what it received>".
	tok, conv := startWith(t, h, echoSecret, canaryUser)
	h.post(tok, conv, map[string]any{"type": "message", "text": text})
	acts := waitHistory(t, h, tok, conv, func(acts []map[string]any) bool { return len(findText(acts, "You said:")) > 0 })
	if got := findText(acts, "You said:")[0]; !strings.HasPrefix(got, "You said: "+maskedText+"\n") {
		t.Fatalf("the bot received %q, want the masked text", got)
	}
	if got := findText(acts, "pay with"); len(got) != 1 || got[0] != maskedText {
		t.Fatalf("history shows the user's message as %q, want %q", got, maskedText)
	}
	if raw := rawHistory(t, h, tok, conv); strings.Contains(raw, canaryCard) || strings.Contains(raw, canaryCardSpaced) {
		t.Fatal("the card number is in the history")
	}

	// Every scanned member, through the recording bot, with all PII.
	_, allSecret, _ := provision(t, h.st, "bot-all", h.botRec.url, true, []string{trustedOrigin})
	if err := h.st.SetSiteMasking(ctx, "site-bot-all", store.MaskingAllPII); err != nil {
		t.Fatal(err)
	}
	tok2, conv2 := startWith(t, h, allSecret, "dl_maskAll")
	h.post(tok2, conv2, map[string]any{"type": "message", "text": text + " or call +1 415 555 2671", "speak": canaryCard,
		"value":       map[string]any{"pan": canaryCard, "n": json.Number(canaryCard), "note": "ok"},
		"channelData": map[string]any{"clientActivityID": "1764585600123abcdef", "form": canaryCard},
		"attachments": []map[string]any{{"contentType": "application/json", "name": canaryCard + ".txt", "content": map[string]any{"pan": []string{canaryCardSpaced}}}},
	})
	got := h.botRec.waitFor(t, "the masked activity", func(a map[string]any) bool {
		s, _ := a["text"].(string)
		return strings.HasPrefix(s, "pay with")
	})
	if s := got["text"]; s != "pay with **** **** **** 4242 exp 12/27, mail [email] or call [phone]" {
		t.Errorf("text = %q", s)
	}
	b, _ := json.Marshal(got)
	for _, leak := range []string{canaryCard, canaryCardSpaced, canaryEmail, "555 2671"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the bot received %q: %s", leak, b)
		}
	}
	for _, want := range []string{`"speak":"************4242"`, `"pan":"************4242"`, `"n":"************4242"`, `"note":"ok"`,
		`"clientActivityID":"1764585600123abcdef"`, `"name":"************4242.txt"`, `"**** **** **** 4242"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the bot's copy lacks %s: %s", want, b)
		}
	}
	if raw := rawHistory(t, h, tok2, conv2); strings.Contains(raw, canaryCard) || strings.Contains(raw, canaryEmail) {
		t.Errorf("the history has the card or email: %s", raw)
	}

	// Masking off (the default site): unchanged at the bot and in history.
	tok3, conv3 := startWith(t, h, h.secret, "dl_maskOff")
	h.post(tok3, conv3, map[string]any{"type": "message", "text": "off: " + text})
	h.botRec.waitFor(t, "the unmasked activity", func(a map[string]any) bool { return a["text"] == "off: "+text })
	if got := findText(waitHistory(t, h, tok3, conv3, func([]map[string]any) bool { return true }), "off: "); len(got) != 1 || got[0] != "off: "+text {
		t.Fatalf("history with masking off = %q", got)
	}
}

func waitHistory(t *testing.T, h *harness, tok, conv string, ok func([]map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		acts, _ := h.history(tok, conv, "")
		if ok(acts) || time.Now().After(deadline) {
			return acts
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rawHistory(t *testing.T, h *harness, tok, conv string) string {
	t.Helper()
	return string(h.do("GET", "/conversations/"+conv+"/activities", tok, nil, nil).raw)
}

func findText(acts []map[string]any, prefix string) []string {
	var out []string
	for _, a := range acts {
		if s, _ := a["text"].(string); strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
