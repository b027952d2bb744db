package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// auditBuild is a chain builder as the audit package makes one: the store
// keeps Hash opaque, so any deterministic function of the entry will do.
func auditBuild(action string, detail map[string]string) func(int64, []byte) (store.AuditEntry, error) {
	return func(prevSeq int64, prevHash []byte) (store.AuditEntry, error) {
		e := store.AuditEntry{Seq: prevSeq + 1, Time: epoch.Add(time.Duration(prevSeq+1)*time.Second + 123), Actor: "operator:op1", Role: "owner",
			Action: action, Target: "bot:b1", Outcome: "success", Client: "c-3f2a", Detail: detail, Prev: prevHash}
		h := sha256.Sum256(fmt.Appendf(nil, "%d|%s|%x", e.Seq, e.Action, e.Prev))
		e.Hash = h[:]
		e.KeyID, e.MAC = "ac-1", h[:16]
		return e, nil
	}
}

// testAudit: AppendAudit chains each entry to the head it read in its
// transaction (concurrent appends stay gap-free and linked), returns and
// lists entries exactly as built, refuses an entry that is not the next
// one (storing nothing); checkpoints are listed in the order they were put.
func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.AuditHead(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AuditHead of an empty log = %v, want ErrNotFound", err)
	}
	if es, err := s.ListAudit(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit of an empty log = %v, %v", es, err)
	}
	first, err := s.AppendAudit(ctx, func(prevSeq int64, prevHash []byte) (store.AuditEntry, error) {
		if prevSeq != 0 || prevHash != nil {
			t.Errorf("first build got prev %d %x, want 0 and nil", prevSeq, prevHash)
		}
		return auditBuild("bots.write", map[string]string{"field": "endpoint", "reason": "a=b; c"})(prevSeq, prevHash)
	})
	if err != nil || first.Seq != 1 {
		t.Fatalf("first AppendAudit = %+v, %v", first, err)
	}
	second, err := s.AppendAudit(ctx, auditBuild("session.login", nil))
	if err != nil || second.Seq != 2 || !bytes.Equal(second.Prev, first.Hash) {
		t.Fatalf("second AppendAudit = %+v, %v; want seq 2 chained to %x", second, err, first.Hash)
	}
	got, err := s.ListAudit(ctx, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAudit = %v, %v", got, err)
	}
	if !reflect.DeepEqual(got[0], first) || !reflect.DeepEqual(got[1], second) {
		t.Fatalf("ListAudit =\n%+v\n%+v\nwant\n%+v\n%+v", got[0], got[1], first, second)
	}
	if !got[0].Time.Equal(epoch.Add(time.Second+123)) || got[0].Time.Location() != time.UTC {
		t.Fatalf("time %v: want nanosecond precision, UTC", got[0].Time)
	}
	if h, err := s.AuditHead(ctx); err != nil || !reflect.DeepEqual(h, second) {
		t.Fatalf("AuditHead = %+v, %v", h, err)
	}

	// Not the next entry, or a failing build: nothing stored.
	for name, build := range map[string]func(int64, []byte) (store.AuditEntry, error){
		"skips a seq": func(p int64, h []byte) (store.AuditEntry, error) {
			e, _ := auditBuild("x", nil)(p, h)
			e.Seq++
			return e, nil
		},
		"wrong prev": func(p int64, h []byte) (store.AuditEntry, error) {
			e, _ := auditBuild("x", nil)(p, h)
			e.Prev = []byte("forged")
			return e, nil
		},
		"build fails": func(int64, []byte) (store.AuditEntry, error) { return store.AuditEntry{}, errors.New("no") },
	} {
		if _, err := s.AppendAudit(ctx, build); err == nil {
			t.Errorf("AppendAudit that %s succeeded", name)
		}
	}
	if h, _ := s.AuditHead(ctx); h.Seq != 2 {
		t.Fatalf("head after refused appends = %d, want 2", h.Seq)
	}

	// Concurrent appends: gap-free, each linked to the one before.
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AppendAudit(ctx, auditBuild(fmt.Sprintf("a%d", i), map[string]string{"i": fmt.Sprint(i)})); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var all []store.AuditEntry
	for after := int64(0); ; {
		page, err := s.ListAudit(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != n+2 {
		t.Fatalf("%d entries listed, want %d", len(all), n+2)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if i > 0 && !bytes.Equal(e.Prev, all[i-1].Hash) {
			t.Fatalf("entry %d is not chained to entry %d", e.Seq, all[i-1].Seq)
		}
	}

	// Checkpoints.
	if cs, err := s.ListAuditCheckpoints(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("ListAuditCheckpoints of none = %v, %v", cs, err)
	}
	var put []store.AuditCheckpoint
	for _, seq := range []int64{2, 42, 42} {
		c, err := s.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: seq, Hash: all[seq-1].Hash, CreatedAt: epoch.Add(time.Duration(seq)), KeyID: "k1", Signature: []byte("sig")})
		if err != nil {
			t.Fatal(err)
		}
		if len(put) > 0 && c.ID <= put[len(put)-1].ID {
			t.Fatalf("checkpoint ids not increasing: %d after %d", c.ID, put[len(put)-1].ID)
		}
		put = append(put, c)
	}
	cs, err := s.ListAuditCheckpoints(ctx)
	if err != nil || !reflect.DeepEqual(cs, put) {
		t.Fatalf("ListAuditCheckpoints = %+v, %v; want %+v", cs, err, put)
	}
}
