package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/usertoken"
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

// TestUserTokenConcurrentRefresh: a bot reading a user's token from
// several turns at once while the access token needs a refresh. The
// provider rotates refresh tokens (each works once), so parallel
// refreshes with the same one used to fail all but one read, and the
// failed ones deleted the user's token: the user was signed out.
func TestUserTokenConcurrentRefresh(t *testing.T) {
	oh := newOAuthHarness(t, 20*time.Second) // inside the 30 s refresh margin: every read refreshes
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("GetToken with the code: %d %s", st, body)
	}
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"}, "channelId": {"directline"}}
			req, _ := http.NewRequest("GET", oh.base+"/api/usertoken/GetToken?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+oh.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("parallel GetToken %d: %d", i, c)
		}
	}
	st, body := oh.getToken(oh.token, "dl_user1", "idp", "")
	var tr usertoken.TokenResponse
	_ = json.Unmarshal([]byte(body), &tr)
	if st != 200 {
		t.Fatalf("the user lost their token after parallel reads: %d", st)
	}
	if active, sub := oh.idp.introspect(t, tr.Token); !active || sub != "alice" {
		t.Fatalf("token after parallel refreshes not active at the IdP: %v %q", active, sub)
	}
}

// TestUserTokenKeptWhenTheProviderIsDown: a refresh that cannot reach the
// provider does not sign the user out (it used to delete the token on a
// network failure); only a refresh the provider refuses does.
func TestUserTokenKeptWhenTheProviderIsDown(t *testing.T) {
	oh := newOAuthHarness(t, 20*time.Second) // every read refreshes
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("GetToken with the code: %d %s", st, body)
	}
	down := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	})}
	oh.srv.UserTokens().SetHTTPClient(down)
	if st, _ := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 404 {
		t.Fatalf("GetToken with the provider down: %d, want 404", st)
	}
	oh.srv.UserTokens().SetHTTPClient(oh.idp.srv.Client())
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 200 {
		t.Fatalf("GetToken once the provider is back: %d %s (the outage signed the user out)", st, body)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSignInLinksOfOneUserCannotFillTheTable: each OAuthCard a bot sends
// mints a sign-in link, so a user who keeps asking the bot to sign in
// made it mint links until the table (10,000) was full: for the next 15
// minutes nobody, of any bot, could sign in. A user now holds at most a
// few links per connection; a new one retires the oldest.
func TestSignInLinksOfOneUserCannotFillTheTable(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv1 := startWith(t, oh.harness, oh.secret, "dl_user1")
	_, conv2 := startWith(t, oh.harness, oh.secret, "dl_user2")
	c1, err := oh.st.GetConversation(t.Context(), conv1)
	if err != nil {
		t.Fatal(err)
	}
	svc := oh.srv.UserTokens()
	var first, last string
	for i := range usertoken.DefaultLimits.MaxPending {
		l, err := svc.SignInLink(t.Context(), oh.bot.appID, c1, "idp")
		if err != nil {
			t.Fatalf("link %d of one user: %v", i, err)
		}
		if i == 0 {
			first = l
		}
		last = l
	}
	c2, err := oh.st.GetConversation(t.Context(), conv2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignInLink(t.Context(), oh.bot.appID, c2, "idp"); err != nil {
		t.Fatalf("another user cannot sign in after one user's links: %v", err)
	}
	br := oh.browser()
	res, err := br.c.Get(first)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("the user's oldest link still works: %d", res.StatusCode)
	}
	br.login(last, "alice", "alice-password-1") // the newest still signs in
}

// TestSignOutDuringRefreshStaysSignedOut: a sign-out that lands while a
// read is refreshing the user's token used to be undone: the refresh
// stored the new token after the sign-out had deleted the old one, and
// the bot kept reading the token of a user who had signed out.
func TestSignOutDuringRefreshStaysSignedOut(t *testing.T) {
	oh := newOAuthHarness(t, 20*time.Second) // every read refreshes
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("GetToken with the code: %d %s", st, body)
	}
	// The provider's token endpoint answers slowly: the refresh is in
	// flight when the sign-out arrives.
	inRefresh := make(chan struct{}, 1)
	base := oh.idp.srv.Client()
	slow := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/token" {
			inRefresh <- struct{}{}
			time.Sleep(500 * time.Millisecond)
		}
		return base.Transport.RoundTrip(r)
	})}
	oh.srv.UserTokens().SetHTTPClient(slow)
	done := make(chan int, 1)
	go func() {
		st, _ := oh.getToken(oh.token, "dl_user1", "idp", "")
		done <- st
	}()
	<-inRefresh
	if st, body, _ := oh.api("DELETE", "/api/usertoken/SignOut", oh.token, url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"}, "channelId": {"directline"}}); st != 200 {
		t.Fatalf("SignOut: %d %s", st, body)
	}
	<-done
	oh.srv.UserTokens().SetHTTPClient(base)
	if st, _ := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 404 {
		t.Fatalf("GetToken after sign-out: %d, want 404 (the refresh undid the sign-out)", st)
	}
	// Sign-out of every connection (no connectionName) too.
	_, code = br.open(br.login(oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/")), "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("GetToken with the second code: %d %s", st, body)
	}
	oh.srv.UserTokens().SetHTTPClient(slow)
	go func() {
		st, _ := oh.getToken(oh.token, "dl_user1", "idp", "")
		done <- st
	}()
	<-inRefresh
	if st, body, _ := oh.api("DELETE", "/api/usertoken/SignOut", oh.token, url.Values{"userId": {"dl_user1"}, "channelId": {"directline"}}); st != 200 {
		t.Fatalf("SignOut of all connections: %d %s", st, body)
	}
	<-done
	oh.srv.UserTokens().SetHTTPClient(base)
	if st, _ := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 404 {
		t.Fatalf("GetToken after sign-out of all connections: %d, want 404", st)
	}
}

// TestSessionCookieNamesAgree: directline sets the session cookie that
// the token service reads, under the same name (over https the __Host-
// one; internal/usertoken TestSameBrowserNeedsTheHostCookieOverHTTPS).
func TestSessionCookieNamesAgree(t *testing.T) {
	if usertoken.SecureSessionCookie != directline.SecureSessionCookie || usertoken.SessionCookie != directline.SessionCookie {
		t.Fatalf("cookie names differ: %q/%q, %q/%q", usertoken.SessionCookie, usertoken.SecureSessionCookie, directline.SessionCookie, directline.SecureSessionCookie)
	}
	if !strings.HasPrefix(usertoken.SecureSessionCookie, "__Host-") || usertoken.SessionCookieName("https://chat.example.com") != usertoken.SecureSessionCookie {
		t.Fatal("over https the session cookie must be a __Host- cookie")
	}
}

// TestRefreshDoesNotExtendTheLogin: a refresh keeps the login's start, so
// reading the token again and again never pushes its end past the
// connection's max login.
func TestRefreshDoesNotExtendTheLogin(t *testing.T) {
	oh := newOAuthHarness(t, 20*time.Second) // every read refreshes
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("sign-in: %d %s", st, body)
	}
	ctx := t.Context()
	ut, err := oh.st.GetUserToken(ctx, oh.bot.appID, "dl_user1", "idp")
	if err != nil {
		t.Fatal(err)
	}
	// The login began 59 minutes ago (max login 1 h).
	ut.SignedInAt, ut.ExpiresAt = time.Now().Add(-59*time.Minute), time.Now().Add(time.Minute)
	if err := oh.st.PutUserToken(ctx, ut); err != nil {
		t.Fatal(err)
	}
	st, body := oh.getToken(oh.token, "dl_user1", "idp", "")
	var tr usertoken.TokenResponse
	_ = json.Unmarshal([]byte(body), &tr)
	if st != 200 {
		t.Fatalf("GetToken (refresh): %d %s", st, body)
	}
	after, err := oh.st.GetUserToken(ctx, oh.bot.appID, "dl_user1", "idp")
	if err != nil {
		t.Fatal(err)
	}
	if !after.SignedInAt.Equal(ut.SignedInAt) || after.ExpiresAt.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("the refresh moved the login: signed in %v (was %v), ends %v", after.SignedInAt, ut.SignedInAt, after.ExpiresAt)
	}
	if exp, err := time.Parse(time.RFC3339, tr.Expiration); err != nil || exp.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("expiration %q past the login's end", tr.Expiration)
	}
}

// TestSignInLinkRetiredAfterSignIn: once the user is signed in, the
// card's link (still in the transcript for 15 minutes) starts no new
// sign-in, after a magic code and after a sign-in without one.
func TestSignInLinkRetiredAfterSignIn(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	dlTok, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("GetToken with the code: %d %s", st, body)
	}
	replay := func(l string) int {
		res, err := oh.browser().c.Get(l)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := replay(link); st != 400 {
		t.Fatalf("the link after sign-in with a code: %d, want 400", st)
	}
	// Without a code (the same browser's session).
	link = oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	sid := br.sessionID(oh.harness, dlTok)
	withSession := link + url.QueryEscape("&code_challenge="+sid)
	if st, page := br.openPage(br.login(withSession, "alice", "alice-password-1")); st != 200 || !strings.Contains(page, "You are signed in") {
		t.Fatalf("silent sign-in: %d %s", st, page)
	}
	if st := replay(withSession); st != 400 {
		t.Fatalf("the link after a sign-in without a code: %d, want 400", st)
	}
}
