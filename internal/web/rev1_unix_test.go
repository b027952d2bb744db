//go:build unix

package web

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --webchat-file naming a FIFO (or /dev/stdin, a pipe) is refused at
// once: opening it to read would block the demo's start forever.
func TestLoadBundleFIFODoesNotHang(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "webchat.js")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no mkfifo:", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadBundle(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadBundle(FIFO) = %v; want 'not a regular file'", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LoadBundle blocked on a FIFO")
	}
}
