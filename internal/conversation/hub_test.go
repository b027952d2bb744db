package conversation

import (
	"bytes"
	"testing"
)

// A subscriber's backlog is bounded by bytes as well as by events: past
// 4 MiB queued it is marked lagged (it re-reads from the store in chunks)
// and holds nothing (issue 9, finding 4).
func TestSubBacklogBoundedByBytes(t *testing.T) {
	h := NewHub()
	s := h.Subscribe("c", func() {})
	defer s.Close()
	big := Entry{Seq: 1, JSON: bytes.Repeat([]byte("x"), 1<<20)}
	for i := 0; i < 4; i++ {
		h.publish("c", Event{Entries: []Entry{big}})
	}
	if events, lagged := s.Take(); len(events) != 4 || lagged {
		t.Fatalf("4 MiB queued: %d events, lagged %v", len(events), lagged)
	}
	for i := 0; i < 5; i++ {
		h.publish("c", Event{Entries: []Entry{big}})
	}
	events, lagged := s.Take()
	if !lagged || len(events) > 1 {
		t.Fatalf("5 MiB queued: %d events kept, lagged %v; want lagged", len(events), lagged)
	}
	h.publish("c", Event{Entries: []Entry{{Seq: 2, JSON: []byte("{}")}}})
	if events, lagged := s.Take(); len(events) != 1 || lagged {
		t.Fatalf("after a Take the backlog starts again: %d events, lagged %v", len(events), lagged)
	}
}
