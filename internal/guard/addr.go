// Package guard holds Parley's abuse defenses: the client address behind
// trusted proxies, keyed rate limits, the token service's guess throttle,
// and authentication-failure telemetry.
package guard

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of trusted reverse proxies (CIDRs). The zero value
// trusts none: the client address is always the TCP peer.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses CIDRs (a bare address counts as a /32 or /128).
func ParseProxies(cidrs []string) (Proxies, error) {
	var p Proxies
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		pre, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return Proxies{}, fmt.Errorf("parse trusted proxy %q: not a CIDR such as 10.0.0.0/8", s)
			}
			a = a.Unmap().WithZone("")
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		if pre.Addr().Is4In6() {
			pre = netip.PrefixFrom(pre.Addr().Unmap(), max(pre.Bits()-96, 0))
		}
		p.prefixes = append(p.prefixes, pre.Masked())
	}
	return p, nil
}

// Trusted reports whether a is a trusted proxy.
func (p Proxies) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of the client that made r. When the TCP peer
// is a trusted proxy, X-Forwarded-For is read from the right (the entries
// the proxies appended), skipping trusted proxies; the first untrusted
// address is the client. Anything left of it was written by the client
// and is never believed. A malformed entry ends the walk: the nearest
// trusted hop is then the client (safe, if coarse). Without trusted
// proxies the header is ignored. IPv4-mapped IPv6 addresses are unmapped.
// The result is invalid only when RemoteAddr itself is unparseable.
func (p Proxies) ClientAddr(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || len(p.prefixes) == 0 || !p.Trusted(peer) {
		return peer
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHost(hops[i])
		if !a.IsValid() {
			return client
		}
		client = a
		if !p.Trusted(a) {
			return a
		}
	}
	return client
}

// forwardedFor splits the X-Forwarded-For header lines into entries, in
// order (several header lines are one list, RFC 9110 section 5.3).
func forwardedFor(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseHost parses "addr", "addr:port", "[v6]:port" or "[v6]"; zones are
// dropped and IPv4-mapped addresses unmapped. Invalid input gives the
// zero Addr.
func parseHost(s string) netip.Addr {
	if s == "" || len(s) > 64 {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// AddrKey is the rate-limit key of a client address: the address for
// IPv4, its /64 for IPv6. One host (a home router, a cloud VM) is usually
// given a whole /64 and can pick any address in it, so keying by the full
// address would let one attacker have 2^64 buckets.
func AddrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
