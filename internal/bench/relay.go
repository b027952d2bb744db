// Package bench is Parley's load generator and, beside it, the floor it is
// compared with: a minimal in-memory Direct Line relay (no auth, no
// persistence). The relay is a benchmark fixture, not a product mode; it
// exists so figures can be reported as ratios to what a bare Go relay on the
// same machine does.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Relay is the in-memory floor: start, post, stream, and the Bot Connector
// reply path, with a bot reached over HTTP like the real thing.
type Relay struct {
	public string // base URL
	botURL string
	client *http.Client

	mu    sync.Mutex
	convs map[string]*relayConv
	next  int
}

type relayConv struct {
	mu   sync.Mutex
	log  [][]byte
	subs map[chan struct{}]struct{}
}

// NewRelay returns a relay whose public URL is base and whose bot is botURL.
func NewRelay(base, botURL string) *Relay {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Relay{public: base, botURL: botURL, client: &http.Client{Transport: tr, Timeout: 15 * time.Second}, convs: map[string]*relayConv{}}
}

// Handler serves the relay.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/directline/conversations", r.start)
	mux.HandleFunc("POST /v3/directline/conversations/{id}/activities", r.post)
	mux.HandleFunc("GET /v3/directline/conversations/{id}/stream", r.stream)
	mux.HandleFunc("POST /v3/conversations/{id}/activities/{aid}", r.botReply)
	mux.HandleFunc("POST /v3/conversations/{id}/activities", r.botReply)
	return mux
}

func (r *Relay) conv(id string) *relayConv {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.convs[id]
}

func (r *Relay) start(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	r.next++
	id := "relay" + strconv.Itoa(r.next)
	r.convs[id] = &relayConv{subs: map[chan struct{}]struct{}{}}
	r.mu.Unlock()
	ws := "ws" + strings.TrimPrefix(r.public, "http")
	writeJSON(w, http.StatusCreated, map[string]string{"conversationId": id, "token": "none", "streamUrl": ws + "/v3/directline/conversations/" + id + "/stream"})
}

// appendAct stamps and stores an activity and wakes the streams.
func (r *Relay) appendAct(c *relayConv, id string, act map[string]any) string {
	c.mu.Lock()
	aid := fmt.Sprintf("%s|%07d", id, len(c.log))
	act["id"] = aid
	act["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(act)
	c.log = append(c.log, b)
	subs := make([]chan struct{}, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	for _, s := range subs {
		select {
		case s <- struct{}{}:
		default:
		}
	}
	return aid
}

func (r *Relay) post(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	c := r.conv(id)
	if c == nil {
		http.Error(w, "no conversation", http.StatusNotFound)
		return
	}
	var act map[string]any
	if err := json.NewDecoder(io.LimitReader(req.Body, 256<<10)).Decode(&act); err != nil {
		http.Error(w, "bad activity", http.StatusBadRequest)
		return
	}
	act["conversation"] = map[string]string{"id": id}
	act["serviceUrl"] = r.public + "/"
	aid := r.appendAct(c, id, act)
	toBot := map[string]any{}
	for k, v := range act {
		toBot[k] = v
	}
	toBot["recipient"] = map[string]string{"id": "bot", "name": "Bot"}
	b, _ := json.Marshal(toBot)
	resp, err := r.client.Post(r.botURL, "application/json", bytes.NewReader(b))
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": map[string]string{"code": "BotRejectedActivity", "message": "bot unreachable"}})
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	writeJSON(w, http.StatusOK, map[string]string{"id": aid})
}

func (r *Relay) botReply(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	c := r.conv(id)
	if c == nil {
		http.Error(w, "no conversation", http.StatusNotFound)
		return
	}
	var act map[string]any
	if err := json.NewDecoder(io.LimitReader(req.Body, 256<<10)).Decode(&act); err != nil {
		http.Error(w, "bad activity", http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": r.appendAct(c, id, act)})
}

func (r *Relay) stream(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	c := r.conv(id)
	if c == nil {
		http.Error(w, "no conversation", http.StatusNotFound)
		return
	}
	ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	go func() {
		defer cancel()
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	sig := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs[sig] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs, sig)
		c.mu.Unlock()
	}()
	sent := 0
	sig <- struct{}{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		c.mu.Lock()
		batch := c.log[sent:]
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		var b bytes.Buffer
		b.WriteString(`{"activities":[`)
		b.Write(bytes.Join(batch, []byte(",")))
		fmt.Fprintf(&b, `],"watermark":"%d"}`, sent+len(batch)-1)
		sent += len(batch)
		if err := ws.Write(ctx, websocket.MessageText, b.Bytes()); err != nil {
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
