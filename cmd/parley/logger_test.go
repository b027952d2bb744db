package main

import (
	"bytes"
	"strings"
	"testing"
)

// The CLI's logger redacts too, at every level, and shows user ids and
// client addresses only as placeholders until the server adds its key.
func TestCLILoggerRedacts(t *testing.T) {
	var errb bytes.Buffer
	a := &app{stderr: &errb}
	l := a.logger("debug")
	l.Debug("paid 4242 4242 4242 4242", "mail", "jane@example.org", "user", "dl_jane", "client_addr", "203.0.113.9")
	out := errb.String()
	for _, leak := range []string{"4242 4242", "jane@example.org", "dl_jane", "203.0.113.9"} {
		if strings.Contains(out, leak) {
			t.Fatalf("%q in %s", leak, out)
		}
	}
	if !strings.Contains(out, `"msg":"paid [card]"`) || !strings.Contains(out, `"user":"[user]"`) {
		t.Fatalf("got %s", out)
	}
}
