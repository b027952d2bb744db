package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// The admin API on a full disk: a change that cannot be stored answers
// 503 in the admin error shape, saying the storage is full (no path);
// nothing half-made stays (the list shows exactly the acknowledged
// sites); reads keep working; once space returns, changes work again.
func TestAdminAPIOnAFullDisk(t *testing.T) {
	dir := tmpfsDataDir(t, "the Direct Line full-disk tests need the same")
	as := startAdminServer(t, slog.New(slog.DiscardHandler), func(srv *server.Server) error {
		srv.HandleAdmin(adminapi.New(adminapi.Config{Service: srv.AdminService(nil), Auth: ownerToken{}}), nil)
		return nil
	}, func(c *config.Config) { c.DataDir, c.MasterKeyFile = dir, filepath.Join(dir, "master.key") })
	provision(t, as.srv.Store(), "bot-a", "http://127.0.0.1:9/api/messages", true, []string{trustedOrigin})
	post := func(name string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"bot": "bot-a", "name": name, "trustedOrigins": []string{"https://www.example.com"}})
		req, _ := http.NewRequest("POST", as.adminBase+admin.Prefix+"/sites", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer owner-test-token")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := post("before"); status != http.StatusCreated {
		t.Fatalf("create a site: %d %s", status, body)
	}
	acked := 2 // site-bot-a and "before"

	filler := fillDisk(t, dir)
	refused := false
	for i := 0; i < 400 && !refused; i++ {
		switch status, body := post(fmt.Sprintf("full-%d", i)); {
		case status == http.StatusCreated:
			acked++
		case status == http.StatusServiceUnavailable && strings.Contains(body, `"unavailable"`) && strings.Contains(body, "storage is full"):
			if strings.Contains(body, dir) || strings.Contains(body, "parley.db") {
				t.Fatalf("the refusal reveals paths: %s", body)
			}
			refused = true
		default:
			t.Fatalf("create a site on a full disk: %d %s, want 201 or 503 saying the storage is full", status, body)
		}
	}
	if !refused {
		t.Fatal("400 sites created on a full 4 MB disk")
	}
	t.Logf("%d sites acknowledged, then a refusal", acked)
	status, body := httpGet(t, as.adminBase+admin.Prefix+"/sites", "Bearer owner-test-token")
	var sites []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &sites) != nil {
		t.Fatalf("list sites on a full disk: %d %.300s", status, body)
	}
	if len(sites) != acked {
		t.Errorf("%d sites listed, %d acknowledged: a refused change left something behind, or an acknowledged one is missing", len(sites), acked)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := post("after")
		if status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("space is back but creating a site still answers %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
