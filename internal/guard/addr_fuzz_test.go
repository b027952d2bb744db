package guard

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzClientAddr: X-Forwarded-For is outside input. Whatever it holds,
// the client address is the TCP peer or one of the header's entries; a
// peer that is not a trusted proxy is always the answer; and an entry is
// believed only if every entry right of it (and the peer) is a trusted
// proxy, so a client can never pick its own address by writing more
// entries to the left.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:443", "203.0.113.7")
	f.Add("10.0.0.1:443", "198.51.100.1, 203.0.113.7, 10.0.0.2")
	f.Add("10.0.0.1:443", "1.2.3.4,  ,10.0.0.9")
	f.Add("192.0.2.1:80", "10.0.0.3")
	f.Add("[::ffff:10.0.0.1]:443", "[2001:db8::1]:1234, unknown")
	f.Add("10.0.0.1:443", "fe80::1%eth0, 10.0.0.2:99")
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "2001:db8:ffff::/48"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := proxies.ClientAddr(r)
		peer := parseHost(remote)
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("peer %q is unparseable but the client is %v", remote, got)
			}
			return
		}
		if !proxies.Trusted(peer) {
			if got != peer {
				t.Fatalf("untrusted peer %v: client = %v, want the peer", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		entries := forwardedFor([]string{xff})
		// got must be an entry, and every entry right of its last
		// occurrence must be a valid, trusted proxy.
		for i := len(entries) - 1; i >= 0; i-- {
			a := parseHost(entries[i])
			if a == got {
				return
			}
			if !a.IsValid() || !proxies.Trusted(a) {
				t.Fatalf("client %v was believed past %q (entries %q)", got, entries[i], entries)
			}
		}
		t.Fatalf("client %v is neither the peer nor an entry of %q", got, strings.TrimSpace(xff))
	})
}
