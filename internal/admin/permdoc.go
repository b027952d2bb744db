package admin

import (
	"fmt"
	"strings"
)

// PermissionDoc is docs/permissions.md: the permission table and the
// routes, generated from permissions and Routes.
func PermissionDoc() string {
	var b strings.Builder
	b.WriteString("# Admin permissions\n\n")
	b.WriteString("<!-- Generated from internal/admin (rbac.go, routes.go): do not edit. Regenerate with\n     go test ./internal/admin -run TestPermissionDoc -update -->\n\n")
	b.WriteString("Parley's admin API (and the console over it) gives each operator and API token one role, optionally\n" +
		"scoped to some bots. Deny by default: an action not granted below is refused to every role, and a route\n" +
		"not listed below is not served.\n\n")
	b.WriteString("## Rules\n\n")
	b.WriteString("- **Role** (403 `forbidden`): the route's action must be granted to the principal's role (table below).\n")
	b.WriteString("- **Bot scope** (404 `not_found`): a principal scoped to some bots sees only their objects. Another team's\n" +
		"  bot, site, conversation, dead letter or OAuth connection answers 404, exactly as an id that does not exist,\n" +
		"  so ids are never confirmed. Lists (bots, sites, conversations, dead letters) hold only the scope's objects.\n")
	b.WriteString("- **Gateway-wide actions** are never granted to a scoped principal, whatever its role:\n  ")
	var gw []string
	for _, a := range Actions() {
		if gatewayWide[a] {
			gw = append(gw, "`"+string(a)+"`")
		}
	}
	b.WriteString(strings.Join(gw, ", ") + ".\n")
	b.WriteString("- **New bots** are gateway-wide objects: only an unscoped principal holding `bots.write` registers one\n" +
		"  (a scoped one would create a bot outside its own scope). A scoped principal creates sites only for its bots.\n")
	b.WriteString("- **Re-authentication** (403 `reauth_required`): routes marked *reauth* need a session re-authenticated\n" +
		"  recently (`POST /admin/v1/session/reauth`); API tokens never qualify.\n")
	b.WriteString("- Every refusal (role, scope, re-authentication) is recorded in the audit log as `denied`; every call of\n" +
		"  the service layer as `success` or `failure`.\n")
	b.WriteString("- The CLI (`parley bot ...`, `parley site ...` and the other admin commands) runs as the local principal\n" +
		"  `local:<OS user>` with the role owner, unscoped: whoever can read the data directory and the master key.\n\n")
	b.WriteString("## Permission table\n\n| Action |")
	for _, r := range Roles {
		fmt.Fprintf(&b, " %s |", r)
	}
	b.WriteString("\n|---|")
	for range Roles {
		b.WriteString(":-:|")
	}
	b.WriteString("\n")
	for _, a := range Actions() {
		fmt.Fprintf(&b, "| `%s` |", a)
		for _, r := range Roles {
			if Grants(r, a) {
				b.WriteString(" yes |")
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Routes\n\nAll under `" + Prefix + "`. Scope: where the bot scope comes from (`–`: a gateway-wide object or a\nfiltered list).\n\n")
	b.WriteString("| Method | Path | Action | Scope | Notes |\n|---|---|---|---|---|\n")
	for _, rt := range Routes {
		action, scope := "`"+string(rt.Action)+"`", string(rt.Scope)
		if rt.Public {
			action = "public"
		}
		if scope == "" {
			scope = "–"
		}
		var notes []string
		if rt.Reauth {
			notes = append(notes, "reauth")
		}
		if rt.WithData != "" {
			notes = append(notes, "also `"+string(rt.WithData)+"` when it erases conversations")
		}
		if gatewayWide[rt.Action] {
			notes = append(notes, "unscoped only")
		}
		if rt.Method == "POST" && rt.Pattern == Prefix+"/bots" {
			notes = append(notes, "unscoped only (new bot)")
		}
		if rt.Method == "POST" && rt.Pattern == Prefix+"/sites" {
			notes = append(notes, "the body's bot must be in scope")
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", rt.Method, strings.TrimPrefix(rt.Pattern, Prefix), action, scope, strings.Join(notes, ", "))
	}
	return b.String()
}
