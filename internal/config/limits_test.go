package config

import (
	"strings"
	"testing"
)

func TestRateParse(t *testing.T) {
	cases := []struct {
		in        Rate
		perSecond float64
		burst     int
	}{
		{"120/m burst 60", 2, 60},
		{"10/s", 10, 10},
		{"3600/h burst 5", 1, 5},
		{" 6/M  BURST 2 ", 0.1, 2},
		{"off", 0, 0},
		{"0", 0, 0},
	}
	for _, c := range cases {
		ps, b, err := c.in.Parse()
		if err != nil || ps != c.perSecond || b != c.burst {
			t.Errorf("%q: %v/s burst %d, %v; want %v/s burst %d", c.in, ps, b, err, c.perSecond, c.burst)
		}
	}
	for _, bad := range []Rate{"", "fast", "10", "10/d", "0/m", "-1/s", "10/m burst 0", "10/m burst x", "2000000/s"} {
		if _, _, err := bad.Parse(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDefaultLimitsValid(t *testing.T) {
	if errs := DefaultLimits().validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := AllOff().validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestLimitsAndProxiesFromFileAndEnv(t *testing.T) {
	p := write(t, "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ntrusted_proxies: [10.0.0.0/8]\nlimits:\n  post: {conversation: 30/m burst 10}\n")
	c, err := Load(p, env(map[string]string{"PARLEY_LIMITS_HISTORY_ADDRESS": "off", "PARLEY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.Post.Conversation != "30/m burst 10" || c.Limits.Post.Address != DefaultLimits().Post.Address {
		t.Errorf("post limits %+v: the file's field, the default for the other", c.Limits.Post)
	}
	if c.Limits.History.Address != "off" || len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != "192.168.1.1" {
		t.Errorf("env overrides: %+v %v", c.Limits.History, c.TrustedProxies)
	}
}

func TestLimitsAndProxiesRefusedNamingTheField(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"bad rate":        {"limits: {post: {conversation: lots}}\n", nil, "limits.post.conversation"},
		"empty rate":      {"limits: {stream: {address: \"\"}}\n", nil, "limits.stream.address"},
		"bad env rate":    {"", map[string]string{"PARLEY_LIMITS_GENERATE_SITE": "5/fortnight"}, "PARLEY_LIMITS_GENERATE_SITE"},
		"wrong scope":     {"limits: {post: {site: 1/s}}\n", nil, "site"},
		"bad proxy":       {"trusted_proxies: [proxy.local]\n", nil, "trusted_proxies"},
		"bad env proxies": {"", map[string]string{"PARLEY_TRUSTED_PROXIES": "10.0.0.0/33"}, "trusted_proxies"},
	} {
		p := write(t, "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"+c.yaml)
		_, err := Load(p, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name %s", name, err, c.want)
		}
	}
}
