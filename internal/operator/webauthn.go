package operator

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/store"
)

// Passkeys (WebAuthn, github.com/go-webauthn/webauthn) are a second
// factor in place of the TOTP code at sign-in, and a way to
// re-authenticate. The relying party is the admin listener:
// operators.webauthn.rp_id and origins, or, when they are not set, the
// request's own host, only on a loopback connection to
// http://localhost:PORT (a Host header cannot then point the check at
// another site: the connection itself is local). User verification is
// required (the authenticator's PIN or biometric), attestation is not
// asked for ("none"). Ceremonies are kept in memory, bound to the
// operator (and for registration and re-authentication to the session),
// single use and expiring after operators.webauthn.timeout. An
// assertion is accepted only if the authenticator's signature counter
// increased (or stays 0 for an authenticator without one): a replay or
// a cloned authenticator is refused and audited.

// maxPasskeys bounds an operator's passkeys.
const maxPasskeys = 20

// maxCeremonies bounds the ceremonies waiting at once (each small).
const maxCeremonies = 10000

// passkeyLoginPrefix marks the one-time handle between the password and
// the passkey steps of a sign-in.
const passkeyLoginPrefix = "ppk_"

// errPasskeysOff: no relying party for this request (not configured and
// not a loopback localhost request).
var errPasskeysOff = errors.New("passkeys are not available on this address: open the console at http://localhost:PORT on a loopback listener, or set operators.webauthn.rp_id and origins")

type ceremonyKind string

const (
	ceremonyRegister ceremonyKind = "register"
	ceremonyLogin    ceremonyKind = "login"
	ceremonyReauth   ceremonyKind = "reauth"
	// ceremonyPasswordless: a sign-in with a passkey alone (a
	// discoverable credential: the operator is found from it).
	ceremonyPasswordless ceremonyKind = "passwordless"
)

// ceremony is a begun WebAuthn ceremony waiting for its finish.
type ceremony struct {
	kind       ceremonyKind
	operatorID string
	sessionID  string // the admin session (register, reauth)
	data       webauthn.SessionData
	rp         *webauthn.WebAuthn
	expires    time.Time
}

// ceremonies are the begun ceremonies, each taken once.
type ceremonies struct {
	mu sync.Mutex
	m  map[string]ceremony
}

func (c *ceremonies) put(key string, v ceremony, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]ceremony{}
	}
	if len(c.m) >= maxCeremonies {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCeremonies {
			return false
		}
	}
	c.m[key] = v
	return true
}

// take removes and returns the ceremony under key: a second take of the
// same key finds nothing (single use).
func (c *ceremonies) take(key string) (ceremony, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	delete(c.m, key)
	return v, ok
}

// newRelyingParty builds the go-webauthn relying party for rpID and
// origins: user verification required, no attestation asked for,
// resident keys preferred (so a passkey can later sign in without a
// name).
func newRelyingParty(rpID string, origins []string, timeout time.Duration) (*webauthn.WebAuthn, error) {
	rp, err := webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: "Parley admin", RPOrigins: origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("configure passkeys: %w", err)
	}
	return rp, nil
}

// newPasskeys prepares the configured relying party (nil when
// operators.webauthn.rp_id is empty: derived per loopback request).
func newPasskeys(w config.WebAuthn) (*webauthn.WebAuthn, error) {
	if w.RPID == "" {
		return nil, nil
	}
	return newRelyingParty(w.RPID, w.Origins, webauthnTimeout(w))
}

func webauthnTimeout(w config.WebAuthn) time.Duration {
	if w.Timeout <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(w.Timeout)
}

// relyingParty is the relying party for r: the configured one, or on a
// loopback connection to localhost one for the request's own origin.
func (s *Service) relyingParty(r *http.Request) (*webauthn.WebAuthn, error) {
	if s.passkeys != nil {
		return s.passkeys, nil
	}
	if s.settings().WebAuthn.RPID != "" {
		return nil, errPasskeysOff
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	ta, ok := local.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return nil, errPasskeysOff
	}
	origin := s.ownOrigin(r)
	u, err := url.Parse(origin)
	if err != nil {
		return nil, errPasskeysOff
	}
	host := strings.ToLower(u.Hostname())
	if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return nil, errPasskeysOff
	}
	return newRelyingParty(host, []string{origin}, webauthnTimeout(s.settings().WebAuthn))
}

// passkeyUser is an operator as go-webauthn sees it. The user handle is
// the operator id (random, no personal data).
type passkeyUser struct {
	op    store.Operator
	creds []store.WebAuthnCredential
}

func (u passkeyUser) WebAuthnID() []byte          { return []byte(u.op.ID) }
func (u passkeyUser) WebAuthnName() string        { return u.op.Name }
func (u passkeyUser) WebAuthnDisplayName() string { return u.op.Name }
func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.creds))
	for _, c := range u.creds {
		var tr []protocol.AuthenticatorTransport
		for _, t := range c.Transports {
			tr = append(tr, protocol.AuthenticatorTransport(t))
		}
		out = append(out, webauthn.Credential{ID: c.CredentialID, PublicKey: c.PublicKey, AttestationFormat: c.AttestationFormat,
			Transport: tr, Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount}})
	}
	return out
}

// registeringUser is op as a passkey user who may register one more
// (fewer than maxPasskeys): false once it has answered.
func (s *Service) registeringUser(w http.ResponseWriter, ctx context.Context, op store.Operator) (passkeyUser, bool) {
	user, err := s.passkeyUser(ctx, op)
	if err != nil {
		s.internalError(w, "register passkey", err)
		return passkeyUser{}, false
	}
	if len(user.creds) >= maxPasskeys {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, fmt.Sprintf("you have %d passkeys, the most allowed: remove one first", maxPasskeys))
		return passkeyUser{}, false
	}
	return user, true
}

func (s *Service) passkeyUser(ctx context.Context, op store.Operator) (passkeyUser, error) {
	creds, err := s.st.ListWebAuthnCredentials(ctx, op.ID)
	if err != nil {
		return passkeyUser{}, err
	}
	return passkeyUser{op: op, creds: creds}, nil
}

// passkeyOptions is a begun ceremony's options for navigator.credentials
// ({"publicKey": {...}}, binary fields in base64url).
type passkeyChallenge struct {
	Handle    string `json:"handle,omitempty"`
	Options   any    `json:"options"`
	ExpiresAt string `json:"expiresAt"`
}

// beginLogin starts the passkey step of a sign-in (or a
// re-authentication) of op; ok false when op has no passkey or passkeys
// are not available for r.
func (s *Service) beginAssertion(ctx context.Context, r *http.Request, op store.Operator, kind ceremonyKind, key string) (passkeyChallenge, bool, error) {
	user, err := s.passkeyUser(ctx, op)
	if err != nil {
		return passkeyChallenge{}, false, err
	}
	if len(user.creds) == 0 {
		return passkeyChallenge{}, false, nil
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return passkeyChallenge{}, false, nil
	}
	assertion, data, err := rp.BeginLogin(user, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return passkeyChallenge{}, false, fmt.Errorf("begin passkey assertion: %w", err)
	}
	exp := s.now().Add(webauthnTimeout(s.settings().WebAuthn))
	c := ceremony{kind: kind, operatorID: op.ID, data: *data, rp: rp, expires: exp}
	if kind == ceremonyReauth {
		c.sessionID = strings.TrimPrefix(key, string(ceremonyReauth)+":")
	}
	if !s.ceremonies.put(key, c, s.now()) {
		return passkeyChallenge{}, false, errors.New("begin passkey assertion: too many ceremonies waiting")
	}
	return passkeyChallenge{Options: assertion, ExpiresAt: ts(exp)}, true, nil
}

// finishAssertion verifies an assertion for ceremony c of op, then
// records its signature counter (which must increase). reason is what
// was wrong, for the audit log; "" on success.
func (s *Service) finishAssertion(ctx context.Context, r *http.Request, c ceremony, op store.Operator, raw []byte) (reason string, err error) {
	if !s.now().Before(c.expires) {
		return "expired challenge", nil
	}
	user, err := s.passkeyUser(ctx, op)
	if err != nil {
		return "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return "malformed assertion", nil
	}
	var cred *webauthn.Credential
	if c.kind == ceremonyPasswordless {
		cred, err = c.rp.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !bytes.Equal(userHandle, user.WebAuthnID()) {
				return nil, errors.New("the user handle is not the credential's operator")
			}
			return user, nil
		}, c.data, parsed)
	} else {
		cred, err = c.rp.ValidateLogin(user, c.data, parsed)
	}
	if err != nil {
		s.log.Info("passkey assertion refused", "operator", op.ID, "err", protocolDetail(err))
		return "assertion refused", nil
	}
	var stored store.WebAuthnCredential
	for _, sc := range user.creds {
		if bytes.Equal(sc.CredentialID, cred.ID) {
			stored = sc
		}
	}
	if stored.ID == "" {
		return "unknown passkey", nil
	}
	ok, err := s.st.UseWebAuthnCredential(ctx, op.ID, stored.ID, parsed.Response.AuthenticatorData.Counter, s.now())
	if err != nil {
		return "", err
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "mfa.passkey.clone", Target: "passkey:" + stored.ID,
			Outcome: audit.Denied, Client: s.client(r), Detail: map[string]string{"stored_count": fmt.Sprint(stored.SignCount),
				"presented_count": fmt.Sprint(parsed.Response.AuthenticatorData.Counter)}})
		s.log.Warn("passkey signature counter did not increase: a replayed assertion or a cloned authenticator", "operator", op.ID, "passkey", stored.ID)
		return "signature counter did not increase", nil
	}
	return "", nil
}

// protocolDetail is the library's reason, for the log (never a secret).
func protocolDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.DevInfo != "" {
			return pe.Type + ": " + pe.Details + " (" + pe.DevInfo + ")"
		}
		return pe.Type + ": " + pe.Details
	}
	return err.Error()
}

// mfaPasskey answers the password step of a sign-in of op, who has
// passkeys: 401 mfa_required with a passkey challenge and the one-time
// handle for POST /session/passkey. ok false: no passkey usable here
// (the caller goes on as for TOTP).
func (s *Service) mfaPasskey(ctx context.Context, w http.ResponseWriter, r *http.Request, op store.Operator) (bool, error) {
	handle := passkeyLoginPrefix + randomString(32)
	ch, ok, err := s.beginAssertion(ctx, r, op, ceremonyLogin, string(ceremonyLogin)+":"+hex.EncodeToString(hashOf(handle)))
	if err != nil || !ok {
		return false, err
	}
	ch.Handle = handle
	// The password was right; the sign-in is not done yet (not a
	// session.login success, which SIEMs count).
	s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.mfa_challenge", Target: "operator:" + op.ID, Outcome: audit.Success,
		Client: s.client(r), Detail: map[string]string{"method": "passkey"}})
	admin.WriteJSON(w, http.StatusUnauthorized, mfaPasskeyBody{Error: admin.ErrorDetail{Code: admin.CodeMFARequired,
		Message: "confirm with your passkey (or enter the current 6-digit code from your authenticator app, or a recovery code)"}, Passkey: ch})
	return true, nil
}

type mfaPasskeyBody struct {
	Error   admin.ErrorDetail `json:"error"`
	Passkey passkeyChallenge  `json:"passkey"`
}

type passkeyLoginRequest struct {
	Handle     string          `json:"handle"`
	Credential json.RawMessage `json:"credential"`
}

// loginPasskey is POST /session/passkey: the passkey step of a sign-in.
func (s *Service) loginPasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req passkeyLoginRequest
	if !decode(w, r, &req) {
		return
	}
	if !strings.HasPrefix(req.Handle, passkeyLoginPrefix) || len(req.Credential) == 0 {
		badRequest(w, "send handle (from the mfa_required answer of POST /admin/v1/session) and credential (the passkey's answer)")
		return
	}
	client := s.client(r)
	adm, wait, ok := s.guesses.Admit(ctx, s.addrKey(r))
	if !ok {
		tooMany(w, wait, "too many failed sign-ins from your address: wait and try again")
		return
	}
	key := string(ceremonyLogin) + ":" + hex.EncodeToString(hashOf(req.Handle))
	c, found := s.ceremonies.take(key)
	if !found {
		c, found = s.anonymous.take(key)
	}
	if found && c.kind == ceremonyPasswordless {
		// The operator is the credential's: found from the assertion
		// (verified below against that operator's passkeys).
		c.operatorID = ""
		if parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential); err == nil {
			if sc, err := s.st.WebAuthnCredentialByCredentialID(ctx, parsed.RawID); err == nil {
				c.operatorID = sc.OperatorID
			}
		}
		found = c.operatorID != "" && s.settings().WebAuthn.Passwordless
	}
	if !found || (c.kind != ceremonyLogin && c.kind != ceremonyPasswordless) || !s.now().Before(c.expires) {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.login", Outcome: audit.Failure, Client: client,
			Detail: map[string]string{"reason": "unknown, used or expired passkey challenge", "mfa": "passkey"}})
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed sign-ins from your address: wait and try again")
			return
		}
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "this sign-in expired or was already used: sign in again with your name and password")
		return
	}
	op, err := s.st.GetOperator(ctx, c.operatorID)
	if err != nil || op.Disabled || !op.TOTPConfirmed || op.PasswordHash == "" {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.internalError(w, "sign in", err)
			return
		}
		s.loginFailed(ctx, w, r, adm, op, false, "operator gone or disabled", admin.CodeUnauthenticated, msgBadCredentials)
		return
	}
	if s.now().Before(op.LockedUntil) {
		tooMany(w, op.LockedUntil.Sub(s.now()), "this account is locked after too many failed sign-ins: wait and try again, or ask an owner to unlock it")
		return
	}
	reason, err := s.finishAssertion(ctx, r, c, op, req.Credential)
	if err != nil {
		s.internalError(w, "sign in", err)
		return
	}
	if reason != "" {
		s.loginFailed(ctx, w, r, adm, op, true, "bad passkey: "+reason, admin.CodeUnauthenticated,
			"the passkey was not accepted: sign in again with your name and password")
		return
	}
	detail := map[string]string{"mfa": "passkey"}
	if c.kind == ceremonyPasswordless {
		detail["passwordless"] = "true"
	}
	s.completeLogin(ctx, w, r, adm, op, detail)
}

// beginPasswordless is POST /session/passkey/begin: a sign-in with a
// passkey alone (operators.webauthn.passwordless). The options list no
// credential: the browser offers the operator's discoverable passkeys
// for this site. The answer's handle goes with the assertion to POST
// /session/passkey.
func (s *Service) beginPasswordless(w http.ResponseWriter, r *http.Request) {
	if !decodeEmpty(w, r) {
		return
	}
	if !s.settings().WebAuthn.Passwordless {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "sign-in with a passkey alone is off (operators.webauthn.passwordless): sign in with your name and password")
		return
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, err.Error())
		return
	}
	assertion, data, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		s.internalError(w, "begin passkey sign-in", err)
		return
	}
	handle := passkeyLoginPrefix + randomString(32)
	exp := s.now().Add(webauthnTimeout(s.settings().WebAuthn))
	if !s.anonymous.put(string(ceremonyLogin)+":"+hex.EncodeToString(hashOf(handle)), ceremony{kind: ceremonyPasswordless, data: *data, rp: rp, expires: exp}, s.now()) {
		admin.WriteError(w, http.StatusServiceUnavailable, admin.CodeInternal, "too many passkey sign-ins are waiting: try again in a few minutes")
		return
	}
	admin.WriteJSON(w, http.StatusOK, passkeyChallenge{Handle: handle, Options: assertion, ExpiresAt: ts(exp)})
}

// --- re-authentication ---

// sessionOperator loads the console operator behind p (not a token, a
// password operator).
func (s *Service) passkeyOperator(w http.ResponseWriter, r *http.Request, p admin.Principal, what string) (store.Operator, bool) {
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "API tokens cannot use passkeys: sign in to the console")
		return store.Operator{}, false
	}
	op, err := s.st.GetOperator(r.Context(), p.ID)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return op, false
	}
	if op.PasswordHash == "" {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "passkeys are a second factor after the password: single sign-on operators "+what+" through their provider")
		return op, false
	}
	return op, true
}

// reauthPasskeyOperator is the operator re-authenticating with a passkey,
// unless it may not (no passkeys for it, locked): then the answer is
// written and ok is false.
func (s *Service) reauthPasskeyOperator(w http.ResponseWriter, r *http.Request, p admin.Principal) (store.Operator, bool) {
	op, ok := s.passkeyOperator(w, r, p, "re-authenticate")
	if !ok {
		return op, false
	}
	if s.now().Before(op.LockedUntil) {
		tooMany(w, op.LockedUntil.Sub(s.now()), "this account is locked after too many failed attempts: wait and try again")
		return op, false
	}
	return op, true
}

func (s *Service) reauthPasskeyBegin(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if !decodeEmpty(w, r) {
		return
	}
	op, ok := s.reauthPasskeyOperator(w, r, p)
	if !ok {
		return
	}
	if _, err := s.relyingParty(r); err != nil {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, err.Error())
		return
	}
	ch, ok, err := s.beginAssertion(ctx, r, op, ceremonyReauth, string(ceremonyReauth)+":"+p.SessionID)
	if err != nil {
		s.internalError(w, "re-authenticate", err)
		return
	}
	if !ok {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "you have no passkey: re-authenticate with your password and code (POST /admin/v1/session/reauth)")
		return
	}
	admin.WriteJSON(w, http.StatusOK, ch)
}

type passkeyFinishRequest struct {
	Credential json.RawMessage `json:"credential"`
}

func (s *Service) reauthPasskeyFinish(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	var req passkeyFinishRequest
	if !decode(w, r, &req) {
		return
	}
	op, ok := s.reauthPasskeyOperator(w, r, p)
	if !ok {
		return
	}
	c, found := s.ceremonies.take(string(ceremonyReauth) + ":" + p.SessionID)
	if !found || c.operatorID != op.ID || c.sessionID != p.SessionID {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "session.reauth", Target: "operator:" + op.ID,
			Outcome: audit.Failure, Client: p.Client, Detail: map[string]string{"mfa": "passkey", "reason": "unknown or used passkey challenge"}})
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "no passkey challenge is waiting, or it was used: begin again (POST /admin/v1/session/reauth/passkey/begin)")
		return
	}
	reason, err := s.finishAssertion(ctx, r, c, op, req.Credential)
	if err != nil {
		s.internalError(w, "re-authenticate", err)
		return
	}
	if reason != "" {
		s.log.Info("passkey re-authentication refused", "operator", op.ID, "reason", reason)
		s.reauthFailed(ctx, w, r, nil, op, admin.CodeUnauthenticated, "the passkey was not accepted: try again")
		return
	}
	h, err := hex.DecodeString(p.SessionID)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	now := s.now()
	if err := s.st.ReauthAdminSession(ctx, h, now); err != nil {
		s.internalError(w, "re-authenticate", err)
		return
	}
	_ = s.st.LoginSucceeded(ctx, op.ID)
	s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "session.reauth", Target: "operator:" + op.ID, Outcome: audit.Success,
		Client: p.Client, Detail: map[string]string{"mfa": "passkey"}})
	admin.WriteJSON(w, http.StatusOK, map[string]string{"reauthUntil": ts(now.Add(time.Duration(s.settings().ReauthWindow)))})
}

// --- me/passkeys ---

type passkeyView struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	AAGUID         string   `json:"aaguid"`
	Transports     []string `json:"transports"`
	BackupEligible bool     `json:"backupEligible"`
	BackupState    bool     `json:"backupState"`
	CreatedAt      string   `json:"createdAt"`
	LastUsedAt     string   `json:"lastUsedAt"`
}

func viewPasskey(c store.WebAuthnCredential) passkeyView {
	v := passkeyView{ID: c.ID, Name: c.Name, Transports: nonNil(c.Transports), BackupEligible: c.BackupEligible, BackupState: c.BackupState,
		CreatedAt: ts(c.CreatedAt), LastUsedAt: ts(c.LastUsedAt)}
	if u, err := uuid.FromBytes(c.AAGUID); err == nil {
		v.AAGUID = u.String()
	}
	return v
}

func (s *Service) listPasskeys(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "API tokens have no passkeys: sign in to the console")
		return
	}
	creds, err := s.st.ListWebAuthnCredentials(r.Context(), p.ID)
	if err != nil {
		s.internalError(w, "list passkeys", err)
		return
	}
	out := make([]passkeyView, 0, len(creds))
	for _, c := range creds {
		out = append(out, viewPasskey(c))
	}
	_, rpErr := s.relyingParty(r)
	admin.WriteJSON(w, http.StatusOK, map[string]any{"passkeys": out, "available": rpErr == nil})
}

func (s *Service) registerPasskeyBegin(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if !decodeEmpty(w, r) {
		return
	}
	op, ok := s.passkeyOperator(w, r, p, "sign in")
	if !ok {
		return
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, err.Error())
		return
	}
	user, ok := s.registeringUser(w, ctx, op)
	if !ok {
		return
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range user.WebAuthnCredentials() {
		exclude = append(exclude, c.Descriptor())
	}
	creation, data, err := rp.BeginRegistration(user, webauthn.WithExclusions(exclude))
	if err != nil {
		s.internalError(w, "register passkey", err)
		return
	}
	exp := s.now().Add(webauthnTimeout(s.settings().WebAuthn))
	if !s.ceremonies.put(string(ceremonyRegister)+":"+p.SessionID, ceremony{kind: ceremonyRegister, operatorID: op.ID, sessionID: p.SessionID,
		data: *data, rp: rp, expires: exp}, s.now()) {
		admin.WriteError(w, http.StatusServiceUnavailable, admin.CodeInternal, "too many passkey ceremonies are waiting: try again in a few minutes")
		return
	}
	admin.WriteJSON(w, http.StatusOK, passkeyChallenge{Options: creation, ExpiresAt: ts(exp)})
}

type passkeyRegisterRequest struct {
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

func (s *Service) registerPasskeyFinish(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	var req passkeyRegisterRequest
	if !decode(w, r, &req) {
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		name = "passkey"
	}
	if utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		badRequest(w, "the passkey's name must be at most 64 characters, without control characters")
		return
	}
	op, ok := s.passkeyOperator(w, r, p, "sign in")
	if !ok {
		return
	}
	fail := func(reason string) {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "mfa.passkey.register", Target: "operator:" + op.ID,
			Outcome: audit.Failure, Client: p.Client, Detail: map[string]string{"reason": reason}})
	}
	c, found := s.ceremonies.take(string(ceremonyRegister) + ":" + p.SessionID)
	if !found || c.operatorID != op.ID || c.sessionID != p.SessionID || !s.now().Before(c.expires) {
		fail("unknown, used or expired challenge")
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "no passkey registration is waiting, or it expired or was used: begin again (POST /admin/v1/me/passkeys/begin)")
		return
	}
	user, ok := s.registeringUser(w, ctx, op)
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		fail("malformed credential")
		badRequest(w, "the passkey's answer could not be read: try again")
		return
	}
	cred, err := c.rp.CreateCredential(user, c.data, parsed)
	if err != nil {
		s.log.Info("passkey registration refused", "operator", op.ID, "err", protocolDetail(err))
		fail("registration refused")
		badRequest(w, "the passkey was not accepted (wrong site, expired challenge, or no user verification): try again")
		return
	}
	tr := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		tr = append(tr, string(t))
	}
	sc := store.WebAuthnCredential{ID: newID("pk_"), OperatorID: op.ID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
		SignCount: cred.Authenticator.SignCount, AAGUID: cred.Authenticator.AAGUID, Transports: tr, AttestationFormat: cred.AttestationFormat,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, Name: name, CreatedAt: s.now()}
	switch err := s.st.AddWebAuthnCredential(ctx, sc); {
	case errors.Is(err, store.ErrExists):
		fail("credential already registered")
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "this passkey is already registered")
		return
	case err != nil:
		s.internalError(w, "register passkey", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "mfa.passkey.register", Target: "passkey:" + sc.ID, Outcome: audit.Success,
		Client: p.Client, Detail: map[string]string{"operator": op.ID, "name": name, "aaguid": viewPasskey(sc).AAGUID}})
	admin.WriteJSON(w, http.StatusCreated, map[string]passkeyView{"passkey": viewPasskey(sc)})
}

func (s *Service) deletePasskey(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "API tokens have no passkeys: sign in to the console")
		return
	}
	id := r.PathValue("passkey")
	switch err := s.st.DeleteWebAuthnCredential(ctx, p.ID, id); {
	case errors.Is(err, store.ErrNotFound):
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, fmt.Sprintf("you have no passkey %q", id))
		return
	case err != nil:
		s.internalError(w, "remove passkey", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "mfa.passkey.remove", Target: "passkey:" + id, Outcome: audit.Success,
		Client: p.Client, Detail: map[string]string{"operator": p.ID}})
	w.WriteHeader(http.StatusNoContent)
}

// decodeEmpty accepts no body or an empty JSON object.
func decodeEmpty(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 {
		return true
	}
	var req emptyRequest
	return decode(w, r, &req)
}

// --- an owner's view of other operators' passkeys ---

// operatorPasskeys is GET /operators/{operator}/passkeys: an operator's
// passkeys (for an owner or an auditor; the middleware checks the role).
func (s *Service) operatorPasskeys(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	id := r.PathValue("operator")
	if _, err := s.st.GetOperator(ctx, id); errors.Is(err, store.ErrNotFound) {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such operator")
		return
	} else if err != nil {
		s.internalError(w, "list passkeys", err)
		return
	}
	creds, err := s.st.ListWebAuthnCredentials(ctx, id)
	if err != nil {
		s.internalError(w, "list passkeys", err)
		return
	}
	out := make([]passkeyView, 0, len(creds))
	for _, c := range creds {
		out = append(out, viewPasskey(c))
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"passkeys": out})
}

// deleteOperatorPasskey is DELETE /operators/{operator}/passkeys/{passkey}:
// an owner removes another operator's passkey (a lost or stolen
// authenticator), within the owner's own rights.
func (s *Service) deleteOperatorPasskey(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	id, pk := r.PathValue("operator"), r.PathValue("passkey")
	target, err := s.st.GetOperator(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such operator")
		return
	} else if err != nil {
		s.internalError(w, "remove passkey", err)
		return
	}
	if err := grantable(p, admin.Role(target.Role), target.Bots); err != nil {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "you cannot change an operator with more rights than yours")
		return
	}
	switch err := s.st.DeleteWebAuthnCredential(ctx, id, pk); {
	case errors.Is(err, store.ErrNotFound):
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, fmt.Sprintf("operator %s has no passkey %q", id, pk))
		return
	case err != nil:
		s.internalError(w, "remove passkey", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "mfa.passkey.remove", Target: "passkey:" + pk, Outcome: audit.Success,
		Client: p.Client, Detail: map[string]string{"operator": id, "by": "owner"}})
	w.WriteHeader(http.StatusNoContent)
}
