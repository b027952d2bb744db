package botauth

import (
	"net/http"
	"strconv"
)

// The App Service managed identity token protocol, as MSAL Node 5.x
// speaks it (msal-node src/client/ManagedIdentitySources/AppService.ts):
//
//	GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource={resource}&client_id={id}
//	X-IDENTITY-HEADER: {IDENTITY_HEADER}
//
// answered with {"access_token","expires_on","resource","token_type","client_id"}.
// MSAL takes this path (no instance discovery, no authority at all) when
// the Agents SDK runs with authType=UserManagedIdentity and the process has
// IDENTITY_ENDPOINT and IDENTITY_HEADER set.
//
// Deviations from Azure's endpoint, each deliberate:
//   - the identity header is the bot's client secret (Azure uses a
//     per-machine value); it gets the same checks, the same per-address
//     throttling budget and the same failure log and counter as the
//     client secret at the token endpoint;
//   - client_id (the bot's app id) is required: there is no system
//     identity;
//   - it is served over TLS only, never on plain HTTP (Azure's is a
//     loopback HTTP endpoint);
//   - the token is Parley's bot access token, for Parley's audience, even
//     for the resource https://api.botframework.com (see BotFrameworkScope).
const (
	managedIdentityAPIVersion = "2019-08-01"
	managedIdentityHeader     = "X-Identity-Header"
)

func (a *Authority) managedIdentityToken(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the managed identity endpoint is served over TLS only; use the https IDENTITY_ENDPOINT that 'parley bot create' printed")
		return
	}
	q := r.URL.Query()
	one := func(name string) (string, bool) {
		v := q[name]
		if len(v) > 1 {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	for _, name := range []string{"object_id", "principal_id", "mi_res_id", "msi_res_id"} {
		if q.Has(name) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "identify the bot by client_id (its app id): set the Agents SDK connection's clientId and authType=UserManagedIdentity")
			return
		}
	}
	version, ok1 := one("api-version")
	resource, ok2 := one("resource")
	id, ok3 := one("client_id")
	if !ok1 || !ok2 || !ok3 {
		oauthError(w, http.StatusBadRequest, "invalid_request", "api-version, resource and client_id may each be given once")
		return
	}
	if version != managedIdentityAPIVersion {
		oauthError(w, http.StatusBadRequest, "invalid_request", "api-version must be "+managedIdentityAPIVersion)
		return
	}
	if !a.acceptedScope(resource) && resource != a.cfg.PublicURL {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "resource must be "+BotFrameworkScope+" or "+a.cfg.PublicURL)
		return
	}
	headers := r.Header.Values(managedIdentityHeader)
	if len(headers) > 1 {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the X-IDENTITY-HEADER header may be given once")
		return
	}
	secret := ""
	if len(headers) == 1 {
		secret = headers[0]
	}
	if id == "" || secret == "" || len(id) > 128 || len(secret) > 256 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id (the bot's app id) and the X-IDENTITY-HEADER header (the bot's client secret, from IDENTITY_HEADER) are required; with the Agents SDK set authType=UserManagedIdentity and clientId")
		return
	}
	bot, ok := a.checkClient(w, r, id, secret, "managed_identity")
	if !ok {
		return
	}
	tok, exp, err := a.issue(bot)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "the token service could not complete the request")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    bot.ID,
	})
}
