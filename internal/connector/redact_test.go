package connector

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://bot.example.com/api/messages":                             "https://bot.example.com/api/messages",
		"https://fn.example.net/api/messages?code=SECRET&clientId=default": "https://fn.example.net/api/messages?REDACTED",
		"https://user:pass@bot.example.com:8443/api?code=SECRET#frag":      "https://REDACTED@bot.example.com:8443/api?REDACTED",
		"http://127.0.0.1:3978/api/messages?":                              "http://127.0.0.1:3978/api/messages?REDACTED",
		"https://bot.example.com/api#SECRET":                               "https://bot.example.com/api",
		"https://bot.example.com/a%2Fb?SECRET":                             "https://bot.example.com/a%2Fb?REDACTED",
		"mailto:SECRET@example.com":                                        "[unparseable URL]",
		"https://bot.example.com/%zz?code=SECRET":                          "[unparseable URL]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	inner := errors.New("connection refused")
	err := RedactError(&url.Error{Op: "Post", URL: "https://u:p@bot.example.com/api?code=SECRET", Err: inner})
	if s := err.Error(); strings.Contains(s, "SECRET") || strings.Contains(s, "u:p") || !errors.Is(err, inner) {
		t.Fatalf("RedactError = %q", s)
	}
	if RedactError(nil) != nil {
		t.Fatal("RedactError(nil) != nil")
	}
}
