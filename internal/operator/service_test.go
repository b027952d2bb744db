package operator_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
)

func TestBootstrapCodePrintedOnceAndSingleUse(t *testing.T) {
	h := newHarness(t)
	first := h.bootstrapCode()
	// A restart before anyone enrolled: a new code, the old one dead.
	second := h.bootstrapCode()
	if first == second {
		t.Fatal("the same bootstrap code twice")
	}
	c := &client{}
	h.want(h.do(c, "POST", "/enroll", map[string]string{"code": first, "name": "alice", "password": "violet kettle marching sideways"}), 401, "unauthenticated")
	owner := h.enroll(second, "alice", "violet kettle marching sideways")
	if r := h.do(owner.c, "GET", "/session", nil); r.status != 200 || r.body["operator"].(map[string]any)["role"] != "owner" {
		t.Fatalf("GET /session = %s", r.raw)
	}
	// Used: refused, also for another name.
	h.want(h.do(&client{}, "POST", "/enroll", map[string]string{"code": second, "name": "mallory", "password": "violet kettle marching sideways"}), 401, "unauthenticated")
	// An owner exists: no code is printed any more.
	h.announce.Reset()
	if code, err := h.svc.Bootstrap(context.Background()); err != nil || code != "" || h.announce.Len() != 0 {
		t.Fatalf("Bootstrap with an owner = %q, %v, printed %q", code, err, h.announce.String())
	}
	if strings.Contains(h.logs.String(), first) || strings.Contains(h.logs.String(), second) {
		t.Fatal("a bootstrap code reached the log")
	}
}

func TestTOTPEnrollLoginAndReplayRefused(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	// The code used to confirm enrollment is spent: the same code (same
	// time step) cannot sign in.
	c := &client{}
	code := h.totpCode(owner.secret, 0)
	h.want(h.do(c, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": code}), 401, "mfa_required")
	h.clock.Add(30 * time.Second)
	code = h.totpCode(owner.secret, 0)
	r := h.do(c, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": code})
	h.want(r, 200, "")
	if r.body["csrfToken"] == "" || c.cookie == "" {
		t.Fatalf("login answer %s", r.raw)
	}
	// Replayed within its validity: refused.
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": code}), 401, "mfa_required")
	// The previous step's code (still within the skew window) is refused
	// too: it is older than the last accepted one.
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": h.totpCode(owner.secret, -30*time.Second)}), 401, "mfa_required")
	// The next step's code works.
	h.clock.Add(30 * time.Second)
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": h.totpCode(owner.secret, 0)}), 200, "")
	if len(h.rec.find("session.login", audit.Success)) != 2 || len(h.rec.find("session.login", audit.Failure)) != 3 || len(h.rec.find("mfa.enroll", audit.Success)) != 1 {
		t.Fatalf("audit: %+v", h.rec.events)
	}
	// The secret is sealed, and bound to its operator.
	op, err := h.st.GetOperator(context.Background(), owner.id)
	if err != nil || bytes.Contains(op.TOTPSealed, []byte(owner.secret)) || len(op.TOTPSealed) < 20 {
		t.Fatalf("stored TOTP: %v", err)
	}
}

func TestRecoveryCodeWorksOnce(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	rc := owner.recovery[3]
	r := h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "recoveryCode": strings.ToUpper(rc)})
	h.want(r, 200, "")
	if r.body["recoveryCodesLeft"] != float64(9) {
		t.Fatalf("recovery_codes_left = %v", r.body["recoveryCodesLeft"])
	}
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "recoveryCode": rc}), 401, "mfa_required")
	// Both factors at once is not a thing.
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "recoveryCode": owner.recovery[4], "totp": "123456"}), 401, "mfa_required")
	// Regenerating needs re-authentication, and replaces the old codes.
	h.want(h.do(owner.c, "POST", "/me/recovery-codes", map[string]string{}), 403, "reauth_required")
	h.reauth(owner)
	r = h.do(owner.c, "POST", "/me/recovery-codes", map[string]string{})
	h.want(r, 200, "")
	if len(r.body["recoveryCodes"].([]any)) != 10 {
		t.Fatalf("new codes: %s", r.raw)
	}
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "recoveryCode": owner.recovery[5]}), 401, "mfa_required")
	newCode := r.body["recoveryCodes"].([]any)[0].(string)
	h.secrets = append(h.secrets, newCode)
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "recoveryCode": newCode}), 200, "")
}

func TestLockoutAfterFailures(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	for i := range h.settings.MaxFailures {
		h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": "wrong password number " + string(rune('a'+i)), "totp": "000000"}), 401, "unauthenticated")
	}
	if len(h.rec.find("session.lockout", audit.Denied)) != 1 {
		t.Fatalf("no lockout recorded: %+v", h.rec.events)
	}
	// Locked: even the right password and code are refused.
	r := h.login(owner)
	h.want(r, 429, "too_many_requests")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// An owner's view shows the lock; after lockout_for it lifts.
	h.clock.Add(time.Duration(h.settings.LockoutFor))
	h.want(h.login(owner), 200, "")
	// Wrong second factors count too.
	for range h.settings.MaxFailures {
		h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "alice", "password": owner.password, "totp": "000000"}), 401, "mfa_required")
	}
	h.want(h.login(owner), 429, "too_many_requests")
}

func TestUnknownNameAndWrongPasswordAnswerAlike(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.settings.Argon2.MemoryKiB = 32768 }) // a hash long enough to time
	h.owner()
	unknown := map[string]string{"name": "nobody", "password": "violet kettle marching sideways", "totp": "123456"}
	wrong := map[string]string{"name": "alice", "password": "violet kettle marching sideway", "totp": "123456"}
	var tu, tw time.Duration = time.Hour, time.Hour
	for range 3 {
		start := time.Now()
		ru := h.do(&client{}, "POST", "/session", unknown)
		tu = min(tu, time.Since(start))
		start = time.Now()
		rw := h.do(&client{}, "POST", "/session", wrong)
		tw = min(tw, time.Since(start))
		if ru.status != rw.status || ru.raw != rw.raw || ru.status != 401 {
			t.Fatalf("unknown name: %d %s; wrong password: %d %s", ru.status, ru.raw, rw.status, rw.raw)
		}
	}
	// Both compute an argon2id hash (the unknown name a dummy one): the
	// unknown name is not answered much faster. A loose ratio, not a
	// wall-clock figure; without the dummy hash it is below 0.05.
	if tu < tw/4 {
		t.Fatalf("unknown name answered in %v, wrong password in %v: the timing tells them apart", tu, tw)
	}
	t.Logf("fastest answers: unknown name %v, wrong password %v", tu, tw)
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	idle := time.Duration(h.settings.SessionIdle)
	h.clock.Add(idle - time.Minute)
	h.want(h.do(owner.c, "GET", "/session", nil), 200, "")
	h.clock.Add(idle - time.Minute) // active: the idle timer restarted
	h.want(h.do(owner.c, "GET", "/session", nil), 200, "")
	h.clock.Add(idle)
	h.want(h.do(owner.c, "GET", "/session", nil), 401, "unauthenticated")

	// Absolute lifetime: active every 10 minutes, still out at 8 h.
	h.want(h.login(owner), 200, "")
	start := h.clock.Now()
	for h.clock.Now().Sub(start) < time.Duration(h.settings.SessionMax)-10*time.Minute {
		h.clock.Add(10 * time.Minute)
		h.want(h.do(owner.c, "GET", "/session", nil), 200, "")
	}
	h.clock.Add(10 * time.Minute)
	h.want(h.do(owner.c, "GET", "/session", nil), 401, "unauthenticated")

	// Signing out ends the session on the server: the cookie is dead.
	h.want(h.login(owner), 200, "")
	kept := *owner.c
	h.want(h.do(owner.c, "DELETE", "/session", nil), 204, "")
	h.want(h.do(&kept, "GET", "/session", nil), 401, "unauthenticated")
}

func TestCSRFAndOrigin(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	noToken := &client{cookie: owner.c.cookie}
	h.want(h.do(noToken, "POST", "/tokens", map[string]any{"name": "ci"}), 403, "csrf")
	wrongToken := &client{cookie: owner.c.cookie, csrf: strings.Repeat("A", len(owner.c.csrf))}
	h.want(h.do(wrongToken, "POST", "/tokens", map[string]any{"name": "ci"}), 403, "csrf")
	// Another session's token does not fit this session.
	other := h.login(owner)
	h.want(other, 200, "")
	first := &client{cookie: noToken.cookie, csrf: owner.c.csrf}
	_ = first
	foreign := &client{cookie: noToken.cookie, csrf: other.body["csrfToken"].(string)}
	h.want(h.do(foreign, "POST", "/tokens", map[string]any{"name": "ci"}), 403, "csrf")
	// The right token from another origin: refused.
	evil := &client{cookie: owner.c.cookie, csrf: owner.c.csrf, origin: "https://evil.example"}
	h.want(h.do(evil, "POST", "/tokens", map[string]any{"name": "ci"}), 403, "csrf")
	// A sign-in posted from another site (login CSRF): refused.
	h.want(h.do(&client{origin: "https://evil.example"}, "POST", "/session", map[string]string{"name": "alice", "password": "x", "totp": "1"}), 403, "csrf")
	// Right token, own origin: accepted. GET needs no token.
	ok := &client{cookie: owner.c.cookie, csrf: owner.c.csrf, origin: h.srv.URL}
	r := h.do(ok, "POST", "/tokens", map[string]any{"name": "ci", "role": "admin"})
	h.want(r, 201, "")
	h.secrets = append(h.secrets, r.body["token"].(string))
	h.want(h.do(&client{cookie: owner.c.cookie}, "GET", "/tokens", nil), 200, "")
	if len(h.rec.find("session.csrf", audit.Denied)) != 4 {
		t.Fatalf("CSRF refusals recorded: %d", len(h.rec.find("session.csrf", audit.Denied)))
	}
}

func TestAPITokensScopeRevocationExpiry(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	op := h.invite(owner, "operator", []string{"bot-a"}, "bob", "amber window folding quietly")
	// Beyond the creator's rights: refused at creation.
	for _, body := range []map[string]any{
		{"name": "ci", "role": "admin"},
		{"name": "ci", "role": "owner"},
		{"name": "ci", "role": "auditor"}, // auditor reads the audit log, which an operator cannot
		{"name": "ci", "bots": []string{"bot-b"}},
		{"name": "ci", "bots": []string{"bot-a", "bot-b"}},
		{"name": "ci", "bots": []string{}}, // every bot
	} {
		r := h.do(op.c, "POST", "/tokens", body)
		h.want(r, 403, "forbidden")
	}
	h.want(h.do(op.c, "POST", "/tokens", map[string]any{"name": "ci", "expiresInDays": 366}), 400, "bad_request")
	r := h.do(op.c, "POST", "/tokens", map[string]any{"name": "ci", "expiresInDays": 2})
	h.want(r, 201, "")
	tok := r.body["token"].(string)
	h.secrets = append(h.secrets, tok)
	info := r.body["info"].(map[string]any)
	if !strings.HasPrefix(tok, "ptk_") || len(tok) != 4+43 || info["role"] != "operator" || !slices.Equal(toStrings(info["bots"]), []string{"bot-a"}) {
		t.Fatalf("token %q info %v", tok, info)
	}
	bearer := &client{bearer: tok}
	h.want(h.do(bearer, "GET", "/session", nil), 200, "")
	// Never for re-authentication routes, nor to mint tokens.
	h.want(h.do(bearer, "POST", "/me/recovery-codes", map[string]string{}), 403, "reauth_required")
	h.want(h.do(bearer, "POST", "/session/reauth", map[string]string{"password": op.password, "totp": "123456"}), 403, "reauth_required")
	h.want(h.do(bearer, "POST", "/tokens", map[string]any{"name": "child"}), 403, "forbidden")
	// Beyond its role: operators routes need owner.
	h.want(h.do(bearer, "GET", "/operators", nil), 403, "forbidden")
	// Token writes are audited (each write presented: 4 so far, whatever
	// the middleware then decided).
	h.do(bearer, "DELETE", "/session", nil)
	if len(h.rec.find("token.use", audit.Success)) != 4 {
		t.Fatalf("token use for a write not recorded: %+v", h.rec.find("token.use", audit.Success))
	}
	// A wrong token, a malformed header: 401.
	h.want(h.do(&client{bearer: tok[:len(tok)-1] + "x"}, "GET", "/session", nil), 401, "unauthenticated")
	h.want(h.do(&client{bearer: "ptk_"}, "GET", "/session", nil), 401, "unauthenticated")

	// Revoked: refused at once. Only its creator (or an owner) revokes it.
	id := info["id"].(string)
	mallory := h.invite(owner, "operator", []string{"bot-a"}, "mallory", "copper lantern drifting north")
	h.want(h.do(mallory.c, "DELETE", "/tokens/"+id, nil), 404, "not_found")
	h.want(h.do(op.c, "DELETE", "/tokens/"+id, nil), 204, "")
	h.want(h.do(bearer, "GET", "/session", nil), 401, "unauthenticated")

	// Expired: refused.
	r = h.do(op.c, "POST", "/tokens", map[string]any{"name": "short", "expiresInDays": 1})
	h.want(r, 201, "")
	short := &client{bearer: r.body["token"].(string)}
	h.secrets = append(h.secrets, short.bearer)
	h.want(h.do(short, "GET", "/session", nil), 200, "")
	h.clock.Add(24*time.Hour + time.Second)
	h.want(h.do(short, "GET", "/session", nil), 401, "unauthenticated")

	// A disabled (then removed) creator's tokens stop working.
	h.want(h.login(op), 200, "")
	r = h.do(op.c, "POST", "/tokens", map[string]any{"name": "third"})
	h.want(r, 201, "")
	third := &client{bearer: r.body["token"].(string)}
	h.secrets = append(h.secrets, third.bearer)
	h.want(h.do(third, "GET", "/session", nil), 200, "")
	h.want(h.login(owner), 200, "")
	h.want(h.do(owner.c, "PATCH", "/operators/"+op.id, map[string]any{"disabled": true}), 403, "reauth_required")
	h.reauth(owner)
	h.want(h.do(owner.c, "PATCH", "/operators/"+op.id, map[string]any{"disabled": true}), 200, "")
	h.want(h.do(third, "GET", "/session", nil), 401, "unauthenticated")
	h.want(h.do(op.c, "GET", "/session", nil), 401, "unauthenticated")
	h.want(h.do(owner.c, "PATCH", "/operators/"+op.id, map[string]any{"disabled": false}), 200, "")
	h.want(h.do(third, "GET", "/session", nil), 200, "")
	h.want(h.do(owner.c, "DELETE", "/operators/"+op.id, nil), 204, "")
	h.want(h.do(third, "GET", "/session", nil), 401, "unauthenticated")
	// The owner's own unscoped token may be of any role and bots.
	r = h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ops", "role": "auditor", "bots": []string{"bot-b"}})
	h.want(r, 201, "")
	h.secrets = append(h.secrets, r.body["token"].(string))
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestLastOwnerAndObjectLevelChecks(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	h.reauth(owner)
	h.want(h.do(owner.c, "PATCH", "/operators/"+owner.id, map[string]any{"role": "admin"}), 409, "conflict")
	h.want(h.do(owner.c, "PATCH", "/operators/"+owner.id, map[string]any{"bots": []string{"bot-a"}}), 409, "conflict")
	h.want(h.do(owner.c, "DELETE", "/operators/"+owner.id, nil), 409, "conflict")
	h.want(h.do(owner.c, "PATCH", "/operators/op_nope", map[string]any{"role": "admin"}), 404, "not_found")
	// A second owner: now the first may step down.
	second := h.invite(owner, "owner", nil, "carol", "granite puzzle whistle evening")
	h.want(h.do(owner.c, "PATCH", "/operators/"+owner.id, map[string]any{"role": "admin"}), 200, "")
	// Its session ended (its rights changed).
	h.want(h.do(owner.c, "GET", "/session", nil), 401, "unauthenticated")
	// A scoped owner cannot grant beyond its scope.
	h.reauth(second)
	h.want(h.do(second.c, "PATCH", "/operators/"+owner.id, map[string]any{"role": "owner", "bots": []string{"bot-a"}}), 200, "")
	scoped := owner
	h.want(h.login(scoped), 200, "")
	h.want(h.do(scoped.c, "POST", "/operators", map[string]any{"role": "operator", "bots": []string{"bot-b"}}), 403, "forbidden")
	h.want(h.do(scoped.c, "POST", "/operators", map[string]any{"role": "operator", "bots": []string{}}), 403, "forbidden")
	h.want(h.do(scoped.c, "POST", "/operators", map[string]any{"role": "operator", "bots": []string{"bot-a"}}), 200, "")
	r := h.do(second.c, "GET", "/operators", nil)
	h.want(r, 200, "")
	if n := len(r.body["operators"].([]any)); n != 2 {
		t.Fatalf("operators: %s", r.raw)
	}
}

func TestStrictJSONAndBodyLimit(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name":"a","password":"b","totp":"1","extra":1}`, 400, "bad_request"},
		{`{"name":"a","name":"b","password":"c"}`, 400, "bad_request"},
		{`{"Name":"a","password":"b"}`, 400, "bad_request"},
		{`{"name":"a","password":"b"} {}`, 400, "bad_request"},
		{`[1]`, 400, "bad_request"},
		{`{"name":"` + strings.Repeat("a", 20000) + `"}`, 413, "request_too_large"},
	} {
		h.want(h.do(&client{}, "POST", "/session", tc.body), tc.status, tc.code)
	}
	// Content type.
	req, _ := newRawRequest(h.srv.URL+"/admin/v1/session", "text/plain", `{"name":"a"}`)
	res, err := h.srv.Client().Do(req)
	if err != nil || res.StatusCode != 415 {
		t.Fatalf("text/plain: %v %v", res, err)
	}
	res.Body.Close()
}

func TestPublicRoutesRateLimited(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.settings.LoginRate = "3/m burst 3" })
	for range 3 {
		h.do(&client{}, "POST", "/session", map[string]string{"name": "a", "password": "b"})
	}
	r := h.do(&client{}, "POST", "/session", map[string]string{"name": "a", "password": "b"})
	h.want(r, 429, "too_many_requests")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestWeakPasswordRefusedAtEnrollment(t *testing.T) {
	h := newHarness(t)
	code := h.bootstrapCode()
	r := h.do(&client{}, "POST", "/enroll", map[string]string{"code": code, "name": "alice", "password": "password1234"})
	h.want(r, 400, "bad_request")
	if !strings.Contains(r.raw, "choose another") {
		t.Fatalf("message: %s", r.raw)
	}
	// The code was not spent by the refused attempt.
	h.enroll(code, "alice", "violet kettle marching sideways")
}

// TestNoSecretInLogsOrDatabase runs the flows and then looks for every
// secret seen (passwords, codes, tokens, cookies, CSRF tokens, TOTP
// secrets, recovery codes) in the log, the audit events and the SQLite
// files.
func TestNoSecretInLogsOrDatabase(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	op := h.invite(owner, "admin", nil, "dave", "quiet harbor spinning lanterns")
	r := h.do(op.c, "POST", "/tokens", map[string]any{"name": "ci"})
	h.want(r, 201, "")
	h.secrets = append(h.secrets, r.body["token"].(string))
	h.want(h.do(&client{bearer: r.body["token"].(string)}, "DELETE", "/session", nil), 400, "bad_request")
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "dave", "password": "wrong but secret-ish 123", "totp": "1"}), 401, "unauthenticated")
	h.secrets = append(h.secrets, "wrong but secret-ish 123")
	h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "dave", "password": op.password, "recoveryCode": op.recovery[0]}), 200, "")
	h.reauth(op)
	r = h.do(op.c, "POST", "/me/password", map[string]string{"newPassword": "silver meadow counting clouds"})
	h.want(r, 200, "")
	h.secrets = append(h.secrets, "silver meadow counting clouds")
	if err := h.st.Scrub(context.Background()); err != nil {
		t.Fatal(err)
	}
	var dbBytes []byte
	files, _ := filepath.Glob(filepath.Join(h.dir, "parley.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dbBytes = append(dbBytes, b...)
	}
	var events bytes.Buffer
	for _, e := range h.rec.events {
		events.WriteString(e.Actor + e.Action + e.Target + e.Client)
		for k, v := range e.Detail {
			events.WriteString(k + v)
		}
	}
	if len(h.secrets) < 20 {
		t.Fatalf("only %d secrets collected", len(h.secrets))
	}
	for _, s := range h.secrets {
		if len(s) < 8 {
			t.Fatalf("secret %q too short to search for", s)
		}
		for where, hay := range map[string][]byte{"log": h.logs.Bytes(), "audit": events.Bytes(), "db": dbBytes} {
			if bytes.Contains(hay, []byte(s)) {
				t.Errorf("a secret (%.6s...) appears in the %s", s, where)
			}
		}
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{true, false} {
		h := newHarness(t, func(h *harness) { h.secure = secure })
		code := h.bootstrapCode()
		c := &client{}
		r := h.do(c, "POST", "/enroll", map[string]string{"code": code, "name": "alice", "password": "violet kettle marching sideways"})
		h.want(r, 200, "")
		r = h.do(c, "POST", "/enroll/totp", map[string]string{"enrollmentId": r.body["enrollmentId"].(string), "totp": h.totpCode(r.body["totpSecret"].(string), 0)})
		h.want(r, 200, "")
		set := r.header.Get("Set-Cookie")
		wantName := "parley_admin="
		if secure {
			wantName = "__Host-parley_admin="
		}
		for _, part := range []string{"Path=/", "HttpOnly", "SameSite=Strict"} {
			if !strings.Contains(set, part) {
				t.Errorf("secure=%v: Set-Cookie %q lacks %s", secure, set, part)
			}
		}
		if !strings.HasPrefix(set, wantName) || strings.Contains(set, "Secure") != secure || strings.Contains(set, "Domain") {
			t.Errorf("secure=%v: Set-Cookie %q", secure, set)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	}
}

// TestHandlersMatchRoutes: Handlers serves exactly the admin routes of
// sessions, enrollment, SSO, me, operators, invitations and tokens.
func TestHandlersMatchRoutes(t *testing.T) {
	h := newHarness(t)
	got := h.svc.Handlers()
	mine := 0
	for _, rt := range admin.Routes {
		rest := strings.TrimPrefix(rt.Pattern, admin.Prefix)
		owned := false
		for _, p := range []string{"/session", "/enroll", "/sso/", "/me/", "/operators", "/invitations", "/tokens"} {
			if strings.HasPrefix(rest, p) {
				owned = true
			}
		}
		_, ok := got[rt.Method+" "+rt.Pattern]
		if owned != ok {
			t.Errorf("%s %s: owned %v, served %v", rt.Method, rt.Pattern, owned, ok)
		}
		if ok {
			mine++
		}
	}
	if mine != len(got) || mine != 29 { // 19 + 10 passkey routes
		t.Fatalf("%d routes matched, %d handlers", mine, len(got))
	}
}

func TestOwnerUnlocksOperator(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	bob := h.invite(owner, "operator", nil, "bob", "amber window folding quietly")
	for range h.settings.MaxFailures {
		h.want(h.do(&client{}, "POST", "/session", map[string]string{"name": "bob", "password": "not bob's password", "totp": "000000"}), 401, "unauthenticated")
	}
	h.want(h.login(bob), 429, "too_many_requests")
	r := h.do(owner.c, "GET", "/operators", nil)
	h.want(r, 200, "")
	locked := ""
	for _, o := range r.body["operators"].([]any) {
		if m := o.(map[string]any); m["name"] == "bob" {
			locked, _ = m["lockedUntil"].(string)
			if m["mfa"] != true || m["role"] != "operator" {
				t.Fatalf("bob: %v", m)
			}
		}
	}
	if locked == "" {
		t.Fatalf("bob not shown locked: %s", r.raw)
	}
	if strings.Contains(r.raw, "argon2") || strings.Contains(r.raw, bob.secret) {
		t.Fatal("the operator list shows a secret")
	}
	h.reauth(owner)
	h.want(h.do(owner.c, "PATCH", "/operators/"+bob.id, map[string]any{"unlock": true}), 200, "")
	h.want(h.login(bob), 200, "")
}
