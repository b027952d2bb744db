package connector

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestCheckEndpointAddr(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}
	cases := map[string]bool{ // address -> accepted
		"127.0.0.1":        true,
		"::1":              true,
		"203.0.113.10":     true,
		"2001:db8::1":      true,
		"10.20.3.4":        true, // explicitly allowed
		"10.1.2.3":         false,
		"172.16.0.1":       false,
		"192.168.1.1":      false,
		"169.254.169.254":  false, // cloud metadata
		"fd00:ec2::254":    false, // AWS metadata over IPv6
		"fe80::1":          false,
		"0.0.0.0":          false,
		"::":               false,
		"100.64.0.1":       false,
		"224.0.0.1":        false,
		"::ffff:10.1.2.3":  false, // IPv4-mapped private
		"::ffff:127.0.0.1": true,
	}
	for addr, want := range cases {
		err := CheckEndpointAddr(netip.MustParseAddr(addr), allow)
		if (err == nil) != want {
			t.Errorf("%s: err = %v, want accepted=%v", addr, err, want)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v is not ErrForbiddenAddress", addr, err)
		}
	}
}

// The dialer refuses internal addresses itself: a name or literal that
// lands on one never gets a connection, whatever the URL looks like.
func TestBotClientRefusesInternalAddresses(t *testing.T) {
	c := NewBotClient(2*time.Second, nil)
	for _, u := range []string{"https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/api/messages", "https://[fd00::1]/api/messages"} {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", u, nil)
		_, err := c.Do(req)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
}
