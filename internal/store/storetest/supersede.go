package storetest

import (
	"context"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testSupersedes: an appended record empties the stream records it
// supersedes in its own transaction (a streamed reply keeps only what a
// reconnecting client needs), leaves every other record alone (a bot
// cannot erase a message by naming it), never touches another
// conversation, and keeps every sequence number taken.
func testSupersedes(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	chunk := func(body string) store.NewRecord {
		r := rec(body)
		r.Visibility = store.VisibleStream
		return r
	}
	// c1: 0 message, 1 chunk, 2 chunk; c2: 0 chunk.
	if _, err := s.Append(ctx, "c1", []store.NewRecord{rec("msg"), chunk("one"), chunk("two")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "c2", []store.NewRecord{chunk("other")}, nil); err != nil {
		t.Fatal(err)
	}
	next := chunk("three")
	next.Supersedes = []int64{0, 2, 99} // a message, a chunk, nothing
	got, err := s.Append(ctx, "c1", []store.NewRecord{next}, nil)
	if err != nil || len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("append: %v %v, want seq 3", got, err)
	}
	// The same sequence numbers in c2 are not c1's.
	final := rec("final")
	final.Supersedes = []int64{0}
	if _, err := s.Append(ctx, "c1", []store.NewRecord{final}, nil); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Read(ctx, "c1", -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		vis  store.Visibility
		body string
	}{{store.VisibleAll, "msg#0"}, {store.VisibleStream, "one#1"}, {store.VisibleNone, ""}, {store.VisibleStream, "three#3"}, {store.VisibleAll, "final#4"}}
	if len(recs) != len(want) {
		t.Fatalf("c1 has %d records, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if recs[i].Seq != int64(i) || recs[i].Visibility != w.vis || string(recs[i].Body) != w.body {
			t.Errorf("c1 record %d: seq %d visibility %d body %q, want visibility %d body %q", i, recs[i].Seq, recs[i].Visibility, recs[i].Body, w.vis, w.body)
		}
	}
	other, err := s.Read(ctx, "c2", -1, 0)
	if err != nil || len(other) != 1 || other[0].Visibility != store.VisibleStream || string(other[0].Body) != "other#0" {
		t.Fatalf("c2 was touched by c1's append: %v %v", other, err)
	}
	if head, err := s.Head(ctx, "c1"); err != nil || head != 4 {
		t.Fatalf("head %d %v, want 4: sequence numbers stay taken", head, err)
	}
}
