package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/usertoken"
)

// The token service calls identity providers with the bot client's
// guarded dialer: a token endpoint on an internal address (here the cloud
// metadata address, as a connection made with the local CLI or a name
// that later resolves there could name) is refused at connect time, with
// the SSRF rule in the log, and never reached. Before, the default HTTP
// client dialed it (and waited for its connect timeout here).
func TestUserTokenProviderCallsRefuseInternalAddresses(t *testing.T) {
	h := newHarness(t)
	b := newRecBot(t, h)
	_, secret, _ := createSite(t, h.st, b.appID, true, []string{trustedOrigin})
	idp := newTestIdP(t, h.base+"/api/oauth/callback", clientSecretCanary, time.Hour)
	// No SetHTTPClient: the server's own client calls the provider.
	oh := &oauthHarness{harness: h, bot: b, secret: secret, idp: idp, token: b.accessToken()}
	ctx := context.Background()
	sealed, err := usertoken.SealClientSecret(ctx, h.srv.Envelope(), b.appID, "meta", clientSecretCanary)
	if err != nil {
		t.Fatal(err)
	}
	c := store.OAuthConnection{BotID: b.appID, Name: "meta", Kind: store.OAuthKindOAuth2, AuthURL: idp.srv.URL + "/auth",
		TokenURL: "https://169.254.169.254/latest/token", ClientID: idp.clientID, SealedSecret: sealed, Scopes: []string{"openid"},
		MaxLogin: time.Hour, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := oh.st.CreateOAuthConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, conv := startWith(t, h, secret, "dl_user1")
	link := oh.signInLink(oh.token, state(b.appID, "meta", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	callback := br.login(link, "alice", "alice-password-1")
	start := time.Now()
	st, code := br.open(callback)
	if code != "" || st == 200 {
		t.Fatalf("the token exchange with an internal address succeeded: %d, code %q", st, code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v: the address was dialed", d)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "SSRF") {
		t.Errorf("no SSRF refusal in the log:\n%s", logs)
	}
}
