// Package bench is Parley's load generator and, beside it, the floors it is
// compared with: a minimal Direct Line relay (no auth, no security of any
// kind), either in memory or durable (every activity it accepts is appended
// to a journal and fdatasync'd before it is acknowledged or passed on). The
// relay is a benchmark fixture, not a product mode; it exists so figures can
// be reported as ratios to what a bare Go relay on the same machine does,
// with and without Parley's durability promise.
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

// Relay is the floor: start, post, stream, and the Bot Connector reply
// path, with a bot reached over HTTP like the real thing. Without a journal
// it keeps activities in memory only; with one, it is the durable floor.
type Relay struct {
	public  string // base URL
	botURL  string
	client  *http.Client
	journal *Journal // nil: the in-memory floor

	mu    sync.Mutex
	convs map[string]*relayConv
	next  int
}

type relayConv struct {
	// wmu orders a conversation's appends: id, journal, then the log, so
	// the log (what streams read) only ever holds durable activities, in
	// id order.
	wmu  sync.Mutex
	mu   sync.Mutex
	log  [][]byte
	subs map[chan struct{}]struct{}
}

// NewRelay returns the in-memory relay whose public URL is base and whose
// bot is botURL.
func NewRelay(base, botURL string) *Relay {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Relay{public: base, botURL: botURL, client: &http.Client{Transport: tr, Timeout: 15 * time.Second}, convs: map[string]*relayConv{}}
}

// NewDurableRelay returns the durable floor: the same relay, but the
// conversationUpdate, the client's message before it goes to the bot and
// the bot's reply before it goes to the streams are each in j, synced,
// first. The caller closes j after the server stops.
func NewDurableRelay(base, botURL string, j *Journal) *Relay {
	r := NewRelay(base, botURL)
	r.journal = j
	return r
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

// start opens a conversation and, as Parley does, tells the bot with a
// conversationUpdate (membersAdded: the bot and the user), delivered after
// the client has its answer. The durable floor journals it first.
func (r *Relay) start(w http.ResponseWriter, req *http.Request) {
	var body struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	_ = json.NewDecoder(io.LimitReader(req.Body, 64<<10)).Decode(&body)
	r.mu.Lock()
	r.next++
	id := "relay" + strconv.Itoa(r.next)
	r.convs[id] = &relayConv{subs: map[chan struct{}]struct{}{}}
	r.mu.Unlock()
	user := body.User.ID
	if user == "" {
		user = "user-" + id
	}
	bot := map[string]string{"id": "bot", "name": "Bot"}
	cu, _ := json.Marshal(map[string]any{"type": "conversationUpdate", "id": id + "|start",
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "channelId": "directline", "serviceUrl": r.public + "/",
		"conversation": map[string]string{"id": id}, "from": map[string]string{"id": user, "role": "user"}, "recipient": bot,
		"membersAdded": []map[string]string{bot, {"id": user}}})
	if r.journal != nil {
		if err := r.journal.Append(req.Context(), cu); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "ServiceError", "message": "journal failed"}})
			return
		}
	}
	ws := "ws" + strings.TrimPrefix(r.public, "http")
	writeJSON(w, http.StatusCreated, map[string]string{"conversationId": id, "token": "none", "streamUrl": ws + "/v3/directline/conversations/" + id + "/stream"})
	go func() {
		if resp, err := r.client.Post(r.botURL, "application/json", bytes.NewReader(cu)); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
}

// appendAct stamps an activity, journals it (durable floor), stores it and
// wakes the streams.
func (r *Relay) appendAct(ctx context.Context, c *relayConv, id string, act map[string]any) (string, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	n := len(c.log) // only writers grow the log, and they hold wmu
	c.mu.Unlock()
	aid := fmt.Sprintf("%s|%07d", id, n)
	act["id"] = aid
	act["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(act)
	if err != nil {
		return "", err
	}
	if r.journal != nil {
		if err := r.journal.Append(ctx, b); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
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
	return aid, nil
}

func storeFailed(w http.ResponseWriter) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "ServiceError", "message": "activity not stored"}})
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
	aid, err := r.appendAct(req.Context(), c, id, act)
	if err != nil {
		storeFailed(w)
		return
	}
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
	aid, err := r.appendAct(req.Context(), c, id, act)
	if err != nil {
		storeFailed(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": aid})
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
