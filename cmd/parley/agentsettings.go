package main

import (
	"fmt"
	"strings"

	"github.com/parley-gw/parley/internal/botauth"
)

// agentsConnection is the connection name the printed settings use (the
// Agents SDK samples' name).
const agentsConnection = "serviceConnection"

// agentsSDKSettings is the whole group of environment variables a
// Microsoft 365 Agents SDK agent (JS @microsoft/agents-hosting 1.8.x,
// `new CloudAdapter()` with no argument) needs for the gateway at
// publicURL, with no code change:
//   - inbound: the SDK fetches the keys of a non-Microsoft issuer from
//     {authorityEndpoint}/{tenantId}/discovery/v2.0/keys, which Parley
//     maps to its channel keys (botauth.AgentsChannelKeysPath); the
//     issuer is checked against Parley's (issuers + validateIssuer);
//   - outbound: authType=UserManagedIdentity makes MSAL speak the App
//     Service managed identity protocol to IDENTITY_ENDPOINT with
//     IDENTITY_HEADER (the bot's client secret): no instance discovery at
//     login.microsoftonline.com, no Microsoft endpoint at all;
//   - user tokens: TOKEN_SERVICE_ENDPOINT is Parley's token service.
func agentsSDKSettings(publicURL, appID, secret string) []botauth.Setting {
	u := strings.TrimRight(publicURL, "/")
	p := "Connections__" + agentsConnection + "__Settings__"
	return []botauth.Setting{
		{p + "clientId", appID},
		{p + "authType", "UserManagedIdentity"},
		{p + "authorityEndpoint", u},
		{p + "tenantId", botauth.AgentsChannelTenant},
		{p + "issuers", u},
		{p + "validateIssuer", "true"},
		{p + "scopes", u + "/.default"},
		{"ConnectionsMap__0__ServiceUrl", "*"},
		{"ConnectionsMap__0__Connection", agentsConnection},
		{"CloudAdapterOptions__validateServiceUrl", "true"},
		{"TOKEN_SERVICE_ENDPOINT", u},
		{"IDENTITY_ENDPOINT", u + botauth.ManagedIdentityPath},
		{"IDENTITY_HEADER", secret},
	}
}

// agentsSettingsMap is agentsSDKSettings as the JSON output's map.
func agentsSettingsMap(publicURL, appID, secret string) map[string]string {
	m := map[string]string{}
	for _, s := range agentsSDKSettings(publicURL, appID, secret) {
		m[s.Name] = s.Value
	}
	return m
}

// agentsSettingsText is the block printed after the botbuilder settings.
func agentsSettingsText(publicURL, appID, secret string) string {
	var t strings.Builder
	fmt.Fprintf(&t, "\nOr, for a Microsoft 365 Agents SDK agent (@microsoft/agents-hosting 1.8.x, new CloudAdapter()),\nthese settings instead (no code change; IDENTITY_HEADER is the same client secret):\n\n")
	for _, s := range agentsSDKSettings(publicURL, appID, secret) {
		fmt.Fprintf(&t, "%s=%s\n", s.Name, s.Value)
	}
	if strings.HasPrefix(publicURL, "http://") {
		fmt.Fprintf(&t, "\nNote: the managed identity endpoint is served over TLS only; serve Parley over https for an Agents SDK agent.\n")
	}
	return t.String()
}
