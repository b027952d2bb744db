package echobot

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// gateway stands in for Parley: it serves one attachment, a /metrics page
// and a redirect, records every request, and takes the bot's replies.
type gateway struct {
	*httptest.Server
	mu      sync.Mutex
	gets    []string
	replies []string
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.Method == http.MethodPost {
			var m struct{ Text string }
			_ = json.NewDecoder(r.Body).Decode(&m)
			g.replies = append(g.replies, m.Text)
			return
		}
		g.gets = append(g.gets, r.URL.RequestURI())
		switch {
		case r.URL.Path == "/v3/attachments/abc_DEF-1/views/original" && r.URL.Query().Get("t") == "cap":
			_, _ = io.WriteString(w, "hello")
		case r.URL.Path == "/v3/attachments/redirect/views/original":
			http.Redirect(w, r, "/metrics", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "# metrics")
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) seen() ([]string, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.gets...), append([]string(nil), g.replies...)
}

func deliver(t *testing.T, bot *Bot, svc string, atts []map[string]any) {
	t.Helper()
	act := map[string]any{"type": "message", "id": "c1|0000001", "serviceUrl": svc, "channelId": "directline",
		"conversation": map[string]any{"id": "c1"}, "from": map[string]any{"id": "dl_u"}, "recipient": map[string]any{"id": "echo"}, "attachments": atts}
	body, _ := json.Marshal(act)
	rec := httptest.NewRecorder()
	bot.ServeHTTP(rec, httptest.NewRequest("POST", "/api/messages", strings.NewReader(string(body))))
	if rec.Code != 200 {
		t.Fatalf("delivery = %d %s", rec.Code, rec.Body)
	}
}

// Issue 9: the demo bot fetched any URL a client put in an attachment,
// the gateway's own /metrics included. It now fetches only Parley's own
// download links.
func TestEchoBotFetchesOnlyParleysAttachmentLinks(t *testing.T) {
	g := newGateway(t)
	svc := g.URL + "/"
	bot := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	other := newGateway(t)
	for name, u := range map[string]string{
		"gateway metrics":                 g.URL + "/metrics",
		"metadata address":                "http://169.254.169.254/latest/meta-data/",
		"another host":                    other.URL + "/v3/attachments/abc_DEF-1/views/original?t=cap",
		"dot segments":                    g.URL + "/v3/attachments/../../metrics?t=cap",
		"encoded slash":                   g.URL + "/v3/attachments/a%2F..%2Fmetrics/views/original?t=cap",
		"no capability":                   g.URL + "/v3/attachments/abc_DEF-1/views/original",
		"user info":                       strings.Replace(g.URL, "http://", "http://u:p@", 1) + "/v3/attachments/abc_DEF-1/views/original?t=cap",
		"other scheme":                    strings.Replace(g.URL, "http://", "https://", 1) + "/v3/attachments/abc_DEF-1/views/original?t=cap",
		"extra path":                      g.URL + "/v3/attachments/abc_DEF-1/views/original/more?t=cap",
		"data URL":                        "data:text/plain,hi",
		"marked untrusted by the gateway": "",
	} {
		att := map[string]any{"name": name, "contentType": "text/plain", "contentUrl": u}
		if u == "" {
			att["contentUrl"], att["parleyUntrusted"] = g.URL+"/v3/attachments/abc_DEF-1/views/original?t=cap", true
		}
		deliver(t, bot, svc, []map[string]any{att})
		gets, replies := g.seen()
		otherGets, _ := other.seen()
		if len(gets) != 0 || len(otherGets) != 0 {
			t.Fatalf("%s: the bot fetched %v %v", name, gets, otherGets)
		}
		if last := replies[len(replies)-1]; !strings.Contains(last, "only download files sent through the upload button") {
			t.Errorf("%s: reply %q", name, last)
		}
	}
	// Parley's own link is fetched, once; a redirect from it is not followed.
	deliver(t, bot, svc, []map[string]any{{"name": "notes.txt", "contentType": "text/plain", "contentUrl": g.URL + "/v3/attachments/abc_DEF-1/views/original?t=cap"}})
	deliver(t, bot, svc, []map[string]any{{"name": "r.txt", "contentType": "text/plain", "contentUrl": g.URL + "/v3/attachments/redirect/views/original?t=cap"}})
	gets, replies := g.seen()
	if len(gets) != 2 || !strings.HasPrefix(gets[0], "/v3/attachments/abc_DEF-1/") || !strings.HasPrefix(gets[1], "/v3/attachments/redirect/") {
		t.Fatalf("fetched %v", gets)
	}
	if !strings.Contains(replies[len(replies)-2], "You sent notes.txt (text/plain, 5 bytes).") || !strings.Contains(replies[len(replies)-1], "fetching it gave 302") {
		t.Fatalf("replies %q", replies[len(replies)-2:])
	}
}
