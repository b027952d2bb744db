package config

import (
	"strings"
	"testing"
)

func TestAdminListen(t *testing.T) {
	c, err := Load(write(t, tlsBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Admin.Off() || c.Admin.TLS() {
		t.Fatalf("default admin %+v: want off", c.Admin)
	}
	insecure := "listen: 127.0.0.1:8080\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\n"
	for name, k := range map[string]struct {
		yaml string
		env  map[string]string
		tls  bool
	}{
		"loopback":          {yaml: tlsBase + "admin: {listen: '127.0.0.1:9445'}\n"},
		"ipv6 loopback":     {yaml: tlsBase + "admin: {listen: '[::1]:9445'}\n"},
		"loopback insecure": {yaml: insecure + "admin: {listen: '127.0.0.1:9445'}\n"},
		"public with TLS":   {yaml: tlsBase + "admin: {listen: '0.0.0.0:9445'}\n", tls: true},
		"by env":            {yaml: tlsBase, env: map[string]string{"PARLEY_ADMIN_LISTEN": "10.0.0.5:9445"}, tls: true},
		"ephemeral port":    {yaml: tlsBase + "admin: {listen: '127.0.0.1:0'}\nmetrics: {listen: '127.0.0.1:0'}\n"},
	} {
		got, err := Load(write(t, k.yaml), env(k.env))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got.Admin.Off() || got.Admin.TLS() != k.tls {
			t.Errorf("%s: %+v tls %v", name, got.Admin, got.Admin.TLS())
		}
	}
	for name, k := range map[string]struct{ yaml, want string }{
		"public without TLS": {insecure + "admin: {listen: '0.0.0.0:9445'}\n", "not loopback"},
		"every interface":    {insecure + "admin: {listen: ':9445'}\n", "every interface"},
		"not host:port":      {tlsBase + "admin: {listen: '9445'}\n", "not host:port"},
		"bad port":           {tlsBase + "admin: {listen: '127.0.0.1:99999'}\n", "not valid"},
		"main listener's":    {"listen: 127.0.0.1:8443\npublic_url: https://x.example\ntls: {cert_file: a, key_file: b}\nadmin: {listen: '127.0.0.1:8443'}\n", "main listener"},
		"metrics listener's": {tlsBase + "admin: {listen: '127.0.0.1:9464'}\n", "metrics listener"},
	} {
		_, err := Load(write(t, k.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), "admin.listen") || !strings.Contains(err.Error(), k.want) {
			t.Errorf("%s: %v, want admin.listen ... %q", name, err, k.want)
		}
	}
}
