package admin

// Scope says where a route finds the bot its object belongs to, for the
// principal's bot scope.
type Scope string

const (
	// ScopeNone: a gateway-wide object (keys, operators, the audit log),
	// or a list the handler filters to the principal's bots.
	ScopeNone Scope = ""
	// ScopeBot: the {bot} path value is the bot id.
	ScopeBot Scope = "bot"
	// ScopeSite: the {site} path value's site belongs to a bot.
	ScopeSite Scope = "site"
	// ScopeConversation: the {conversation} path value's conversation.
	ScopeConversation Scope = "conversation"
	// ScopeDeadLetter: the {deadletter} path value's dead letter.
	ScopeDeadLetter Scope = "deadletter"
)

// Route is one admin API route: its method and ServeMux pattern, the
// action it needs and where its bot scope comes from.
type Route struct {
	Method  string
	Pattern string
	Action  Action
	Scope   Scope
	// Public routes are served before sign-in (sign-in, enrollment, SSO);
	// Action is then "" and each handler guards itself.
	Public bool
	// Reauth routes need a session re-authenticated within the
	// configured window (key destruction, owner changes).
	Reauth bool
	// WithData is the action also needed when the call erases
	// conversations with its object (deleting a site or bot that has
	// some needs conversations.erase too).
	WithData Action
}

// Prefix is where the admin API lives.
const Prefix = "/admin/v1"

// Routes is every admin API route. The mux serves exactly these (a test
// checks it against the registered handlers and the OpenAPI file), and
// the role-by-route test is generated from this table and permissions.
var Routes = []Route{
	// Session and enrollment (internal/operator).
	{Method: "POST", Pattern: Prefix + "/session", Public: true},          // sign in: name, password, TOTP or recovery code
	{Method: "GET", Pattern: Prefix + "/session", Action: SessionSelf},    // who am I, CSRF token, expiry
	{Method: "DELETE", Pattern: Prefix + "/session", Action: SessionSelf}, // sign out
	{Method: "POST", Pattern: Prefix + "/session/reauth", Action: SessionSelf},
	{Method: "POST", Pattern: Prefix + "/enroll", Public: true},      // one-time code + name + password: begins TOTP enrollment
	{Method: "POST", Pattern: Prefix + "/enroll/totp", Public: true}, // confirm the first TOTP code: recovery codes shown once
	{Method: "GET", Pattern: Prefix + "/sso/login", Public: true},
	{Method: "GET", Pattern: Prefix + "/sso/callback", Public: true},
	{Method: "POST", Pattern: Prefix + "/me/password", Action: SessionSelf, Reauth: true},
	{Method: "POST", Pattern: Prefix + "/me/recovery-codes", Action: SessionSelf, Reauth: true},
	// Passkeys (WebAuthn, internal/operator): the second factor in place of
	// the TOTP code, re-authentication, and one's own passkeys.
	{Method: "POST", Pattern: Prefix + "/session/passkey", Public: true},       // the passkey step of a sign-in (handle from POST /session's mfa_required or /session/passkey/begin)
	{Method: "POST", Pattern: Prefix + "/session/passkey/begin", Public: true}, // sign-in with a passkey alone (operators.webauthn.passwordless)
	{Method: "POST", Pattern: Prefix + "/session/reauth/passkey/begin", Action: SessionSelf},
	{Method: "POST", Pattern: Prefix + "/session/reauth/passkey/finish", Action: SessionSelf},
	{Method: "GET", Pattern: Prefix + "/me/passkeys", Action: SessionSelf},
	{Method: "POST", Pattern: Prefix + "/me/passkeys/begin", Action: SessionSelf, Reauth: true},
	{Method: "POST", Pattern: Prefix + "/me/passkeys/finish", Action: SessionSelf, Reauth: true},
	{Method: "DELETE", Pattern: Prefix + "/me/passkeys/{passkey}", Action: SessionSelf, Reauth: true},

	// Operators and API tokens (internal/operator).
	{Method: "GET", Pattern: Prefix + "/operators", Action: OperatorsRead},
	{Method: "POST", Pattern: Prefix + "/operators", Action: OperatorsManage}, // invite: a one-time enrollment code
	{Method: "PATCH", Pattern: Prefix + "/operators/{operator}", Action: OperatorsManage, Reauth: true},
	{Method: "DELETE", Pattern: Prefix + "/operators/{operator}", Action: OperatorsManage, Reauth: true},
	{Method: "GET", Pattern: Prefix + "/invitations", Action: OperatorsRead},                                                // pending enrollment codes (never the codes)
	{Method: "DELETE", Pattern: Prefix + "/invitations/{invitation}", Action: OperatorsManage},                              // revoke one
	{Method: "GET", Pattern: Prefix + "/operators/{operator}/passkeys", Action: OperatorsRead},                              // an operator's passkeys
	{Method: "DELETE", Pattern: Prefix + "/operators/{operator}/passkeys/{passkey}", Action: OperatorsManage, Reauth: true}, // remove a lost one
	{Method: "GET", Pattern: Prefix + "/tokens", Action: TokensManage},
	{Method: "POST", Pattern: Prefix + "/tokens", Action: TokensManage},
	{Method: "DELETE", Pattern: Prefix + "/tokens/{token}", Action: TokensManage},

	// Bots.
	{Method: "GET", Pattern: Prefix + "/bots", Action: BotsRead},
	{Method: "POST", Pattern: Prefix + "/bots", Action: BotsWrite},
	{Method: "GET", Pattern: Prefix + "/bots/{bot}", Action: BotsRead, Scope: ScopeBot},
	{Method: "PATCH", Pattern: Prefix + "/bots/{bot}", Action: BotsWrite, Scope: ScopeBot},
	{Method: "DELETE", Pattern: Prefix + "/bots/{bot}", Action: BotsWrite, Scope: ScopeBot, WithData: ConversationsErase},
	{Method: "POST", Pattern: Prefix + "/bots/{bot}/secret", Action: BotsSecrets, Scope: ScopeBot},
	{Method: "GET", Pattern: Prefix + "/bots/{bot}/oauth-connections", Action: OAuthRead, Scope: ScopeBot},
	{Method: "POST", Pattern: Prefix + "/bots/{bot}/oauth-connections", Action: OAuthWrite, Scope: ScopeBot},
	{Method: "PATCH", Pattern: Prefix + "/bots/{bot}/oauth-connections/{name}", Action: OAuthWrite, Scope: ScopeBot},
	{Method: "DELETE", Pattern: Prefix + "/bots/{bot}/oauth-connections/{name}", Action: OAuthWrite, Scope: ScopeBot},

	// Sites.
	{Method: "GET", Pattern: Prefix + "/sites", Action: SitesRead},
	{Method: "POST", Pattern: Prefix + "/sites", Action: SitesWrite}, // the body names the bot: checked against the scope
	{Method: "GET", Pattern: Prefix + "/sites/{site}", Action: SitesRead, Scope: ScopeSite},
	{Method: "PATCH", Pattern: Prefix + "/sites/{site}", Action: SitesWrite, Scope: ScopeSite},
	{Method: "DELETE", Pattern: Prefix + "/sites/{site}", Action: SitesWrite, Scope: ScopeSite, WithData: ConversationsErase},
	{Method: "GET", Pattern: Prefix + "/sites/{site}/secrets", Action: SitesSecrets, Scope: ScopeSite},
	{Method: "POST", Pattern: Prefix + "/sites/{site}/secrets", Action: SitesSecrets, Scope: ScopeSite},
	{Method: "DELETE", Pattern: Prefix + "/sites/{site}/secrets/{secret}", Action: SitesSecrets, Scope: ScopeSite},
	{Method: "PUT", Pattern: Prefix + "/sites/{site}/origins", Action: SitesOrigins, Scope: ScopeSite},
	{Method: "GET", Pattern: Prefix + "/sites/{site}/retention", Action: RetentionRead, Scope: ScopeSite},
	{Method: "PUT", Pattern: Prefix + "/sites/{site}/retention", Action: RetentionWrite, Scope: ScopeSite},

	// Conversations and dead letters.
	{Method: "GET", Pattern: Prefix + "/conversations", Action: ConversationsRead},
	{Method: "DELETE", Pattern: Prefix + "/conversations/{conversation}", Action: ConversationsErase, Scope: ScopeConversation},
	{Method: "GET", Pattern: Prefix + "/dead-letters", Action: DeadLettersRead},
	{Method: "POST", Pattern: Prefix + "/dead-letters/{deadletter}/redeliver", Action: DeadLettersRedeliver, Scope: ScopeDeadLetter},
	{Method: "DELETE", Pattern: Prefix + "/dead-letters/{deadletter}", Action: DeadLettersRedeliver, Scope: ScopeDeadLetter},
	{Method: "GET", Pattern: Prefix + "/dead-letters/{deadletter}/activity", Action: DeadLettersContent, Scope: ScopeDeadLetter},

	// Keys.
	{Method: "GET", Pattern: Prefix + "/keys", Action: KeysRead},
	{Method: "POST", Pattern: Prefix + "/keys/rotate", Action: KeysManage},
	{Method: "POST", Pattern: Prefix + "/keys/rewrap", Action: KeysManage},
	{Method: "POST", Pattern: Prefix + "/keys/{key}/destroy", Action: KeysManage, Reauth: true},

	// Audit log and security report.
	{Method: "GET", Pattern: Prefix + "/audit", Action: AuditRead},        // entries after a position (?after=SEQ&limit=N)
	{Method: "GET", Pattern: Prefix + "/audit/verify", Action: AuditRead}, // chain and checkpoint verification
	{Method: "GET", Pattern: Prefix + "/audit/export", Action: AuditRead}, // JSON lines after a position; follows with ?follow=1
	{Method: "GET", Pattern: Prefix + "/security/report", Action: SecurityRead},

	// The API's own description (internal/adminapi/openapi.yaml).
	{Method: "GET", Pattern: Prefix + "/openapi.yaml", Public: true},
}

// Key is the route's ServeMux pattern with its method, "GET /admin/v1/bots":
// the key of a handler map (the operator package's Handlers()).
func (r Route) Key() string { return r.Method + " " + r.Pattern }
