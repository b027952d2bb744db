package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	dir := tmpfsDataDir(t, "TestReadinessLogRateLimited still runs")
	h := newHarness(t, func(c *config.Config) { c.DataDir, c.MasterKeyFile = dir, filepath.Join(dir, "master.key") })
	tok, conv, _ := h.started("dl_full")
	if code, body := h.readyz(); code != 200 {
		t.Fatalf("healthy store: /readyz %d %q", code, body)
	}
	filler := fillDisk(t, dir)
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
