package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/store"
)

// NamePattern is what bot and site names may hold: no space first or
// last (" Z " beside "z" read as one name, and "   " as none).
var NamePattern = regexp.MustCompile(`^[\p{L}\p{N}._'-](?:[\p{L}\p{N} ._'-]{0,62}[\p{L}\p{N}._'-])?$`)

// NameRule says what NamePattern accepts.
const NameRule = "1-64 letters, digits, spaces or ._'-, not starting or ending with a space"

// errName is the refusal of a bad name.
var errName = errors.New("--name must be " + NameRule)

func checkName(name string) error {
	if !NamePattern.MatchString(name) {
		return &Error{Kind: KindInvalid, Err: errName, Public: "name must be " + NameRule}
	}
	return nil
}

// NewAppID is a bot's app id: a random UUID, the shape the SDKs expect.
func NewAppID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random app id: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PublicURL picks Parley's public base URL for a bot's settings: the one
// given, else the configured one; never a guessed one.
func PublicURL(given, configured string) (string, error) {
	u := given
	if u == "" {
		u = configured
	}
	if u == "" {
		return "", errors.New("no public URL for the bot's settings: give Parley's public base URL (publicUrl), or configure public_url; nothing was changed")
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
		return "", fmt.Errorf("public URL %q must be a base URL such as https://chat.example.com", u)
	}
	return strings.TrimRight(u, "/"), nil
}

// NormalizeOrigins checks and normalizes trusted origins: each must be
// exactly scheme://host[:port] (http or https; no path other than a
// trailing "/", no query, fragment or user info), written as a browser
// sends it in the Origin header. Wildcards are refused: origins are
// matched exactly, so "*" or "https://*.example.com" would be stored and
// never match. Repeats are dropped.
func NormalizeOrigins(in []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, o := range in {
		if strings.Contains(o, "*") {
			return nil, invalidf("--origin %q: wildcards are not supported (origins match exactly); list each origin, e.g. --origin https://www.example.com --origin https://app.example.com", o)
		}
		n, err := directline.NormalizeOrigin(o)
		if err != nil {
			return nil, invalidf("--origin: %w; e.g. --origin https://www.example.com", err)
		}
		u, err := url.Parse(n)
		if err != nil || !validOriginHost(u.Hostname()) {
			return nil, invalidf("--origin %q: %q is not a host name or IP address; e.g. --origin https://www.example.com", o, u.Hostname())
		}
		if p := u.Port(); p != "" {
			if v, err := strconv.Atoi(p); err != nil || v < 1 || v > 65535 {
				return nil, invalidf("--origin %q: port %q is not 1-65535", o, p)
			}
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validOriginHost accepts an IP address or a DNS name of letters, digits
// and hyphens (as browsers send it: IDNs in their xn-- form).
func validOriginHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

var endpointHost = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$`)

// CheckEndpointHost refuses an endpoint whose host is no host name or IP
// address, a wildcard above all: the endpoint is the one URL Parley posts
// to, and "https://*.example.com/api" would be stored and never reached.
func CheckEndpointHost(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil // ValidEndpoint says what is wrong
	}
	h := u.Hostname()
	if strings.Contains(h, "*") {
		return invalidf("--endpoint %q: wildcards are not endpoints; give the bot's exact messaging URL, e.g. https://bot.example.com/api/messages", connector.RedactURL(endpoint))
	}
	if _, err := netip.ParseAddr(h); err == nil || h == "" || endpointHost.MatchString(h) {
		return nil
	}
	return invalidf("--endpoint %q: %q is not a host name or IP address; e.g. https://bot.example.com/api/messages", connector.RedactURL(endpoint), h)
}

// ValidEndpoint checks a bot messaging endpoint: absolute http(s), plain
// http and no authentication on loopback only.
func ValidEndpoint(s string, insecure bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Fragment != "" {
		return invalidf("--endpoint %q must be an absolute http(s) URL without user info", connector.RedactURL(s))
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return invalidf("--endpoint %q: plain http is only allowed for loopback bots", connector.RedactURL(s))
	}
	if insecure && !IsLoopbackHost(u.Hostname()) {
		return invalidf("--insecure-no-auth is only allowed for bots on loopback, not %q", u.Hostname())
	}
	return nil
}

// IsLoopbackHost reports whether h is localhost or a loopback address.
func IsLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// CheckDeliveryTimeout validates a bot's delivery timeout (zero: the
// default).
func CheckDeliveryTimeout(d time.Duration) error {
	if d != 0 && (d < time.Second || d > connector.MaxDeliveryTimeout) {
		return invalidf("--delivery-timeout %v: give a duration from 1s to %v (e.g. 60s), or leave it out for the default", d, connector.MaxDeliveryTimeout)
	}
	return nil
}

// checkEndpoint is the SSRF rule at registration: the same address rule
// as delivery, on every address the host resolves to now. A host that
// does not resolve yet is accepted with a warning.
func (s *Service) checkEndpoint(ctx context.Context, endpoint string) (string, error) {
	if s.d.CheckEndpoint != nil {
		w, err := s.d.CheckEndpoint(ctx, endpoint)
		if err != nil {
			return "", invalid(err)
		}
		return w, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := s.d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	err := connector.CheckEndpoint(ctx, endpoint, s.d.Config.AllowedPrivateNetworks(), r)
	switch {
	case errors.Is(err, connector.ErrUnresolvedHost):
		return fmt.Sprintf("WARNING: %v. Parley could not check where this endpoint points; it checks every address it connects to at delivery and refuses internal ones.", err), nil
	case err != nil:
		return "", invalidf("--endpoint refused: %w", err)
	}
	return "", nil
}

// NameTakenHint says what to do about a taken name.
func NameTakenHint(err error, kind string) error {
	if !errors.Is(err, store.ErrNameTaken) {
		return err
	}
	public := fmt.Sprintf("the %s name is already taken (names are compared ignoring case): choose another", kind)
	var taken *store.NameTakenError
	if errors.As(err, &taken) {
		err = taken
		// Never the other object's id: it may be another team's.
		public = fmt.Sprintf("%s name %q is already taken (names are compared ignoring case): choose another", kind, taken.Name)
	}
	return &Error{Kind: KindConflict, Err: fmt.Errorf("--name: %w (names are compared ignoring case); choose another --name, or use the existing %s", err, kind), Public: public}
}

// botNameFree refuses a bot name another bot (not self) has, compared
// with Unicode case folding (the store also refuses it, for ASCII).
func botNameFree(ctx context.Context, st store.Store, self, name string) error {
	bots, err := st.ListBots(ctx)
	if err != nil {
		return err
	}
	for _, b := range bots {
		if b.ID != self && strings.EqualFold(b.Name, name) {
			return NameTakenHint(&store.NameTakenError{Kind: "bot", Name: name, ExistingID: b.ID}, "bot")
		}
	}
	return nil
}

// siteNameFree refuses a site name another site (not self) of the same
// bot has.
func siteNameFree(ctx context.Context, st store.Store, botID, self, name string) error {
	sites, err := st.ListSites(ctx, botID)
	if err != nil {
		return err
	}
	for _, s := range sites {
		if s.ID != self && strings.EqualFold(s.Name, name) {
			return NameTakenHint(&store.NameTakenError{Kind: "site", Name: name, ExistingID: s.ID}, "site")
		}
	}
	return nil
}
