package connector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// NewBotClient is the HTTP client for bot calls: certificates verified
// (system roots), no redirects (a redirect could carry the channel token
// elsewhere), bounded timeouts, and a dialer that refuses private,
// link-local, metadata and other internal addresses unless they are in
// allow. The check runs on the address actually dialed, after DNS, so a
// name that resolves (or re-resolves) to an internal address is refused.
func NewBotClient(timeout time.Duration, allow []netip.Prefix) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("bot endpoint address %q: %w", host, err)
			}
			return CheckEndpointAddr(ip, allow)
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a proxy would dial for us and bypass the address check
	tr.DialContext = dialer.DialContext
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = timeout
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// forbiddenRule is what a refused address breaks and how to allow it.
const forbiddenRule = "private, link-local, metadata or otherwise internal address, which Parley does not connect to (SSRF protection); to allow it, add its network to bots.allow_private_networks"

// ErrForbiddenAddress refuses a bot endpoint on an internal address.
var ErrForbiddenAddress = errors.New("bot endpoint address is a " + forbiddenRule)

// forbiddenAddrError is ErrForbiddenAddress for one address.
type forbiddenAddrError struct{ ip netip.Addr }

func (e forbiddenAddrError) Error() string        { return e.ip.String() + " is a " + forbiddenRule }
func (e forbiddenAddrError) Is(target error) bool { return target == ErrForbiddenAddress }

// RefusedError is a delivery that Parley itself refused (the endpoint's
// address or scheme breaks its rules): the bot never saw the activity.
type RefusedError struct{ Reason error }

func (e *RefusedError) Error() string {
	return "Parley refused to connect to the bot's endpoint: " + e.Reason.Error()
}

func (e *RefusedError) Unwrap() error { return e.Reason }

// ParleyRefused marks the error for callers that do not import this
// package (they declare the one-method interface).
func (e *RefusedError) ParleyRefused() bool { return true }

var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated, RFC 3879)
	netip.MustParsePrefix("2001::/32"),      // Teredo (RFC 4380): tunnels to an IPv4 relay and client
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215): where the IPv4 sits depends on the prefix
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
}

// Prefixes whose addresses carry an IPv4 address that decides where the
// packets go: the IPv4 address is checked instead.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")           // ::a.b.c.d (deprecated, RFC 4291)
	siit           = netip.MustParsePrefix("::ffff:0:0:0/96") // ::ffff:0:a.b.c.d (RFC 2765)
	nat64          = netip.MustParsePrefix("64:ff9b::/96")    // a.b.c.d in the last 32 bits (RFC 6052)
	sixToFour      = netip.MustParsePrefix("2002::/16")       // 2002:AABB:CCDD::/48 (RFC 3056)
)

// CheckEndpointAddr accepts loopback, public addresses, and addresses in
// allow; it refuses private (RFC 1918, ULA), link-local (including the
// 169.254.169.254 metadata service), multicast, unspecified and reserved
// ranges, and the IPv6 ranges that are internal themselves (site-local,
// Teredo, local-use NAT64). An IPv6 address that embeds an IPv4 address
// (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4) is decided by the
// IPv4 address, except that an embedded loopback address is refused: only
// the real loopback forms reach this host.
func CheckEndpointAddr(ip netip.Addr, allow []netip.Prefix) error {
	ip = ip.Unmap()
	if err := checkAddr(ip, allow); err != nil {
		return forbiddenAddrError{ip}
	}
	return nil
}

var errInternal = errors.New("internal address")

func checkAddr(ip netip.Addr, allow []netip.Prefix) error {
	for _, p := range allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if ip.IsLoopback() {
		return nil
	}
	if v4, ok := embeddedIPv4(ip); ok {
		if v4.IsLoopback() {
			return errInternal
		}
		return checkAddr(v4, allow)
	}
	bad := ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() || !ip.IsValid()
	for _, p := range internalPrefixes {
		bad = bad || p.Contains(ip)
	}
	if bad {
		return errInternal
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for, if it
// is of a form that carries one. ip is already unmapped, and :: and ::1
// are handled before (unspecified and loopback).
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case ipv4Compatible.Contains(ip), siit.Contains(ip), nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrUnresolvedHost means an endpoint's host name does not resolve (yet):
// nothing could be checked at registration. Delivery checks every address
// it dials anyway, so a caller may accept the endpoint with a warning.
var ErrUnresolvedHost = errors.New("bot endpoint host does not resolve")

// CheckEndpoint applies the delivery rule (CheckEndpointAddr with the same
// allow list) before a bot is registered: a literal IP is checked
// directly, a name is resolved and every address it resolves to must
// pass. Errors name the host and the address, never the URL's path, query
// or userinfo.
func CheckEndpoint(ctx context.Context, endpoint string, allow []netip.Prefix, r Resolver) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return errors.New("bot endpoint is not an absolute URL with a host")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckEndpointAddr(ip, allow)
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		var dnsErr *net.DNSError
		reason := "no addresses"
		if errors.As(err, &dnsErr) {
			reason = dnsErr.Err
		} else if err != nil {
			reason = err.Error()
		}
		return fmt.Errorf("%w: %s: %s", ErrUnresolvedHost, host, reason)
	}
	for _, a := range addrs {
		if err := CheckEndpointAddr(a, allow); err != nil {
			return fmt.Errorf("%s resolves to %w", host, err)
		}
	}
	return nil
}
