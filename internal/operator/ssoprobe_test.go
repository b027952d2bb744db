package operator_test

import (
	"net/http"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// The console asks GET /sso/login?probe=1 on every sign-in page load.
// Before, it asked /sso/login itself: each load started a sign-in (a
// pending-SSO slot) and spent the address's sign-in budget, so three
// people enrolling from one office address met 429.
func TestSSOProbeSpendsNoBudgetAndStartsNothing(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.settings.LoginRate = "3/m burst 3" })
	probe := func(srv string) int {
		res, err := http.Get(srv + admin.Prefix + "/sso/login?probe=1")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if len(res.Cookies()) != 0 {
			t.Fatalf("the probe set a cookie (started a sign-in): %v", res.Cookies())
		}
		return res.StatusCode
	}
	for range 10 {
		if st := probe(h.srv.URL); st != http.StatusNotFound {
			t.Fatalf("probe without SSO: %d, want 404", st)
		}
	}
	// The budget is intact: the first sign-in attempt is judged, not refused.
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "a", "password": "b"}), 401, "unauthenticated")

	var idp *ssoIdP
	hs := newHarness(t, func(h *harness) {
		idp = newSSOIdP(t, h.srv.URL+admin.Prefix+"/sso/callback")
		h.httpClient = idp.Client()
		h.settings.SSO.Issuer, h.settings.SSO.ClientID, h.settings.SSO.ClientSecret = idp.URL, ssoClientID, ssoSecret
		h.settings.SSO.RedirectURL = h.srv.URL + admin.Prefix + "/sso/callback"
	})
	if st := probe(hs.srv.URL); st != http.StatusNoContent {
		t.Fatalf("probe with SSO: %d, want 204", st)
	}
}
