package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestParallelStreamsInOneConversation: a bot streams many replies at
// once in one conversation, chunks of different streams racing each
// other. Each stream keeps at most its first and latest chunk stored, the
// finals leave no chunk, and each final is its stream's own text.
func TestParallelStreamsInOneConversation(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_parallel")
	q := h.post(tok, conv, map[string]any{"type": "message", "text": "q"})
	const streams, chunks = 16, 12
	sids := make([]string, streams)
	for s := range streams {
		r := h.botReply(conv, q, channelDataForm("typing", fmt.Sprintf("s%d-1", s), "streaming", 1, ""))
		if r.status != 200 {
			t.Fatalf("stream %d start: %d %s", s, r.status, r.raw)
		}
		sids[s] = r.str("id")
	}
	var wg sync.WaitGroup
	errs := make(chan string, streams*chunks)
	for s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 2; i <= chunks; i++ {
				if r := h.botReply(conv, q, channelDataForm("typing", fmt.Sprintf("s%d-%d", s, i), "streaming", i, sids[s])); r.status != 200 {
					errs <- fmt.Sprintf("stream %d chunk %d: %d %s", s, i, r.status, r.raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n, _ := storedStream(t, h, conv); n != 2*streams {
		t.Fatalf("%d stream records stored for %d open streams, want %d (first and latest each)", n, streams, 2*streams)
	}
	for s := range streams {
		if r := h.botReply(conv, q, channelDataForm("message", fmt.Sprintf("final-%d", s), "final", chunks+1, sids[s])); r.status != 200 {
			t.Fatalf("final %d: %d %s", s, r.status, r.raw)
		}
	}
	if n, all := storedStream(t, h, conv); n != 0 || all != 1+streams {
		t.Fatalf("after the finals: %d stream records, %d messages; want 0 and %d", n, all, 1+streams)
	}
	acts, _ := h.history(tok, conv, "")
	var got []string
	for _, a := range acts {
		if s, _ := a["text"].(string); strings.HasPrefix(s, "final-") {
			got = append(got, s)
		}
	}
	if len(got) != streams {
		t.Fatalf("history finals: %v", got)
	}
}
