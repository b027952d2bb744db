package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// /readyz is polled by load balancers and anyone else: while the store
// cannot commit, a warning per 503 would flood the log. A change of state
// is logged once (not ready, then ready again), however often /readyz is
// asked. The store is made not ready for real: its data directory is a
// small tmpfs that a filler file fills up.
func TestReadyzLogsStateChangesNotEveryProbe(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestReadinessLogRateLimited still runs", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	h := newHarness(t, func(c *config.Config) { c.DataDir, c.MasterKeyFile = dir, filepath.Join(dir, "master.key") })
	tok, conv, _ := h.started("dl_full")
	if code, body := h.readyz(); code != 200 {
		t.Fatalf("healthy store: /readyz %d %q", code, body)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	_ = f.Close()
	pad := strings.Repeat("x", 2000)
	for i := 0; ; i++ {
		if i == 500 {
			t.Fatal("500 POSTs on a full disk were all acknowledged")
		}
		if r := h.postNoCheck(tok, conv, map[string]any{"type": "message", "text": fmt.Sprintf("full %d %s", i, pad)}); r.status >= 500 {
			break
		}
	}
	const polls = 50
	for i := 0; i < polls; i++ {
		if code, body := h.readyz(); code != http.StatusServiceUnavailable {
			t.Fatalf("full disk: /readyz %d %q, want 503", code, body)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := h.readyz(); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("space is back but /readyz is not 200")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < polls; i++ {
		h.readyz()
	}
	var notReady, ready int
	for _, l := range strings.Split(h.logs.String(), "\n") {
		switch {
		case strings.Contains(l, `"msg":"not ready`):
			notReady++
		case strings.Contains(l, `"msg":"ready again`):
			ready++
		}
	}
	if notReady != 1 || ready != 1 {
		t.Errorf("%d polls of /readyz while not ready and %d after: %d not-ready lines and %d ready-again lines logged; want 1 and 1", polls, polls, notReady, ready)
	}
}
