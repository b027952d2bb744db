package adminapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

const p = admin.Prefix

// handlers are the API's own routes (every route of admin.Routes but the
// operator package's).
func (a *api) handlers() map[string]http.Handler {
	m := map[string]http.HandlerFunc{
		"GET " + p + "/bots":                                   a.listBots,
		"POST " + p + "/bots":                                  a.createBot,
		"GET " + p + "/bots/{bot}":                             a.getBot,
		"PATCH " + p + "/bots/{bot}":                           a.updateBot,
		"DELETE " + p + "/bots/{bot}":                          a.deleteBot,
		"POST " + p + "/bots/{bot}/secret":                     a.rotateBotSecret,
		"GET " + p + "/bots/{bot}/oauth-connections":           a.listOAuth,
		"POST " + p + "/bots/{bot}/oauth-connections":          a.createOAuth,
		"PATCH " + p + "/bots/{bot}/oauth-connections/{name}":  a.updateOAuth,
		"DELETE " + p + "/bots/{bot}/oauth-connections/{name}": a.deleteOAuth,
		"GET " + p + "/sites":                                  a.listSites,
		"POST " + p + "/sites":                                 a.createSite,
		"GET " + p + "/sites/{site}":                           a.getSite,
		"PATCH " + p + "/sites/{site}":                         a.updateSite,
		"DELETE " + p + "/sites/{site}":                        a.deleteSite,
		"GET " + p + "/sites/{site}/secrets":                   a.listSiteSecrets,
		"POST " + p + "/sites/{site}/secrets":                  a.createSiteSecret,
		"DELETE " + p + "/sites/{site}/secrets/{secret}":       a.revokeSiteSecret,
		"PUT " + p + "/sites/{site}/origins":                   a.setOrigins,
		"GET " + p + "/sites/{site}/retention":                 a.getRetention,
		"PUT " + p + "/sites/{site}/retention":                 a.setRetention,
		"GET " + p + "/conversations":                          a.listConversations,
		"DELETE " + p + "/conversations/{conversation}":        a.eraseConversation,
		"GET " + p + "/dead-letters":                           a.listDeadLetters,
		"POST " + p + "/dead-letters/{deadletter}/redeliver":   a.redeliver,
		"DELETE " + p + "/dead-letters/{deadletter}":           a.dropDeadLetter,
		"GET " + p + "/dead-letters/{deadletter}/activity":     a.deadLetterActivity,
		"GET " + p + "/keys":                                   a.listKeys,
		"POST " + p + "/keys/rotate":                           a.rotateKeys,
		"POST " + p + "/keys/rewrap":                           a.rewrapKeys,
		"POST " + p + "/keys/{key}/destroy":                    a.destroyKey,
		"GET " + p + "/security/report":                        a.securityReport,
		"GET " + p + "/audit":                                  a.auditEntries,
		"GET " + p + "/audit/verify":                           a.auditVerify,
		"GET " + p + "/audit/export":                           a.auditExport,
		"GET " + p + "/openapi.yaml":                           serveOpenAPI,
	}
	out := make(map[string]http.Handler, len(m))
	for k, h := range m {
		out[k] = h
	}
	return out
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPI)
}

func principal(r *http.Request) admin.Principal {
	pr, _ := admin.PrincipalFrom(r.Context())
	return pr
}

func (a *api) fail(w http.ResponseWriter, err error) {
	a.logUnrecorded(err)
	status, code, msg := admin.HTTPStatus(err)
	admin.WriteError(w, status, code, msg)
}

// logUnrecorded logs a call served whose audit event could not be
// recorded (the answer says to see the server's log).
func (a *api) logUnrecorded(err error) {
	var u *admin.UnrecordedError
	switch {
	case !errors.As(err, &u):
	case u.Read:
		a.log.Error("admin: a read refused: its access could not be recorded", "err", err)
	default:
		a.log.Error("admin: a change was made but its audit event could not be recorded", "err", err)
	}
}

// made answers a change that returns something shown once (a secret):
// its result with status, or, when the change was made but its audit
// event could not be recorded, 500 unrecorded with the result beside
// the error (the change stands; without its result the secret would be
// lost and the caller would have to rotate again, which needs the same
// audit log). Other errors as fail.
func (a *api) made(w http.ResponseWriter, status int, result func() any, err error) {
	switch {
	case err == nil:
		admin.WriteJSON(w, status, result())
	case admin.Unrecorded(err):
		a.logUnrecorded(err)
		status, code, msg := admin.HTTPStatus(err) // 500 unrecorded
		admin.WriteJSON(w, status, admin.UnrecordedBody{Error: admin.ErrorDetail{Code: code, Message: msg + " (result holds what it made, shown once)"},
			Result: result()})
	default:
		a.fail(w, err)
	}
}

func badRequest(w http.ResponseWriter, msg string) {
	admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, msg)
}

func duration(w http.ResponseWriter, field, v string) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	if err != nil {
		badRequest(w, field+": want a duration such as 60s or 5m")
		return 0, false
	}
	return d, true
}

func boolQuery(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

// --- bots ---

func (a *api) listBots(w http.ResponseWriter, r *http.Request) {
	bots, err := a.cfg.Service.ListBots(r.Context(), principal(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]admin.Bot, 0, len(bots))
	for _, b := range bots {
		out = append(out, admin.ToBot(b))
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

func (a *api) getBot(w http.ResponseWriter, r *http.Request) {
	b, err := a.cfg.Service.GetBot(r.Context(), principal(r), r.PathValue("bot"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToBot(b))
}

type botCreateReq struct {
	Name            string `json:"name"`
	Endpoint        string `json:"endpoint"`
	PublicURL       string `json:"publicUrl"`
	InsecureNoAuth  bool   `json:"insecureNoAuth"`
	DeliveryTimeout string `json:"deliveryTimeout"`
}

func (a *api) createBot(w http.ResponseWriter, r *http.Request) {
	var req botCreateReq
	if !decode(w, r, &req) {
		return
	}
	in := admin.BotCreate{Name: req.Name, Endpoint: req.Endpoint, PublicURL: req.PublicURL, InsecureNoAuth: req.InsecureNoAuth}
	if req.DeliveryTimeout != "" {
		d, ok := duration(w, "deliveryTimeout", req.DeliveryTimeout)
		if !ok {
			return
		}
		in.DeliveryTimeout = d
	}
	res, err := a.cfg.Service.CreateBot(r.Context(), principal(r), in)
	a.made(w, http.StatusCreated, func() any { return res.View() }, err)
}

type botUpdateReq struct {
	Name            *string `json:"name"`
	Endpoint        *string `json:"endpoint"`
	Auth            bool    `json:"auth"`
	InsecureNoAuth  bool    `json:"insecureNoAuth"`
	DeliveryTimeout *string `json:"deliveryTimeout"`
	PublicURL       string  `json:"publicUrl"`
}

func (a *api) updateBot(w http.ResponseWriter, r *http.Request) {
	var req botUpdateReq
	if !decode(w, r, &req) {
		return
	}
	in := admin.BotUpdate{Name: req.Name, Endpoint: req.Endpoint, Auth: req.Auth, InsecureNoAuth: req.InsecureNoAuth, PublicURL: req.PublicURL}
	if req.DeliveryTimeout != nil {
		d, ok := duration(w, "deliveryTimeout", *req.DeliveryTimeout)
		if !ok {
			return
		}
		in.DeliveryTimeout = &d
	}
	res, err := a.cfg.Service.UpdateBot(r.Context(), principal(r), r.PathValue("bot"), in)
	a.made(w, http.StatusOK, func() any { return res.View() }, err) // switching to authentication makes a client secret
}

func (a *api) deleteBot(w http.ResponseWriter, r *http.Request) {
	ctx, pr, id := r.Context(), principal(r), r.PathValue("bot")
	if boolQuery(r, "dryRun") {
		b, plan, err := a.cfg.Service.PlanDeleteBot(ctx, pr, id)
		if err != nil {
			a.fail(w, err)
			return
		}
		rm := admin.ToRemoval(plan)
		admin.WriteJSON(w, http.StatusOK, admin.Deletion{Deleted: "bot", ID: id, Name: b.Name, Plan: &rm, Removed: admin.Removal{Sites: []string{}}})
		return
	}
	d, err := a.cfg.Service.DeleteBot(ctx, pr, id, boolQuery(r, "cascade"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, d)
}

type slotReq struct {
	Slot int `json:"slot"`
}

func (a *api) rotateBotSecret(w http.ResponseWriter, r *http.Request) {
	var req slotReq
	if !decode(w, r, &req) {
		return
	}
	id := r.PathValue("bot")
	s, err := a.cfg.Service.RotateBotSecret(r.Context(), principal(r), id, req.Slot)
	a.made(w, http.StatusOK, func() any { return map[string]any{"bot": id, "slot": req.Slot, "clientSecret": s} }, err)
}

// --- OAuth connections ---

func (a *api) listOAuth(w http.ResponseWriter, r *http.Request) {
	conns, err := a.cfg.Service.ListOAuthConnections(r.Context(), principal(r), r.PathValue("bot"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]admin.OAuthConnection, 0, len(conns))
	for _, c := range conns {
		out = append(out, admin.ToOAuthConnection(c, a.cfg.Service.RedirectURI()))
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

type oauthReq struct {
	Name         *string   `json:"name"`
	Provider     *string   `json:"provider"`
	Issuer       *string   `json:"issuer"`
	AuthURL      *string   `json:"authUrl"`
	TokenURL     *string   `json:"tokenUrl"`
	Tenant       *string   `json:"tenant"`
	ClientID     *string   `json:"clientId"`
	ClientSecret *string   `json:"clientSecret"`
	Scopes       *[]string `json:"scopes"`
	MaxLogin     *string   `json:"maxLogin"`
}

func (a *api) oauthInput(w http.ResponseWriter, req oauthReq) (admin.OAuthInput, bool) {
	in := admin.OAuthInput{Provider: req.Provider, Issuer: req.Issuer, AuthURL: req.AuthURL, TokenURL: req.TokenURL, Tenant: req.Tenant, ClientID: req.ClientID, Scopes: req.Scopes}
	if req.MaxLogin != nil {
		d, ok := duration(w, "maxLogin", *req.MaxLogin)
		if !ok {
			return in, false
		}
		in.MaxLogin = &d
	}
	if req.ClientSecret != nil {
		s := *req.ClientSecret
		in.Secret = func() (string, error) { return s, nil }
	}
	return in, true
}

func (a *api) createOAuth(w http.ResponseWriter, r *http.Request) {
	var req oauthReq
	if !decode(w, r, &req) {
		return
	}
	if req.Name == nil {
		badRequest(w, "name is required")
		return
	}
	in, ok := a.oauthInput(w, req)
	if !ok {
		return
	}
	c, err := a.cfg.Service.CreateOAuthConnection(r.Context(), principal(r), r.PathValue("bot"), *req.Name, in)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusCreated, admin.ToOAuthConnection(c, a.cfg.Service.RedirectURI()))
}

func (a *api) updateOAuth(w http.ResponseWriter, r *http.Request) {
	var req oauthReq
	if !decode(w, r, &req) {
		return
	}
	if req.Name != nil {
		badRequest(w, "a connection's name cannot change: delete it and create another")
		return
	}
	in, ok := a.oauthInput(w, req)
	if !ok {
		return
	}
	c, err := a.cfg.Service.UpdateOAuthConnection(r.Context(), principal(r), r.PathValue("bot"), r.PathValue("name"), in)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToOAuthConnection(c, a.cfg.Service.RedirectURI()))
}

func (a *api) deleteOAuth(w http.ResponseWriter, r *http.Request) {
	bot, name := r.PathValue("bot"), r.PathValue("name")
	if err := a.cfg.Service.DeleteOAuthConnection(r.Context(), principal(r), bot, name); err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true, "botId": bot, "name": name})
}

// --- sites ---

func (a *api) listSites(w http.ResponseWriter, r *http.Request) {
	sites, err := a.cfg.Service.ListSites(r.Context(), principal(r), r.URL.Query().Get("bot"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]admin.Site, 0, len(sites))
	for _, s := range sites {
		out = append(out, admin.ToSite(s))
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

func (a *api) getSite(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Service.GetSite(r.Context(), principal(r), r.PathValue("site"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToSite(s))
}

type siteCreateReq struct {
	Bot                  string   `json:"bot"`
	Name                 string   `json:"name"`
	TrustedOrigins       []string `json:"trustedOrigins"`
	EnhancedAuth         *bool    `json:"enhancedAuth"`
	ClientAttachmentURLs string   `json:"clientAttachmentUrls"`
	Masking              string   `json:"masking"`
}

func (a *api) createSite(w http.ResponseWriter, r *http.Request) {
	var req siteCreateReq
	if !decode(w, r, &req) {
		return
	}
	in := admin.SiteCreate{BotID: req.Bot, Name: req.Name, Origins: req.TrustedOrigins, NoEnhancedAuth: req.EnhancedAuth != nil && !*req.EnhancedAuth,
		ClientAttachmentURLs: req.ClientAttachmentURLs, Masking: req.Masking}
	if in.ClientAttachmentURLs == "" {
		in.ClientAttachmentURLs = string(store.AttachmentURLsRefuse)
	}
	c, err := a.cfg.Service.CreateSite(r.Context(), principal(r), in)
	a.made(w, http.StatusCreated, func() any { return c.View() }, err)
}

type siteUpdateReq struct {
	Name                 *string `json:"name"`
	EnhancedAuth         *bool   `json:"enhancedAuth"`
	ClientAttachmentURLs *string `json:"clientAttachmentUrls"`
	Masking              *string `json:"masking"`
}

func (a *api) updateSite(w http.ResponseWriter, r *http.Request) {
	var req siteUpdateReq
	if !decode(w, r, &req) {
		return
	}
	s, err := a.cfg.Service.UpdateSite(r.Context(), principal(r), r.PathValue("site"), admin.SiteUpdate(req))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToSite(s))
}

func (a *api) deleteSite(w http.ResponseWriter, r *http.Request) {
	ctx, pr, id := r.Context(), principal(r), r.PathValue("site")
	if boolQuery(r, "dryRun") {
		s, plan, err := a.cfg.Service.PlanDeleteSite(ctx, pr, id)
		if err != nil {
			a.fail(w, err)
			return
		}
		rm := admin.ToRemoval(plan)
		admin.WriteJSON(w, http.StatusOK, admin.Deletion{Deleted: "site", ID: id, Name: s.Name, Plan: &rm, Removed: admin.Removal{Sites: []string{}}})
		return
	}
	d, err := a.cfg.Service.DeleteSite(ctx, pr, id)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, d)
}

func (a *api) listSiteSecrets(w http.ResponseWriter, r *http.Request) {
	slots, err := a.cfg.Service.ListSiteSecrets(r.Context(), principal(r), r.PathValue("site"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, slots)
}

func (a *api) createSiteSecret(w http.ResponseWriter, r *http.Request) {
	var req slotReq
	if !decode(w, r, &req) {
		return
	}
	id := r.PathValue("site")
	s, err := a.cfg.Service.RotateSiteSecret(r.Context(), principal(r), id, req.Slot)
	a.made(w, http.StatusCreated, func() any { return map[string]any{"site": id, "slot": req.Slot, "secret": s} }, err)
}

func (a *api) revokeSiteSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("site")
	slot, err := strconv.Atoi(r.PathValue("secret"))
	if err != nil {
		badRequest(w, "the secret is named by its slot: 1 or 2")
		return
	}
	if err := a.cfg.Service.RevokeSiteSecret(r.Context(), principal(r), id, slot); err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"site": id, "slot": slot, "revoked": true})
}

type originsReq struct {
	Origins *[]string `json:"origins"`
}

func (a *api) setOrigins(w http.ResponseWriter, r *http.Request) {
	var req originsReq
	if !decode(w, r, &req) {
		return
	}
	if req.Origins == nil {
		badRequest(w, "origins is required: list every trusted origin, or [] to clear them")
		return
	}
	origins := *req.Origins
	if origins == nil {
		origins = []string{}
	}
	s, err := a.cfg.Service.SetOrigins(r.Context(), principal(r), r.PathValue("site"), origins)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToSite(s))
}

func (a *api) getRetention(w http.ResponseWriter, r *http.Request) {
	ret, err := a.cfg.Service.GetRetention(r.Context(), principal(r), r.PathValue("site"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToRetention(ret))
}

type retentionReq struct {
	Mode  string `json:"mode"`
	After string `json:"after"`
}

func (a *api) setRetention(w http.ResponseWriter, r *http.Request) {
	var req retentionReq
	if !decode(w, r, &req) {
		return
	}
	if req.Mode == "" {
		badRequest(w, "mode is required: default, after, end-of-conversation or ephemeral")
		return
	}
	ret, err := admin.ParseRetention(admin.RetentionInput(req))
	if err != nil {
		a.fail(w, err)
		return
	}
	s, err := a.cfg.Service.SetRetention(r.Context(), principal(r), r.PathValue("site"), ret)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, admin.ToSite(s))
}

// --- conversations and dead letters ---

func (a *api) listConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ConversationFilter{BotID: q.Get("bot"), SiteID: q.Get("site"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			badRequest(w, "limit: want a number from 1 to 100000")
			return
		}
		f.Limit = n
	}
	convs, err := a.cfg.Service.ListConversations(r.Context(), principal(r), f)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]admin.Conversation, 0, len(convs))
	for _, c := range convs {
		out = append(out, admin.ToConversation(c))
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

func (a *api) eraseConversation(w http.ResponseWriter, r *http.Request) {
	e, err := a.cfg.Service.EraseConversation(r.Context(), principal(r), r.PathValue("conversation"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, e)
}

func (a *api) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	dls, err := a.cfg.Service.ListDeadLetters(r.Context(), principal(r), r.URL.Query().Get("bot"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]admin.DeadLetter, 0, len(dls))
	for _, d := range dls {
		out = append(out, admin.ToDeadLetter(d))
	}
	admin.WriteJSON(w, http.StatusOK, out)
}

func (a *api) deadLetterActivity(w http.ResponseWriter, r *http.Request) {
	id, ok := deadLetterID(w, r)
	if !ok {
		return
	}
	d, err := a.cfg.Service.DeadLetterActivity(r.Context(), principal(r), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, d)
}

func deadLetterID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("deadletter"), 10, 64)
	if err != nil {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such dead letter")
		return 0, false
	}
	return id, true
}

func (a *api) redeliver(w http.ResponseWriter, r *http.Request) {
	id, ok := deadLetterID(w, r)
	if !ok {
		return
	}
	if err := a.cfg.Service.RedeliverDeadLetter(r.Context(), principal(r), id); err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string][]int64{"redelivered": {id}})
}

func (a *api) dropDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, ok := deadLetterID(w, r)
	if !ok {
		return
	}
	if err := a.cfg.Service.DropDeadLetter(r.Context(), principal(r), id); err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string][]int64{"dropped": {id}})
}

// --- keys and the security report ---

func (a *api) listKeys(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Service.ListKeys(r.Context(), principal(r), r.URL.Query().Get("purpose"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []keyring.Info{}
	}
	admin.WriteJSON(w, http.StatusOK, list)
}

type rotateReq struct {
	Purpose      string `json:"purpose"`
	Force        bool   `json:"force"`
	PurgeRetired bool   `json:"purgeRetired"`
}

func (a *api) rotateKeys(w http.ResponseWriter, r *http.Request) {
	var req rotateReq
	if !decode(w, r, &req) {
		return
	}
	// A purge destroys key material like POST /keys/{key}/destroy, which
	// needs a recent re-authentication: so does the purge.
	if req.PurgeRetired && !a.cfg.Auth.Reauthenticated(principal(r)) {
		a.denied(r.Context(), principal(r), admin.Route{Method: r.Method, Pattern: p + "/keys/rotate", Action: admin.KeysManage}, r, "reauth")
		admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "purgeRetired destroys keys: re-authenticate (POST /admin/v1/session/reauth) and try again")
		return
	}
	rot, _, err := a.cfg.Service.RotateKeys(r.Context(), principal(r), req.Purpose, keyring.RotateOptions{Force: req.Force, PurgeRetired: req.PurgeRetired})
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, rot)
}

func (a *api) rewrapKeys(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if !decode(w, r, &req) {
		return
	}
	n, err := a.cfg.Service.Rewrap(r.Context(), principal(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]int{"rewrapped": n})
}

type destroyReq struct {
	Force   bool `json:"force"`
	Confirm bool `json:"confirm"`
}

func (a *api) destroyKey(w http.ResponseWriter, r *http.Request) {
	var req destroyReq
	if !decode(w, r, &req) {
		return
	}
	ctx, pr, id, opt := r.Context(), principal(r), r.PathValue("key"), keyring.DestroyOptions{Force: req.Force}
	d, _, err := a.cfg.Service.PlanDestroyKey(ctx, pr, id, opt)
	if err == nil && req.Confirm {
		d, _, err = a.cfg.Service.DestroyKey(ctx, pr, id, opt)
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, d)
}

func (a *api) securityReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rep, err := a.cfg.Service.SecurityReport(r.Context(), principal(r), q.Get("since"), q.Get("top"))
	if err != nil {
		a.fail(w, err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, rep)
}
