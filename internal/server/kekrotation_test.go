package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
)

// TestKEKRotationUnderLoad rotates the key-encryption key from another
// process (what `parley keys rotate --purpose kek` does) while clients keep
// posting in old and new conversations, then destroys the retired KEK once
// the server has re-wrapped what it wrapped meanwhile. Every message is
// still in its history: nothing lost, old data readable.
func TestKEKRotationUnderLoad(t *testing.T) {
	kekRotationUnderLoad(t)
}

func kekRotationUnderLoad(t *testing.T, opts ...harnessOpt) {
	h := newHarness(t, append(opts, func(c *configT) { c.Bots.KeyReload = durationT(time.Second) })...)
	ctx := t.Context()
	type client struct{ tok, conv string }
	var clients []client
	for i := 0; i < 6; i++ {
		tok, conv, _ := h.started(fmt.Sprintf("dl_user%d", i))
		clients = append(clients, client{tok, conv})
	}
	var mu sync.Mutex
	sent := map[string][]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	post := func(c client, text string) {
		h.post(c.tok, c.conv, map[string]any{"type": "message", "text": text})
		mu.Lock()
		sent[c.conv] = append(sent[c.conv], text)
		mu.Unlock()
	}
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				post(c, fmt.Sprintf("client %d message %d", i, j))
				time.Sleep(30 * time.Millisecond) // under the per-conversation rate limit
			}
		}()
	}
	// New conversations start during the rotation too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := 0; j < 4; j++ {
			tok, conv, _ := h.started(fmt.Sprintf("dl_late%d", j))
			c := client{tok, conv}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
			post(c, "late "+conv)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	admin, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := h.st.ListKeys(ctx, keyring.PurposeKEK)
	if _, err := admin.Envelope.RotateKEK(ctx); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	// The server re-reads the KEKs every key_reload and re-wraps what it
	// wrapped under the old one meanwhile.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := h.st.CountDataKeys(ctx, before[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d data keys still under the retired KEK after 10 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	destroyRetiredKEK(t, admin, before[0].ID)
	// Every message reads back: through the running server, and through a
	// fresh log (another process: no key in memory, every data key
	// unwrapped under the new KEK).
	fresh, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	lg := conversation.NewLog(h.st, fresh.Codec)
	total := 0
	for _, c := range clients {
		viaAPI := map[string]bool{}
		acts, _ := h.history(c.tok, c.conv, "")
		for _, a := range acts {
			if s, _ := a["text"].(string); s != "" {
				viaAPI[s] = true
			}
		}
		entries, err := lg.Read(ctx, c.conv, -1, 10000)
		if err != nil {
			t.Fatalf("fresh read of %s: %v", c.conv, err)
		}
		joined := ""
		for _, e := range entries {
			joined += string(e.JSON)
		}
		for _, text := range sent[c.conv] {
			if !viaAPI[text] || !strings.Contains(joined, text) {
				t.Errorf("conversation %s lost %q (API: %v)", c.conv, text, viaAPI[text])
			}
			total++
		}
	}
	t.Logf("%d messages in %d conversations all readable after rotation and destruction of the old KEK", total, len(clients))
}
