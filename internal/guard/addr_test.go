package guard

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		proxies Proxies
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies: the header is ignored", Proxies{}, "198.51.100.1:4000", []string{"203.0.113.7"}, "198.51.100.1"},
		{"untrusted peer: the header is ignored", proxies, "198.51.100.1:4000", []string{"203.0.113.7"}, "198.51.100.1"},
		{"trusted peer without header", proxies, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"one proxy", proxies, "10.1.2.3:4000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"a spoofed leftmost entry never wins", proxies, "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"a chain of trusted proxies is skipped", proxies, "10.1.2.3:4000", []string{"1.2.3.4, 203.0.113.7, 10.9.9.9, 192.0.2.9"}, "203.0.113.7"},
		{"several header lines are one list", proxies, "10.1.2.3:4000", []string{"1.2.3.4", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"},
		{"a malformed entry stops the walk at the nearest trusted hop", proxies, "10.1.2.3:4000", []string{"1.2.3.4, not-an-ip, 10.9.9.9"}, "10.9.9.9"},
		{"a malformed last entry gives the peer", proxies, "10.1.2.3:4000", []string{"1.2.3.4, <script>"}, "10.1.2.3"},
		{"an empty entry is malformed", proxies, "10.1.2.3:4000", []string{"1.2.3.4,"}, "10.1.2.3"},
		{"all trusted: the leftmost", proxies, "10.1.2.3:4000", []string{"10.5.5.5, 10.9.9.9"}, "10.5.5.5"},
		{"entries with ports", proxies, "10.1.2.3:4000", []string{"203.0.113.7:5555"}, "203.0.113.7"},
		{"bracketed IPv6 entry", proxies, "10.1.2.3:4000", []string{"[2001:db8:1::5]:443"}, "2001:db8:1::5"},
		{"IPv4-mapped entry is unmapped", proxies, "10.1.2.3:4000", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"IPv4-mapped peer is unmapped and trusted", proxies, "[::ffff:10.1.2.3]:4000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"IPv6 proxy", proxies, "[2001:db8:ffff::1]:4000", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"zone dropped", Proxies{}, "[fe80::1%eth0]:4000", nil, "fe80::1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := c.proxies.ClientAddr(r); got.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestParseProxiesRefusesGarbage(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0.0/8/1"} {
		if _, err := ParseProxies([]string{s}); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	p, err := ParseProxies([]string{"::ffff:10.0.0.0/104"})
	if err != nil || !p.Trusted(netip.MustParseAddr("10.200.0.1")) {
		t.Errorf("mapped prefix: %v %v", p, err)
	}
}

func TestAddrKey(t *testing.T) {
	cases := map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	}
	for in, want := range cases {
		if got := AddrKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("AddrKey(%s) = %s, want %s", in, got, want)
		}
	}
	if AddrKey(netip.Addr{}) != "invalid" {
		t.Error("invalid address key")
	}
}
