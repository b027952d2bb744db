package adminapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// principalCase is one role, unscoped or scoped to team A's bot.
type principalCase struct {
	role   admin.Role
	scoped bool
}

func (c principalCase) token(e *env) string {
	t := string(c.role)
	if c.scoped {
		t += ":" + e.bot["A"]
	}
	return t + ":reauth"
}

func (c principalCase) String() string {
	if c.scoped {
		return string(c.role) + "@A"
	}
	return string(c.role)
}

func principals() []principalCase {
	var out []principalCase
	for _, r := range admin.Roles {
		out = append(out, principalCase{r, false}, principalCase{r, true})
	}
	return out
}

// expectation is what the permission table and the scope rules say.
type expectation int

const (
	allowed   expectation = iota
	forbidden             // 403 forbidden
	hidden                // 404 not_found: another team's object
)

func (x expectation) String() string { return [...]string{"allowed", "forbidden", "hidden"}[x] }

// bodyScoped are the routes whose body, not path, names the bot: the
// scope applies to it (404 for another team's bot).
var bodyScoped = map[string]bool{"POST " + admin.Prefix + "/sites": true}

// gatewayCreate are the routes that create a gateway-wide object: never
// to a scoped principal (documented in docs/permissions.md).
var gatewayCreate = map[string]bool{"POST " + admin.Prefix + "/bots": true}

// expect derives the outcome from admin's permission table and the scope
// rules only: nothing here is written per role.
func expect(rt admin.Route, pc principalCase, team string) expectation {
	if !admin.Grants(pc.role, rt.Action) || (pc.scoped && admin.GatewayWide(rt.Action)) {
		return forbidden
	}
	if pc.scoped && gatewayCreate[rt.Key()] {
		return forbidden
	}
	if pc.scoped && team == "B" && (rt.Scope != admin.ScopeNone || bodyScoped[rt.Key()]) {
		return hidden
	}
	// Every team's site and bot hold a conversation: deleting them erases it.
	if rt.WithData != "" && !admin.Grants(pc.role, rt.WithData) {
		return forbidden
	}
	return allowed
}

// targets are the teams whose objects a route is tried on.
func targets(rt admin.Route) []string {
	if rt.Scope != admin.ScopeNone || bodyScoped[rt.Key()] {
		return []string{"A", "B"}
	}
	return []string{"A"}
}

func (e *env) path(rt admin.Route, team string) string {
	key := e.retiredKey
	if key == "" {
		key = "no-such-key"
	}
	r := strings.NewReplacer("{bot}", e.bot[team], "{site}", e.site[team], "{conversation}", e.conv[team],
		"{deadletter}", fmt.Sprint(e.dl[team]), "{name}", "conn", "{secret}", "2", "{key}", key,
		"{operator}", "op_x", "{token}", "tok_x")
	p := r.Replace(rt.Pattern)
	if rt.Method == "DELETE" && strings.HasSuffix(rt.Pattern, "/bots/{bot}") {
		p += "?cascade=true"
	}
	return p
}

// body is a valid body for route rt (n makes names unique).
func (e *env) body(rt admin.Route, team string, n int) any {
	switch rt.Key() {
	case "POST " + admin.Prefix + "/bots":
		return map[string]any{"name": fmt.Sprintf("New bot %d", n), "endpoint": "http://127.0.0.1:9/api/messages", "insecureNoAuth": true}
	case "PATCH " + admin.Prefix + "/bots/{bot}":
		return map[string]any{"name": fmt.Sprintf("Renamed %d", n)}
	case "POST " + admin.Prefix + "/bots/{bot}/secret", "POST " + admin.Prefix + "/sites/{site}/secrets":
		return map[string]any{"slot": 2}
	case "POST " + admin.Prefix + "/bots/{bot}/oauth-connections":
		return map[string]any{"name": fmt.Sprintf("conn%d", n), "provider": "github", "clientId": "id", "clientSecret": "s3cret"}
	case "PATCH " + admin.Prefix + "/bots/{bot}/oauth-connections/{name}":
		return map[string]any{"clientId": fmt.Sprintf("id%d", n)}
	case "POST " + admin.Prefix + "/sites":
		return map[string]any{"bot": e.bot[team], "name": fmt.Sprintf("Site %d", n)}
	case "PATCH " + admin.Prefix + "/sites/{site}":
		return map[string]any{"name": fmt.Sprintf("Site renamed %d", n)}
	case "PUT " + admin.Prefix + "/sites/{site}/origins":
		return map[string]any{"origins": []string{"https://www.example.com"}}
	case "PUT " + admin.Prefix + "/sites/{site}/retention":
		return map[string]any{"mode": "after", "after": "90d"}
	case "POST " + admin.Prefix + "/keys/rotate":
		return map[string]any{"purpose": "log-pseudonym", "force": true}
	}
	if rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH" {
		return map[string]any{}
	}
	return nil
}

// operatorRoute: served by the operator package (501 until it is wired
// here; the guard in front of it is this package's).
func operatorRoute(rt admin.Route) bool {
	for _, p := range []string{"/session", "/enroll", "/sso", "/me/", "/operators", "/tokens", "/invitations"} {
		if strings.HasPrefix(rt.Pattern, admin.Prefix+p) {
			return true
		}
	}
	return false
}

// TestRoleMatrix tries every role, unscoped and scoped to one bot,
// against every admin route, on its own team's objects and another
// team's, through real HTTP, and checks the outcome the permission table
// and the scope rules give.
func TestRoleMatrix(t *testing.T) {
	shared := newEnv(t)
	shared.withRetiredKey()
	n := 0
	for _, rt := range admin.Routes {
		if rt.Public {
			continue
		}
		for _, pc := range principals() {
			for _, team := range targets(rt) {
				n++
				want := expect(rt, pc, team)
				name := fmt.Sprintf("%s/%s/on-%s", rt.Key(), pc, team)
				e := shared
				if rt.Method == "DELETE" || strings.HasSuffix(rt.Pattern, "/destroy") || strings.HasSuffix(rt.Pattern, "/redeliver") {
					// Destructive: each case on its own objects.
					if want == allowed || team == "B" {
						e = newEnv(t)
						if strings.HasSuffix(rt.Pattern, "/destroy") {
							e.withRetiredKey()
						}
					}
				}
				before := len(e.rec.all())
				got := e.json(rt.Method, e.path(rt, team), pc.token(e), e.body(rt, team, n))
				switch want {
				case forbidden:
					if got.status != http.StatusForbidden || got.errCode() != admin.CodeForbidden {
						t.Errorf("%s: %d %s, want 403 forbidden (%s)", name, got.status, got.body, want)
					}
				case hidden:
					if got.status != http.StatusNotFound || got.errCode() != admin.CodeNotFound {
						t.Errorf("%s: %d %s, want 404 not_found (%s)", name, got.status, got.body, want)
					}
				case allowed:
					ok := got.status >= 200 && got.status < 300
					if operatorRoute(rt) {
						ok = got.status == http.StatusNotImplemented
					}
					if !ok {
						t.Errorf("%s: %d %s, want success (%s)", name, got.status, got.body, want)
					}
				}
				if want != allowed {
					// Refusals are audited as denied.
					evs := e.rec.all()[before:]
					if len(evs) == 0 || evs[len(evs)-1].Outcome != "denied" {
						t.Errorf("%s: refusal not audited as denied: %+v", name, evs)
					}
				}
			}
		}
	}
	t.Logf("%d cases", n)
}
