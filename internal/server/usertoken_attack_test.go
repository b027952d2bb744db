package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestUserTokenRefusesClaimableUserIDs: on a site without enhanced
// authentication a token may bind "alice", and a client of an unbound
// conversation of the same bot may also call itself "alice" (from.id is
// only forced for bound conversations, and only dl_ ids are reserved).
// The bot cannot tell the two apart, so a token stored for "alice" would
// be read by whoever claims the name. Only dl_ ids (bound in a token,
// never claimable) may sign in or be asked for a token.
func TestUserTokenRefusesClaimableUserIDs(t *testing.T) {
	h := newHarness(t)
	b := newRecBot(t, h)
	_, secret, _ := createSite(t, h.st, b.appID, false, []string{trustedOrigin})
	idp := newTestIdP(t, h.base+"/api/oauth/callback", clientSecretCanary, time.Hour)
	h.srv.UserTokens().SetHTTPClient(idp.srv.Client())
	oh := &oauthHarness{harness: h, bot: b, secret: secret, idp: idp, token: b.accessToken()}
	oh.connection(b.appID, "idp")

	// alice's real conversation: a token bound to "alice".
	_, conv := startWith(t, h, secret, "alice")
	// The premise: an unbound client of the same bot claims "alice", and
	// the bot sees from.id "alice".
	gen := h.do("POST", "/tokens/generate", secret, nil, nil)
	if gen.status != 200 {
		t.Fatalf("generate: %d %s", gen.status, gen.raw)
	}
	start := h.do("POST", "/conversations", gen.str("token"), nil, nil)
	if start.status != 201 && start.status != 200 {
		t.Fatalf("start: %d %s", start.status, start.raw)
	}
	h.post(start.str("token"), start.str("conversationId"), map[string]any{"type": "message", "text": "spoof", "from": map[string]any{"id": "alice"}})
	got := b.waitFor(func(a map[string]any) bool { return a["text"] == "spoof" })
	if from, _ := got["from"].(map[string]any); from["id"] != "alice" {
		t.Fatalf("premise: the unbound client's from.id reached the bot as %v", from["id"])
	}

	// Sign-in for "alice" is refused with a reason the developer can act on.
	st, body, _ := oh.api("GET", "/api/botsignin/GetSignInResource", oh.token, url.Values{"state": {state(b.appID, "idp", conv, "alice", oh.base+"/")}})
	if st != 400 || !strings.Contains(body, "dl_") {
		t.Fatalf("GetSignInResource for a claimable user id: %d %s", st, body)
	}
	for _, path := range []string{"/api/usertoken/GetToken", "/api/usertoken/GetTokenStatus"} {
		st, body, _ := oh.api("GET", path, oh.token, url.Values{"userId": {"alice"}, "connectionName": {"idp"}, "channelId": {"directline"}})
		if st != 403 || !strings.Contains(body, "dl_") {
			t.Fatalf("%s for a claimable user id: %d %s", path, st, body)
		}
	}
	// The OAuthCard the bot sends to alice's conversation gets no link.
	c, err := h.st.GetConversation(t.Context(), conv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.UserTokens().SignInLink(t.Context(), b.appID, c, "idp"); err == nil {
		t.Fatal("SignInLink minted a link for a claimable user id")
	}
}
