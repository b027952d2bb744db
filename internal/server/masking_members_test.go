package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// Through the real path (not only the masking hook): a card number in the
// sender's display name, and in an uploaded file's name, reaches neither
// the bot nor the store on a site that masks cards.
func TestSiteMaskingCoversSenderNameAndUploadedFileName(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	_, secret, _ := provision(t, h.st, "bot-m", h.botRec.url, true, []string{trustedOrigin})
	if err := h.st.SetSiteMasking(ctx, "site-bot-m", store.MaskingCards); err != nil {
		t.Fatal(err)
	}
	tok, conv := startWith(t, h, secret, "dl_m")
	h.post(tok, conv, map[string]any{"type": "message", "text": "named", "from": map[string]any{"id": "dl_m", "name": "Jane " + canaryCard}})
	got := h.botRec.waitFor(t, "the named activity", func(a map[string]any) bool { return a["text"] == "named" })
	if b, _ := json.Marshal(got); strings.Contains(string(b), canaryCard) {
		t.Errorf("the bot received the card in from.name: %s", b)
	}
	body, ct := multipartBody(t, map[string]any{"type": "message", "text": "file"},
		[]filePart{{canaryCard + ".txt", "text/plain", []byte("hello")}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil); r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	up := h.botRec.waitFor(t, "the upload", func(a map[string]any) bool { return a["text"] == "file" })
	atts, _ := up["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("bot's upload activity = %v", up)
	}
	url, _ := atts[0].(map[string]any)["contentUrl"].(string)
	info := strings.Replace(url, "/views/original", "", 1)
	res, err := http.Get(info)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(raw), "4242.txt") {
		t.Fatalf("attachment info = %d %s", res.StatusCode, raw)
	}
	if strings.Contains(string(raw), canaryCard) {
		t.Errorf("the stored file name the bot reads carries the card: %s", raw)
	}
}
