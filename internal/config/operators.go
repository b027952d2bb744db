package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Operators configures operator identity (internal/operator): password
// hashing, MFA, sessions, lockout, API tokens and SSO (issue 13).
type Operators struct {
	// Argon2 are the argon2id parameters for new password hashes. Stored
	// hashes carry their own (PHC string), so these can change at any
	// time; a hash with older parameters is re-hashed at the next sign-in.
	Argon2 Argon2 `yaml:"argon2"`
	// SessionIdle signs a console session out after this long without a
	// request; SessionMax bounds a session whatever its activity.
	SessionIdle Duration `yaml:"session_idle"`
	SessionMax  Duration `yaml:"session_max"`
	// ReauthWindow is how long a re-authentication (POST
	// /admin/v1/session/reauth) allows the sensitive routes.
	ReauthWindow Duration `yaml:"reauth_window"`
	// MaxFailures failed sign-ins in a row lock an operator for
	// LockoutFor (the count resets on success).
	MaxFailures int      `yaml:"max_failures"`
	LockoutFor  Duration `yaml:"lockout_for"`
	// LoginRate limits the public routes (sign-in, enrollment, SSO) per
	// client address, e.g. "10/m burst 5".
	LoginRate Rate `yaml:"login_rate"`
	// RequestRate limits the admin API's requests per credential (an
	// operator's console sessions together, or one API token), e.g.
	// "600/m burst 300", and all of one operator's credentials together
	// to three times it; "off" for none. Every request the service answers appends an audit
	// entry, so without it one operator could grow the audit log as fast
	// as it can send requests.
	RequestRate Rate `yaml:"request_rate"`
	// EnrollmentTTL is how long an owner's bootstrap code (printed at
	// start while no owner exists) and a default invitation stay valid.
	EnrollmentTTL Duration `yaml:"enrollment_ttl"`
	// TokenTTL is an API token's default lifetime; TokenMaxTTL the
	// longest a creator may ask for.
	TokenTTL    Duration `yaml:"token_ttl"`
	TokenMaxTTL Duration `yaml:"token_max_ttl"`
	// SSO is the optional OpenID Connect sign-in.
	SSO SSO `yaml:"sso"`
	// WebAuthn configures passkeys as a second factor.
	WebAuthn WebAuthn `yaml:"webauthn"`
}

// WebAuthn configures operators' passkeys (a second factor in place of
// the TOTP code, and re-authentication). The relying party is the admin
// listener: RPID its host name, Origins the origins the console is
// opened at. Both empty: taken from each request, but only on a loopback
// admin listener opened as http://localhost:PORT (browsers refuse an IP
// address as RP ID); elsewhere passkeys are off until they are set.
type WebAuthn struct {
	// RPID is the relying party id: the console's host name (or a parent
	// domain of it), e.g. "admin.example.com". Passkeys are bound to it:
	// changing it makes every registered passkey unusable.
	RPID string `yaml:"rp_id"`
	// Origins are the console's origins, e.g. ["https://admin.example.com:9445"].
	Origins []string `yaml:"origins"`
	// Timeout bounds a ceremony (the browser's prompt); a challenge is
	// refused after it.
	Timeout Duration `yaml:"timeout"`
	// Passwordless lets an operator sign in with a passkey alone (a
	// discoverable credential with user verification: possession plus
	// PIN or biometric), without the password. Off by default.
	Passwordless bool `yaml:"passwordless"`
}

// Argon2 are argon2id parameters. The defaults are OWASP's Password
// Storage Cheat Sheet first option: m=47104 KiB (46 MiB), t=1, p=1.
type Argon2 struct {
	MemoryKiB   uint32 `yaml:"memory_kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
}

// SSO configures OpenID Connect sign-in for operators pre-registered
// with a subject (or e-mail).
type SSO struct {
	// Issuer enables SSO when set (discovery at Issuer/.well-known/...).
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// RedirectURL is this server's /admin/v1/sso/callback as the
	// provider knows it.
	RedirectURL string `yaml:"redirect_url"`
	// Match is "subject" (default) or "email" (then email_verified must
	// be true).
	Match string `yaml:"match"`
	// RequireAMR refuses an ID token whose amr holds none of these
	// (e.g. [mfa, otp, hwk]); RequireACR refuses one whose acr differs.
	RequireAMR []string `yaml:"require_amr"`
	RequireACR string   `yaml:"require_acr"`
	// Timeout bounds each call to the provider (discovery, the code
	// exchange, its keys): a provider that is down or hangs costs a
	// sign-in that long, then a 503 that says so.
	Timeout Duration `yaml:"timeout"`
}

// DefaultOperators is Operators before the file and environment apply.
func DefaultOperators() Operators {
	return Operators{
		Argon2:        Argon2{MemoryKiB: 47104, Iterations: 1, Parallelism: 1},
		SessionIdle:   Duration(15 * time.Minute),
		SessionMax:    Duration(8 * time.Hour),
		ReauthWindow:  Duration(5 * time.Minute),
		MaxFailures:   5,
		LockoutFor:    Duration(15 * time.Minute),
		LoginRate:     "10/m burst 10",
		RequestRate:   "600/m burst 300",
		EnrollmentTTL: Duration(24 * time.Hour),
		TokenTTL:      Duration(30 * 24 * time.Hour),
		TokenMaxTTL:   Duration(365 * 24 * time.Hour),
		SSO:           SSO{Match: "subject", Timeout: Duration(10 * time.Second)},
		WebAuthn:      WebAuthn{Timeout: Duration(5 * time.Minute)},
	}
}

func (o *Operators) applyEnv(env func(string) (string, bool)) {
	if v, ok := env("PARLEY_OPERATORS_SSO_CLIENT_SECRET"); ok {
		o.SSO.ClientSecret = Secret(v)
	}
}

// validate checks Operators.
func (o Operators) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("operators."+field+": "+format, a...))
	}
	if o.Argon2.MemoryKiB < 19456 || o.Argon2.MemoryKiB > 1<<20 {
		bad("argon2.memory_kib", "%d: use OWASP's minimum 19456 (19 MiB) to 1048576 (1 GiB)", o.Argon2.MemoryKiB)
	}
	if o.Argon2.Iterations < 1 || o.Argon2.Iterations > 20 {
		bad("argon2.iterations", "%d: use 1 to 20", o.Argon2.Iterations)
	}
	if o.Argon2.Parallelism < 1 {
		bad("argon2.parallelism", "use at least 1")
	}
	if d := time.Duration(o.SessionIdle); d < time.Minute || d > 24*time.Hour {
		bad("session_idle", "%s: use 1m to 24h", d)
	}
	if d := time.Duration(o.SessionMax); d < time.Duration(o.SessionIdle) || d > 7*24*time.Hour {
		bad("session_max", "%s: use session_idle to 168h", d)
	}
	if d := time.Duration(o.ReauthWindow); d < 30*time.Second || d > time.Hour {
		bad("reauth_window", "%s: use 30s to 1h", d)
	}
	if o.MaxFailures < 1 || o.MaxFailures > 100 {
		bad("max_failures", "%d: use 1 to 100", o.MaxFailures)
	}
	if d := time.Duration(o.LockoutFor); d < time.Minute || d > 24*time.Hour {
		bad("lockout_for", "%s: use 1m to 24h", d)
	}
	if _, _, err := o.LoginRate.Parse(); err != nil || o.LoginRate == "" || o.LoginRate == "off" {
		bad("login_rate", "%q: use a rate such as \"10/m burst 10\" (it cannot be off)", o.LoginRate)
	}
	if _, _, err := o.RequestRate.Parse(); err != nil || o.RequestRate == "" {
		bad("request_rate", "%q: use a rate such as \"600/m burst 300\", or \"off\"", o.RequestRate)
	}
	if d := time.Duration(o.EnrollmentTTL); d < time.Minute || d > 7*24*time.Hour {
		bad("enrollment_ttl", "%s: use 1m to 168h", d)
	}
	if d := time.Duration(o.TokenMaxTTL); d < time.Hour || d > 5*365*24*time.Hour {
		bad("token_max_ttl", "%s: use 1h to 5 years", d)
	}
	if d := time.Duration(o.TokenTTL); d < time.Hour || d > time.Duration(o.TokenMaxTTL) {
		bad("token_ttl", "%s: use 1h to token_max_ttl", d)
	}
	if o.SSO.Issuer != "" {
		if o.SSO.ClientID == "" || o.SSO.RedirectURL == "" {
			bad("sso", "issuer set: client_id and redirect_url are required too")
		}
		if o.SSO.Match != "subject" && o.SSO.Match != "email" {
			bad("sso.match", "%q: use subject or email", o.SSO.Match)
		}
	}
	if d := time.Duration(o.SSO.Timeout); d < time.Second || d > 2*time.Minute {
		bad("sso.timeout", "%s: use 1s to 2m", d)
	}
	errs = append(errs, o.WebAuthn.validate()...)
	return errs
}

// validate checks WebAuthn: an RP ID needs origins on it (https, or
// http on localhost), and origins need an RP ID.
func (w WebAuthn) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("operators.webauthn."+field+": "+format, a...))
	}
	if d := time.Duration(w.Timeout); d < 30*time.Second || d > 30*time.Minute {
		bad("timeout", "%s: use 30s to 30m", d)
	}
	if w.RPID == "" {
		if len(w.Origins) > 0 {
			bad("rp_id", "origins are set: set rp_id too (the console's host name)")
		}
		return errs
	}
	id := strings.ToLower(w.RPID)
	if net.ParseIP(strings.Trim(id, "[]")) != nil || strings.ContainsAny(id, ":/ ") || strings.Trim(id, ".") != id {
		bad("rp_id", "%q: use the console's host name without scheme or port (browsers refuse IP addresses)", w.RPID)
		return errs
	}
	if len(w.Origins) == 0 {
		bad("origins", "rp_id is set: list the console's origins, e.g. [\"https://%s:9445\"]", w.RPID)
	}
	for _, o := range w.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad("origins", "%q: use scheme://host[:port]", o)
			continue
		}
		h := strings.ToLower(u.Hostname())
		if h != id && !strings.HasSuffix(h, "."+id) {
			bad("origins", "%q: its host is not rp_id %q or a subdomain of it", o, w.RPID)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && (h == "localhost" || strings.HasSuffix(h, ".localhost"))) {
			bad("origins", "%q: use https (plain http only on localhost)", o)
		}
	}
	return errs
}
