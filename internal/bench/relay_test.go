package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/echobot"
)

type journaled struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	Text         string `json:"text"`
	ReplyToID    string `json:"replyToId"`
	Conversation struct {
		ID string `json:"id"`
	} `json:"conversation"`
}

func journalIDs(t *testing.T, path string) map[string]journaled {
	t.Helper()
	out := map[string]journaled{}
	for _, l := range readLines(t, path) {
		var a journaled
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("journal line %q: %v", l, err)
		}
		out[a.ID] = a
	}
	return out
}

// startRelay serves a relay (durable with a journal path) and the echo bot
// behind a checker that sees every delivery before the bot does.
func startRelay(t *testing.T, journalPath string, beforeBot func(act journaled)) (Target, *Journal) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	botLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var j *Journal
	var r *Relay
	if journalPath != "" {
		if j, err = OpenJournal(journalPath, 64<<10); err != nil {
			t.Fatal(err)
		}
		r = NewDurableRelay(base, "http://"+botLn.Addr().String()+"/api/messages", j)
	} else {
		r = NewRelay(base, "http://"+botLn.Addr().String()+"/api/messages")
	}
	bot := echobot.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	botSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var a journaled
		_ = json.Unmarshal(body, &a)
		if beforeBot != nil {
			beforeBot(a)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		bot.ServeHTTP(w, req)
	})}
	srv := &http.Server{Handler: r.Handler()}
	go func() { _ = botSrv.Serve(botLn) }()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = botSrv.Close()
		if j != nil {
			_ = j.Close()
		}
	})
	return Target{DirectLine: base + "/v3/directline"}, j
}

// The durable floor journals and syncs every activity it accepts before it
// acknowledges or passes it on: the conversationUpdate before the start is
// answered, the client's message before the bot gets it, the bot's reply
// before a stream shows it. Checked at each of those moments by reading
// the file.
func TestDurableRelayJournalsBeforePassingOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	var mu sync.Mutex
	var problems []string
	botSaw := 0
	tgt, j := startRelay(t, path, func(a journaled) {
		mu.Lock()
		defer mu.Unlock()
		botSaw++
		if _, ok := journalIDs(t, path)[a.ID]; !ok {
			problems = append(problems, "bot got "+a.Type+" "+a.ID+" before it was journaled")
		}
	})
	ctx := context.Background()
	hc := newHTTPClient()

	// Start: the conversationUpdate is in the journal when the answer comes.
	var start struct {
		ConversationID string `json:"conversationId"`
		StreamURL      string `json:"streamUrl"`
	}
	c := &client{t: tgt, http: hc}
	if err := c.do(ctx, "POST", tgt.DirectLine+"/conversations", "", map[string]any{"user": map[string]string{"id": "u1"}}, &start); err != nil {
		t.Fatal(err)
	}
	if a, ok := journalIDs(t, path)[start.ConversationID+"|start"]; !ok || a.Type != "conversationUpdate" {
		t.Fatalf("start answered before its conversationUpdate was journaled: %+v", a)
	}

	// Stream: every activity a frame shows is already in the journal.
	ws, _, err := websocket.Dial(ctx, start.StreamURL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	shown := map[string]bool{}
	frames := make(chan struct{}, 64)
	go func() {
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var set struct{ Activities []journaled }
			_ = json.Unmarshal(data, &set)
			inJournal := journalIDs(t, path)
			mu.Lock()
			for _, a := range set.Activities {
				shown[a.ID] = true
				if _, ok := inJournal[a.ID]; !ok {
					problems = append(problems, "stream showed "+a.ID+" before it was journaled")
				}
			}
			mu.Unlock()
			frames <- struct{}{}
		}
	}()

	// Messages: the id the client gets back is journaled by then.
	const n = 5
	var ids []string
	for i := 0; i < n; i++ {
		var out struct{ ID string }
		if err := c.do(ctx, "POST", tgt.DirectLine+"/conversations/"+start.ConversationID+"/activities", "",
			map[string]any{"type": "message", "text": "hello " + string(rune('a'+i)), "from": map[string]string{"id": "u1"}}, &out); err != nil {
			t.Fatal(err)
		}
		if _, ok := journalIDs(t, path)[out.ID]; !ok {
			t.Errorf("message %s acknowledged before it was journaled", out.ID)
		}
		ids = append(ids, out.ID)
	}
	// Wait for the greeting and the n echoes on the stream.
	deadline := time.After(10 * time.Second)
	for {
		mu.Lock()
		replies := 0
		for id := range journalIDs(t, path) {
			if shown[id] && strings.Contains(id, start.ConversationID) {
				replies++
			}
		}
		mu.Unlock()
		// shown: the n messages, the n echoes, the greeting.
		if replies >= 2*n+1 {
			break
		}
		select {
		case <-frames:
		case <-deadline:
			t.Fatalf("stream showed %d of %d activities", replies, 2*n+1)
		}
	}

	recs := journalIDs(t, path)
	byType := map[string]int{}
	replyTo := map[string]bool{}
	for _, a := range recs {
		byType[a.Type]++
		if a.ReplyToID != "" {
			replyTo[a.ReplyToID] = true
		}
	}
	if byType["conversationUpdate"] != 1 || byType["message"] != 2*n+1 {
		t.Errorf("journal holds %v, want 1 conversationUpdate and %d messages (%d in, %d echoes, the greeting)", byType, 2*n+1, n, n)
	}
	for i, id := range ids {
		if recs[id].Text != "hello "+string(rune('a'+i)) {
			t.Errorf("message %s journaled as %+v", id, recs[id])
		}
		if !replyTo[id] {
			t.Errorf("no journaled reply to %s", id)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if botSaw != n+1 {
		t.Errorf("bot saw %d deliveries, want %d", botSaw, n+1)
	}
	if a, s := j.Stats(); a != int64(len(recs)) || s < 1 || s > a {
		t.Errorf("stats: %d appends, %d syncs for %d records", a, s, len(recs))
	}
}

// Under load (the benchmark's own clients), every accepted activity is
// journaled exactly once and concurrent conversations share fdatasyncs.
func TestDurableRelayUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	tgt, j := startRelay(t, path, nil)
	const clients, messages = 8, 25
	res, err := Load(context.Background(), tgt, clients, messages, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundTrips != clients*messages || res.Lost != 0 || res.Errors != 0 || res.Duplicated != 0 {
		t.Fatalf("load: %+v", res)
	}
	// Greetings may still be in flight for a moment after Load returns.
	want := clients * (1 + 1 + 2*messages) // conversationUpdate, greeting, messages and echoes
	var recs map[string]journaled
	for i := 0; i < 50; i++ {
		if recs = journalIDs(t, path); len(recs) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lines := readLines(t, path); len(lines) != want || len(recs) != want {
		t.Fatalf("journal: %d lines, %d distinct ids; want %d", len(lines), len(recs), want)
	}
	appends, syncs := j.Stats()
	if appends != int64(want) {
		t.Errorf("appends = %d, want %d", appends, want)
	}
	if syncs >= appends {
		t.Errorf("%d fdatasyncs for %d appends across %d conversations: no group commit", syncs, appends, clients)
	}
	t.Logf("%d appends, %d fdatasyncs", appends, syncs)
}

// The in-memory floor is the same relay without the journal.
func TestMemoryRelayRoundTrips(t *testing.T) {
	tgt, _ := startRelay(t, "", nil)
	res, err := Load(context.Background(), tgt, 4, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundTrips != 40 || res.Lost != 0 || res.Errors != 0 || res.Duplicated != 0 {
		t.Fatalf("load: %+v", res)
	}
}
