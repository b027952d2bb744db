package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tlsBase = "listen: 0.0.0.0:8443\npublic_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"

func TestMetricsDefaults(t *testing.T) {
	c, err := Load(write(t, tlsBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Listen != "127.0.0.1:9464" || c.Metrics.TLS() || c.Metrics.Off() || !c.AccessLog {
		t.Fatalf("defaults: metrics %+v, access_log %v", c.Metrics, c.AccessLog)
	}
}

func TestMetricsAccepted(t *testing.T) {
	for name, c := range map[string]struct {
		yaml    string
		env     map[string]string
		tls     bool
		off     bool
		logsOff bool
	}{
		"loopback with token":     {yaml: tlsBase + "metrics: {listen: '127.0.0.1:9100', bearer_token_file: /t}\n"},
		"ipv6 loopback":           {yaml: tlsBase + "metrics: {listen: '[::1]:9100'}\n"},
		"off":                     {yaml: tlsBase + "metrics: {listen: 'off'}\n", off: true},
		"off by env":              {yaml: tlsBase, env: map[string]string{"PARLEY_METRICS_LISTEN": "off"}, off: true},
		"public with token (TLS)": {yaml: tlsBase + "metrics: {listen: '0.0.0.0:9464', bearer_token_file: /etc/parley/metrics.token}\n", tls: true},
		"public by env":           {yaml: tlsBase, env: map[string]string{"PARLEY_METRICS_LISTEN": "10.0.0.5:9464", "PARLEY_METRICS_BEARER_TOKEN_FILE": "/t"}, tls: true},
		"access log off":          {yaml: tlsBase + "access_log: false\n", logsOff: true},
		"access log off by env":   {yaml: tlsBase, env: map[string]string{"PARLEY_ACCESS_LOG": "false"}, logsOff: true},
		"insecure loopback":       {yaml: "listen: 127.0.0.1:8080\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\n"},
	} {
		got, err := Load(write(t, c.yaml), env(c.env))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.Metrics.TLS() != c.tls || got.Metrics.Off() != c.off || got.AccessLog == c.logsOff {
			t.Errorf("%s: metrics %+v (tls %v off %v), access_log %v", name, got.Metrics, got.Metrics.TLS(), got.Metrics.Off(), got.AccessLog)
		}
	}
}

func TestMetricsRefusedNamingTheField(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"public without token":    {tlsBase + "metrics: {listen: '0.0.0.0:9464'}\n", nil, "metrics.bearer_token_file: is required"},
		"all interfaces no token": {tlsBase + "metrics: {listen: ':9464'}\n", nil, "every interface"},
		"public by env no token":  {tlsBase, map[string]string{"PARLEY_METRICS_LISTEN": "192.0.2.1:9464"}, "metrics.bearer_token_file"},
		"public with insecure":    {"listen: 127.0.0.1:8080\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\nmetrics: {listen: '0.0.0.0:9464', bearer_token_file: /t}\n", nil, "metrics.listen"},
		"not host:port":           {tlsBase + "metrics: {listen: 'localhost'}\n", nil, "metrics.listen"},
		"bad port":                {tlsBase + "metrics: {listen: '127.0.0.1:99999'}\n", nil, "metrics.listen"},
		"same as main":            {tlsBase + "metrics: {listen: '127.0.0.1:8443'}\n", nil, "needs its own port"},
		"same as main exactly":    {"listen: 127.0.0.1:8080\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\nmetrics: {listen: '127.0.0.1:8080'}\n", nil, "needs its own port"},
		"disabled is case exact":  {tlsBase + "metrics: {listen: 'OFF'}\n", nil, "metrics.listen"},
		"token but off":           {tlsBase + "metrics: {listen: 'off', bearer_token_file: /t}\n", nil, "metrics.bearer_token_file"},
		"unknown metrics field":   {tlsBase + "metrics: {token: x}\n", nil, "token"},
		"bad access_log env":      {tlsBase, map[string]string{"PARLEY_ACCESS_LOG": "sometimes"}, "PARLEY_ACCESS_LOG"},
		"bad access_log":          {tlsBase + "access_log: sometimes\n", nil, "line 4"},
	} {
		_, err := Load(write(t, c.yaml), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, c.want)
		}
	}
}

func TestMetricsBearerToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const tok = "0123456789abcdef0123456789abcdef0123"
	good := file("good", "  "+tok+"  \nsecond line ignored\n", 0o600)
	got, err := Metrics{Listen: "127.0.0.1:1", BearerTokenFile: good}.BearerToken()
	if err != nil || string(got) != tok {
		t.Fatalf("token = %q, %v", got, err)
	}
	if got, err := (Metrics{Listen: "127.0.0.1:1"}).BearerToken(); got != nil || err != nil {
		t.Fatalf("no file: %q, %v", got, err)
	}
	for name, c := range map[string]struct {
		path, want string
	}{
		"readable by others": {file("open", tok+"\n", 0o644), "chmod 600"},
		"short":              {file("short", "abc\n", 0o600), "at least 32"},
		"empty":              {file("empty", "", 0o600), "at least 32"},
		"too long":           {file("long", strings.Repeat("a", 5000), 0o600), "longer than 4096"},
		"control character":  {file("ctl", tok+"\x01x\n", 0o600), "printable ASCII"},
		"missing":            {filepath.Join(dir, "nope"), "no such file"},
		"a directory":        {dir, "not a regular file"},
	} {
		_, err := Metrics{Listen: "127.0.0.1:1", BearerTokenFile: c.path}.BearerToken()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "metrics.bearer_token_file") {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: the error shows the token", name)
		}
	}
}
