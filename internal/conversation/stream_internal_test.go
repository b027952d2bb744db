package conversation

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

type aeadSealer struct{ a tink.AEAD }

func (aeadSealer) Prepare(context.Context, string) error { return nil }
func (s aeadSealer) Seal(_ context.Context, _ string, pt, aad []byte) ([]byte, error) {
	return s.a.Encrypt(pt, aad)
}
func (s aeadSealer) Open(_ context.Context, _ string, ct, aad []byte) ([]byte, error) {
	return s.a.Decrypt(ct, aad)
}

// streamLog is a sealed log over a real SQLite store with one conversation.
func streamLog(t testing.TB) (*Log, store.Store, Codec) {
	t.Helper()
	ctx := context.Background()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	codec := SealedCodec{S: aeadSealer{a}}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now()
	if err := st.CreateBot(ctx, store.Bot{ID: "b", Name: "b", Endpoint: "http://127.0.0.1:1/api/messages", InsecureNoAuth: true, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "s", BotID: "b", Name: "s", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: "c1", BotID: "b", SiteID: "s", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return NewLog(st, codec), st, codec
}

// chunk appends a bot stream activity in the channelData form.
func chunk(t testing.TB, l *Log, typ, text, streamType, streamID string) (string, error) {
	t.Helper()
	cd := fmt.Sprintf(`{"streamType":%q`, streamType)
	if streamID != "" {
		cd += fmt.Sprintf(`,"streamId":%q`, streamID)
	}
	act, err := Parse([]byte(fmt.Sprintf(`{"type":%q,"text":%q,"channelData":%s},"from":{"id":"b","role":"bot"}}`, typ, text, cd)), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	vis := store.VisibleAll
	if typ == "typing" {
		vis = store.VisibleStream
	}
	ids, err := l.Append(context.Background(), "c1", []Item{{Activity: act, Visibility: vis}})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// visible lists the stored records that are not emptied, by visibility.
func visible(t *testing.T, st store.Store) map[int64]store.Visibility {
	t.Helper()
	recs, err := st.Read(context.Background(), "c1", -1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]store.Visibility{}
	for _, r := range recs {
		if r.Visibility != store.VisibleNone {
			out[r.Seq] = r.Visibility
		}
	}
	return out
}

// A stream left without a chunk for the idle period is abandoned: replays
// skip its chunks, the conversation's next stream removes them, and a late
// chunk of it is refused.
func TestStreamAbandoned(t *testing.T) {
	l, st, _ := streamLog(t)
	clock := time.Now()
	l.streams.now = func() time.Time { return clock }
	sid, err := chunk(t, l, "typing", "one", "streaming", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chunk(t, l, "typing", "one two", "streaming", sid); err != nil {
		t.Fatal(err)
	}
	entries, err := l.Read(context.Background(), "c1", -1, 100)
	if err != nil || len(entries) != 2 || entries[0].Visibility != store.VisibleStream || entries[1].Visibility != store.VisibleStream {
		t.Fatalf("open stream replay: %v %v", entries, err)
	}
	clock = clock.Add(streamIdle + time.Second)
	entries, err = l.Read(context.Background(), "c1", -1, 100)
	if err != nil || len(entries) != 2 {
		t.Fatalf("read: %v %v", entries, err)
	}
	for _, e := range entries {
		if e.Visibility != store.VisibleNone || e.JSON != nil {
			t.Fatalf("an abandoned stream's chunk is replayed: %d %s", e.Seq, e.JSON)
		}
	}
	if _, err := chunk(t, l, "typing", "new", "informative", ""); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, st); len(got) != 1 || got[2] != store.VisibleStream {
		t.Fatalf("after the next stream started, stored: %v; want only its chunk (seq 2)", got)
	}
	var ve *ValidationError
	if _, err := chunk(t, l, "typing", "late", "streaming", sid); !errors.As(err, &ve) {
		t.Fatalf("a late chunk of the abandoned stream: %v, want a validation error", err)
	}
}

// After a restart (a new log over the same store) a stream goes on: the
// next chunk finds the one it supersedes in the store, the final message
// supersedes the rest, and every sealed record left still decrypts at its
// position.
func TestStreamAcrossRestart(t *testing.T) {
	l, st, codec := streamLog(t)
	sid, err := chunk(t, l, "typing", "thinking", "informative", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a", "a b"} {
		if _, err := chunk(t, l, "typing", w, "streaming", sid); err != nil {
			t.Fatal(err)
		}
	}
	l2 := NewLog(st, codec)
	if _, err := chunk(t, l2, "typing", "a b c", "streaming", sid); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, st); len(got) != 2 || got[0] != store.VisibleStream || got[3] != store.VisibleStream {
		t.Fatalf("after a restart and a chunk, stored: %v; want the first (0) and the latest (3)", got)
	}
	if _, err := chunk(t, l2, "message", "a b c d", "final", sid); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, st); len(got) != 1 || got[4] != store.VisibleAll {
		t.Fatalf("after the final, stored: %v; want the final message only", got)
	}
	entries, err := l2.Read(context.Background(), "c1", -1, 100)
	if err != nil || len(entries) != 5 || string(entries[4].JSON) == "" {
		t.Fatalf("read after the stream: %d entries, %v", len(entries), err)
	}
}

// FuzzParseStream: a bot activity's stream metadata never panics the
// parser, and what withStreamData writes reads back as the same stream.
func FuzzParseStream(f *testing.F) {
	for _, s := range []string{
		`{"type":"typing","text":"a","channelData":{"streamType":"streaming","streamSequence":2,"streamId":"c|0000001"}}`,
		`{"type":"typing","text":"a","entities":[{"type":"streaminfo","streamType":"informative","streamSequence":1}]}`,
		`{"type":"message","text":"a","channelData":{"x":1},"entities":[{"type":"streaminfo","streamType":"final","streamId":"c|0000001"}]}`,
		`{"type":"typing","channelData":{"streamType":"streaming","StreamId":"x"}}`,
		`{"type":"typing","entities":[{"type":"StreamInfo"},{"type":"streaminfo","streamType":"final"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := Parse(body, DefaultLimits)
		if err != nil {
			return
		}
		si, ok, err := parseStream(a)
		if err != nil || !ok {
			return
		}
		b := withStreamData(a, si)
		enc, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(enc, Limits{})
		if err != nil {
			t.Fatalf("the translated activity does not parse: %v: %s", err, enc)
		}
		si2, ok, err := parseStream(back)
		if err != nil || !ok || si2.typ != si.typ || si2.id != si.id {
			t.Fatalf("the translated activity reads as %+v %v %v, want %+v: %s", si2, ok, err, si, enc)
		}
		cd := back.Object("channelData")
		if cd == nil || cd["streamType"] == nil {
			t.Fatalf("no streamType in channelData after translation: %s", enc)
		}
	})
}

// BenchmarkAppendChunk: what a stream chunk costs over a plain typing
// activity (sealed, real SQLite): the stream lock, the metadata parse, and
// emptying the previous chunk in the same transaction.
func BenchmarkAppendChunk(b *testing.B) {
	for _, tc := range []struct{ name, typ string }{{"typing", ""}, {"channelData", "cd"}, {"entity", "entity"}} {
		b.Run(tc.name, func(b *testing.B) {
			l, _, _ := streamLog(b)
			l.streams.max = 1 << 30
			sid := ""
			if tc.typ != "" {
				var err error
				if sid, err = chunk(b, l, "typing", "x", "streaming", ""); err != nil {
					b.Fatal(err)
				}
			}
			text := strings.Repeat("word ", 100)
			var body []byte
			switch tc.typ {
			case "":
				body = []byte(fmt.Sprintf(`{"type":"typing","text":%q,"from":{"id":"b","role":"bot"}}`, text))
			case "cd":
				body = []byte(fmt.Sprintf(`{"type":"typing","text":%q,"channelData":{"streamType":"streaming","streamSequence":2,"streamId":%q},"from":{"id":"b","role":"bot"}}`, text, sid))
			default:
				body = []byte(fmt.Sprintf(`{"type":"typing","text":%q,"entities":[{"type":"streaminfo","streamType":"streaming","streamSequence":2,"streamId":%q}],"from":{"id":"b","role":"bot"}}`, text, sid))
			}
			act, err := Parse(body, DefaultLimits)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Append(ctx, "c1", []Item{{Activity: act, Visibility: store.VisibleStream}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A stream member written with JSON escapes is the same member: its chunks
// are found and removed like any other.
func TestStreamEscapedNames(t *testing.T) {
	l, st, _ := streamLog(t)
	clock := time.Now()
	l.streams.now = func() time.Time { return clock }
	act, err := Parse([]byte(`{"type":"typing","text":"a","channelData":{"stream\u0054ype":"streaming"},"from":{"id":"b","role":"bot"}}`), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), "c1", []Item{{Activity: act, Visibility: store.VisibleStream}}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(streamIdle + time.Second)
	entries, err := l.Read(context.Background(), "c1", -1, 10)
	if err != nil || len(entries) != 1 || entries[0].Visibility != store.VisibleNone {
		t.Fatalf("an abandoned chunk with an escaped member name is replayed: %v %v", entries, err)
	}
	if got := visible(t, st); len(got) != 1 {
		t.Fatalf("stored: %v", got)
	}
}

// BenchmarkStreamStartManyOpen: what a new stream's look for its
// conversation's abandoned streams costs when the log remembers the most
// open streams it keeps (maxOpenStreams), all of other conversations.
func BenchmarkStreamStartManyOpen(b *testing.B) {
	s := newStreams()
	now := time.Now()
	for i := range maxOpenStreams {
		s.put(streamKey{conv: fmt.Sprintf("conv-%d", i), first: 1}, openStream{latest: 1, chunks: 1, last: now})
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := s.abandoned("conv-new"); len(got) != 0 {
			b.Fatal(got)
		}
	}
}

// The streams the log remembers stay bounded, and each conversation's
// abandoned streams are found whatever else is open.
func TestStreamsBoundedAndAbandonedByConversation(t *testing.T) {
	s := newStreams()
	clock := time.Now()
	s.now = func() time.Time { return clock }
	s.put(streamKey{"a", 1}, openStream{last: clock})
	s.put(streamKey{"a", 5}, openStream{last: clock.Add(time.Minute)})
	s.put(streamKey{"b", 2}, openStream{last: clock})
	clock = clock.Add(s.idle + time.Second)
	got := s.abandoned("a")
	if len(got) != 1 || got[0] != (streamKey{"a", 1}) {
		t.Fatalf("abandoned(a) = %v, want only the stream idle past the limit", got)
	}
	if got := s.abandoned("c"); len(got) != 0 {
		t.Fatalf("abandoned(c) = %v, want none", got)
	}
	s.drop(streamKey{"a", 1})
	if _, ok := s.get(streamKey{"a", 1}); ok {
		t.Fatal("a dropped stream is still open")
	}
	if _, ok := s.get(streamKey{"a", 5}); !ok {
		t.Fatal("dropping one stream forgot another of its conversation")
	}
	for i := range maxOpenStreams + 10 {
		s.put(streamKey{fmt.Sprintf("x%d", i), 1}, openStream{last: clock})
	}
	if n, held := s.count(), s.held(); n != maxOpenStreams || held != n {
		t.Fatalf("%d streams counted, %d held, want %d both", n, held, maxOpenStreams)
	}
	// A conversation that keeps opening streams pushes out its own, not
	// the others'.
	for i := range 100 {
		s.put(streamKey{"flood", int64(i)}, openStream{last: clock})
	}
	if n := len(s.open["flood"]); n > 2 {
		t.Fatalf("a flooding conversation holds %d streams at the bound, want at most 2", n)
	}
	if n, held := s.count(), s.held(); n != maxOpenStreams || held != n {
		t.Fatalf("after the flood: %d streams counted, %d held, want %d both", n, held, maxOpenStreams)
	}
}

// held counts the streams in the maps themselves (count is the counter).
func (s *streams) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, byFirst := range s.open {
		n += len(byFirst)
	}
	return n
}
