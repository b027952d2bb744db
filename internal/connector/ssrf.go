package connector

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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

// ErrForbiddenAddress refuses a bot endpoint on an internal address.
var ErrForbiddenAddress = errors.New("bot endpoint resolves to a private, link-local or otherwise internal address; allow it in bots.allow_private_networks if intended")

var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed an internal IPv4
}

// CheckEndpointAddr accepts loopback, public addresses, and addresses in
// allow; it refuses private (RFC 1918, ULA), link-local (including the
// 169.254.169.254 metadata service), multicast, unspecified and reserved
// ranges.
func CheckEndpointAddr(ip netip.Addr, allow []netip.Prefix) error {
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if ip.IsLoopback() {
		return nil
	}
	bad := ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() || !ip.IsValid()
	for _, p := range internalPrefixes {
		bad = bad || p.Contains(ip)
	}
	if bad {
		return fmt.Errorf("%w (%s)", ErrForbiddenAddress, ip)
	}
	return nil
}
