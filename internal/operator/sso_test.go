package operator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/testidp"
)

// ssoIdP is a real OpenID Connect provider (internal/testidp: ory/fosite,
// in-memory storage) on loopback TLS, as internal/server's tests start
// one, whose ID tokens carry the amr the test sets (SetAMR) for the user
// it sets (SetUser), signed in without a form.
type ssoIdP = testidp.Server

const ssoClientID, ssoSecret = "parley-admin", "sso-client-secret-for-tests"

func newSSOIdP(t *testing.T, redirectURI string) *ssoIdP {
	t.Helper()
	return testidp.Start(t, testidp.Options{ClientID: ssoClientID, ClientSecret: ssoSecret, RedirectURIs: []string{redirectURI},
		Scopes: []string{"openid", "email", "profile"}, GrantTypes: []string{"authorization_code"}, User: "sub-alice"})
}

// ssoSignIn runs the browser's part: start, the provider, the callback.
// It returns the callback's answer and the session cookie, if any.
func ssoSignIn(t *testing.T, h *harness, idp *ssoIdP, dropState bool) (*http.Response, string) {
	t.Helper()
	state, back := ssoToCallback(t, h, idp)
	req, _ := http.NewRequest("GET", back, nil)
	if state != nil && !dropState {
		req.AddCookie(state)
	}
	res, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == operator.CookieLoopback && c.Value != "" {
			return res, c.Value
		}
	}
	return res, ""
}

// noRedirects is a client that returns redirects instead of following.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ssoToCallback starts an SSO sign-in and lets the provider sign the user
// in; it returns the browser's state cookie and the callback URL the
// provider redirects to.
func ssoToCallback(t *testing.T, h *harness, idp *ssoIdP) (*http.Cookie, string) {
	t.Helper()
	res, err := noRedirects().Get(h.srv.URL + admin.Prefix + "/sso/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sso/login: %d", res.StatusCode)
	}
	var state *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "parley_admin_sso" {
			state = c
		}
	}
	browser := idp.Client()
	browser.CheckRedirect = noRedirects().CheckRedirect
	res, err = browser.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back := res.Header.Get("Location")
	if !strings.HasPrefix(back, h.srv.URL+admin.Prefix+"/sso/callback?") {
		t.Fatalf("provider answered %d to %q", res.StatusCode, back)
	}
	return state, back
}

func TestSSOSignInWithRequiredAMR(t *testing.T) {
	var idp *ssoIdP
	h := newHarness(t, func(h *harness) {
		h.clock.t = time.Now()
		idp = newSSOIdP(t, h.srv.URL+admin.Prefix+"/sso/callback")
		h.httpClient = idp.Client()
		h.settings.SSO.Issuer, h.settings.SSO.ClientID, h.settings.SSO.ClientSecret = idp.URL, ssoClientID, ssoSecret
		h.settings.SSO.RedirectURL = h.srv.URL + admin.Prefix + "/sso/callback"
		h.settings.SSO.RequireAMR = []string{"mfa", "otp", "hwk"}
	})
	ctx := t.Context()
	now := h.clock.Now()
	if err := h.st.CreateOperator(ctx, store.Operator{ID: "op_sso", Name: "alice", Role: "auditor", SSOSubject: "sub-alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// The provider says password only: refused, audited.
	idp.SetAMR("pwd")
	res, cookie := ssoSignIn(t, h, idp, false)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("amr [pwd]: %d, cookie %v", res.StatusCode, cookie != "")
	}
	if f := h.rec.find("session.sso", audit.Failure); len(f) != 1 || f[0].Detail["reason"] != "amr" {
		t.Fatalf("audit: %+v", f)
	}
	// With MFA: signed in as the pre-registered operator.
	idp.SetAMR("pwd", "otp")
	res, cookie = ssoSignIn(t, h, idp, false)
	if res.StatusCode != http.StatusFound || cookie == "" {
		t.Fatalf("amr [pwd otp]: %d, cookie %v", res.StatusCode, cookie != "")
	}
	r := h.do(&client{cookie: cookie}, "GET", "/session", nil)
	h.want(r, 200, "")
	if op := r.body["operator"].(map[string]any); op["id"] != "op_sso" || op["role"] != "auditor" {
		t.Fatalf("session: %s", r.raw)
	}
	// The provider authenticated just now (auth_time): the session counts
	// as re-authenticated for the window.
	if r.body["reauthUntil"] == "" {
		t.Fatalf("SSO session not re-authenticated: %s", r.raw)
	}
	// A callback without the browser's state cookie: refused.
	res, cookie = ssoSignIn(t, h, idp, true)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("no state cookie: %d", res.StatusCode)
	}
	// An identity with no operator: refused.
	idp.SetUser("sub-mallory")
	res, cookie = ssoSignIn(t, h, idp, false)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("unknown subject: %d", res.StatusCode)
	}
}
