package server_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/testidp"
)

// testIdP is a real OAuth 2.0 / OpenID Connect provider (internal/testidp:
// ory/fosite, in-memory storage) on loopback TLS, with one client and one
// user, alice, who signs in with a login form.
type testIdP struct {
	srv      *httptest.Server
	idp      *testidp.Server
	clientID string
}

func newTestIdP(t *testing.T, redirectURI, clientSecret string, accessTTL time.Duration) *testIdP {
	t.Helper()
	const clientID = "parley-test-client"
	s := testidp.Start(t, testidp.Options{ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI},
		AccessTTL: accessTTL, User: "alice", Password: "alice-password-1"})
	return &testIdP{srv: s.Server, idp: s, clientID: clientID}
}

// introspect reports whether token is an active access token of the IdP
// and whose.
func (idp *testIdP) introspect(t *testing.T, token string) (bool, string) {
	t.Helper()
	return idp.idp.Introspect(t.Context(), token)
}
