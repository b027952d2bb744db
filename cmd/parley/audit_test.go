package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/audit"
)

// auditData makes a data directory whose audit log holds n entries,
// recorded through the same store and key set the commands open (env as
// the commands get it: PARLEY_AUDIT_ANCHOR_FILE applies).
func auditData(t *testing.T, env map[string]string, n int) string {
	t.Helper()
	data := t.TempDir()
	recordAudit(t, env, data, n)
	return data
}

func recordAudit(t *testing.T, env map[string]string, data string, n int) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	a := &app{stdout: io.Discard, stderr: io.Discard, env: lookup}
	_, l, done, err := a.openAuditKeys(context.Background(), storeFlags{data: data})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for i := range n {
		ev := audit.Event{Actor: "local:root", Role: "owner", Action: "sites.write", Target: fmt.Sprintf("site:s%d", i), Outcome: audit.Success,
			Detail: map[string]string{"field": "origins"}}
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// tamper changes the database file as someone with write access to it
// would: the append-only triggers dropped first.
func tamper(t *testing.T, data string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{`DROP TRIGGER IF EXISTS audit_entries_no_update`, `DROP TRIGGER IF EXISTS audit_entries_no_delete`,
		`DROP TRIGGER IF EXISTS audit_checkpoints_no_delete`}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestAuditVerifyListExport(t *testing.T) {
	data := auditData(t, nil, 5)
	out, _, err := run(t, nil, "audit", "verify", "--data", data)
	if err != nil || !strings.Contains(out, "audit log verified: 5 entries") || !strings.Contains(out, "head: 5:") || !strings.Contains(out, "anchored outside the database: no") {
		t.Fatalf("verify = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "audit", "checkpoint", "--data", data, "--json")
	var cp struct {
		Checkpoint struct {
			Seq   int64  `json:"seq"`
			KeyID string `json:"keyId"`
		} `json:"checkpoint"`
		Head string `json:"head"`
	}
	if err != nil || json.Unmarshal([]byte(out), &cp) != nil || cp.Checkpoint.Seq != 5 || !strings.HasPrefix(cp.Checkpoint.KeyID, "ac-") || !strings.HasPrefix(cp.Head, "5:") {
		t.Fatalf("checkpoint = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "audit", "verify", "--data", data, "--json")
	var rep audit.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Checkpoints != 2 || rep.LastCheckpointSeq != 5 || rep.Unanchored != 0 { // the recording process checkpointed its first entry
		t.Fatalf("verify --json = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "audit", "list", "--data", data, "--after", "1", "--limit", "2")
	if err != nil || !strings.Contains(out, "SEQ") || !strings.Contains(out, "site:s1") || !strings.Contains(out, "site:s2") || strings.Contains(out, "site:s3") {
		t.Fatalf("list = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "audit", "export", "--data", data, "--after", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 {
		t.Fatalf("export --after 2 = %q, %v", out, err)
	}
	var e audit.Entry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || e.Seq != 3 || string(audit.HashEntry(e)) != string(e.Hash) {
		t.Fatalf("first exported line %s: %+v, %v", lines[0], e, err)
	}
	// A value with control characters cannot forge a row of the table.
	lookup := func(string) (string, bool) { return "", false }
	_, l, done, err := (&app{stdout: io.Discard, stderr: io.Discard, env: lookup}).openAuditKeys(context.Background(), storeFlags{data: data})
	if err != nil {
		t.Fatal(err)
	}
	err = l.Record(context.Background(), audit.Event{Actor: "anonymous", Action: "operator.enroll", Outcome: audit.Failure,
		Detail: map[string]string{"name": "x\n9\t2026\tlocal:root\towner\tkeys.manage"}})
	done()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, nil, "audit", "list", "--data", data, "--after", "5")
	if err != nil || strings.Count(out, "\n") != 2 || strings.Contains(out, "\n9") {
		t.Fatalf("list with a control character = %q, %v", out, err)
	}
	if _, _, err := run(t, nil, "audit", "list", "--data", data, "--limit", "0"); err == nil || !strings.Contains(err.Error(), "--limit") {
		t.Fatalf("list --limit 0 = %v", err)
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"edited", []string{`UPDATE audit_entries SET outcome = 'failure' WHERE seq = 3`}, "edited at seq 3"},
		{"removed", []string{`DELETE FROM audit_entries WHERE seq = 2`}, "removed at seq 2"},
		{"reordered", []string{`UPDATE audit_entries SET seq = -1 WHERE seq = 2`, `UPDATE audit_entries SET seq = 2 WHERE seq = 4`, `UPDATE audit_entries SET seq = 4 WHERE seq = -1`}, "reordered at seq 2"},
		{"truncated", []string{`DELETE FROM audit_entries WHERE seq > 3`}, "truncated at seq 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := auditData(t, nil, 5)
			if _, _, err := run(t, nil, "audit", "checkpoint", "--data", data); err != nil {
				t.Fatal(err)
			}
			tamper(t, data, tc.stmts...)
			out, _, err := run(t, nil, "audit", "verify", "--data", data)
			if exitCode(err) != exitAuditProblem || !strings.Contains(err.Error(), tc.want) || !strings.Contains(out, "AUDIT LOG PROBLEM: "+tc.want) {
				t.Fatalf("verify = %q, %v (exit %d); want exit %d naming %q", out, err, exitCode(err), exitAuditProblem, tc.want)
			}
			out, _, err = run(t, nil, "audit", "verify", "--data", data, "--json")
			var rep audit.Report
			if exitCode(err) != exitAuditProblem || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || rep.Problem == nil || string(rep.Problem.Kind) != tc.name {
				t.Fatalf("verify --json = %q, %v", out, err)
			}
		})
	}
}

// TestAuditVerifyAnchors: the tail removed with its checkpoints passes a
// store-only verify (it says what is unanchored) and fails against the
// anchor file (audit.anchor_file, or --anchor) and against --head.
func TestAuditVerifyAnchors(t *testing.T) {
	anchor := filepath.Join(t.TempDir(), "anchor.jsonl")
	env := map[string]string{"PARLEY_AUDIT_ANCHOR_FILE": anchor}
	data := auditData(t, env, 4)
	out, _, err := run(t, env, "audit", "checkpoint", "--data", data)
	if err != nil || !strings.Contains(out, "anchored in "+anchor) {
		t.Fatalf("checkpoint = %q, %v", out, err)
	}
	recordAudit(t, env, data, 4) // 8 entries; the first Record of that process checkpointed seq 5
	out, _, err = run(t, env, "audit", "checkpoint", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Fields(out[strings.Index(out, "head: "):])[1]
	tamper(t, data, `DELETE FROM audit_entries WHERE seq > 6`, `DELETE FROM audit_checkpoints WHERE seq > 6`)

	out, _, err = run(t, nil, "audit", "verify", "--data", data)
	if err != nil || !strings.Contains(out, "anchored outside the database: no") || !strings.Contains(out, "the last 1 entries come after the last checkpoint") {
		t.Fatalf("store-only verify = %q, %v; want a pass that says what is unanchored", out, err)
	}
	for name, args := range map[string][]string{
		"audit.anchor_file": {"audit", "verify", "--data", data},
		"--anchor":          {"audit", "verify", "--data", data, "--anchor", anchor},
		"--head":            {"audit", "verify", "--data", data, "--head", head},
	} {
		e := env
		if name != "audit.anchor_file" {
			e = nil
		}
		out, _, err := run(t, e, args...)
		if exitCode(err) != exitAuditProblem || !strings.Contains(err.Error(), "truncated at seq 7") {
			t.Errorf("%s: verify = %q, %v; want truncated at seq 7", name, out, err)
		}
	}
	if _, _, err := run(t, nil, "audit", "verify", "--data", data, "--head", "7:nothex"); exitCode(err) != 1 || !strings.Contains(err.Error(), "--head") {
		t.Fatalf("bad --head = %v", err)
	}
}

// TestAuditExportFollow: the command follows entries another process
// appends (found by polling) until interrupted.
func TestAuditExportFollow(t *testing.T) {
	env := map[string]string{}
	data := auditData(t, env, 2)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		root := (&app{stdout: pw, stderr: io.Discard, env: func(string) (string, bool) { return "", false }, resolver: testHosts}).root()
		root.SetArgs([]string{"audit", "export", "--data", data, "--follow"})
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var seqs []int64
	appended := false
	for len(seqs) < 5 && sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
		if len(seqs) == 2 && !appended {
			appended = true
			recordAudit(t, env, data, 3) // another process appends
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("export --follow did not stop when interrupted")
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5]" {
		t.Fatalf("followed %v", seqs)
	}
}
