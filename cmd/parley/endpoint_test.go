package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bot create refuses endpoints on internal addresses by the rule delivery
// uses, says which rule and how to allow one, and keeps loopback allowed.
func TestBotCreateRefusesInternalEndpoints(t *testing.T) {
	data := t.TempDir()
	for _, endpoint := range []string{
		"http://169.254.169.254/",
		"https://10.0.0.5/",
		"https://[fd00:ec2::254]/",
		"https://[::ffff:10.0.0.1]/",
		"https://[2002:a9fe:a9fe::1]/api/messages",
		"https://[64:ff9b::a00:5]/api/messages?code=k3y",
	} {
		out, stderr, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "x", "--endpoint", endpoint)
		if err == nil {
			t.Errorf("%s: accepted: %s", endpoint, out)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "bots.allow_private_networks") || !strings.Contains(msg, "internal address") {
			t.Errorf("%s: %q does not name the rule and how to allow it", endpoint, msg)
		}
		if strings.Contains(msg+stderr, "k3y") {
			t.Errorf("%s: the refusal repeats the endpoint's query: %q", endpoint, msg)
		}
	}
	out, _, _ := run(t, nil, "bot", "list", "--data", data)
	if out != "" {
		t.Fatalf("refused bots were stored: %q", out)
	}

	// Loopback stays allowed, by address and by name.
	for i, endpoint := range []string{"http://127.0.0.1:3978/api/messages", "http://localhost:3978/api/messages", "https://[::1]:3978/api/messages"} {
		if _, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "dev"+string(rune('0'+i)), "--endpoint", endpoint); err != nil {
			t.Errorf("%s: %v", endpoint, err)
		}
	}

	// A name that does not resolve yet (the bot is deployed after it gets
	// its app id) is accepted with a warning: delivery checks its addresses.
	if _, stderr, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "later", "--endpoint", "https://bot.invalid/api/messages"); err != nil || !strings.Contains(stderr, "does not resolve") {
		t.Errorf("unresolvable host: %v, warning %q", err, stderr)
	}

	// An allowed network is allowed at registration as at delivery.
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	yaml := "data_dir: " + data + "\nlisten: 127.0.0.1:8080\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\nbots:\n  allow_private_networks: [10.0.0.0/24]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, nil, "bot", "create", "--config", cfg, "--name", "inside", "--endpoint", "https://10.0.0.5/api/messages"); err != nil {
		t.Fatalf("endpoint in bots.allow_private_networks: %v", err)
	}
	if _, _, err := run(t, nil, "bot", "create", "--config", cfg, "--name", "outside", "--endpoint", "https://10.0.1.5/api/messages"); err == nil {
		t.Fatal("endpoint outside bots.allow_private_networks accepted")
	}
}

// hostsResolver resolves from a fixed table, so that the CLI tests never
// send a DNS query off the machine; any other name does not resolve.
type hostsResolver map[string][]netip.Addr

func (h hostsResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := h[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var testHosts = hostsResolver{
	"localhost":             {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	"metadata.example.test": {netip.MustParseAddr("169.254.169.254")},
	"mixed.example.test":    {netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.1.2.3")},
	"public.example.test":   {netip.MustParseAddr("8.8.4.4")},
}

// A name is judged by every address it resolves to, by the delivery rule.
func TestBotCreateRefusesNamesThatResolveInternally(t *testing.T) {
	data := t.TempDir()
	for _, endpoint := range []string{"https://metadata.example.test/api/messages", "https://mixed.example.test/api/messages?code=k3y"} {
		_, stderr, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "x", "--endpoint", endpoint)
		if err == nil || !strings.Contains(err.Error(), "resolves to") || !strings.Contains(err.Error(), "bots.allow_private_networks") {
			t.Errorf("%s: err = %v; want a refusal naming the address and the setting", endpoint, err)
		}
		if err != nil && strings.Contains(err.Error()+stderr, "k3y") {
			t.Errorf("%s: the refusal repeats the query", endpoint)
		}
	}
	if _, stderr, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "ok", "--endpoint", "https://public.example.test/api/messages"); err != nil || stderr != "" {
		t.Fatalf("a public name: %v %q", err, stderr)
	}
}
