// Package admin is the operators' service layer: who may do what
// (roles, bot scopes, the permission table), the admin routes, and the
// operations behind them, which the admin API and the CLI both call.
//
// Deny by default: an action not in the table is refused to every role,
// and a route not in Routes is not served.
package admin

import (
	"context"
	"fmt"
	"slices"
)

// Role is an operator's or an API token's role.
type Role string

// The roles, from most to least powerful.
const (
	// RoleOwner may do everything.
	RoleOwner Role = "owner"
	// RoleAdmin may do everything except manage operators and keys.
	RoleAdmin Role = "admin"
	// RoleOperator manages bots, sites and origins day to day: no keys,
	// no operators, and (through bot scopes) no other team's bots.
	RoleOperator Role = "operator"
	// RoleAuditor reads: configuration (never secrets), the audit log and
	// the security report.
	RoleAuditor Role = "auditor"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleOwner, RoleAdmin, RoleOperator, RoleAuditor}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: use owner, admin, operator or auditor", s)
}

// Action is one permission. A route needs exactly one.
type Action string

// The actions. Keep permissions below in step: an action missing there is
// denied to every role.
const (
	BotsRead    Action = "bots.read"
	BotsWrite   Action = "bots.write"   // create, update, delete
	BotsSecrets Action = "bots.secrets" // a bot's client secret: rotate

	SitesRead    Action = "sites.read"
	SitesWrite   Action = "sites.write"   // create, update, delete
	SitesSecrets Action = "sites.secrets" // a site's Direct Line secrets: list (never the values), create, revoke
	SitesOrigins Action = "sites.origins" // trusted origins

	RetentionRead  Action = "retention.read"
	RetentionWrite Action = "retention.write"

	OAuthRead  Action = "oauth.read"
	OAuthWrite Action = "oauth.write"

	KeysRead   Action = "keys.read"
	KeysManage Action = "keys.manage" // rotate, destroy (destroy needs re-authentication)

	ConversationsRead  Action = "conversations.read"
	ConversationsErase Action = "conversations.erase"

	DeadLettersRead      Action = "deadletters.read"
	DeadLettersRedeliver Action = "deadletters.redeliver" // redeliver or drop
	// DeadLettersContent: the activity a dead letter holds (user data:
	// message text and all), never to the auditor.
	DeadLettersContent Action = "deadletters.content"

	OperatorsRead   Action = "operators.read"
	OperatorsManage Action = "operators.manage" // invite, change role or scope, remove (owner changes need re-authentication)

	TokensManage Action = "tokens.manage" // API tokens: one's own, never above one's own role or scope

	AuditRead    Action = "audit.read"
	SecurityRead Action = "security.read"

	// SessionSelf is what every signed-in principal may do to itself:
	// read its session, sign out, change its own password and MFA.
	SessionSelf Action = "session.self"
)

// permissions is the permission table: the roles each action is granted
// to. It is the only place rights are written down; docs/permissions.md
// is generated from it (go test ./internal/admin -run TestPermissionDoc -update).
var permissions = map[Action][]Role{
	BotsRead:    {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	BotsWrite:   {RoleOwner, RoleAdmin, RoleOperator},
	BotsSecrets: {RoleOwner, RoleAdmin, RoleOperator},

	SitesRead:    {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	SitesWrite:   {RoleOwner, RoleAdmin, RoleOperator},
	SitesSecrets: {RoleOwner, RoleAdmin, RoleOperator},
	SitesOrigins: {RoleOwner, RoleAdmin, RoleOperator},

	RetentionRead:  {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	RetentionWrite: {RoleOwner, RoleAdmin},

	OAuthRead:  {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	OAuthWrite: {RoleOwner, RoleAdmin, RoleOperator},

	KeysRead:   {RoleOwner, RoleAuditor},
	KeysManage: {RoleOwner},

	ConversationsRead:  {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	ConversationsErase: {RoleOwner, RoleAdmin},

	DeadLettersRead:      {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
	DeadLettersRedeliver: {RoleOwner, RoleAdmin, RoleOperator},
	DeadLettersContent:   {RoleOwner, RoleAdmin, RoleOperator},

	OperatorsRead:   {RoleOwner, RoleAuditor},
	OperatorsManage: {RoleOwner},

	TokensManage: {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},

	AuditRead:    {RoleOwner, RoleAuditor},
	SecurityRead: {RoleOwner, RoleAdmin, RoleAuditor},

	SessionSelf: {RoleOwner, RoleAdmin, RoleOperator, RoleAuditor},
}

// actionPhrases say what each action does, for refusals people read
// ("your role (operator) may not read keys").
var actionPhrases = map[Action]string{
	BotsRead: "read bots", BotsWrite: "register, change or delete bots", BotsSecrets: "replace bots' client secrets",
	SitesRead: "read sites", SitesWrite: "create, change or delete sites", SitesSecrets: "manage sites' Direct Line secrets", SitesOrigins: "change trusted origins",
	RetentionRead: "read retention policies", RetentionWrite: "change retention policies",
	OAuthRead: "read OAuth connections", OAuthWrite: "change OAuth connections",
	KeysRead: "read keys", KeysManage: "rotate or destroy keys",
	ConversationsRead: "list conversations", ConversationsErase: "erase conversations",
	DeadLettersRead: "read dead letters", DeadLettersRedeliver: "redeliver or drop dead letters", DeadLettersContent: "read the activities dead letters hold",
	OperatorsRead: "read operators", OperatorsManage: "manage operators",
	TokensManage: "manage API tokens", AuditRead: "read the audit log", SecurityRead: "read the security report",
	SessionSelf: "use a session",
}

// Phrase says what a does, in words ("read keys"); the action's name when
// it has no phrase.
func (a Action) Phrase() string {
	if p, ok := actionPhrases[a]; ok {
		return p
	}
	return string(a)
}

// Actions lists every action in the table, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(permissions))
	for a := range permissions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Grants reports whether role holds action, before any bot scope.
func Grants(role Role, action Action) bool {
	return slices.Contains(permissions[action], role)
}

// PrincipalKind says how a principal signed in.
type PrincipalKind string

const (
	// KindOperator is a person with a session (password and MFA, or SSO).
	KindOperator PrincipalKind = "operator"
	// KindToken is an API token.
	KindToken PrincipalKind = "token"
	// KindLocal is the CLI against the data directory: bootstrap and
	// recovery by whoever can read the data directory and the master key.
	KindLocal PrincipalKind = "local"
)

// Principal is who is asking: an operator, an API token, or the local
// CLI. Bots empty means every bot.
type Principal struct {
	Kind PrincipalKind
	// ID is the operator's or token's id; for KindLocal the OS user.
	ID   string
	Name string
	Role Role
	// Bots scopes the role to these bot ids; empty means every bot.
	Bots []string
	// Client is the pseudonymized client address, for the audit log.
	Client string
	// SessionID identifies the session (hashed, never the cookie) or the
	// token, for the audit log.
	SessionID string
	// Operator is the operator behind the principal: its own id for a
	// console session, the creator's for an API token ("" otherwise).
	// Limits count by it, so that minting tokens does not multiply them.
	Operator string
}

// LimitKey is the key p's requests are limited by: its operator when
// known (sessions and tokens together), else its label.
func (p Principal) LimitKey() string {
	if p.Operator != "" {
		return string(KindOperator) + ":" + p.Operator
	}
	return p.Label()
}

// Label is how the audit log names the principal: "operator:ID",
// "token:ID", "local:USER".
func (p Principal) Label() string { return string(p.Kind) + ":" + p.ID }

// Scoped reports whether p's bot scope includes botID. An unscoped
// principal covers every bot; a scoped one only its bots, and never a
// gateway-wide object (botID "").
func (p Principal) Scoped(botID string) bool {
	if len(p.Bots) == 0 {
		return true
	}
	return botID != "" && slices.Contains(p.Bots, botID)
}

// Can reports whether p may perform action on an object of botID ("" for
// an object that belongs to no bot: keys, operators, the audit log).
func (p Principal) Can(action Action, botID string) bool {
	if !Grants(p.Role, action) {
		return false
	}
	if botID == "" {
		// A scoped principal never holds a gateway-wide action.
		return !gatewayWide[action] || len(p.Bots) == 0
	}
	return p.Scoped(botID)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
