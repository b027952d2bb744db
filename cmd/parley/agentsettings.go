package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
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
//   - user tokens: TOKEN_SERVICE_ENDPOINT is Parley's token service;
//   - the agent calls (and sends its token to) Parley's host only
//     (OutboundHostValidator), and refuses an activity whose serviceUrl is
//     not the one in Parley's channel token (validateServiceUrl).
func agentsSDKSettings(publicURL, appID, secret string) []botauth.Setting {
	u := strings.TrimRight(publicURL, "/")
	host := u
	if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" {
		host = pu.Hostname()
	}
	p := "Connections__" + agentsConnection + "__Settings__"
	return []botauth.Setting{
		{Name: p + "clientId", Value: appID},
		{Name: p + "authType", Value: "UserManagedIdentity"},
		{Name: p + "authorityEndpoint", Value: u},
		{Name: p + "tenantId", Value: botauth.AgentsChannelTenant},
		{Name: p + "issuers", Value: u},
		{Name: p + "validateIssuer", Value: "true"},
		{Name: p + "scopes", Value: u + "/.default"},
		{Name: "ConnectionsMap__0__ServiceUrl", Value: "*"},
		{Name: "ConnectionsMap__0__Connection", Value: agentsConnection},
		{Name: "CloudAdapterOptions__validateServiceUrl", Value: "true"},
		{Name: "OutboundHostValidator__enabled", Value: "true"},
		{Name: "OutboundHostValidator__includeDefaultMicrosoftHosts", Value: "false"},
		{Name: "OutboundHostValidator__hosts", Value: host},
		{Name: "TOKEN_SERVICE_ENDPOINT", Value: u},
		{Name: "IDENTITY_ENDPOINT", Value: u + botauth.ManagedIdentityPath},
		{Name: "IDENTITY_HEADER", Value: secret},
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

// checkDeliveryTimeout validates --delivery-timeout (zero: the default).
func checkDeliveryTimeout(d time.Duration) error {
	if d != 0 && (d < time.Second || d > connector.MaxDeliveryTimeout) {
		return fmt.Errorf("--delivery-timeout %v: give a duration from 1s to %v (e.g. 60s), or leave it out for the default", d, connector.MaxDeliveryTimeout)
	}
	return nil
}
