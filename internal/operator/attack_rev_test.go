package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/operator"
)

// The bootstrap code printed at start (to stderr: often a shared log)
// must stop working once an owner exists, also when that owner enrolled
// with another code (an owner invite made with the CLI).
func TestRevBootstrapCodeDiesWhenAnOwnerEnrolls(t *testing.T) {
	h := newHarness(t)
	boot := h.bootstrapCode()
	code, _, err := h.svc.Invite(context.Background(), admin.Principal{Kind: admin.KindLocal, ID: "root", Role: admin.RoleOwner},
		admin.RoleOwner, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, code)
	h.enroll(code, "alice", "violet kettle marching sideways")
	r := h.do(&client{}, "POST", "/enroll", map[string]string{"code": boot, "name": "mallory", "password": "granite puzzle whistle evening"})
	h.want(r, 401, "unauthenticated")
}

// Inviting an owner hands out every right, including the routes that
// need a recent re-authentication (the new owner can re-authenticate
// and demote or remove the others): it needs one too, so a stolen
// session cookie or an owner API token cannot mint a full owner.
func TestRevOwnerInviteNeedsReauth(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner"}), 403, "reauth_required")
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner", "name": "sso-owner", "ssoSubject": "sub-1"}), 403, "reauth_required")
	// Nor does an owner API token (a stolen cookie must not turn into a
	// year-long owner credential); lesser roles' tokens need none.
	h.want(h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci"}), 403, "reauth_required")
	h.want(h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci", "role": "owner"}), 403, "reauth_required")
	r := h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci-admin", "role": "admin"})
	h.want(r, 201, "")
	h.secrets = append(h.secrets, r.body["token"].(string))
	// Lesser roles need no re-authentication; an owner after it does.
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "admin"}), 200, "")
	h.reauth(owner)
	// An owner API token, made after re-authenticating: never
	// re-authenticated itself, so it cannot invite an owner.
	r = h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci"})
	h.want(r, 201, "")
	tok := r.body["token"].(string)
	h.secrets = append(h.secrets, tok)
	h.want(h.do(&client{bearer: tok}, "POST", "/operators", map[string]any{"role": "owner"}), 403, "reauth_required")
	h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "owner"}), 200, "")
}

// A burst of parallel guesses from many addresses (so the per-address
// budget does not bound it) must not outrun the per-operator lockout:
// the lock is checked before the password hash and counted after it, so
// every request of the burst passed the check and got its password
// evaluated (and a right password answered mfa_required while the
// account was already locked).
func TestRevParallelGuessesDoNotOutrunTheLockout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.settings.MaxFailures = 2 })
	owner := h.owner()
	burstOfGuesses(t, owner.password, func(i int, pw string) (*http.Client, *http.Request) {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+i))}
		cl := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: local}).DialContext}}
		b, _ := json.Marshal(map[string]string{"name": owner.name, "password": pw, "totp": "000000"})
		req, _ := http.NewRequest("POST", h.srv.URL+admin.Prefix+"/session", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		return cl, req
	})
}

// The same burst through re-authentication, with a stolen session cookie
// (reported by a review: every guess was checked, and the right password
// answered mfa_required while the account was locked).
func TestRevParallelReauthGuessesDoNotOutrunTheLockout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.settings.MaxFailures = 2 })
	owner := h.owner()
	burstOfGuesses(t, owner.password, func(i int, pw string) (*http.Client, *http.Request) {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+i))}
		cl := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: local}).DialContext}}
		b, _ := json.Marshal(map[string]string{"password": pw, "totp": "000000"})
		req, _ := http.NewRequest("POST", h.srv.URL+admin.Prefix+"/session/reauth", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: operator.CookieLoopback, Value: owner.c.cookie})
		req.Header.Set(operator.CSRFHeader, owner.c.csrf)
		return cl, req
	})
}

// burstOfGuesses sends 24 password guesses at once (the last with the
// right password and a wrong code), each from its own address, and fails
// when more than max_failures (2) of them were checked: answered "wrong
// password" or mfa_required rather than 429.
func burstOfGuesses(t *testing.T, right string, request func(i int, pw string) (*http.Client, *http.Request)) {
	t.Helper()
	const burst = 24
	var wg sync.WaitGroup
	codes := make(chan string, burst)
	for i := range burst {
		pw := "wrong password " + strconv.Itoa(i)
		if i == burst-1 {
			pw = right // right password, wrong code: must not be told apart once locked
		}
		cl, req := request(i, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cl.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			_ = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			codes <- strconv.Itoa(res.StatusCode) + " " + body.Error.Code + ": " + body.Error.Message
		}()
	}
	wg.Wait()
	close(codes)
	evaluated, all := 0, []string{}
	for c := range codes {
		all = append(all, c)
		// A check answers "wrong" (unauthenticated) or, for the right
		// password, mfa_required; once the lockout ended the session, a
		// re-authentication is told to sign in first (nothing checked).
		if (strings.HasPrefix(c, "401 unauthenticated:") && !strings.Contains(c, "sign in")) || strings.HasPrefix(c, "401 mfa_required:") {
			evaluated++
		}
	}
	// At most max_failures guesses are checked: no more run at once than
	// the failures left before the lockout (this bound failed under load
	// when it was only re-checked after the hash: 5 of 24 answered).
	if limit := 2; evaluated > limit {
		t.Fatalf("%d of %d parallel guesses were evaluated (limit %d): %v", evaluated, burst, limit, all)
	}
}

// An invitation dies with its inviter's rights: an owner who made an
// owner code and was then removed (or demoted) leaves no code that still
// enrolls an owner (review: a removed owner's 7-day code made an owner
// three days later).
func TestRevInvitationsDieWithTheirInviter(t *testing.T) {
	for _, how := range []string{"removed", "demoted"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			alice := h.owner()
			h.reauth(alice)
			bob := h.invite(alice, "owner", nil, "bob", "copper lantern drifting slowly")
			h.reauth(bob)
			r := h.do(bob.c, "POST", "/operators", map[string]any{"role": "owner", "ttlHours": 168})
			h.want(r, 200, "")
			code := r.body["code"].(string)
			h.secrets = append(h.secrets, code)
			r = h.do(bob.c, "POST", "/operators", map[string]any{"role": "operator", "ttlHours": 168})
			h.want(r, 200, "")
			lesser := r.body["code"].(string)
			h.secrets = append(h.secrets, lesser)
			h.reauth(alice)
			if how == "removed" {
				h.want(h.do(alice.c, "DELETE", "/operators/"+bob.id, nil), 204, "")
			} else {
				h.want(h.do(alice.c, "PATCH", "/operators/"+bob.id, map[string]any{"role": "auditor"}), 200, "")
			}
			h.clock.Add(72 * time.Hour)
			for _, c := range []string{code, lesser} {
				r := h.do(&client{}, "POST", "/enroll", map[string]string{"code": c, "name": "mallory", "password": "tangerine fossil orbit quietly"})
				h.want(r, 401, "unauthenticated")
			}
		})
	}
}

// A bot scope names registered bots: an unknown, empty or repeated id is
// refused when inviting or changing an operator (review: "--bots
// nosuchbot" and "a,,b" made codes for operators who could see nothing).
func TestRevBotScopeNamesRegisteredBots(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	for _, bots := range [][]string{{"no-such-bot"}, {"bot-a", ""}, {"bot-a", "bot-a"}} {
		h.want(h.do(owner.c, "POST", "/operators", map[string]any{"role": "operator", "bots": bots}), 400, "bad_request")
	}
	r := h.do(owner.c, "POST", "/operators", map[string]any{"role": "operator", "bots": []string{"bot-a"}})
	h.want(r, 200, "")
	h.secrets = append(h.secrets, r.body["code"].(string))
	op := h.enroll(r.body["code"].(string), "olive", "walnut harbor drifting quietly")
	h.reauth(owner)
	h.want(h.do(owner.c, "PATCH", "/operators/"+op.id, map[string]any{"bots": []string{"bot-a", "no-such-bot"}}), 400, "bad_request")
	// API tokens too (stop 20 noted they still took any id).
	for _, bots := range [][]string{{"no-such-bot"}, {"bot-a", ""}, {"bot-a", "bot-a"}} {
		h.want(h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci", "role": "operator", "bots": bots}), 400, "bad_request")
	}
	r = h.do(owner.c, "POST", "/tokens", map[string]any{"name": "ci", "role": "operator", "bots": []string{"bot-b"}})
	h.want(r, 201, "")
	h.secrets = append(h.secrets, r.body["token"].(string))
}

// The same for an invitation made with the operator's API token: the
// token dies with its creator, and so does what it invited (review: the
// code had no inviter and enrolled an admin after the creator's removal).
func TestRevTokenInvitationsDieWithTheirCreator(t *testing.T) {
	h := newHarness(t)
	alice := h.owner()
	h.reauth(alice)
	bob := h.invite(alice, "owner", nil, "bob", "copper lantern drifting slowly")
	h.reauth(bob)
	r := h.do(bob.c, "POST", "/tokens", map[string]any{"name": "ci", "role": "owner"})
	h.want(r, 201, "")
	tok := r.body["token"].(string)
	h.secrets = append(h.secrets, tok)
	r = h.do(&client{bearer: tok}, "POST", "/operators", map[string]any{"role": "operator", "ttlHours": 168})
	h.want(r, 200, "")
	code := r.body["code"].(string)
	h.secrets = append(h.secrets, code)
	h.reauth(alice)
	h.want(h.do(alice.c, "DELETE", "/operators/"+bob.id, nil), 204, "")
	h.clock.Add(72 * time.Hour)
	h.want(h.do(&client{}, "POST", "/enroll", map[string]string{"code": code, "name": "mallory", "password": "tangerine fossil orbit quietly"}), 401, "unauthenticated")
}

// Pending invitations can be seen (what each grants, who made it, never
// the code) and revoked by an owner; a revoked code no longer enrolls,
// and the revocation is audited.
func TestInvitationsListedAndRevoked(t *testing.T) {
	h := newHarness(t)
	owner := h.owner()
	r := h.do(owner.c, "POST", "/operators", map[string]any{"role": "operator", "bots": []string{"bot-a"}})
	h.want(r, 200, "")
	code := r.body["code"].(string)
	h.secrets = append(h.secrets, code)
	r = h.do(owner.c, "GET", "/invitations", nil)
	h.want(r, 200, "")
	if strings.Contains(string(r.raw), code) || strings.Contains(string(r.raw), strings.TrimPrefix(code, "pec_")) {
		t.Fatalf("the list shows the code: %s", r.raw)
	}
	list, _ := r.body["invitations"].([]any)
	var id string
	for _, it := range list {
		m := it.(map[string]any)
		if m["role"] == "operator" && m["createdBy"] == owner.id {
			id, _ = m["id"].(string)
		}
	}
	if id == "" {
		t.Fatalf("the invitation is not listed: %s", r.raw)
	}
	h.want(h.do(owner.c, "DELETE", "/invitations/"+id, nil), 204, "")
	h.want(h.do(owner.c, "DELETE", "/invitations/"+id, nil), 404, "not_found")
	h.want(h.do(&client{}, "POST", "/enroll", map[string]string{"code": code, "name": "mallory", "password": "tangerine fossil orbit quietly"}), 401, "unauthenticated")
	revoked := false
	for _, e := range h.rec.find("operator.invitation_revoke", audit.Success) {
		revoked = revoked || e.Target == "invitation:"+id
	}
	if !revoked {
		t.Fatal("the revocation is not in the audit log")
	}
}
