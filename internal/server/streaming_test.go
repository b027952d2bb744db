package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Streamed replies: a bot's typing chunks reach open streams live, history
// keeps the final message only, and a client that reconnects from any
// watermark sees each chunk at most once and the latest text.

// streamForm builds a stream activity in one of the two forms bots send.
type streamForm func(typ, text, streamType string, seq int, streamID string) map[string]any

func channelDataForm(typ, text, streamType string, seq int, streamID string) map[string]any {
	cd := map[string]any{"streamType": streamType, "streamSequence": seq}
	if streamID != "" {
		cd["streamId"] = streamID
	}
	return map[string]any{"type": typ, "text": text, "channelData": cd}
}

// entityForm is what the Agents SDK's StreamingResponse sends (1.8.x): a
// streaminfo entity, and later chunks carry the stream id as their own id.
func entityForm(typ, text, streamType string, seq int, streamID string) map[string]any {
	e := map[string]any{"type": "streaminfo", "streamType": streamType, "streamSequence": seq}
	a := map[string]any{"type": typ, "text": text, "entities": []any{e}}
	if streamID != "" {
		e["streamId"] = streamID
		a["id"] = streamID
	}
	return a
}

// botReply posts a bot reply to replyTo and returns the answer.
func (h *harness) botReply(conv, replyTo string, act any) resp {
	h.t.Helper()
	return h.bot("POST", convPath(conv)+"/activities/"+url.PathEscape(replyTo), act)
}

// framesUntil reads frames (with their watermarks) until pred holds.
func (s *streamConn) framesUntil(timeout time.Duration, pred func([]map[string]any) bool) ([]map[string]any, []string) {
	s.t.Helper()
	var got []map[string]any
	var marks []string
	deadline := time.Now().Add(timeout)
	for !pred(got) {
		f, err := s.next(time.Until(deadline))
		if err != nil {
			s.t.Fatalf("stream read: %v (got %v)", err, texts(got))
		}
		got = append(got, f.Activities...)
		if f.Watermark != nil {
			marks = append(marks, *f.Watermark)
		}
	}
	return got, marks
}

// quiet asserts that no activity arrives on the stream for d.
func (s *streamConn) quiet(d time.Duration) {
	s.t.Helper()
	if f, err := s.next(d); err == nil {
		s.t.Fatalf("unexpected activities on the stream: %v", texts(f.Activities))
	}
}

func hasFinal(text string) func([]map[string]any) bool {
	return func(acts []map[string]any) bool {
		for _, a := range acts {
			if a["type"] == "message" && a["text"] == text {
				return true
			}
		}
		return false
	}
}

// reconnect opens a second stream from watermark wm (GET /conversations/{id}).
func (h *harness) reconnect(tok, conv, wm string) *streamConn {
	h.t.Helper()
	r := h.do("GET", "/conversations/"+conv+"?watermark="+wm, tok, nil, nil)
	if r.status != 200 {
		h.t.Fatalf("reconnect: %d %s", r.status, r.raw)
	}
	s, _, err := h.dial(r.str("streamUrl"), "")
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func ids(acts []map[string]any) []string {
	var out []string
	for _, a := range acts {
		id, _ := a["id"].(string)
		out = append(out, id)
	}
	return out
}

func streamData(a map[string]any) map[string]any {
	cd, _ := a["channelData"].(map[string]any)
	return cd
}

// storedStream counts conv's stored records by visibility.
func storedStream(t *testing.T, h *harness, conv string) (stream, all int) {
	t.Helper()
	for after := int64(-1); ; {
		recs, err := h.st.Read(context.Background(), conv, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return stream, all
		}
		for _, r := range recs {
			after = r.Seq
			switch r.Visibility {
			case store.VisibleStream:
				stream++
			case store.VisibleAll:
				all++
			}
		}
	}
}

func TestStreamedReply(t *testing.T) {
	for name, form := range map[string]streamForm{"channelData": channelDataForm, "entity": entityForm} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tok, conv, start := h.started("dl_stream")
			live, _, err := h.dial(start.str("streamUrl"), "")
			if err != nil {
				t.Fatal(err)
			}
			q := h.post(tok, conv, map[string]any{"type": "message", "text": "tell me a story"})
			_, qMarks := live.framesUntil(5*time.Second, hasText("tell me a story"))
			beforeStream := qMarks[len(qMarks)-1]

			// An informative update starts the stream: its id is the stream's.
			r := h.botReply(conv, q, form("typing", "thinking…", "informative", 1, ""))
			if r.status != 200 || r.str("id") == "" {
				t.Fatalf("informative update: %d %s", r.status, r.raw)
			}
			sid := r.str("id")
			words := []string{"Once", "Once upon", "Once upon a", "Once upon a time", "Once upon a time, a gateway"}
			chunkIDs := []string{sid}
			var midMark string
			for i, w := range words[:3] {
				r := h.botReply(conv, q, form("typing", w, "streaming", i+2, sid))
				if r.status != 200 || r.str("id") == "" {
					t.Fatalf("chunk %d: %d %s", i, r.status, r.raw)
				}
				chunkIDs = append(chunkIDs, r.str("id"))
				_, marks := live.framesUntil(5*time.Second, hasText(w))
				if i == 1 {
					midMark = marks[len(marks)-1] // the watermark of chunk "Once upon"
				}
			}
			// Every chunk carries the stream metadata in channelData (the
			// entity form is copied there for Web Chat 4.18.1).
			sofar := h.reconnect(tok, conv, beforeStream)
			got, _ := sofar.framesUntil(5*time.Second, hasText("Once upon a"))
			if want := []string{chunkIDs[0], chunkIDs[3]}; strings.Join(ids(got), ",") != strings.Join(want, ",") {
				t.Fatalf("reconnect from before the stream got %v (%v), want the first and the latest chunk %v", ids(got), texts(got), want)
			}
			if cd := streamData(got[0]); cd["streamType"] != "informative" || cd["streamId"] != nil {
				t.Fatalf("first chunk channelData = %v", cd)
			}
			if cd := streamData(got[1]); cd["streamType"] != "streaming" || cd["streamId"] != sid || cd["streamSequence"] != float64(4) {
				t.Fatalf("latest chunk channelData = %v, want streaming, streamId %s, sequence 4", cd, sid)
			}
			if name == "entity" {
				ents, _ := got[1]["entities"].([]any)
				if len(ents) != 1 || ents[0].(map[string]any)["type"] != "streaminfo" {
					t.Fatalf("the streaminfo entity was not kept: %v", got[1]["entities"])
				}
			}
			// Mid-stream reconnect from a chunk's watermark: the later chunk
			// once, nothing before it.
			mid := h.reconnect(tok, conv, midMark)
			got, _ = mid.framesUntil(5*time.Second, hasText("Once upon a"))
			if strings.Join(ids(got), ",") != chunkIDs[3] {
				t.Fatalf("reconnect from chunk watermark %s got %v, want [%s]", midMark, ids(got), chunkIDs[3])
			}
			// A client that polls (GET activities) sees no chunk mid-stream,
			// and its watermark moves past them.
			polled, pollMark := h.history(tok, conv, beforeStream)
			if len(polled) != 0 || pollMark == beforeStream {
				t.Fatalf("polling mid-stream got %v, watermark %s (was %s)", texts(polled), pollMark, beforeStream)
			}
			// The stream goes on: every open stream gets the rest once. A
			// stream counts as open once its replay is done (until then a
			// chunk superseded before the replay reads it is skipped, as
			// designed): wait for the three.
			h.waitMetric(t, `parley_open_streams_by_site{site="`+h.site.ID+`"}`, func(v float64) bool { return v == 3 })
			for i, w := range words[3:] {
				if r := h.botReply(conv, q, form("typing", w, "streaming", i+5, sid)); r.status != 200 {
					t.Fatalf("chunk: %d %s", r.status, r.raw)
				}
			}
			final := words[len(words)-1] + "."
			// The Agents SDK skips a sequence number before the final.
			if r := h.botReply(conv, q, form("message", final, "final", 8, sid)); r.status != 200 {
				t.Fatalf("final: %d %s", r.status, r.raw)
			}
			rest := []string{"typing:" + words[3], "typing:" + words[4], "message:" + final}
			for name, s := range map[string]*streamConn{"live": live, "from before the stream": sofar, "from a chunk": mid} {
				got, _ := s.framesUntil(5*time.Second, hasFinal(final))
				if strings.Join(texts(got), "|") != strings.Join(rest, "|") {
					t.Errorf("%s: the rest of the stream = %v, want %v", name, texts(got), rest)
				}
				last := got[len(got)-1]
				if cd := streamData(last); cd["streamType"] != "final" || cd["streamId"] != sid {
					t.Errorf("%s: final channelData = %v", name, cd)
				}
			}
			// History: the question and the final message, no chunk,
			// whatever the watermark.
			hist, wm := h.history(tok, conv, "")
			if got := texts(hist); strings.Join(got, "|") != "message:tell me a story|message:"+final {
				t.Fatalf("history = %v", got)
			}
			if after, _ := h.history(tok, conv, pollMark); len(after) != 1 || after[0]["text"] != final {
				t.Fatalf("polling after the end got %v, want the final message once", texts(after))
			}
			if after, _ := h.history(tok, conv, midMark); len(after) != 1 || after[0]["text"] != final {
				t.Fatalf("history after a chunk's watermark = %v", texts(after))
			}
			// A page that reloads after the end gets the final once.
			for _, from := range []string{"", beforeStream, midMark} {
				s := h.reconnect(tok, conv, from)
				got, marks := s.framesUntil(5*time.Second, hasFinal(final))
				for _, a := range got {
					if a["type"] == "typing" {
						t.Fatalf("reconnect from %q after the end replayed a chunk: %v", from, texts(got))
					}
				}
				if marks[len(marks)-1] != wm {
					t.Errorf("reconnect from %q ends at watermark %s, history at %s", from, marks[len(marks)-1], wm)
				}
				s.quiet(300 * time.Millisecond)
			}
			// Nothing of the chunks is left in the store.
			if n, all := storedStream(t, h, conv); n != 0 || all != 2 {
				t.Fatalf("stored after the end: %d stream records, %d messages; want 0 and 2", n, all)
			}
		})
	}
}

// A chunk naming another conversation's stream, a message, or an ended
// stream is refused; a final message naming one is kept as a plain message
// and removes nothing; a user cannot touch the bot's stream.
func TestStreamSpoofing(t *testing.T) {
	h := newHarness(t)
	tokA, convA, _ := h.started("dl_a")
	tokB, convB, _ := h.started("dl_b")
	qA := h.post(tokA, convA, map[string]any{"type": "message", "text": "qa"})
	qB := h.post(tokB, convB, map[string]any{"type": "message", "text": "qb"})
	r := h.botReply(convA, qA, channelDataForm("typing", "A1", "streaming", 1, ""))
	if r.status != 200 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	sidA := r.str("id")
	if r := h.botReply(convA, qA, channelDataForm("typing", "A1 A2", "streaming", 2, sidA)); r.status != 200 {
		t.Fatalf("chunk: %d %s", r.status, r.raw)
	}
	refused := map[string]any{
		"another conversation's stream":   channelDataForm("typing", "B?", "streaming", 2, sidA),
		"an activity that is no stream":   channelDataForm("typing", "B?", "streaming", 2, qB),
		"a made-up stream id":             channelDataForm("typing", "B?", "streaming", 2, convB+"|0000099"),
		"an unknown stream type":          map[string]any{"type": "typing", "text": "x", "channelData": map[string]any{"streamType": "Streaming"}},
		"a final typing":                  channelDataForm("typing", "x", "final", 2, sidA),
		"a streaming message":             channelDataForm("message", "x", "streaming", 1, ""),
		"a final without stream id":       channelDataForm("message", "x", "final", 2, ""),
		"a case variant of streamId":      json.RawMessage(`{"type":"typing","text":"x","channelData":{"streamType":"streaming","StreamId":"` + sidA + `"}}`),
		"a duplicate streamType":          json.RawMessage(`{"type":"typing","text":"x","channelData":{"streamType":"streaming","streamType":"final"}}`),
		"a case variant of streaminfo":    map[string]any{"type": "typing", "text": "x", "entities": []any{map[string]any{"type": "StreamInfo", "streamType": "streaming"}}},
		"two streaminfo entities":         map[string]any{"type": "typing", "text": "x", "entities": []any{map[string]any{"type": "streaminfo", "streamType": "streaming"}, map[string]any{"type": "streaminfo", "streamType": "streaming"}}},
		"entity and channelData disagree": map[string]any{"type": "typing", "text": "x", "channelData": map[string]any{"streamType": "streaming"}, "entities": []any{map[string]any{"type": "streaminfo", "streamType": "informative"}}},
		"a bad sequence":                  channelDataForm("typing", "x", "streaming", 0, ""),
	}
	for name, act := range refused {
		if r := h.botReply(convB, qB, act); r.status != 400 || r.errCode() != "BadArgument" {
			t.Errorf("%s: %d %s, want 400 BadArgument", name, r.status, r.raw)
		}
	}
	// A final naming A's stream from B is B's plain message.
	if r := h.botReply(convB, qB, channelDataForm("message", "B final", "final", 3, sidA)); r.status != 200 {
		t.Fatalf("foreign final: %d %s", r.status, r.raw)
	}
	// The user of A posts a typing that names the bot's stream: kept as the
	// user's typing, removes nothing.
	h.post(tokA, convA, map[string]any{"type": "typing", "channelData": map[string]any{"streamType": "final", "streamId": sidA}})
	if n, _ := storedStream(t, h, convA); n != 3 { // first chunk, latest chunk, the user's typing
		t.Fatalf("A's stream records after spoofing: %d, want 3", n)
	}
	// A's stream goes on and ends normally; a chunk after its end is refused.
	if r := h.botReply(convA, qA, channelDataForm("message", "A final", "final", 3, sidA)); r.status != 200 {
		t.Fatalf("final: %d %s", r.status, r.raw)
	}
	if r := h.botReply(convA, qA, channelDataForm("typing", "late", "streaming", 4, sidA)); r.status != 400 {
		t.Fatalf("chunk after the end: %d %s, want 400", r.status, r.raw)
	}
	if hist, _ := h.history(tokB, convB, ""); strings.Join(texts(hist), "|") != "message:qb|message:B final" {
		t.Fatalf("B's history = %v", texts(hist))
	}
}

// However many chunks a stream sends, the store keeps at most two chunk
// bodies of it, a slow client is caught up with the latest text, and past
// the limit chunks are refused until the final message.
func TestStreamBounded(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_many")
	q := h.post(tok, conv, map[string]any{"type": "message", "text": "q"})
	qMark := conversationWatermark(t, h, tok, conv)
	r := h.botReply(conv, q, channelDataForm("typing", "0", "streaming", 1, ""))
	sid := r.str("id")
	const limit = 1000 // conversation.maxStreamChunks
	big := strings.Repeat("x", 2000)
	for i := 2; i <= limit; i++ {
		r := h.botReply(conv, q, channelDataForm("typing", big+fmt.Sprint(i), "streaming", i, sid))
		if r.status != 200 {
			t.Fatalf("chunk %d: %d %s", i, r.status, r.raw)
		}
		if i%250 == 0 {
			if n, _ := storedStream(t, h, conv); n != 2 {
				t.Fatalf("after %d chunks %d stream records are stored, want 2", i, n)
			}
			// A client that reconnects gets the first chunk and the latest.
			got := h.reconnect(tok, conv, qMark).collect(5*time.Second, hasText(big+fmt.Sprint(i)))
			if want := "typing:0|typing:" + big + fmt.Sprint(i); strings.Join(texts(got), "|") != want {
				t.Fatalf("reconnect after %d chunks got %d activities", i, len(got))
			}
		}
	}
	if r := h.botReply(conv, q, channelDataForm("typing", "more", "streaming", limit+1, sid)); r.status != 400 || !strings.Contains(string(r.raw), "final message") {
		t.Fatalf("chunk past the limit: %d %s, want 400", r.status, r.raw)
	}
	if r := h.botReply(conv, q, channelDataForm("message", "done", "final", limit+1, sid)); r.status != 200 {
		t.Fatalf("final: %d %s", r.status, r.raw)
	}
	if got := h.reconnect(tok, conv, qMark).collect(5*time.Second, hasFinal("done")); len(got) != 1 {
		t.Fatalf("reconnect after the end got %v", texts(got))
	}
	if n, all := storedStream(t, h, conv); n != 0 || all != 2 {
		t.Fatalf("stored after the end: %d stream records, %d messages", n, all)
	}
}

// conversationWatermark is the history's watermark now.
func conversationWatermark(t *testing.T, h *harness, tok, conv string) string {
	t.Helper()
	_, wm := h.history(tok, conv, "")
	return wm
}

// An entity-form first chunk whose channelData also holds stream members
// without a streamType (here the user's message id as streamId): Parley
// writes channelData from the entity alone, so clients never see another
// activity's id as the chunk's stream (Web Chat groups by it), and the
// stream goes on and ends as any other (review: the bot's streamId was
// kept, and the stored chunk then disagreed with its entity).
func TestStreamEntityFirstChunkReplacesChannelDataStreamMembers(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	ws, _, err := h.dial(start.str("streamUrl"), "")
	if err != nil {
		t.Fatal(err)
	}
	q := h.post(tok, conv, map[string]any{"type": "message", "text": "question"})
	first := entityForm("typing", "A1", "streaming", 1, "")
	first["channelData"] = map[string]any{"streamId": q, "streamSequence": 7, "custom": "kept"}
	r := h.botReply(conv, q, first)
	if r.status != 200 {
		t.Fatalf("first chunk: %d %s", r.status, r.raw)
	}
	sid := r.str("id")
	for _, a := range ws.collect(5*time.Second, hasText("A1")) {
		if a["text"] != "A1" {
			continue
		}
		cd, _ := a["channelData"].(map[string]any)
		if cd["streamId"] != nil || cd["streamSequence"] != nil || cd["streamType"] != "streaming" || cd["custom"] != "kept" {
			t.Fatalf("first chunk's channelData as clients see it: %v", cd)
		}
	}
	if r := h.botReply(conv, q, entityForm("typing", "A1 A2", "streaming", 2, sid)); r.status != 200 {
		t.Fatalf("second chunk: %d %s", r.status, r.raw)
	}
	if r := h.botReply(conv, q, entityForm("message", "A final", "final", 3, sid)); r.status != 200 {
		t.Fatalf("final: %d %s", r.status, r.raw)
	}
	if n, _ := storedStream(t, h, conv); n != 0 {
		t.Fatalf("stream records left after the final: %d", n)
	}
}

// A bot cannot update a stream's chunk: it would become a permanent entry
// of the history beside the final message (review: the PUT promoted the
// chunk, and the final's supersede, which empties chunks only, left it).
func TestStreamChunkCannotBeUpdated(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	q := h.post(tok, conv, map[string]any{"type": "message", "text": "question"})
	r := h.botReply(conv, q, channelDataForm("typing", "A1", "streaming", 1, ""))
	sid := r.str("id")
	r = h.botReply(conv, q, channelDataForm("typing", "A1 A2", "streaming", 2, sid))
	latest := r.str("id")
	if u := h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(latest), channelDataForm("typing", "A1 A2 edited", "streaming", 2, sid)); u.status != 400 {
		t.Fatalf("PUT on a chunk: %d %s, want 400", u.status, u.raw)
	}
	if r := h.botReply(conv, q, channelDataForm("message", "A final", "final", 3, sid)); r.status != 200 {
		t.Fatalf("final: %d %s", r.status, r.raw)
	}
	if hist, _ := h.history(tok, conv, ""); strings.Join(texts(hist), "|") != "message:question|message:A final" {
		t.Fatalf("history after the final: %v", texts(hist))
	}
	// The final message itself is the bot's to update, as any message.
	final := ""
	if hist, _ := h.history(tok, conv, ""); len(hist) == 2 {
		final, _ = hist[1]["id"].(string)
	}
	if u := h.bot("PUT", convPath(conv)+"/activities/"+url.PathEscape(final), map[string]any{"type": "message", "text": "A final, edited"}); u.status != 200 {
		t.Fatalf("PUT on the final: %d %s", u.status, u.raw)
	}
}
