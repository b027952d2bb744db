package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/web"
)

// The --webchat-* flags are checked before the demo creates anything.
func TestDemoWebChatFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "webchat.js")
	if err := os.WriteFile(bundle, []byte("window.WebChat={};\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := web.Integrity([]byte("other bytes"))
	for name, c := range map[string]struct {
		args []string
		want []string
	}{
		"missing file":          {[]string{"--webchat-file", filepath.Join(dir, "nope.js")}, []string{"--webchat-file:", "no such file", "npm install botframework-webchat@" + web.PinnedWebChatVersion}},
		"file and url":          {[]string{"--webchat-file", bundle, "--webchat-url", "https://x.example/webchat.js"}, []string{"--webchat-file and --webchat-url: give one"}},
		"file not matching":     {[]string{"--webchat-file", bundle, "--webchat-integrity", other}, []string{"does not match --webchat-integrity " + other, "its sha384 is " + web.Integrity([]byte("window.WebChat={};\n"))}},
		"malformed integrity":   {[]string{"--webchat-integrity", "sha1-abc"}, []string{"--webchat-integrity \"sha1-abc\" must be sha384-"}},
		"plain http off-host":   {[]string{"--webchat-url", "http://cdn.example.com/webchat.js"}, []string{"plain http is only allowed on loopback"}},
		"url breaking the CSP":  {[]string{"--webchat-url", "https://x.example/a.js; script-src *"}, []string{"--webchat-url", "must be an absolute https URL"}},
		"relative url":          {[]string{"--webchat-url", "/webchat.js"}, []string{"must be an absolute https URL", "--webchat-file"}},
		"directory as the file": {[]string{"--webchat-file", dir}, []string{"is not a regular file"}},
	} {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"demo", "--listen", "127.0.0.1:0", "--data", data}, c.args...)
			_, _, err := run(t, nil, args...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the refused demo created its data directory: %v", err)
			}
		})
	}
}
