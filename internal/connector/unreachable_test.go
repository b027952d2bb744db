package connector

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestUnreachableRecognizesWhatNeverReachedTheBot(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("post to bot: %w", &url.Error{Op: "Post", URL: "https://bot.example/api/messages", Err: err})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"host does not resolve", wrap(&net.DNSError{Err: "no such host", Name: "bot.invalid", IsNotFound: true}), true},
		{"connection refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"DNS server failure", wrap(&net.DNSError{Err: "server misbehaving", Name: "bot.example", IsTemporary: true}), false},
		{"timeout", wrap(errors.New("context deadline exceeded")), false},
		{"bot answered 500", errors.New("bot answered 500"), false},
	} {
		u := unreachable(tc.err)
		if (u != nil) != tc.want {
			t.Errorf("%s: unreachable = %v, want %v", tc.name, u, tc.want)
		}
		if u != nil && (u.Reason == "" || containsURL(u.Error())) {
			t.Errorf("%s: reason %q must say why and name no URL", tc.name, u.Error())
		}
	}
}

func containsURL(s string) bool {
	return strings.Contains(s, "https://") || strings.Contains(s, "bot.example")
}
