package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve logs its version when it starts serving and a line when it stops
// cleanly, so an operator can tell a clean stop from a crash.
func TestServeLogsVersionAtStartAndCleanStop(t *testing.T) {
	data := t.TempDir()
	cfg := filepath.Join(data, "parley.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npublic_url: http://127.0.0.1:1\ninsecure_http: true\nmetrics: {listen: 127.0.0.1:0}\ndata_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb lockedBuffer
	root := (&app{stdout: &out, stderr: &errb, env: func(string) (string, bool) { return "", false }, resolver: testHosts}).root()
	root.SetArgs([]string{"serve", "--config", cfg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errb.String(), "parley serving") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no serving line:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	logs := errb.String()
	want := currentBuildInfo().Version
	if !strings.Contains(logs, `"version":"`+want+`"`) {
		t.Errorf("the serving line does not carry the version %q:\n%s", want, logs)
	}
	if !strings.Contains(logs, "parley stopped cleanly") {
		t.Errorf("no line at the clean stop:\n%s", logs)
	}
}
