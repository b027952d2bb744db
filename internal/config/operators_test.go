package config

import (
	"strings"
	"testing"
	"time"
)

func TestOperatorsValidate(t *testing.T) {
	if errs := DefaultOperators().validate(); len(errs) != 0 {
		t.Fatalf("defaults refused: %v", errs)
	}
	for name, tc := range map[string]struct {
		mod  func(*Operators)
		want string
	}{
		"weak argon2":        {func(o *Operators) { o.Argon2.MemoryKiB = 1024 }, "argon2.memory_kib"},
		"idle beyond max":    {func(o *Operators) { o.SessionMax = Duration(o.SessionIdle) / 2 }, "session_max"},
		"login rate off":     {func(o *Operators) { o.LoginRate = "off" }, "login_rate"},
		"request rate bad":   {func(o *Operators) { o.RequestRate = "fast" }, "request_rate"},
		"request rate empty": {func(o *Operators) { o.RequestRate = "" }, "request_rate"},
		"token ttl > max":    {func(o *Operators) { o.TokenTTL = o.TokenMaxTTL * 2 }, "token_ttl"},
		"sso without id":     {func(o *Operators) { o.SSO.Issuer = "https://idp.example" }, "sso"},
		"sso bad match": {func(o *Operators) {
			o.SSO = SSO{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://x/cb", Match: "name"}
		}, "sso.match"},
		"no lockout budget":   {func(o *Operators) { o.MaxFailures = 0 }, "max_failures"},
		"sso timeout an hour": {func(o *Operators) { o.SSO.Timeout = Duration(time.Hour) }, "sso.timeout"},
		"sso timeout zero":    {func(o *Operators) { o.SSO.Timeout = 0 }, "sso.timeout"},
	} {
		o := DefaultOperators()
		tc.mod(&o)
		errs := o.validate()
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), "operators."+tc.want) {
			t.Errorf("%s: %v", name, errs)
		}
	}
	off := DefaultOperators()
	off.RequestRate = "off"
	if errs := off.validate(); len(errs) != 0 {
		t.Errorf("request_rate off refused: %v", errs)
	}
	env := map[string]string{"PARLEY_OPERATORS_SSO_CLIENT_SECRET": "s3cret"}
	o := DefaultOperators()
	o.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if o.SSO.ClientSecret != "s3cret" {
		t.Fatal("PARLEY_OPERATORS_SSO_CLIENT_SECRET not applied")
	}
}
