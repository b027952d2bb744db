package config

import (
	"strings"
	"testing"
	"time"
)

func TestWebAuthnValidate(t *testing.T) {
	ok := []WebAuthn{
		{Timeout: Duration(5 * time.Minute)},
		{RPID: "admin.example.com", Origins: []string{"https://admin.example.com:9445"}, Timeout: Duration(time.Minute)},
		{RPID: "example.com", Origins: []string{"https://admin.example.com"}, Timeout: Duration(time.Minute)},
		{RPID: "localhost", Origins: []string{"http://localhost:9445"}, Timeout: Duration(time.Minute)},
	}
	for _, w := range ok {
		if errs := w.validate(); len(errs) != 0 {
			t.Errorf("%+v: %v", w, errs)
		}
	}
	bad := map[string]WebAuthn{
		"set rp_id too":          {Origins: []string{"https://a.example"}, Timeout: Duration(time.Minute)},
		"list the console":       {RPID: "a.example", Timeout: Duration(time.Minute)},
		"IP addresses":           {RPID: "127.0.0.1", Origins: []string{"http://127.0.0.1:1"}, Timeout: Duration(time.Minute)},
		"not rp_id":              {RPID: "a.example", Origins: []string{"https://evil.example"}, Timeout: Duration(time.Minute)},
		"use https":              {RPID: "a.example", Origins: []string{"http://a.example"}, Timeout: Duration(time.Minute)},
		"scheme://host":          {RPID: "a.example", Origins: []string{"https://a.example/console"}, Timeout: Duration(time.Minute)},
		"use 30s to 30m":         {Timeout: Duration(time.Second)},
		"without scheme or port": {RPID: "a.example:9445", Origins: []string{"https://a.example:9445"}, Timeout: Duration(time.Minute)},
	}
	for want, w := range bad {
		errs := w.validate()
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), want) {
			t.Errorf("%+v: %v, want %q", w, errs, want)
		}
	}
}
