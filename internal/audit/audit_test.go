package audit_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store/sqlite"

	_ "modernc.org/sqlite"
)

type env struct {
	log    *audit.Log
	st     *sqlite.Store
	keys   *keyring.KeySet
	path   string
	anchor string
}

func master(t testing.TB) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func openKeys(t testing.TB, st *sqlite.Store) *keyring.KeySet {
	t.Helper()
	ks := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: master(t), Purposes: []keyring.Purpose{audit.CheckpointKeyPurpose()}})
	if err := ks.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks
}

// newEnv is a log over a real SQLite store with a real key set; every
// checkpoint goes to an anchor file too.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{st: st, keys: openKeys(t, st), path: path, anchor: filepath.Join(dir, "anchor.jsonl")}
	e.log = e.newLog(t, audit.Config{AnchorFile: e.anchor})
	return e
}

func (e *env) newLog(t testing.TB, c audit.Config) *audit.Log {
	t.Helper()
	c.Store, c.Keys = e.st, e.keys
	if c.FollowPoll == 0 {
		c.FollowPoll = 20 * time.Millisecond
	}
	l, err := audit.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func event(i int) audit.Event {
	return audit.Event{Actor: "operator:op-1", Role: "owner", Action: "bots.write", Target: fmt.Sprintf("bot:b%d", i),
		Outcome: audit.Success, Client: "a_3f9c01", Detail: map[string]string{"field": "endpoint", "n": fmt.Sprint(i)}}
}

func (e *env) record(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		if err := e.log.Record(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) checkpoint(t testing.TB) audit.Checkpoint {
	t.Helper()
	c, err := e.log.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// attacker opens the database file as someone with write access to it
// (not to the master key) would, and drops the append-only triggers first.
func (e *env) attacker(t testing.TB, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{
		`DROP TRIGGER IF EXISTS audit_entries_no_update`, `DROP TRIGGER IF EXISTS audit_entries_no_delete`,
		`DROP TRIGGER IF EXISTS audit_checkpoints_no_update`, `DROP TRIGGER IF EXISTS audit_checkpoints_no_delete`,
	}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("attacker: %s: %v", s, err)
		}
	}
}

// rehash recomputes, as an attacker who knows the (public) algorithm can,
// the hash of every entry from seq from on, each linked to the one before.
func (e *env) rehash(t testing.TB, from int64) {
	t.Helper()
	all, err := e.log.Entries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	var prev []byte
	for _, en := range all {
		if en.Seq >= from {
			en.Prev = prev
			en.Hash = audit.HashEntry(en)
			stmts = append(stmts, fmt.Sprintf(`UPDATE audit_entries SET prev = x'%x', hash = x'%x' WHERE seq = %d`, en.Prev, en.Hash, en.Seq))
		}
		prev = en.Hash
	}
	e.attacker(t, stmts...)
}

func verify(t testing.TB, l *audit.Log, o audit.VerifyOptions) audit.Report {
	t.Helper()
	rep, err := l.VerifyWith(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantProblem(t *testing.T, rep audit.Report, kind audit.Kind, seq int64) {
	t.Helper()
	if rep.OK || rep.Problem == nil {
		t.Fatalf("verify passed (%+v); want %s at seq %d", rep, kind, seq)
	}
	if rep.Problem.Kind != kind || rep.Problem.Seq != seq {
		t.Fatalf("verify found %v; want %s at seq %d", rep.Problem, kind, seq)
	}
}

func TestChainVerifiesAfterConcurrentRecords(t *testing.T) {
	e := newEnv(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := e.log.Record(context.Background(), event(w*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e.checkpoint(t)
	rep := verify(t, e.log, audit.VerifyOptions{AnchorFile: e.anchor})
	if !rep.OK || rep.Entries != writers*each || rep.HeadSeq != writers*each || rep.Checkpoints != 1 || rep.AnchorCheckpoints != 1 || rep.Unanchored != 0 {
		t.Fatalf("report %+v", rep)
	}
	all, _ := e.log.Entries(context.Background(), 0, 0)
	seen := map[string]bool{}
	for i, en := range all {
		if en.Seq != int64(i+1) || en.Time.Location() != time.UTC {
			t.Fatalf("entry %d: seq %d time %v", i, en.Seq, en.Time)
		}
		seen[en.Target] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct events kept, want %d", len(seen), writers*each)
	}
}

// TestTamper edits the SQLite file directly, with the triggers dropped,
// and checks verify names the kind and the seq.
func TestTamper(t *testing.T) {
	type tc struct {
		name string
		// setup records 10 entries and checkpoints; tamper changes the file.
		tamper func(t *testing.T, e *env)
		kind   audit.Kind
		seq    int64
	}
	swap := func(a, b int) []string {
		return []string{fmt.Sprintf(`UPDATE audit_entries SET seq = -1 WHERE seq = %d`, a),
			fmt.Sprintf(`UPDATE audit_entries SET seq = %d WHERE seq = %d`, a, b),
			fmt.Sprintf(`UPDATE audit_entries SET seq = %d WHERE seq = -1`, b)}
	}
	cases := []tc{
		{"edit a field", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET target = 'bot:other' WHERE seq = 4`)
		}, audit.KindEdited, 4},
		{"edit the outcome", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET outcome = 'success', action = 'keys.destroy' WHERE seq = 9`)
		}, audit.KindEdited, 9},
		{"edit the detail", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET detail = '{"field":"endpoint","n":"99"}' WHERE seq = 2`)
		}, audit.KindEdited, 2},
		{"edit the time", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET time = time + 1 WHERE seq = 1`)
		}, audit.KindEdited, 1},
		{"edit and re-hash that entry", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET target = 'bot:other' WHERE seq = 4`)
			all, _ := e.log.Entries(context.Background(), 3, 1)
			h := audit.HashEntry(all[0])
			e.attacker(t, fmt.Sprintf(`UPDATE audit_entries SET hash = x'%x' WHERE seq = 4`, h))
		}, audit.KindEdited, 4},
		{"edit and re-hash the whole chain (the MAC catches it)", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_entries SET outcome = 'denied' WHERE seq = 4`)
			e.rehash(t, 4)
		}, audit.KindEdited, 4},
		{"append a forged entry with a valid hash", func(t *testing.T, e *env) {
			all, _ := e.log.Entries(context.Background(), 0, 0)
			f := audit.Entry{Seq: 11, Time: time.Now().UTC(), Event: event(1), Prev: all[9].Hash, KeyID: all[9].KeyID, MAC: all[9].MAC}
			f.Actor, f.Action = "operator:alice", "keys.destroy"
			f.Hash = audit.HashEntry(f)
			e.attacker(t, fmt.Sprintf(`INSERT INTO audit_entries (seq, time, actor, role, action, target, outcome, client, detail, prev, hash, key_id, mac)
				VALUES (11, %d, '%s', '%s', '%s', '%s', 'success', '%s', '{"field":"endpoint","n":"1"}', x'%x', x'%x', '%s', x'%x')`,
				f.Time.UnixNano(), f.Actor, f.Role, f.Action, f.Target, f.Client, f.Prev, f.Hash, f.KeyID, f.MAC))
		}, audit.KindEdited, 11},
		{"delete a middle entry", func(t *testing.T, e *env) {
			e.attacker(t, `DELETE FROM audit_entries WHERE seq = 5`)
		}, audit.KindRemoved, 5},
		{"delete a middle entry and renumber", func(t *testing.T, e *env) {
			e.attacker(t, `DELETE FROM audit_entries WHERE seq = 5`, `UPDATE audit_entries SET seq = seq - 1 WHERE seq > 5`)
		}, audit.KindRemoved, 5},
		{"delete the first entry", func(t *testing.T, e *env) {
			e.attacker(t, `DELETE FROM audit_entries WHERE seq = 1`)
		}, audit.KindRemoved, 1},
		{"swap two entries", func(t *testing.T, e *env) { e.attacker(t, swap(3, 7)...) }, audit.KindReordered, 3},
		{"swap neighbours", func(t *testing.T, e *env) { e.attacker(t, swap(6, 7)...) }, audit.KindReordered, 6},
		{"swap contents, keep seqs", func(t *testing.T, e *env) {
			cols := `time, actor, role, action, target, outcome, client, detail, prev, hash`
			e.attacker(t, `CREATE TEMP TABLE t AS SELECT * FROM audit_entries WHERE seq IN (2, 8)`,
				`UPDATE audit_entries SET (`+cols+`) = (SELECT `+cols+` FROM t WHERE t.seq = 10 - audit_entries.seq) WHERE seq IN (2, 8)`)
		}, audit.KindReordered, 2},
		{"truncate the tail", func(t *testing.T, e *env) {
			e.attacker(t, `DELETE FROM audit_entries WHERE seq > 7`)
		}, audit.KindTruncated, 8},
		{"remove everything", func(t *testing.T, e *env) {
			e.attacker(t, `DELETE FROM audit_entries`)
		}, audit.KindTruncated, 1},
		{"forged checkpoint: bad signature", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_checkpoints SET signature = zeroblob(64)`)
		}, audit.KindBadCheckpoint, 10},
		{"forged checkpoint: unknown key", func(t *testing.T, e *env) {
			e.attacker(t, `INSERT INTO audit_checkpoints (seq, hash, created_at, key_id, signature) VALUES (3, x'00', 1, 'ac-mine', zeroblob(64))`)
		}, audit.KindBadCheckpoint, 3},
		{"forged checkpoint: the attacker's own key under the real key id", func(t *testing.T, e *env) {
			all, _ := e.log.Entries(context.Background(), 0, 0)
			k, _ := e.keys.Active(audit.PurposeCheckpoint)
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			c := audit.Checkpoint{Seq: 10, Hash: all[9].Hash, Time: time.Now().UTC(), KeyID: k.ID}
			c.Signature = ed25519.Sign(priv, []byte("parley-audit-checkpoint-v1\x00"))
			e.attacker(t, fmt.Sprintf(`INSERT INTO audit_checkpoints (seq, hash, created_at, key_id, signature) VALUES (10, x'%x', 1, '%s', x'%x')`, c.Hash, c.KeyID, c.Signature))
		}, audit.KindBadCheckpoint, 10},
		{"checkpoint moved to another seq", func(t *testing.T, e *env) {
			e.attacker(t, `UPDATE audit_checkpoints SET seq = 9`)
		}, audit.KindBadCheckpoint, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.record(t, 10)
			e.checkpoint(t)
			if rep := verify(t, e.log, audit.VerifyOptions{}); !rep.OK {
				t.Fatalf("untouched log: %+v", rep.Problem)
			}
			c.tamper(t, e)
			rep := verify(t, e.log, audit.VerifyOptions{})
			wantProblem(t, rep, c.kind, c.seq)
			if rep.Problem.Detail == "" {
				t.Fatal("no detail")
			}
		})
	}
}

// TestTruncationWithCheckpointsRemoved: an attacker who removes the tail
// and the checkpoints that covered it leaves a consistent store: verify
// from the store alone cannot tell (and says how much is unanchored); the
// anchor file and a head kept elsewhere both can.
func TestTruncationWithCheckpointsRemoved(t *testing.T) {
	e := newEnv(t)
	e.record(t, 5)
	e.checkpoint(t)
	e.record(t, 5)
	cp := e.checkpoint(t)
	head := audit.Head{Seq: cp.Seq, Hash: cp.Hash}
	e.attacker(t, `DELETE FROM audit_entries WHERE seq > 7`, `DELETE FROM audit_checkpoints WHERE seq > 7`)

	rep := verify(t, e.log, audit.VerifyOptions{})
	if !rep.OK || rep.HeadSeq != 7 || rep.Unanchored != 2 || rep.Anchored {
		t.Fatalf("store-only report %+v: want OK (undetectable without an anchor), head 7, 2 unanchored", rep)
	}
	wantProblem(t, verify(t, e.log, audit.VerifyOptions{AnchorFile: e.anchor}), audit.KindTruncated, 8)
	wantProblem(t, verify(t, e.log, audit.VerifyOptions{Heads: []audit.Head{head}}), audit.KindTruncated, 8)
	// Verify reads audit.anchor_file when configured.
	if rep, err := e.log.Verify(context.Background()); err != nil || rep.Problem == nil || rep.Problem.Kind != audit.KindTruncated {
		t.Fatalf("Verify with the configured anchor = %+v, %v", rep, err)
	}
}

// TestRewriteAfterLastCheckpoint: entries re-hashed after the last stored
// checkpoint, with later checkpoints removed, are caught by their MACs
// (and, independently, by the anchor).
func TestRewriteAfterLastCheckpoint(t *testing.T) {
	e := newEnv(t)
	e.record(t, 4)
	e.checkpoint(t)
	e.record(t, 4)
	e.checkpoint(t)
	e.attacker(t, `UPDATE audit_entries SET outcome = 'failure' WHERE seq = 6`, `DELETE FROM audit_checkpoints WHERE seq > 4`)
	e.rehash(t, 6)
	wantProblem(t, verify(t, e.log, audit.VerifyOptions{}), audit.KindEdited, 6)
	wantProblem(t, verify(t, e.log, audit.VerifyOptions{AnchorFile: e.anchor}), audit.KindEdited, 6)
}

// TestCheckpointRefusesForgedHead: the checkpointer never signs a head
// Parley did not write.
func TestCheckpointRefusesForgedHead(t *testing.T) {
	e := newEnv(t)
	e.record(t, 3)
	e.attacker(t, `UPDATE audit_entries SET action = 'keys.destroy' WHERE seq = 3`)
	e.rehash(t, 3)
	if _, err := e.log.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "not signing") {
		t.Fatalf("Checkpoint of a forged head = %v", err)
	}
	if cs, _ := e.st.ListAuditCheckpoints(context.Background()); len(cs) != 0 {
		t.Fatalf("%d checkpoints stored", len(cs))
	}
}

func TestForgedAnchorLineRefused(t *testing.T) {
	e := newEnv(t)
	e.record(t, 3)
	e.checkpoint(t)
	f, err := os.OpenFile(e.anchor, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := e.log.Entries(context.Background(), 0, 0)
	k, _ := e.keys.Active(audit.PurposeCheckpoint)
	line, _ := json.Marshal(audit.Checkpoint{Seq: 3, Hash: all[2].Hash, Time: time.Now(), KeyID: k.ID, Signature: make([]byte, 64)})
	fmt.Fprintf(f, "%s\nnot json\n", line)
	f.Close()
	rep := verify(t, e.log, audit.VerifyOptions{AnchorFile: e.anchor})
	wantProblem(t, rep, audit.KindBadCheckpoint, 0) // the unreadable line (seq unknown) sorts first
	if !strings.Contains(rep.Problem.Detail, "line 3") {
		t.Fatalf("detail %q does not name the line", rep.Problem.Detail)
	}
}

func TestCheckpointAfterKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.record(t, 3)
	c1 := e.checkpoint(t)
	if _, err := e.keys.Rotate(ctx, audit.PurposeCheckpoint, keyring.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.record(t, 3)
	c2 := e.checkpoint(t)
	if c1.KeyID == c2.KeyID {
		t.Fatalf("both checkpoints signed by %s after a rotation", c1.KeyID)
	}
	// A fresh process (new key set from the store) verifies both.
	fresh := openKeys(t, e.st)
	l2, err := audit.New(audit.Config{Store: e.st, Keys: fresh})
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, l2, audit.VerifyOptions{AnchorFile: e.anchor})
	if !rep.OK || rep.Checkpoints != 2 || rep.AnchorCheckpoints != 2 {
		t.Fatalf("after rotation: %+v", rep)
	}
	// Destroying the retired key leaves its checkpoint unverifiable, not
	// forged.
	if _, err := fresh.Rotate(ctx, audit.PurposeCheckpoint, keyring.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Destroy(ctx, c1.KeyID); err != nil {
		t.Fatal(err)
	}
	rep = verify(t, l2, audit.VerifyOptions{})
	if !rep.OK || rep.Checkpoints != 1 || rep.Unverifiable != 1 || rep.UnverifiableEntries != 3 {
		t.Fatalf("after destroying the first key: %+v", rep)
	}
	// Marking a key destroyed does not let anyone append entries naming
	// it: only entries a live key's checkpoint covers are trusted so.
	all, _ := l2.Entries(ctx, 0, 0)
	f := audit.Entry{Seq: 7, Time: time.Now().UTC(), Event: event(7), Prev: all[5].Hash, KeyID: c1.KeyID, MAC: make([]byte, 32)}
	f.Hash = audit.HashEntry(f)
	e.attacker(t, fmt.Sprintf(`INSERT INTO audit_entries (seq, time, actor, role, action, target, outcome, client, detail, prev, hash, key_id, mac)
		VALUES (7, %d, '%s', '%s', '%s', '%s', 'success', '%s', '{"field":"endpoint","n":"7"}', x'%x', x'%x', '%s', x'%x')`,
		f.Time.UnixNano(), f.Actor, f.Role, f.Action, f.Target, f.Client, f.Prev, f.Hash, f.KeyID, f.MAC))
	wantProblem(t, verify(t, l2, audit.VerifyOptions{}), audit.KindEdited, 7)
}

func TestRecordRefusesWhatTheLogMustNotHold(t *testing.T) {
	e := newEnv(t)
	good := event(1)
	for name, mod := range map[string]func(*audit.Event){
		"no actor":           func(ev *audit.Event) { ev.Actor = "" },
		"no action":          func(ev *audit.Event) { ev.Action = "" },
		"an odd action":      func(ev *audit.Event) { ev.Action = "Bots Write\n" },
		"an unknown outcome": func(ev *audit.Event) { ev.Outcome = "ok" },
	} {
		ev := good
		mod(&ev)
		if err := e.log.Record(context.Background(), ev); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("%s: Record = %v, want ErrInvalidEvent", name, err)
		}
	}
	if all, _ := e.log.Entries(context.Background(), 0, 0); len(all) != 0 {
		t.Fatalf("%d refused events stored", len(all))
	}
}

// TestRecordSanitizes: what a client or an enrollee can choose is made to
// fit, never a reason to drop the event (else choosing it would keep the
// event out of the log); addresses never reach the log.
func TestRecordSanitizes(t *testing.T) {
	e := newEnv(t)
	many := map[string]string{}
	for i := range 20 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	long := "/admin/v1/bots/" + strings.Repeat("é", 400)
	for _, ev := range []audit.Event{
		{Actor: "anonymous", Action: "mfa.recovery_code_used", Outcome: audit.Failure, Client: "203.0.113.7", Target: "10.0.0.1",
			Detail: map[string]string{"name": "198.51.100.2", "from": "[2001:db8::1]:443"}},
		{Actor: "operator:o1", Action: "bots.read", Outcome: audit.Denied, Target: long, Detail: many},
		{Actor: "anonymous", Action: "operator.enroll", Outcome: audit.Failure, Detail: map[string]string{"name": strings.Repeat("x", 300)}},
	} {
		if err := e.log.Record(context.Background(), ev); err != nil {
			t.Fatalf("Record(%s) = %v", ev.Action, err)
		}
	}
	all, _ := e.log.Entries(context.Background(), 0, 0)
	if len(all) != 3 {
		t.Fatalf("%d entries", len(all))
	}
	a := all[0]
	if a.Client != audit.AddressRemoved || a.Target != audit.AddressRemoved || a.Detail["name"] != audit.AddressRemoved || a.Detail["from"] != audit.AddressRemoved {
		t.Fatalf("addresses kept: %+v", a.Event)
	}
	b := all[1]
	if len(b.Target) > 256 || !strings.HasSuffix(b.Target, audit.Truncated) || !utf8.ValidString(b.Target) || !strings.HasPrefix(b.Target, "/admin/v1/bots/é") {
		t.Fatalf("long target: %q", b.Target)
	}
	if len(b.Detail) != 16 || b.Detail[audit.DroppedKey] != "5" || b.Detail["k00"] != "v" {
		t.Fatalf("many pairs kept as %v", b.Detail)
	}
	if c := all[2].Detail["name"]; len(c) > 256 || !strings.HasSuffix(c, audit.Truncated) {
		t.Fatalf("long value: %q", c)
	}
	if rep := verify(t, e.log, audit.VerifyOptions{}); !rep.OK {
		t.Fatal(rep.Problem)
	}
}

func TestStoreTriggersRefuseUpdateAndDelete(t *testing.T) {
	e := newEnv(t)
	e.record(t, 2)
	e.checkpoint(t)
	db, err := sql.Open("sqlite", "file:"+e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{`UPDATE audit_entries SET target = 'x'`, `DELETE FROM audit_entries WHERE seq = 2`,
		`UPDATE audit_checkpoints SET seq = 1`, `DELETE FROM audit_checkpoints`} {
		if _, err := db.Exec(s); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", s, err)
		}
	}
}

// TestCanonicalHasNoFieldBoundaryAmbiguity: moving bytes between fields
// changes the hash.
func TestCanonicalHasNoFieldBoundaryAmbiguity(t *testing.T) {
	base := audit.Entry{Seq: 1, Time: time.Unix(0, 5).UTC(), Event: audit.Event{Actor: "ab", Role: "c", Action: "x.y", Outcome: audit.Success}}
	moved := base
	moved.Actor, moved.Role = "a", "bc"
	d1, d2 := base, base
	d1.Detail = map[string]string{"a": "b", "c": "d"}
	d2.Detail = map[string]string{"a": "bc", "": "d"}
	for _, p := range [][2]audit.Entry{{base, moved}, {d1, d2}} {
		if string(audit.HashEntry(p[0])) == string(audit.HashEntry(p[1])) {
			t.Fatalf("%+v and %+v hash alike", p[0], p[1])
		}
	}
}

// TestExportedLinesRehash: an exported line carries everything its hash
// covers (an outside tool can re-check the chain).
func TestExportedLinesRehash(t *testing.T) {
	e := newEnv(t)
	e.record(t, 5)
	var b strings.Builder
	if err := e.log.Export(context.Background(), &b, 0, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines", len(lines))
	}
	var prev []byte
	for _, ln := range lines {
		var en audit.Entry
		if err := json.Unmarshal([]byte(ln), &en); err != nil {
			t.Fatal(err)
		}
		if string(audit.HashEntry(en)) != string(en.Hash) || string(en.Prev) != string(prev) {
			t.Fatalf("line %s does not re-hash", ln)
		}
		prev = en.Hash
	}
}

// TestExportFollows: a follower sees entries appended while it follows
// (by this process, and by another Log on the same store, found by
// polling), in order, exactly once; a collector resumes from a position.
func TestExportFollows(t *testing.T) {
	e := newEnv(t)
	e.record(t, 3)
	other := e.newLog(t, audit.Config{}) // another process's log: no shared wake-up
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- e.log.Export(ctx, pw, 0, true); pw.Close() }()
	const n = 40
	go func() {
		for i := range n {
			l := e.log
			if i%2 == 1 {
				l = other
			}
			if err := l.Record(context.Background(), event(100+i)); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	sc := bufio.NewScanner(pr)
	var seqs []int64
	for len(seqs) < n+3 && sc.Scan() {
		var en audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, en.Seq)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("Export = %v", err)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("follower saw %v; want 1..%d in order, once each", seqs, n+3)
		}
	}
	if len(seqs) != n+3 {
		t.Fatalf("follower saw %d entries", len(seqs))
	}
	// Resume after seq 20.
	var b strings.Builder
	if err := e.log.Export(context.Background(), &b, 20, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var first audit.Entry
	_ = json.Unmarshal([]byte(lines[0]), &first)
	if len(lines) != n+3-20 || first.Seq != 21 {
		t.Fatalf("resumed export: %d lines from seq %d", len(lines), first.Seq)
	}
}

// TestRecordCheckpointsWhenDue: Record signs a checkpoint (and anchors it)
// when the last is older than CheckpointEvery; Run does when the head moved.
func TestRecordCheckpointsWhenDue(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l := e.newLog(t, audit.Config{AnchorFile: e.anchor, CheckpointEvery: time.Minute, Now: clock})
	rec := func() {
		if err := l.Record(context.Background(), event(1)); err != nil {
			t.Fatal(err)
		}
	}
	cps := func() int {
		cs, err := e.st.ListAuditCheckpoints(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	rec() // first: due at once
	rec()
	advance(30 * time.Second)
	rec()
	if n := cps(); n != 1 {
		t.Fatalf("%d checkpoints within a minute, want 1", n)
	}
	advance(31 * time.Second)
	rec()
	if n := cps(); n != 2 {
		t.Fatalf("%d checkpoints after a minute, want 2", n)
	}
	rep := verify(t, l, audit.VerifyOptions{AnchorFile: e.anchor})
	if !rep.OK || rep.AnchorCheckpoints != 2 || rep.LastCheckpointSeq != 4 {
		t.Fatalf("%+v", rep)
	}

	// Run: a real short period.
	lr := e.newLog(t, audit.Config{CheckpointEvery: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- lr.Run(ctx) }()
	if err := e.log.Record(context.Background(), event(9)); err != nil {
		t.Fatal(err)
	}
	lastSeq := func() int64 {
		cs, _ := e.st.ListAuditCheckpoints(context.Background())
		return cs[len(cs)-1].Seq
	}
	deadline := time.Now().Add(5 * time.Second)
	for lastSeq() != 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	n := cps()
	if lastSeq() != 5 {
		t.Fatalf("Run did not checkpoint the moved head (last checkpoint at seq %d)", lastSeq())
	}
	// The head no longer moves: Run signs no more.
	lr2 := e.newLog(t, audit.Config{CheckpointEvery: 10 * time.Millisecond})
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { runDone <- lr2.Run(ctx2) }()
	time.Sleep(100 * time.Millisecond)
	cancel2()
	<-runDone
	if got := cps(); got > n+1 {
		t.Fatalf("Run signed %d checkpoints of an unchanged head", got-n)
	}
}

func TestVerifyNeedsKeys(t *testing.T) {
	e := newEnv(t)
	l, err := audit.New(audit.Config{Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), event(1)); err == nil {
		t.Fatal("Record without keys succeeded (its entry would carry no MAC)")
	}
	if _, err := l.Entries(context.Background(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(context.Background()); err == nil {
		t.Fatal("Verify without keys succeeded")
	}
	if _, err := l.Checkpoint(context.Background()); err == nil {
		t.Fatal("Checkpoint without keys succeeded")
	}
}

func TestParseHead(t *testing.T) {
	h := audit.Head{Seq: 12, Hash: make([]byte, 32)}
	got, err := audit.ParseHead(h.String())
	if err != nil || got.String() != h.String() {
		t.Fatalf("ParseHead(%s) = %v, %v", h, got, err)
	}
	for _, bad := range []string{"", "12", "x:00", "0:" + strings.Repeat("00", 32), "12:zz", "12:0011"} {
		if _, err := audit.ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}

// BenchmarkRecord: one Record (validate, hash, one write transaction that
// reads the previous hash, fsync as the store commits) with no checkpoint
// due; in parallel the store's group commit shares fsyncs.
func BenchmarkRecord(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	ev := event(1)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := e.log.Record(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8) // 16 writers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := e.log.Record(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkHashEntry(b *testing.B) {
	en := audit.Entry{Seq: 1, Time: time.Now(), Event: event(1), Prev: make([]byte, 32)}
	for b.Loop() {
		audit.HashEntry(en)
	}
}

// BenchmarkVerify: a full verify of a 5000-entry chain with a checkpoint.
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if err := e.log.Record(ctx, event(w*1000+i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e.checkpoint(b)
	for b.Loop() {
		rep, err := e.log.Verify(ctx)
		if err != nil || !rep.OK || rep.Entries != 5000 {
			b.Fatal(rep, err)
		}
	}
}
