package usertoken

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

func TestNoDuplicateKeys(t *testing.T) {
	for in, ok := range map[string]bool{
		`{}`: true,
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`: true,
		`{"a":{},"b":[],"c":[[{}]]}`:                true,
		`{"a":1,"a":2}`:                             false,
		`{"x":{"a":1,"a":2}}`:                       false,
		`{"x":[{"a":1,"a":2}]}`:                     false,
		`{"msAppId":"a","msAppId":"b"}`:             false,
		`{"a":1`:                                    false,
		`{"a":1}{`:                                  false,
		strings.Repeat("[", 100) + strings.Repeat("]", 100): false,
	} {
		if err := noDuplicateKeys([]byte(in)); (err == nil) != ok {
			t.Errorf("noDuplicateKeys(%s) = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestValidateConnection(t *testing.T) {
	ok := store.OAuthConnection{Name: "gh", Kind: store.OAuthKindGitHub, ClientID: "x", MaxLogin: time.Hour}
	if err := ValidateConnection(ok); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*store.OAuthConnection){
		"empty name":          func(c *store.OAuthConnection) { c.Name = "" },
		"name with space":     func(c *store.OAuthConnection) { c.Name = "a b" },
		"name too long":       func(c *store.OAuthConnection) { c.Name = strings.Repeat("a", 65) },
		"no client id":        func(c *store.OAuthConnection) { c.ClientID = "" },
		"short max login":     func(c *store.OAuthConnection) { c.MaxLogin = time.Minute },
		"long max login":      func(c *store.OAuthConnection) { c.MaxLogin = MaxMaxLogin + time.Second },
		"scope with space":    func(c *store.OAuthConnection) { c.Scopes = []string{"a b"} },
		"scope with quote":    func(c *store.OAuthConnection) { c.Scopes = []string{`a"`} },
		"unknown kind":        func(c *store.OAuthConnection) { c.Kind = "GITHUB" },
		"oidc without issuer": func(c *store.OAuthConnection) { c.Kind = store.OAuthKindOIDC },
		"oidc http remote":    func(c *store.OAuthConnection) { c.Kind, c.Issuer = store.OAuthKindOIDC, "http://idp.example" },
		"oidc with userinfo":  func(c *store.OAuthConnection) { c.Kind, c.Issuer = store.OAuthKindOIDC, "https://u:p@idp.example" },
		"oauth2 one URL":      func(c *store.OAuthConnection) { c.Kind, c.AuthURL = store.OAuthKindOAuth2, "https://idp.example/a" },
		"entra no tenant":     func(c *store.OAuthConnection) { c.Kind = store.OAuthKindEntra },
		"entra path tenant":   func(c *store.OAuthConnection) { c.Kind, c.Tenant = store.OAuthKindEntra, "../x" },
	} {
		c := ok
		mod(&c)
		if err := ValidateConnection(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, u := range []string{"https://idp.example", "http://127.0.0.1:5556/dex", "http://localhost:8080", "http://[::1]:1"} {
		if err := providerURL("issuer", u); err != nil {
			t.Errorf("providerURL(%s) = %v", u, err)
		}
	}
}

func TestMagicCodeIsSixDigits(t *testing.T) {
	re := regexp.MustCompile(`^\d{6}$`)
	seen := map[string]bool{}
	for range 200 {
		c, err := magicCode()
		if err != nil || !re.MatchString(c) {
			t.Fatalf("magicCode() = %q, %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Fatalf("only %d distinct codes in 200", len(seen))
	}
}
