package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
)

const v1 = admin.Prefix

// TestBOLA: an operator scoped to bot A cannot read, change or erase bot
// B's site, conversation, dead letter or OAuth connection: 404, the same
// answer as for an id that does not exist, and nothing changes; its
// lists hold only bot A's objects.
func TestBOLA(t *testing.T) {
	e := newEnv(t)
	tok := "operator:" + e.bot["A"]
	owner := "owner"
	site, conv, dl, bot := e.site["B"], e.conv["B"], fmt.Sprint(e.dl["B"]), e.bot["B"]
	tries := []struct {
		method, path string
		body         any
	}{
		{"GET", v1 + "/bots/" + bot, nil},
		{"PATCH", v1 + "/bots/" + bot, map[string]any{"name": "Mine now"}},
		{"DELETE", v1 + "/bots/" + bot + "?cascade=true", nil},
		{"POST", v1 + "/bots/" + bot + "/secret", map[string]any{"slot": 1}},
		{"GET", v1 + "/sites/" + site, nil},
		{"PATCH", v1 + "/sites/" + site, map[string]any{"name": "Mine now"}},
		{"DELETE", v1 + "/sites/" + site, nil},
		{"GET", v1 + "/sites/" + site + "/secrets", nil},
		{"POST", v1 + "/sites/" + site + "/secrets", map[string]any{"slot": 1}},
		{"DELETE", v1 + "/sites/" + site + "/secrets/1", nil},
		{"PUT", v1 + "/sites/" + site + "/origins", map[string]any{"origins": []string{"https://evil.example"}}},
		{"GET", v1 + "/sites/" + site + "/retention", nil},
		{"POST", v1 + "/sites", map[string]any{"bot": bot, "name": "Sneaky"}},
		{"DELETE", v1 + "/conversations/" + conv, nil}, // as admin@A: operators never erase
		{"GET", v1 + "/conversations?bot=" + bot, nil},
		{"GET", v1 + "/conversations?site=" + site, nil},
		{"POST", v1 + "/dead-letters/" + dl + "/redeliver", nil},
		{"DELETE", v1 + "/dead-letters/" + dl, nil},
		{"GET", v1 + "/dead-letters?bot=" + bot, nil},
		{"GET", v1 + "/dead-letters/" + dl + "/activity", nil},
		{"GET", v1 + "/sites?bot=" + bot, nil},
		{"GET", v1 + "/bots/" + bot + "/oauth-connections", nil},
		{"POST", v1 + "/bots/" + bot + "/oauth-connections", map[string]any{"name": "x", "provider": "github", "clientId": "a", "clientSecret": "b"}},
		{"PATCH", v1 + "/bots/" + bot + "/oauth-connections/conn", map[string]any{"clientId": "stolen"}},
		{"DELETE", v1 + "/bots/" + bot + "/oauth-connections/conn", nil},
	}
	snapshot := func() string {
		var b strings.Builder
		for _, path := range []string{"/bots", "/sites", "/conversations", "/dead-letters", "/bots/" + bot + "/oauth-connections"} {
			a := e.json("GET", v1+path, owner, nil)
			b.Write(a.body)
		}
		return b.String()
	}
	before := snapshot()
	for _, tr := range tries {
		tok := tok
		if strings.HasPrefix(tr.path, v1+"/conversations/") {
			tok = "admin:" + e.bot["A"]
		}
		got := e.json(tr.method, tr.path, tok, tr.body)
		if got.status != http.StatusNotFound || got.errCode() != admin.CodeNotFound {
			t.Errorf("%s %s as operator@A: %d %s, want 404 not_found", tr.method, tr.path, got.status, got.body)
		}
		// The same answer as for an id that does not exist.
		unknown := strings.NewReplacer(bot, "bot-zz", site, "site-zz", conv, "conv-zz", "/dead-letters/"+dl, "/dead-letters/999").Replace(tr.path)
		if u := e.json(tr.method, unknown, tok, tr.body); u.status != got.status || u.errCode() != got.errCode() {
			t.Errorf("%s %s: unknown id answers %d %s, another team's %d: ids are confirmed", tr.method, unknown, u.status, u.errCode(), got.status)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("another team's objects changed:\nbefore %s\nafter  %s", before, after)
	}
	// Lists hold only bot A's objects.
	for _, path := range []string{"/bots", "/sites", "/conversations", "/dead-letters"} {
		got := e.json("GET", v1+path, tok, nil)
		if got.status != 200 {
			t.Fatalf("GET %s: %d %s", path, got.status, got.body)
		}
		var items []map[string]any
		if err := json.Unmarshal(got.body, &items); err != nil || len(items) == 0 {
			t.Fatalf("GET %s: %s, %v: want bot A's objects", path, got.body, err)
		}
		for _, it := range items {
			owner := it["botId"]
			if path == "/bots" {
				owner = it["id"]
			}
			if owner != e.bot["A"] {
				t.Errorf("GET %s as operator@A lists %v", path, it)
			}
		}
	}
}

// TestBFLA: an auditor cannot write anything; an operator cannot touch
// keys, operators or the audit log; a scoped principal cannot read
// gateway-wide objects or register a bot.
func TestBFLA(t *testing.T) {
	e := newEnv(t)
	for _, rt := range admin.Routes {
		if rt.Public || rt.Method == "GET" || rt.Action == admin.SessionSelf || rt.Action == admin.TokensManage {
			continue
		}
		got := e.json(rt.Method, e.path(rt, "A"), "auditor:reauth", e.body(rt, "A", 1))
		if got.status != http.StatusForbidden || got.errCode() != admin.CodeForbidden {
			t.Errorf("auditor %s: %d %s, want 403 forbidden", rt.Key(), got.status, got.body)
		}
	}
	for _, rt := range admin.Routes {
		if strings.HasPrefix(rt.Pattern, v1+"/keys") || strings.HasPrefix(rt.Pattern, v1+"/operators") || strings.HasPrefix(rt.Pattern, v1+"/audit") {
			got := e.json(rt.Method, e.path(rt, "A"), "operator:reauth", e.body(rt, "A", 1))
			if got.status != http.StatusForbidden {
				t.Errorf("operator %s: %d %s, want 403", rt.Key(), got.status, got.body)
			}
		}
	}
	for _, path := range []string{"/keys", "/audit", "/security/report", "/operators"} {
		if got := e.json("GET", v1+path, "auditor:"+e.bot["A"], nil); got.status != http.StatusForbidden {
			t.Errorf("scoped auditor GET %s: %d, want 403 (gateway-wide)", path, got.status)
		}
	}
	got := e.json("POST", v1+"/bots", "admin:"+e.bot["A"], map[string]any{"name": "Mine", "endpoint": "http://127.0.0.1:9/x", "insecureNoAuth": true})
	if got.status != http.StatusForbidden {
		t.Errorf("scoped admin registers a bot: %d %s, want 403", got.status, got.body)
	}
	// Defense in depth: the service refuses too, without the HTTP guard.
	ctx := context.Background()
	if _, err := e.svc.ListKeys(ctx, admin.Principal{Kind: admin.KindToken, ID: "x", Role: admin.RoleOperator}, ""); err == nil {
		t.Error("service: an operator lists keys")
	}
	if _, err := e.svc.GetSite(ctx, admin.Principal{Kind: admin.KindToken, ID: "x", Role: admin.RoleOperator, Bots: []string{e.bot["A"]}}, e.site["B"]); err == nil {
		t.Error("service: operator@A reads bot B's site")
	}
	if err := e.svc.DropDeadLetter(ctx, admin.Principal{Kind: admin.KindToken, ID: "x", Role: admin.RoleAuditor}, e.dl["A"]); err == nil {
		t.Error("service: an auditor drops a dead letter")
	}
	if _, err := e.svc.ListBots(ctx, admin.Principal{Kind: admin.KindToken, ID: "x", Role: "intruder"}); err == nil {
		t.Error("service: an unknown role lists bots (deny by default)")
	}
}

// TestReauth: Reauth routes are refused without a recent
// re-authentication, after the role check, and audited as denied.
func TestReauth(t *testing.T) {
	e := newEnv(t)
	e.withRetiredKey()
	for _, rt := range admin.Routes {
		if !rt.Reauth {
			continue
		}
		before := len(e.rec.all())
		got := e.json(rt.Method, e.path(rt, "A"), "owner", e.body(rt, "A", 1))
		if got.status != http.StatusForbidden || got.errCode() != admin.CodeReauth {
			t.Errorf("%s without reauth: %d %s, want 403 reauth_required", rt.Key(), got.status, got.body)
		}
		if evs := e.rec.all()[before:]; len(evs) != 1 || evs[0].Outcome != "denied" || evs[0].Detail["reason"] != "reauth" {
			t.Errorf("%s: audit %+v, want one denied (reauth)", rt.Key(), evs)
		}
	}
	// The key is still there: nothing was destroyed.
	got := e.json("GET", v1+"/keys?purpose=log-pseudonym", "owner", nil)
	if !bytes.Contains(got.body, []byte(e.retiredKey)) || bytes.Contains(got.body, []byte(`"destroyed"`)) {
		t.Errorf("keys after refused destroy: %s", got.body)
	}
	got = e.json("POST", v1+"/keys/"+e.retiredKey+"/destroy", "owner:reauth", map[string]any{"confirm": true, "force": true})
	if got.status != 200 || !bytes.Contains(got.body, []byte(`"destroyed"`)) {
		t.Errorf("destroy with reauth: %d %s", got.status, got.body)
	}
}

// TestUnauthenticated: every non-public route answers 401 in the error
// shape without a credential or with a bad one; public ones do not ask.
func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	for _, rt := range admin.Routes {
		for _, tok := range []string{"", "nobody", "root"} {
			got := e.json(rt.Method, e.path(rt, "A"), tok, e.body(rt, "A", 1))
			if rt.Public {
				if got.status == http.StatusUnauthorized {
					t.Errorf("public %s: 401", rt.Key())
				}
				continue
			}
			if got.status != http.StatusUnauthorized || got.errCode() != admin.CodeUnauthenticated {
				t.Errorf("%s with %q: %d %s, want 401", rt.Key(), tok, got.status, got.body)
			}
		}
	}
}

// TestMalformedBodies: duplicate keys, case variants, unknown fields,
// trailing data, a huge body and the wrong content type are refused in
// the error shape, and nothing changes.
func TestMalformedBodies(t *testing.T) {
	e := newEnv(t)
	path := v1 + "/sites/" + e.site["A"]
	before := e.json("GET", path, "owner", nil).body
	cases := []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"duplicate key", "application/json", `{"name":"One","name":"Two"}`, 400, admin.CodeBadRequest},
		{"case variant", "application/json", `{"name":"One","Name":"Two"}`, 400, admin.CodeBadRequest},
		{"case variant alone", "application/json", `{"NAME":"One"}`, 400, admin.CodeBadRequest},
		{"unknown field", "application/json", `{"name":"One","admin":true}`, 400, admin.CodeBadRequest},
		{"nested duplicate", "application/json", `{"name":"One","masking":"off","x":{"a":1,"a":2}}`, 400, admin.CodeBadRequest},
		{"trailing data", "application/json", `{"name":"One"} {"name":"Two"}`, 400, admin.CodeBadRequest},
		{"not JSON", "application/json", `name=One`, 400, admin.CodeBadRequest},
		{"wrong type", "application/json", `{"name":1}`, 400, admin.CodeBadRequest},
		{"array", "application/json", `["name"]`, 400, admin.CodeBadRequest},
		{"form", "application/x-www-form-urlencoded", `name=One`, 415, admin.CodeUnsupported},
		{"text", "text/plain", `{"name":"One"}`, 415, admin.CodeUnsupported},
		{"no content type", "", `{"name":"One"}`, 415, admin.CodeUnsupported},
		{"huge", "application/json", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, admin.CodeTooLarge},
	}
	for _, c := range cases {
		got := e.do("PATCH", path, "owner", c.ct, []byte(c.body))
		if got.status != c.status || got.errCode() != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, got.status, got.body, c.status, c.code)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
	}
	// A huge body without a Content-Length (chunked) is cut at the limit too.
	req, _ := http.NewRequest("PATCH", e.srv.URL+path, struct{ *strings.Reader }{strings.NewReader(`{"name":"` + strings.Repeat("a", 70<<10) + `"}`)})
	req.Header.Set("Authorization", "Bearer owner")
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked huge body: %d, want 413", resp.StatusCode)
	}
	if after := e.json("GET", path, "owner", nil).body; !bytes.Equal(after, before) {
		t.Errorf("site changed by refused bodies:\n%s\n%s", before, after)
	}
	// Origins: wildcards and a missing list refused; an explicit [] clears.
	op := v1 + "/sites/" + e.site["A"] + "/origins"
	for _, b := range []string{`{"origins":["*"]}`, `{"origins":["https://*.example.com"]}`, `{}`, `{"origins":null}`, `{"origins":["https://a.example.com/path"]}`} {
		if got := e.do("PUT", op, "owner", "application/json", []byte(b)); got.status != 400 {
			t.Errorf("origins %s: %d %s, want 400", b, got.status, got.body)
		}
	}
	e.do("PUT", op, "owner", "application/json", []byte(`{"origins":["https://a.example.com"]}`))
	got := e.do("PUT", op, "owner", "application/json", []byte(`{"origins":[]}`))
	if got.status != 200 || !bytes.Contains(got.body, []byte(`"trustedOrigins":[]`)) {
		t.Errorf("origins []: %d %s, want cleared", got.status, got.body)
	}
}

// TestEdge: security headers on every answer, 404 and 405 in the error
// shape, the OpenAPI file served without sign-in.
func TestEdge(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", v1 + "/nope", 404, admin.CodeNotFound},
		{"GET", "/elsewhere", 404, admin.CodeNotFound},
		{"PUT", v1 + "/bots", 405, admin.CodeMethod},
		{"GET", v1 + "/bots", 401, admin.CodeUnauthenticated},
	} {
		got := e.do(c.method, c.path, "", "", nil)
		if got.status != c.status || got.errCode() != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, got.status, got.body, c.status, c.code)
		}
		for h, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"} {
			if v := got.header.Get(h); v != want {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, h, v, want)
			}
		}
	}
	got := e.do("GET", v1+"/openapi.yaml", "", "", nil)
	if got.status != 200 || !bytes.HasPrefix(got.body, []byte("openapi: 3.1")) {
		t.Errorf("openapi: %d %.40s", got.status, got.body)
	}
}

// TestAudited: a success, a failure and a denial are each recorded, with
// the actor, role, action and target; never a secret.
func TestAudited(t *testing.T) {
	e := newEnv(t)
	got := e.json("POST", v1+"/sites/"+e.site["A"]+"/secrets", "operator", map[string]any{"slot": 2})
	if got.status != 201 {
		t.Fatalf("rotate: %d %s", got.status, got.body)
	}
	var out struct{ Secret string }
	_ = json.Unmarshal(got.body, &out)
	e.json("PATCH", v1+"/sites/"+e.site["A"], "operator", map[string]any{"name": "bad/name"})
	e.json("DELETE", v1+"/conversations/"+e.conv["A"], "operator", nil)
	evs := e.rec.all()
	want := []struct{ action, outcome, target string }{
		{"sites.secrets", "success", "site:" + e.site["A"]},
		{"sites.write", "failure", "site:" + e.site["A"]},
		{"conversations.erase", "denied", "conversation:" + e.conv["A"]}, // named as on success
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i, w := range want {
		ev := evs[i]
		if ev.Action != w.action || string(ev.Outcome) != w.outcome || ev.Target != w.target || ev.Actor != "token:operator" || ev.Role != "operator" {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	all, _ := json.Marshal(evs)
	if out.Secret == "" || bytes.Contains(all, []byte(out.Secret)) {
		t.Errorf("secret %q in the audit events (or none made): %s", out.Secret, all)
	}
}

var (
	errNoSession = errors.New("not signed in")
	errCSRF      = errors.New("csrf")
)

// retryErr is an error that says when to retry, as the operator
// package's rate limit answers.
type retryErr time.Duration

func (e retryErr) Error() string             { return "too many requests" }
func (e retryErr) RetryAfter() time.Duration { return time.Duration(e) }

// errAuth answers a fixed error from Authenticate.
type errAuth struct{ err error }

func (a errAuth) Authenticate(*http.Request) (admin.Principal, error) {
	return admin.Principal{}, a.err
}
func (errAuth) Reauthenticated(admin.Principal) bool { return false }

// The operator package's errors map to 401, 403 csrf, 429 with
// Retry-After for its rate limit and, for anything
// else (a store failure), 500: never a silent 401 for a broken store.
func TestAuthenticateErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{errNoSession, 401, admin.CodeUnauthenticated},
		{fmt.Errorf("session: %w", errNoSession), 401, admin.CodeUnauthenticated},
		{errCSRF, 403, admin.CodeCSRF},
		{errors.New("database is locked"), 500, admin.CodeInternal},
		{fmt.Errorf("authenticate: %w", retryErr(2500*time.Millisecond)), 429, admin.CodeTooMany},
	} {
		h := adminapi.New(adminapi.Config{Service: e.svc, Auth: errAuth{c.err}, ErrCSRF: errCSRF, ErrUnauthenticated: errNoSession})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", v1+"/bots", nil))
		var eb admin.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &eb)
		if rec.Code != c.status || eb.Error.Code != c.code || strings.Contains(eb.Error.Message, "locked") {
			t.Errorf("%v: %d %s, want %d %s", c.err, rec.Code, rec.Body, c.status, c.code)
		}
		if ra := rec.Header().Get("Retry-After"); (c.status == 429) != (ra != "") || (ra != "" && ra != "3") {
			t.Errorf("%v: Retry-After %q (want 3, rounded up, on 429 only)", c.err, ra)
		}
	}
}

// A dead letter's activity is user data: the owner reads it opened, the
// read is audited on the dead letter, and the auditor (read-only on
// everything else) is refused it.
func TestDeadLetterActivity(t *testing.T) {
	e := newEnv(t)
	dl := fmt.Sprint(e.dl["A"])
	got := e.json("GET", v1+"/dead-letters/"+dl+"/activity", "owner", nil)
	var d admin.DeadLetter
	if got.status != 200 || json.Unmarshal(got.body, &d) != nil || !strings.Contains(string(d.Activity), "text of "+e.conv["A"]+"|0") {
		t.Fatalf("owner: %d %s", got.status, got.body)
	}
	if list := e.json("GET", v1+"/dead-letters", "owner", nil); list.status != 200 || strings.Contains(string(list.body), "text of") {
		t.Fatalf("the list shows activities: %d %s", list.status, list.body)
	}
	if got := e.json("GET", v1+"/dead-letters/"+dl+"/activity", "auditor", nil); got.status != 403 {
		t.Fatalf("auditor: %d %s, want 403", got.status, got.body)
	}
	var read, denied bool
	for _, ev := range e.rec.all() {
		if ev.Action == string(admin.DeadLettersContent) && ev.Target == "deadletter:"+dl {
			read = read || (ev.Outcome == audit.Success && ev.Role == "owner")
			denied = denied || (ev.Outcome == audit.Denied && ev.Role == "auditor")
		}
	}
	if !read || !denied {
		t.Fatalf("audit: read %v, denied %v: %+v", read, denied, e.rec.all())
	}
}

// Deleting a site or a bot erases its conversations: the operator role,
// which may delete sites and bots but not erase conversations, deletes
// only those that hold none (review: it erased them through the
// deletion).
func TestOperatorCannotEraseThroughDeletion(t *testing.T) {
	e := newEnv(t)
	tok := "operator"
	for _, path := range []string{v1 + "/sites/" + e.site["A"], v1 + "/bots/" + e.bot["B"] + "?cascade=true"} {
		got := e.json("DELETE", path, tok, nil)
		if got.status != 403 || !strings.Contains(string(got.body), "erase 1 conversations") {
			t.Fatalf("DELETE %s as operator: %d %s, want 403 naming the conversations", path, got.status, got.body)
		}
	}
	for _, conv := range []string{e.conv["A"], e.conv["B"]} {
		if _, err := e.st.GetConversation(context.Background(), conv); err != nil {
			t.Fatalf("conversation %s after the refused deletions: %v", conv, err)
		}
	}
	// Without conversations, the same role deletes the site.
	if got := e.json("DELETE", v1+"/conversations/"+e.conv["A"], "admin", nil); got.status != 200 {
		t.Fatalf("admin erases the conversation: %d %s", got.status, got.body)
	}
	if got := e.json("DELETE", v1+"/sites/"+e.site["A"], tok, nil); got.status != 200 {
		t.Fatalf("operator deletes the emptied site: %d %s", got.status, got.body)
	}
}

// Reading the audit log is itself recorded (PCI DSS 10.2.1.3 asks for
// every access to audit logs): one entry per list, verification or
// export, with what was read; refusals are recorded as denials.
func TestAuditReadsAreAudited(t *testing.T) {
	e := newEnv(t)
	e.json("POST", v1+"/sites/"+e.site["A"]+"/secrets", "operator", map[string]any{"slot": 2})
	for _, path := range []string{"/audit?limit=5", "/audit/verify", "/audit/export?after=0"} {
		if got := e.do("GET", v1+path, "auditor", "", nil); got.status != 200 {
			t.Fatalf("GET %s: %d %s", path, got.status, got.body)
		}
	}
	if got := e.do("GET", v1+"/audit", "operator", "", nil); got.status != 403 {
		t.Fatalf("operator reading the audit log: %d %s", got.status, got.body)
	}
	evs := e.rec.all()
	want := []struct{ outcome, read, actor, target string }{
		{"success", "entries", "token:auditor", v1 + "/audit"},
		{"success", "verify", "token:auditor", v1 + "/audit/verify"},
		{"success", "export", "token:auditor", v1 + "/audit/export"},
		{"denied", "", "token:operator", v1 + "/audit"},
	}
	if len(evs) != 1+len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i, w := range want {
		ev := evs[1+i]
		if ev.Action != "audit.read" || string(ev.Outcome) != w.outcome || ev.Actor != w.actor || ev.Target != w.target || (w.read != "" && ev.Detail["read"] != w.read) {
			t.Errorf("event %d = %+v, want audit.read %+v", 1+i, ev, w)
		}
	}
	if evs[1].Detail["entries"] != "1" {
		t.Errorf("the list's entry says %q entries were read, want 1", evs[1].Detail["entries"])
	}
	// An access that cannot be recorded reads nothing.
	e.rec.mu.Lock()
	e.rec.fail = errors.New("database or disk is full")
	e.rec.mu.Unlock()
	for _, path := range []string{"/audit?limit=5", "/audit/verify", "/audit/export?after=0"} {
		got := e.do("GET", v1+path, "auditor", "", nil)
		if got.status != 500 || bytes.Contains(got.body, []byte("sites.secrets")) || bytes.Contains(got.body, []byte(`"ok"`)) {
			t.Errorf("GET %s while the access cannot be recorded: %d %s", path, got.status, got.body)
		}
	}
}

// Each read of the audit log appends to it, so reads are limited: a
// read-only credential cannot grow the database as fast as it can send
// requests, per credential and for all of them together (a credential can
// make more tokens).
func TestAuditReadsAreLimited(t *testing.T) {
	const auditReadBurst = 30 // per credential, refilled at 1/s; 60 for all at 5/s (audit.go)
	e := newEnv(t)
	// reads reads until the first refusal; slack is the tokens a slow run
	// may have refilled meanwhile (1 a second per credential).
	reads := func(token string) (ok, slack int, retry string) {
		began := time.Now()
		for range 200 {
			got := e.do("GET", v1+"/audit/verify", token, "", nil)
			switch got.status {
			case 200:
				ok++
			case 429:
				return ok, int(time.Since(began).Seconds()) + 1, got.header.Get("Retry-After")
			default:
				t.Fatalf("%s: %d %s", token, got.status, got.body)
			}
		}
		t.Fatalf("%s: 200 reads, none refused", token)
		return 0, 0, ""
	}
	ok1, slack, retry := reads("auditor")
	if ok1 < auditReadBurst || ok1 > auditReadBurst+slack || retry == "" {
		t.Errorf("auditor: %d read before a refusal (Retry-After %q); want %d (+%d refilled at most) and a Retry-After", ok1, retry, auditReadBurst, slack)
	}
	ok2, slack, _ := reads("owner")
	if ok2 < auditReadBurst || ok2 > auditReadBurst+slack {
		t.Errorf("owner after the auditor: %d read before a refusal; want its own %d (+%d)", ok2, auditReadBurst, slack)
	}
	// Both bursts spent the readers' shared allowance: a third credential
	// is stopped by it (refilled at 5 a second) well before its own burst.
	ok3, _, _ := reads("owner:reauth")
	if ok3 >= auditReadBurst {
		t.Errorf("a third credential past the shared limit read %d times, want fewer than its own burst (%d)", ok3, auditReadBurst)
	}
	recorded := 0
	for _, ev := range e.rec.all() {
		if ev.Action == "audit.read" && ev.Outcome == audit.Success {
			recorded++
		}
	}
	if recorded != ok1+ok2+ok3 {
		t.Errorf("%d reads recorded, want one per read served (%d)", recorded, ok1+ok2+ok3)
	}
}

// A create or rotation that was made but whose audit event could not be
// recorded answers 500 unrecorded with what it made beside the error: the
// secret, shown once, is not lost, and it works. A read that cannot be
// recorded answers the plain error, with nothing beside it.
func TestUnrecordedChangeStillShowsItsSecrets(t *testing.T) {
	e := newEnv(t)
	e.rec.fail = errors.New("database or disk is full")
	ctx := context.Background()
	unrecorded := func(what string, got answer) map[string]any {
		t.Helper()
		var body struct {
			Error  admin.ErrorDetail `json:"error"`
			Result map[string]any    `json:"result"`
		}
		if got.status != http.StatusInternalServerError || json.Unmarshal(got.body, &body) != nil || body.Error.Code != admin.CodeUnrecorded || body.Result == nil {
			t.Fatalf("%s with the audit log failing: %d %s, want 500 unrecorded with the result", what, got.status, got.body)
		}
		return body.Result
	}
	// A bot registered: its client secret is in the answer and matches.
	res := unrecorded("POST /bots", e.json("POST", v1+"/bots", "owner", map[string]any{"name": "Late", "endpoint": "https://late.example.com/api/messages"}))
	id, _ := res["id"].(string)
	secret, _ := res["clientSecret"].(string)
	b, err := e.st.GetBot(ctx, id)
	if err != nil || secret == "" || !bytes.Equal(b.SecretHashes[0], botauth.HashClientSecret(secret)) {
		t.Fatalf("the unrecorded bot %q (%v): its secret %q does not match the stored hash", id, err, secret)
	}
	// A site's secret rotated: the new one is in the answer and matches.
	res = unrecorded("POST /sites/{site}/secrets", e.json("POST", v1+"/sites/"+e.site["A"]+"/secrets", "owner", map[string]any{"slot": 2}))
	secret, _ = res["secret"].(string)
	s, err := e.st.GetSite(ctx, e.site["A"])
	if err != nil || secret == "" || !bytes.Equal(s.SecretHashes[1], identity.HashSecret(secret)) {
		t.Fatalf("the unrecorded site secret %q (%v) does not match slot 2's hash", secret, err)
	}
	// A site created, and a bot's secret rotated: the same.
	res = unrecorded("POST /sites", e.json("POST", v1+"/sites", "owner", map[string]any{"bot": e.bot["B"], "name": "Late site", "trustedOrigins": []string{"https://late.example.com"}}))
	if secrets, _ := res["secrets"].([]any); len(secrets) != 2 || secrets[0] == "" {
		t.Fatalf("the unrecorded site's answer has no secrets: %v", res)
	}
	res = unrecorded("POST /bots/{bot}/secret", e.json("POST", v1+"/bots/"+e.bot["B"]+"/secret", "owner", map[string]any{"slot": 2}))
	if secret, _ := res["clientSecret"].(string); secret == "" {
		t.Fatalf("the unrecorded rotation's answer has no secret: %v", res)
	}
	// A change refused (the name is taken) shows nothing of a result.
	got := e.json("POST", v1+"/bots", "owner", map[string]any{"name": "Late", "endpoint": "https://late2.example.com/api/messages"})
	if got.status != http.StatusConflict || strings.Contains(string(got.body), "result") || strings.Contains(string(got.body), "ecret") {
		t.Fatalf("a refused create with the audit log failing: %d %s, want 409 and no result", got.status, got.body)
	}
	// A read, or a deletion's dry run, shows nothing when it cannot be
	// recorded, and does not claim a change.
	for _, path := range []string{"/bots", "/bots/" + e.bot["A"] + "?dryRun=true"} {
		method := map[bool]string{true: "DELETE", false: "GET"}[strings.Contains(path, "dryRun")]
		got = e.do(method, v1+path, "owner", "", nil)
		var body admin.ErrorBody
		if got.status != http.StatusInternalServerError || json.Unmarshal(got.body, &body) != nil || body.Error.Code != admin.CodeInternal ||
			strings.Contains(string(got.body), "result") || strings.Contains(string(got.body), "Late") || strings.Contains(body.Error.Message, "was made") {
			t.Fatalf("%s %s that could not be recorded: %d %s, want 500 internal without content", method, path, got.status, got.body)
		}
	}
	// The audit log's disk is full: a change made says so, not "the
	// storage is full: nothing was changed".
	e.rec.fail = fmt.Errorf("record: %w", store.ErrFull)
	got = e.json("PATCH", v1+"/sites/"+e.site["B"], "owner", map[string]any{"name": "Renamed"})
	var body admin.ErrorBody
	if got.status != http.StatusInternalServerError || json.Unmarshal(got.body, &body) != nil || body.Error.Code != admin.CodeUnrecorded || strings.Contains(body.Error.Message, "nothing was changed") {
		t.Fatalf("a change made with the audit log's disk full: %d %s, want 500 unrecorded", got.status, got.body)
	}
	if s, err := e.st.GetSite(ctx, e.site["B"]); err != nil || s.Name != "Renamed" {
		t.Fatalf("the site was not renamed (%v): %q", err, s.Name)
	}
	// A read with the audit log's disk full: 503, nothing was changed (true).
	got = e.do("GET", v1+"/bots", "owner", "", nil)
	if got.status != http.StatusServiceUnavailable || !strings.Contains(string(got.body), "nothing was changed") {
		t.Fatalf("a read with the audit log's disk full: %d %s, want 503", got.status, got.body)
	}
}
