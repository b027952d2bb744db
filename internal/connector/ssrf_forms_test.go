package connector

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// IPv6 spellings of internal IPv4 addresses, and IPv6 ranges that are
// internal themselves, must be refused like the addresses they stand for;
// an embedded public IPv4 decides the other way. One case per form.
func TestCheckEndpointAddrIPv6Forms(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}
	cases := []struct {
		form, addr string
		accepted   bool
	}{
		// IPv4-compatible ::a.b.c.d (deprecated, RFC 4291 2.5.5.1).
		{"ipv4-compatible private", "::10.1.2.3", false},
		{"ipv4-compatible metadata", "::169.254.169.254", false},
		{"ipv4-compatible loopback", "::127.0.0.1", false}, // not loopback on the wire
		{"ipv4-compatible public", "::203.0.113.10", true},
		{"ipv4-compatible allowed network", "::10.20.3.4", true},
		// 6to4 2002:V4ADDR::/48 (RFC 3056).
		{"6to4 private", "2002:0a01:0203::1", false},
		{"6to4 link-local metadata", "2002:a9fe:a9fe::1", false},
		{"6to4 loopback", "2002:7f00:0001::1", false},
		{"6to4 cgnat", "2002:6440:0001::1", false},
		{"6to4 public", "2002:cb00:710a::1", true},
		// Teredo 2001:0000::/32 (RFC 4380): refused whatever it embeds.
		{"teredo private client", "2001:0:4136:e378:8000:63bf:f5fe:fdfc", false},
		{"teredo public", "2001:0:cb00:710a::1", false},
		// NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): decided by the IPv4.
		{"nat64 private", "64:ff9b::10.1.2.3", false},
		{"nat64 metadata", "64:ff9b::169.254.169.254", false},
		{"nat64 public", "64:ff9b::203.0.113.10", true},
		// Local-use NAT64 64:ff9b:1::/48 (RFC 8215): the IPv4's position
		// depends on the operator's prefix length, so it is refused.
		{"local nat64", "64:ff9b:1::a01:203", false},
		{"local nat64 public-looking", "64:ff9b:1:cb00:710a::", false},
		// Site-local fec0::/10 (deprecated, RFC 3879).
		{"site-local", "fec0::1", false},
		{"site-local high", "feff::1", false},
		// SIIT IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
		{"siit private", "::ffff:0:10.1.2.3", false},
		{"siit metadata", "::ffff:0:169.254.169.254", false},
		{"siit public", "::ffff:0:203.0.113.10", true},
		// Still fine: plain public IPv6 and the documentation prefix.
		{"public ipv6", "2606:4700::1111", true},
		{"documentation ipv6", "2001:db8::1", true},
	}
	for _, c := range cases {
		t.Run(c.form, func(t *testing.T) {
			err := CheckEndpointAddr(netip.MustParseAddr(c.addr), allow)
			if (err == nil) != c.accepted {
				t.Fatalf("%s: err = %v, want accepted=%v", c.addr, err, c.accepted)
			}
			if err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("%s: %v is not ErrForbiddenAddress", c.addr, err)
			}
		})
	}
}

// The dialer applies the same rule: IPv6 spellings never get a connection.
func TestBotClientRefusesIPv6Forms(t *testing.T) {
	c := NewBotClient(2*time.Second, nil)
	for _, u := range []string{
		"https://[::a9fe:a9fe]/", "https://[2002:a9fe:a9fe::1]/", "https://[2001:0:4136:e378:8000:63bf:f5fe:fdfc]/",
		"https://[64:ff9b::a01:203]/", "https://[64:ff9b:1::a01:203]/", "https://[fec0::1]/", "https://[::ffff:0:a01:203]/",
	} {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", u, nil)
		_, err := c.Do(req)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
}

// stubResolver answers from a table; DNS itself cannot run in tests.
type stubResolver map[string][]netip.Addr

func (s stubResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := s[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Registration applies the delivery rule to every address an endpoint's
// host resolves to; a literal address is checked directly.
func TestCheckEndpoint(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}
	r := stubResolver{
		"bot.example.com":    {netip.MustParseAddr("203.0.113.10")},
		"mixed.example.com":  {netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("10.1.2.3")},
		"meta.example.com":   {netip.MustParseAddr("fd00:ec2::254")},
		"inside.example.com": {netip.MustParseAddr("10.20.1.1")},
		"localhost":          {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	}
	for endpoint, want := range map[string]error{
		"https://bot.example.com/api/messages":         nil,
		"https://inside.example.com/api/messages":      nil, // allowed network
		"http://localhost:3978/api/messages":           nil,
		"http://127.0.0.1:3978/api/messages":           nil,
		"https://[2606:4700::1111]/api/messages":       nil,
		"https://mixed.example.com/api/messages":       ErrForbiddenAddress, // one internal address is enough
		"https://meta.example.com/api/messages":        ErrForbiddenAddress,
		"http://169.254.169.254/":                      ErrForbiddenAddress,
		"https://10.0.0.5/":                            ErrForbiddenAddress,
		"https://[fd00:ec2::254]/":                     ErrForbiddenAddress,
		"https://[::ffff:10.0.0.1]/":                   ErrForbiddenAddress,
		"https://[2002:a9fe:a9fe::1]/":                 ErrForbiddenAddress,
		"https://nowhere.example.com/api/messages":     ErrUnresolvedHost,
		"https://bot.example.com:8443/x?code=k3y#frag": nil,
	} {
		err := CheckEndpoint(context.Background(), endpoint, allow, r)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", endpoint, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "k3y") {
			t.Errorf("%s: the error repeats the query: %v", endpoint, err)
		}
	}
}
