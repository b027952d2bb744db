package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

func TestOperatorInviteAndEnrollCode(t *testing.T) {
	data := t.TempDir()
	// The data directory must hold a store: any command creates it. A bot
	// scope names registered bots.
	b1 := createBot(t, data, "Support", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	b2 := createBot(t, data, "Sales", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	if _, _, err := run(t, nil, "operator", "invite", "--data", data, "--role", "superuser"); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Fatalf("invite --role superuser: %v", err)
	}
	for _, bots := range []string{"no-such-bot", b1.ID + ",," + b2.ID} {
		if _, _, err := run(t, nil, "operator", "invite", "--data", data, "--role", "operator", "--bots", bots); err == nil || !strings.Contains(err.Error(), "--bots") {
			t.Fatalf("invite --bots %s: %v, want a refusal naming --bots", bots, err)
		}
	}
	out, stderr, err := run(t, nil, "operator", "invite", "--data", data, "--role", "operator", "--bots", b1.ID+","+b2.ID, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var inv struct {
		Code string   `json:"code"`
		Role string   `json:"role"`
		Bots []string `json:"bots"`
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil || !strings.HasPrefix(inv.Code, "pec_") || inv.Role != "operator" || len(inv.Bots) != 2 {
		t.Fatalf("invite --json = %s (%v)", out, err)
	}
	if strings.Contains(stderr, inv.Code) {
		t.Fatalf("stderr = %q: never the code", stderr)
	}
	// The invitation is in the audit log, as the local principal's, and
	// the chain verifies; the code is not in it.
	entries, _, err := run(t, nil, "audit", "export", "--data", data)
	if err != nil || !strings.Contains(entries, `"operator.invite"`) || !strings.Contains(entries, `"local:`) || strings.Contains(entries, inv.Code) {
		t.Fatalf("audit export after invite = %q, %v", entries, err)
	}
	if _, _, err := run(t, nil, "audit", "verify", "--data", data); err != nil {
		t.Fatalf("audit verify after CLI commands: %v", err)
	}
	// Pending invitations are listed (never a code), and one is revoked.
	if _, _, err := run(t, nil, "operator", "invite", "--data", data, "--role", "auditor"); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, nil, "operator", "invitations", "--data", data, "--json")
	var pending []struct {
		ID, Role string
		Bots     []string
	}
	if err != nil || json.Unmarshal([]byte(out), &pending) != nil || len(pending) != 2 || pending[0].Role != "operator" || len(pending[0].Bots) != 2 || strings.Contains(out, inv.Code) {
		t.Fatalf("operator invitations = %s, %v", out, err)
	}
	if _, _, err := run(t, nil, "operator", "invitations", "--data", data, "--revoke", pending[1].ID); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, nil, "operator", "invitations", "--data", data); err != nil || strings.Contains(out, pending[1].ID) || !strings.Contains(out, pending[0].ID) {
		t.Fatalf("after the revocation: %q, %v", out, err)
	}
	if _, _, err := run(t, nil, "operator", "invitations", "--data", data, "--revoke", pending[1].ID); err == nil {
		t.Fatal("revoking it again succeeded")
	}
	out, _, err = run(t, nil, "operator", "enroll-code", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	owner := regexp.MustCompile(`pec_[A-Za-z0-9_-]{43}`).FindString(out)
	if owner == "" {
		t.Fatalf("enroll-code printed %q", out)
	}
	// Stored hashed only.
	files, _ := filepath.Glob(filepath.Join(data, "*.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), inv.Code) || strings.Contains(string(b), owner) {
			t.Fatalf("%s holds an enrollment code in the clear", f)
		}
	}
	// The code works, once, and grants the role it was made for.
	ctx := context.Background()
	a := &app{stdout: &strings.Builder{}, stderr: &strings.Builder{}, env: func(string) (string, bool) { return "", false }}
	_, st, svc, done, err := a.openOperators(ctx, storeFlags{data: data})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	enroll := svc.Handlers()["POST "+admin.Prefix+"/enroll"]
	for i, want := range []int{200, 401} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", admin.Prefix+"/enroll", strings.NewReader(`{"code":"`+inv.Code+`","name":"bob`+string(rune('a'+i))+`","password":"amber window folding quietly"}`))
		req.Header.Set("Content-Type", "application/json")
		enroll.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("enroll #%d: %d %s, want %d", i+1, rec.Code, rec.Body, want)
		}
	}
	op, err := st.OperatorByName(ctx, "boba")
	if err != nil || op.Role != "operator" || strings.Join(op.Bots, ",") != b1.ID+","+b2.ID {
		t.Fatalf("enrolled: %+v, %v", op, err)
	}
	out, _, err = run(t, nil, "operator", "list", "--data", data, "--json")
	if err != nil || !strings.Contains(out, `"name": "boba"`) || strings.Contains(out, "argon2id") {
		t.Fatalf("list: %s, %v", out, err)
	}
}
