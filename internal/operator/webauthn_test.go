package operator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/operator"
)

// softAuthenticator is a software WebAuthn authenticator with the
// browser's part: an ES256 key, "none" attestation, user presence and
// verification, a signature counter.
type softAuthenticator struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	credID []byte
	count  uint32
	// origin is what the "browser" puts in clientDataJSON; rpID what the
	// authenticator hashes into authenticatorData (default: from the
	// options).
	origin string
	rpID   string
	noUV   bool
	aaguid []byte
	// userHandle is returned with assertions (a discoverable credential).
	userHandle []byte
}

func newSoftAuthenticator(t *testing.T, origin string) *softAuthenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	aaguid := make([]byte, 16)
	_, _ = rand.Read(aaguid)
	return &softAuthenticator{t: t, key: k, credID: id, origin: origin, aaguid: aaguid}
}

var b64 = base64.RawURLEncoding

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	return b
}

func (a *softAuthenticator) authData(rpID string, attested bool) []byte {
	if a.rpID != "" {
		rpID = a.rpID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // UP
	if !a.noUV {
		flags |= 0x04 // UV
	}
	if attested {
		flags |= 0x40 // AT
	}
	out := append([]byte{}, h[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, a.aaguid...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.credID)))
		out = append(out, a.credID...)
		pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			a.t.Fatal(err)
		}
		x, y := pub[1:33], pub[33:65]
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(out, cose...)
	}
	return out
}

// options reads {"options": {"publicKey": {...}}} from a begin answer.
func publicKey(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	o, _ := body["options"].(map[string]any)
	pk, _ := o["publicKey"].(map[string]any)
	if pk == nil {
		t.Fatalf("no options.publicKey in %v", body)
	}
	return pk
}

// create answers navigator.credentials.create's options.
func (a *softAuthenticator) create(pk map[string]any) map[string]any {
	rp := pk["rp"].(map[string]any)["id"].(string)
	cd := a.clientData("webauthn.create", pk["challenge"].(string))
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(rp, true)})
	if err != nil {
		a.t.Fatal(err)
	}
	// A discoverable credential keeps the user handle and returns it
	// with each assertion.
	if u, ok := pk["user"].(map[string]any); ok {
		a.userHandle, _ = b64.DecodeString(u["id"].(string))
	}
	return map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{}, "authenticatorAttachment": "platform"}
}

// get answers navigator.credentials.get's options; the counter goes up
// first.
func (a *softAuthenticator) get(pk map[string]any) map[string]any {
	a.count++
	rp, _ := pk["rpId"].(string)
	cd := a.clientData("webauthn.get", pk["challenge"].(string))
	ad := a.authData(rp, false)
	h := sha256.Sum256(cd)
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, sha256Of(append(append([]byte{}, ad...), h[:]...)))
	if err != nil {
		a.t.Fatal(err)
	}
	resp := map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad), "signature": b64.EncodeToString(sig)}
	if a.userHandle != nil {
		resp["userHandle"] = b64.EncodeToString(a.userHandle)
	}
	return map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"response": resp, "clientExtensionResults": map[string]any{}}
}

func sha256Of(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// localhostHarness serves on http://localhost:PORT (a loopback listener
// without operators.webauthn: the relying party is derived).
func localhostHarness(t *testing.T, mod ...func(*harness)) (*harness, string) {
	h := newHarness(t, append(mod, func(h *harness) { h.srv.URL = strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1) })...)
	return h, h.srv.URL
}

// registerPasskey re-authenticates m and registers a's passkey.
func (h *harness) registerPasskey(m *member, a *softAuthenticator, name string) string {
	h.t.Helper()
	h.reauth(m)
	r := h.do(m.c, "POST", "/me/passkeys/begin", map[string]any{})
	h.want(r, 200, "")
	pk := publicKey(h.t, r.body)
	if sel := pk["authenticatorSelection"].(map[string]any); sel["userVerification"] != "required" {
		h.t.Fatalf("registration options: user verification %v, want required", sel["userVerification"])
	}
	r = h.do(m.c, "POST", "/me/passkeys/finish", map[string]any{"name": name, "credential": a.create(pk)})
	h.want(r, 201, "")
	return r.body["passkey"].(map[string]any)["id"].(string)
}

// passwordStep signs m in with the password only: the answer holds the
// passkey challenge.
func (h *harness) passwordStep(m *member) (handle string, pk map[string]any) {
	h.t.Helper()
	m.c = &client{}
	r := h.do(m.c, "POST", "/session", map[string]string{"name": m.name, "password": m.password})
	h.want(r, 401, "mfa_required")
	p, _ := r.body["passkey"].(map[string]any)
	if p == nil {
		h.t.Fatalf("no passkey challenge: %s", r.raw)
	}
	h.secrets = append(h.secrets, p["handle"].(string))
	return p["handle"].(string), publicKey(h.t, p)
}

func TestPasskeySignIn(t *testing.T) {
	h, origin := localhostHarness(t)
	alice := h.owner()
	a := newSoftAuthenticator(t, origin)
	// Registration needs re-authentication.
	h.want(h.do(alice.c, "POST", "/me/passkeys/begin", map[string]any{}), 403, "reauth_required")
	id := h.registerPasskey(alice, a, "laptop")
	if got := h.rec.find("mfa.passkey.register", audit.Success); len(got) != 1 || got[0].Target != "passkey:"+id {
		t.Fatalf("registration audit: %+v", got)
	}
	r := h.do(alice.c, "GET", "/me/passkeys", nil)
	h.want(r, 200, "")
	list := r.body["passkeys"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "laptop" || r.body["available"] != true {
		t.Fatalf("list: %s", r.raw)
	}

	// Sign in: password, then the passkey.
	handle, pk := h.passwordStep(alice)
	if pk["userVerification"] != "required" || pk["rpId"] != "localhost" {
		t.Fatalf("assertion options: %v", pk)
	}
	assertion := a.get(pk)
	r = h.do(alice.c, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": assertion})
	h.want(r, 200, "")
	if alice.c.cookie == "" || r.body["operator"].(map[string]any)["name"] != "alice" {
		t.Fatalf("signed in: %s", r.raw)
	}
	h.want(h.do(alice.c, "GET", "/session", nil), 200, "")
	if got := h.rec.find("session.login", audit.Success); len(got) == 0 || got[len(got)-1].Detail["mfa"] != "passkey" {
		t.Fatalf("login audit: %+v", got)
	}

	// The same assertion again (replay): the handle is used.
	r = h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": assertion})
	h.want(r, 401, "unauthenticated")
	// The same assertion against a fresh challenge: the challenge differs.
	handle2, _ := h.passwordStep(alice)
	r = h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle2, "credential": assertion})
	h.want(r, 401, "unauthenticated")
	if got := h.rec.find("session.login", audit.Failure); len(got) < 2 {
		t.Fatalf("failures not audited: %+v", got)
	}

	// TOTP still works for an operator with a passkey.
	h.want(h.login(alice), 200, "")

	// Re-authentication with the passkey.
	r = h.do(alice.c, "POST", "/session/reauth/passkey/begin", map[string]any{})
	h.want(r, 200, "")
	r = h.do(alice.c, "POST", "/session/reauth/passkey/finish", map[string]any{"credential": a.get(publicKey(t, r.body))})
	h.want(r, 200, "")
	if r.body["reauthUntil"] == "" {
		t.Fatalf("reauth: %s", r.raw)
	}
	// Its challenge is single use too.
	h.want(h.do(alice.c, "POST", "/session/reauth/passkey/finish", map[string]any{"credential": a.get(pk)}), 409, "conflict")

	// Removal (re-authenticated): the passkey no longer signs in.
	h.want(h.do(alice.c, "DELETE", "/me/passkeys/"+id, nil), 204, "")
	if got := h.rec.find("mfa.passkey.remove", audit.Success); len(got) != 1 {
		t.Fatalf("removal audit: %+v", got)
	}
	r = h.do(&client{}, "POST", "/session", map[string]string{"name": alice.name, "password": alice.password})
	h.want(r, 401, "mfa_required")
	if r.body["passkey"] != nil {
		t.Fatalf("a challenge without a passkey: %s", r.raw)
	}
	h.checkNoLeaks()
}

// getAs signs pk's challenge with a copy of a changed by change (the
// counter is shared).
func (a *softAuthenticator) getAs(pk map[string]any, change func(*softAuthenticator)) map[string]any {
	c := *a
	change(&c)
	out := c.get(pk)
	a.count = c.count
	return out
}

// TestPasskeyRefusals: each attack on the passkey step is refused,
// counted and audited, and a good assertion still works after it.
func TestPasskeyRefusals(t *testing.T) {
	// Many failures on purpose: neither the lockout nor the address
	// throttle may end the test.
	h, origin := localhostHarness(t, func(h *harness) { h.settings.MaxFailures = 100 })
	alice := h.owner()
	a := newSoftAuthenticator(t, origin)
	h.registerPasskey(alice, a, "laptop")
	bob := h.invite(alice, "admin", nil, "bob", "tangerine ladder whistling softly")
	b := newSoftAuthenticator(t, origin)
	h.registerPasskey(bob, b, "bob's key")
	u, _ := url.Parse(origin)

	good := func() {
		t.Helper()
		handle, pk := h.passwordStep(alice)
		h.want(h.do(alice.c, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 200, "")
	}
	good()
	for _, tc := range []struct {
		name   string
		answer func(pk map[string]any) any
	}{
		{"wrong origin", func(pk map[string]any) any {
			return a.getAs(pk, func(c *softAuthenticator) { c.origin = "http://evil.localhost:" + u.Port() })
		}},
		{"wrong RP ID", func(pk map[string]any) any {
			return a.getAs(pk, func(c *softAuthenticator) { c.rpID = "evil.example" })
		}},
		{"no user verification", func(pk map[string]any) any { return a.getAs(pk, func(c *softAuthenticator) { c.noUV = true }) }},
		{"another operator's credential", func(pk map[string]any) any { return b.get(pk) }},
		{"bad signature", func(pk map[string]any) any {
			c := a.get(pk)
			sig, _ := b64.DecodeString(c["response"].(map[string]any)["signature"].(string))
			sig[len(sig)-1] ^= 1
			c["response"].(map[string]any)["signature"] = b64.EncodeToString(sig)
			return c
		}},
		{"signature counter repeated (cloned authenticator)", func(pk map[string]any) any {
			a.count-- // get adds one: the count last accepted
			return a.get(pk)
		}},
		{"signature counter lower", func(pk map[string]any) any {
			a.count -= 2
			c := a.get(pk)
			a.count += 2
			return c
		}},
		{"malformed", func(map[string]any) any { return map[string]any{"id": "x", "type": "public-key"} }},
	} {
		handle, pk := h.passwordStep(alice)
		r := h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": tc.answer(pk)})
		if r.status != 401 || r.code() != "unauthenticated" {
			t.Fatalf("%s: got %d %s, want 401 unauthenticated", tc.name, r.status, r.raw)
		}
		// The handle is spent even though the assertion failed.
		r = h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)})
		h.want(r, 401, "unauthenticated")
		good()
	}
	if got := h.rec.find("mfa.passkey.clone", audit.Denied); len(got) != 2 {
		t.Fatalf("clones audited: %+v", got)
	}
	fails := 0
	for _, e := range h.rec.find("session.login", audit.Failure) {
		if strings.HasPrefix(e.Detail["reason"], "bad passkey") {
			fails++
		}
	}
	if fails != 8 {
		t.Fatalf("%d failed passkey sign-ins audited, want 8", fails)
	}

	// An unknown handle; an expired challenge.
	h.want(h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": "ppk_bogus", "credential": map[string]any{}}), 401, "unauthenticated")
	handle, pk := h.passwordStep(alice)
	h.clock.Add(6 * time.Minute)
	h.want(h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 401, "unauthenticated")

	// Re-authentication: bob cannot use alice's passkey, nor alice's
	// challenge in his session.
	h.want(h.login(bob), 200, "")
	h.want(h.login(alice), 200, "")
	r := h.do(bob.c, "POST", "/session/reauth/passkey/begin", map[string]any{})
	h.want(r, 200, "")
	h.want(h.do(bob.c, "POST", "/session/reauth/passkey/finish", map[string]any{"credential": a.get(publicKey(t, r.body))}), 401, "unauthenticated")
	r = h.do(alice.c, "POST", "/session/reauth/passkey/begin", map[string]any{})
	h.want(r, 200, "")
	h.want(h.do(bob.c, "POST", "/session/reauth/passkey/finish", map[string]any{"credential": b.get(publicKey(t, r.body))}), 409, "conflict")
	if f := h.rec.find("session.reauth", audit.Failure); len(f) < 2 {
		t.Fatalf("reauth failures audited: %+v", f)
	}
}

// TestPasskeyRegistrationRefusals: a registration from another origin,
// for another RP ID, without user verification, with a used or another
// session's challenge, or of a passkey already registered, is refused.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	h, origin := localhostHarness(t)
	alice := h.owner()
	bob := h.invite(alice, "admin", nil, "bob", "tangerine ladder whistling softly")
	h.reauth(alice)
	h.reauth(bob)
	u, _ := url.Parse(origin)
	begin := func(m *member) map[string]any {
		t.Helper()
		r := h.do(m.c, "POST", "/me/passkeys/begin", map[string]any{})
		h.want(r, 200, "")
		return publicKey(t, r.body)
	}
	for _, tc := range []struct {
		why    string // in the log line of the refusal
		change func(*softAuthenticator)
	}{
		{"Error validating origin", func(c *softAuthenticator) { c.origin = "http://evil.localhost:" + u.Port() }},
		{"RP Hash mismatch", func(c *softAuthenticator) { c.rpID = "evil.example" }},
		{"User verification required", func(c *softAuthenticator) { c.noUV = true }},
	} {
		a := newSoftAuthenticator(t, origin)
		tc.change(a)
		h.logs.Reset()
		r := h.do(alice.c, "POST", "/me/passkeys/finish", map[string]any{"name": "x", "credential": a.create(begin(alice))})
		if r.status != 400 || !strings.Contains(h.logs.String(), tc.why) {
			t.Fatalf("%s: got %d %s, want 400; log %s", tc.why, r.status, r.raw, h.logs.String())
		}
	}
	// Another session's challenge (bob finishes alice's ceremony).
	a := newSoftAuthenticator(t, origin)
	pk := begin(alice)
	h.want(h.do(bob.c, "POST", "/me/passkeys/finish", map[string]any{"name": "x", "credential": a.create(pk)}), 409, "conflict")
	// The ceremony was alice's: still waiting for her.
	h.want(h.do(alice.c, "POST", "/me/passkeys/finish", map[string]any{"name": "x", "credential": a.create(pk)}), 201, "")
	// Used: a second finish is refused.
	h.want(h.do(alice.c, "POST", "/me/passkeys/finish", map[string]any{"name": "x", "credential": a.create(pk)}), 409, "conflict")
	// The same authenticator again (for bob: a credential id is one operator's).
	h.want(h.do(bob.c, "POST", "/me/passkeys/finish", map[string]any{"name": "x", "credential": a.create(begin(bob))}), 409, "conflict")
	if f := h.rec.find("mfa.passkey.register", audit.Failure); len(f) != 6 {
		t.Fatalf("registration failures audited: %d, want 6: %+v", len(f), f)
	}
	// Bob cannot remove alice's passkey.
	r := h.do(alice.c, "GET", "/me/passkeys", nil)
	id := r.body["passkeys"].([]any)[0].(map[string]any)["id"].(string)
	h.want(h.do(bob.c, "DELETE", "/me/passkeys/"+id, nil), 404, "not_found")
	// An API token has no passkeys.
	tok := h.do(alice.c, "POST", "/tokens", map[string]any{"name": "ci"})
	h.want(tok, 201, "")
	h.want(h.do(&client{bearer: tok.body["token"].(string)}, "GET", "/me/passkeys", nil), 403, "forbidden")
	// Removing the operator removes the passkeys.
	h.reauth(alice)
	h.want(h.do(alice.c, "DELETE", "/operators/"+bob.id, nil), 204, "")
	if got, _ := h.st.ListWebAuthnCredentials(context.Background(), bob.id); len(got) != 0 {
		t.Fatalf("bob's passkeys after removal: %v", got)
	}
}

// TestPasskeysOffWithoutRelyingParty: on 127.0.0.1 (an IP cannot be an
// RP ID) without operators.webauthn, passkeys are unavailable and the
// sign-in falls back to TOTP.
func TestPasskeysOffWithoutRelyingParty(t *testing.T) {
	h := newHarness(t)
	alice := h.owner()
	h.reauth(alice)
	h.want(h.do(alice.c, "POST", "/me/passkeys/begin", map[string]any{}), 409, "conflict")
	r := h.do(alice.c, "GET", "/me/passkeys", nil)
	if r.body["available"] != false {
		t.Fatalf("available: %s", r.raw)
	}
}

// TestPasskeyConfiguredRelyingParty: with operators.webauthn set, the
// configured RP ID and origins are used whatever the request's Host.
func TestPasskeyConfiguredRelyingParty(t *testing.T) {
	var origin string
	h := newHarness(t, func(h *harness) {
		u, _ := url.Parse(h.srv.URL)
		origin = "https://admin.example.test:" + u.Port()
		h.settings.WebAuthn.RPID = "admin.example.test"
		h.settings.WebAuthn.Origins = []string{origin}
	})
	alice := h.owner()
	a := newSoftAuthenticator(t, origin)
	h.registerPasskey(alice, a, "key")
	handle, pk := h.passwordStep(alice)
	if pk["rpId"] != "admin.example.test" {
		t.Fatalf("rpId %v", pk["rpId"])
	}
	h.want(h.do(alice.c, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 200, "")
	// The request's own origin is not accepted.
	handle, pk = h.passwordStep(alice)
	r := h.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle,
		"credential": a.getAs(pk, func(c *softAuthenticator) { c.origin = h.srv.URL })})
	h.want(r, 401, "unauthenticated")
}

func (h *harness) checkNoLeaks() {
	h.t.Helper()
	logs := h.logs.String()
	for _, s := range h.secrets {
		if s != "" && strings.Contains(logs, s) {
			h.t.Fatalf("a secret is in the log: %.8s...", s)
		}
	}
}

// TestPasswordless: with operators.webauthn.passwordless, a passkey
// alone signs in (the operator found from the credential); off, the
// route answers 404; a user handle that is not the credential's
// operator, or an unknown credential, is refused.
func TestPasswordless(t *testing.T) {
	h, origin := localhostHarness(t)
	alice := h.owner()
	a := newSoftAuthenticator(t, origin)
	h.registerPasskey(alice, a, "laptop")
	h.want(h.do(&client{}, "POST", "/session/passkey/begin", map[string]any{}), 404, "not_found")

	h2, origin2 := localhostHarness(t, func(h *harness) { h.settings.WebAuthn.Passwordless = true })
	alice = h2.owner()
	a = newSoftAuthenticator(t, origin2)
	h2.registerPasskey(alice, a, "laptop")
	bob := h2.invite(alice, "admin", nil, "bob", "tangerine ladder whistling softly")
	b := newSoftAuthenticator(t, origin2)
	h2.registerPasskey(bob, b, "bob's key")
	begin := func() (string, map[string]any) {
		t.Helper()
		r := h2.do(&client{}, "POST", "/session/passkey/begin", map[string]any{})
		h2.want(r, 200, "")
		pk := publicKey(t, r.body)
		if pk["allowCredentials"] != nil || pk["userVerification"] != "required" {
			t.Fatalf("passwordless options: %v", pk)
		}
		return r.body["handle"].(string), pk
	}
	handle, pk := begin()
	c := &client{}
	r := h2.do(c, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)})
	h2.want(r, 200, "")
	if r.body["operator"].(map[string]any)["name"] != "alice" || c.cookie == "" {
		t.Fatalf("passwordless sign-in: %s", r.raw)
	}
	if got := h2.rec.find("session.login", audit.Success); got[len(got)-1].Detail["passwordless"] != "true" {
		t.Fatalf("audit: %+v", got[len(got)-1])
	}
	// Replay of the same assertion: the handle is used.
	h2.want(h2.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 401, "unauthenticated")
	// Bob's credential claiming to be alice (user handle): refused.
	handle, pk = begin()
	h2.want(h2.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle,
		"credential": b.getAs(pk, func(c *softAuthenticator) { c.userHandle = a.userHandle })}), 401, "unauthenticated")
	// Without user verification: refused.
	handle, pk = begin()
	h2.want(h2.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle,
		"credential": a.getAs(pk, func(c *softAuthenticator) { c.noUV = true })}), 401, "unauthenticated")
	// An unregistered authenticator: refused.
	handle, pk = begin()
	stranger := newSoftAuthenticator(t, origin2)
	stranger.userHandle = a.userHandle
	h2.want(h2.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": stranger.get(pk)}), 401, "unauthenticated")
	// Bob still signs in as bob.
	handle, pk = begin()
	r = h2.do(&client{}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": b.get(pk)})
	h2.want(r, 200, "")
	if r.body["operator"].(map[string]any)["name"] != "bob" {
		t.Fatalf("bob: %s", r.raw)
	}
}

// TestOwnerRemovesLostPasskey: an owner lists an operator's passkeys and
// removes one (a lost authenticator), after re-authenticating; the
// passkey no longer signs in; an admin (no operators.manage) cannot.
func TestOwnerRemovesLostPasskey(t *testing.T) {
	h, origin := localhostHarness(t)
	alice := h.owner()
	bob := h.invite(alice, "admin", nil, "bob", "tangerine ladder whistling softly")
	b := newSoftAuthenticator(t, origin)
	id := h.registerPasskey(bob, b, "lost key")
	h.want(h.login(alice), 200, "")
	r := h.do(alice.c, "GET", "/operators/"+bob.id+"/passkeys", nil)
	h.want(r, 200, "")
	if l := r.body["passkeys"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != id {
		t.Fatalf("list: %s", r.raw)
	}
	h.want(h.do(alice.c, "GET", "/operators/op_nobody/passkeys", nil), 404, "not_found")
	h.want(h.do(alice.c, "DELETE", "/operators/"+bob.id+"/passkeys/"+id, nil), 403, "reauth_required")
	h.reauth(alice)
	h.want(h.do(alice.c, "DELETE", "/operators/"+alice.id+"/passkeys/"+id, nil), 404, "not_found") // not alice's
	h.want(h.do(alice.c, "DELETE", "/operators/"+bob.id+"/passkeys/"+id, nil), 204, "")
	if got := h.rec.find("mfa.passkey.remove", audit.Success); len(got) != 1 || got[0].Detail["operator"] != bob.id || got[0].Actor != "operator:"+alice.id {
		t.Fatalf("audit: %+v", got)
	}
	// Bob signs in with his code again: no passkey challenge.
	r = h.do(&client{}, "POST", "/session", map[string]string{"name": bob.name, "password": bob.password})
	if r.status != 401 || r.body["passkey"] != nil {
		t.Fatalf("after removal: %s", r.raw)
	}
	// The harness's stand-in middleware checks the role: an admin may not
	// manage operators.
	h.want(h.login(bob), 200, "")
	h.want(h.do(bob.c, "GET", "/operators/"+alice.id+"/passkeys", nil), 403, "forbidden")
}

// TestPasskeysBehindAdminAPI: the same flows through the admin API's real
// middleware (internal/adminapi: authentication, role, re-authentication,
// body rules) rather than the harness's stand-in: a passkey
// re-authentication opens a Reauth route.
func TestPasskeysBehindAdminAPI(t *testing.T) {
	h, origin := localhostHarness(t)
	h.srv.Config.Handler = adminapi.New(adminapi.Config{Auth: h.svc, Operators: h.svc, ErrCSRF: operator.ErrCSRF})
	alice := h.owner()
	a := newSoftAuthenticator(t, origin)
	h.want(h.do(alice.c, "POST", "/me/passkeys/begin", map[string]any{}), 403, "reauth_required")
	h.registerPasskey(alice, a, "laptop")
	handle, pk := h.passwordStep(alice)
	h.want(h.do(alice.c, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 200, "")
	// A fresh session is not re-authenticated; a passkey makes it so.
	h.want(h.do(alice.c, "POST", "/me/recovery-codes", map[string]any{}), 403, "reauth_required")
	r := h.do(alice.c, "POST", "/session/reauth/passkey/begin", map[string]any{})
	h.want(r, 200, "")
	h.want(h.do(alice.c, "POST", "/session/reauth/passkey/finish", map[string]any{"credential": a.get(publicKey(t, r.body))}), 200, "")
	h.want(h.do(alice.c, "POST", "/me/recovery-codes", map[string]any{}), 200, "")
	// Without the CSRF token the passkey routes are refused like any other.
	noCSRF := &client{cookie: alice.c.cookie}
	h.want(h.do(noCSRF, "POST", "/session/reauth/passkey/begin", map[string]any{}), 403, "csrf")
	// Login CSRF: the public passkey step from another site.
	handle, pk = h.passwordStep(alice)
	h.want(h.do(&client{origin: "https://evil.example"}, "POST", "/session/passkey", map[string]any{"handle": handle, "credential": a.get(pk)}), 403, "csrf")
}
