package conversation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/parley-gw/parley/internal/store"
)

// Codec turns an activity's JSON, and an attachment's bytes, into the
// opaque blobs the store keeps and back. Blobs start with a format byte:
// the plain codec (tests, tools) stores JSON as is; the sealed codec
// encrypts under the conversation's data key.
type Codec interface {
	// Prepare readies conv's key (creating it on first use). Append calls
	// it before the store's write transaction, where Encode then runs.
	Prepare(ctx context.Context, conv string) error
	// EncodeRecord and DecodeRecord do it for the activity stored at seq
	// in conv's log: a sealed record is bound to its position.
	EncodeRecord(ctx context.Context, conv string, seq int64, plain []byte) ([]byte, error)
	DecodeRecord(ctx context.Context, conv string, seq int64, blob []byte) ([]byte, error)
	// EncodeOutbox and DecodeOutbox do it for the bot's copy of an
	// activity (outbox items and dead letters): a blob of one kind does
	// not decode as the other.
	EncodeOutbox(ctx context.Context, conv string, plain []byte) ([]byte, error)
	DecodeOutbox(ctx context.Context, conv string, blob []byte) ([]byte, error)
	// EncodeFile and DecodeFile do the same for attachment id's bytes.
	EncodeFile(ctx context.Context, conv, id string, data []byte) ([]byte, error)
	DecodeFile(ctx context.Context, conv, id string, blob []byte) ([]byte, error)
}

// Storage formats: the first byte of every stored body and file.
const (
	formatPlain  byte = 0
	formatSealed byte = 1
)

// PlainCodec stores JSON and files as they are, behind a format byte. It
// refuses sealed blobs: it has no keys.
type PlainCodec struct{}

func (PlainCodec) Prepare(context.Context, string) error { return nil }

func (PlainCodec) EncodeRecord(_ context.Context, _ string, _ int64, plain []byte) ([]byte, error) {
	return append([]byte{formatPlain}, plain...), nil
}

func (PlainCodec) DecodeRecord(_ context.Context, _ string, _ int64, blob []byte) ([]byte, error) {
	return decodePlain(blob, "activity")
}

func (PlainCodec) EncodeOutbox(_ context.Context, _ string, plain []byte) ([]byte, error) {
	return append([]byte{formatPlain}, plain...), nil
}

func (PlainCodec) DecodeOutbox(_ context.Context, _ string, blob []byte) ([]byte, error) {
	return decodePlain(blob, "delivery")
}

func (PlainCodec) EncodeFile(_ context.Context, _, _ string, data []byte) ([]byte, error) {
	return append([]byte{formatPlain}, data...), nil
}

func (PlainCodec) DecodeFile(_ context.Context, _, _ string, blob []byte) ([]byte, error) {
	return decodePlain(blob, "attachment")
}

func decodePlain(blob []byte, what string) ([]byte, error) {
	if len(blob) == 0 || blob[0] != formatPlain {
		return nil, fmt.Errorf("decode %s: unknown or sealed storage format", what)
	}
	return blob[1:], nil
}

// ErrNotSealed refuses a stored blob that is not a sealed one where
// content is encrypted at rest.
var ErrNotSealed = errors.New("stored content is not sealed (tampered, or written without encryption)")

func formatOf(b []byte) any {
	if len(b) == 0 {
		return "empty"
	}
	return b[0]
}

// Sealer encrypts under per-scope data keys (keyring.Envelope).
type Sealer interface {
	Prepare(ctx context.Context, scope string) error
	Seal(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, scope string, ciphertext, aad []byte) ([]byte, error)
}

// SealedCodec encrypts every body and file under its conversation's data
// key, bound (associated data) to the conversation, to its kind (a log
// entry, the bot's copy, a file), for a log entry to its position and for
// a file to its id: a blob moved to another conversation, another place in
// the log, another attachment, or from the bot's copies into the clients'
// log, fails to decrypt. It reads nothing else: a plain blob (format 0) in a
// sealed store is refused like any tampered one.
type SealedCodec struct{ S Sealer }

func activityAAD(conv string, seq int64) []byte {
	return []byte("activity\x00" + conv + "\x00" + strconv.FormatInt(seq, 10))
}

func outboxAAD(conv string) []byte { return []byte("outbox\x00" + conv) }

func fileAAD(conv, id string) []byte { return []byte("file\x00" + conv + "\x00" + id) }

func (c SealedCodec) Prepare(ctx context.Context, conv string) error {
	return c.S.Prepare(ctx, store.DataKeyScope(conv))
}

func (c SealedCodec) seal(ctx context.Context, conv string, plain, aad []byte) ([]byte, error) {
	// A Tink ciphertext (TINK output prefix) starts with byte 1, followed
	// by the data key's 4-byte key id: the format byte is Tink's own, so a
	// file is not copied once more to put one in front.
	ct, err := c.S.Seal(ctx, store.DataKeyScope(conv), plain, aad)
	if err != nil {
		return nil, err
	}
	if len(ct) == 0 || ct[0] != formatSealed {
		return nil, fmt.Errorf("seal for conversation %s: unexpected ciphertext format", conv)
	}
	return ct, nil
}

func (c SealedCodec) open(ctx context.Context, conv string, blob, aad []byte, what string) ([]byte, error) {
	if len(blob) == 0 || blob[0] != formatSealed {
		return nil, fmt.Errorf("decode %s of conversation %s: not sealed (format %v): %w", what, conv, formatOf(blob), ErrNotSealed)
	}
	pt, err := c.S.Open(ctx, store.DataKeyScope(conv), blob, aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s of conversation %s: %w", what, conv, err)
	}
	return pt, nil
}

func (c SealedCodec) EncodeRecord(ctx context.Context, conv string, seq int64, plain []byte) ([]byte, error) {
	return c.seal(ctx, conv, plain, activityAAD(conv, seq))
}

func (c SealedCodec) DecodeRecord(ctx context.Context, conv string, seq int64, blob []byte) ([]byte, error) {
	return c.open(ctx, conv, blob, activityAAD(conv, seq), "activity "+strconv.FormatInt(seq, 10))
}

func (c SealedCodec) EncodeOutbox(ctx context.Context, conv string, plain []byte) ([]byte, error) {
	return c.seal(ctx, conv, plain, outboxAAD(conv))
}

func (c SealedCodec) DecodeOutbox(ctx context.Context, conv string, blob []byte) ([]byte, error) {
	return c.open(ctx, conv, blob, outboxAAD(conv), "delivery")
}

func (c SealedCodec) EncodeFile(ctx context.Context, conv, id string, data []byte) ([]byte, error) {
	return c.seal(ctx, conv, data, fileAAD(conv, id))
}

func (c SealedCodec) DecodeFile(ctx context.Context, conv, id string, blob []byte) ([]byte, error) {
	return c.open(ctx, conv, blob, fileAAD(conv, id), "attachment "+id)
}

// Entry is a stored activity as readers see it.
type Entry struct {
	Seq        int64
	Visibility store.Visibility
	JSON       []byte // the client-facing activity
}

// Item is one activity to append.
type Item struct {
	Activity   Activity
	Visibility store.Visibility
	// ToBot, when set, derives the copy delivered to BotID from the
	// activity; Append stamps the same id, timestamp and conversation on
	// both, and enqueues the delivery in the same transaction.
	ToBot func(a Activity) (Activity, error)
	BotID string
	// Attachments are stored with the activity, in the same transaction.
	Attachments []store.Attachment
}

// Log is the conversation log service.
type Log struct {
	st    store.Store
	codec Codec
	clock *Clock
	hub   *Hub
	// streams tracks streamed replies (stream.go).
	streams *streams
}

// NewLog wires the log over a store.
func NewLog(st store.Store, codec Codec) *Log {
	return &Log{st: st, codec: codec, clock: NewClock(), hub: NewHub(), streams: newStreams()}
}

// Hub exposes the subscriber hub.
func (l *Log) Hub() *Hub { return l.hub }

// Codec exposes the storage codec (the outbox uses it too).
func (l *Log) Codec() Codec { return l.codec }

// stampedKeys are the members Append sets; whatever the caller put there
// is replaced.
var stampedKeys = [...]string{"id", "timestamp", "conversation"}

// stamp is what Append adds to an activity, as JSON members.
type stamp struct {
	id      string
	members []byte // `"conversation":{…},"id":"…","timestamp":"…"`
}

// withStamp splices the stamp's members into an encoded object that has
// none of them.
func withStamp(enc []byte, st *stamp) []byte {
	out := make([]byte, 0, len(enc)+len(st.members)+2)
	out = append(out, '{')
	out = append(out, st.members...)
	if len(enc) > 2 { // not "{}"
		out = append(out, ',')
		out = append(out, enc[1:]...)
	} else {
		out = append(out, '}')
	}
	return out
}

// Append stamps each item with id, timestamp and conversation, stores the
// items and their bot deliveries in one transaction, then wakes
// subscribers. It returns the items' activity ids.
//
// Everything that does not depend on the sequence number (validation is
// done, encoding) happens here, before the store's single writer is
// involved: the writer only splices the stamp into ready JSON.
func (l *Log) Append(ctx context.Context, conv string, items []Item) ([]string, error) {
	convJSON, err := json.Marshal(map[string]string{"id": conv})
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", conv, err)
	}
	if err := l.codec.Prepare(ctx, conv); err != nil {
		return nil, fmt.Errorf("append to %s: %w", conv, err)
	}
	// A bot's activity may be part of a streamed reply: the conversation's
	// stream activities are appended one at a time (stream.go).
	var plans []streamPlan
	for i := range items {
		if items[i].ToBot != nil || items[i].Activity.From().Role != "bot" {
			continue
		}
		if plans == nil {
			mu := l.streams.lock(conv)
			mu.Lock()
			defer mu.Unlock()
			plans = make([]streamPlan, len(items))
		}
		if plans[i], err = l.planStream(ctx, conv, &items[i]); err != nil {
			return nil, err
		}
	}
	stamps := make([]stamp, len(items))
	plains := make([][]byte, len(items))
	recs := make([]store.NewRecord, len(items))
	var outs []store.NewOutbox
	for i := range items {
		enc := items[i].Activity.encodeExcept(stampedKeys[:])
		recs[i] = store.NewRecord{Visibility: items[i].Visibility, Build: func(seq int64) ([]byte, error) {
			st := &stamps[i]
			st.id = ActivityID(conv, seq)
			ts := l.clock.Next().Format(TimestampFormat)
			m := make([]byte, 0, len(convJSON)+len(st.id)+len(ts)+48)
			m = append(m, `"conversation":`...)
			m = append(m, convJSON...)
			m = append(m, `,"id":`...)
			idJSON, err := json.Marshal(st.id)
			if err != nil {
				return nil, err
			}
			m = append(m, idJSON...)
			m = append(m, `,"timestamp":"`...)
			m = append(m, ts...)
			st.members = append(m, '"')
			plains[i] = withStamp(enc, st)
			return l.codec.EncodeRecord(ctx, conv, seq, plains[i])
		}, EndsConversation: items[i].Activity.Type() == "endOfConversation"}
		if plans != nil {
			recs[i].Supersedes = plans[i].supersedes
		}
		for _, a := range items[i].Attachments {
			if a.Data, err = l.codec.EncodeFile(ctx, conv, a.ID, a.Data); err != nil {
				return nil, fmt.Errorf("append to %s: %w", conv, err)
			}
			if a.Name, err = l.sealName(ctx, conv, a.ID, a.Name); err != nil {
				return nil, fmt.Errorf("append to %s: %w", conv, err)
			}
			recs[i].Attachments = append(recs[i].Attachments, a)
		}
		if items[i].ToBot != nil {
			botCopy, err := items[i].ToBot(items[i].Activity.Clone())
			if err != nil {
				return nil, fmt.Errorf("append to %s: bot copy: %w", conv, err)
			}
			botEnc := botCopy.encodeExcept(stampedKeys[:])
			outs = append(outs, store.NewOutbox{BotID: items[i].BotID, Build: func([]int64) (string, []byte, error) {
				// Runs after the records' Build: the stamp is set.
				blob, err := l.codec.EncodeOutbox(ctx, conv, withStamp(botEnc, &stamps[i]))
				return stamps[i].id, blob, err
			}})
		}
	}
	got, err := l.st.Append(ctx, conv, recs, outs)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", conv, err)
	}
	entries := make([]Entry, len(got))
	for i, r := range got {
		entries[i] = Entry{Seq: r.Seq, Visibility: r.Visibility, JSON: plains[i]}
		if plans != nil {
			l.settle(plans[i], r.Seq)
		}
	}
	l.hub.publish(conv, Event{Entries: entries})
	ids := make([]string, len(items))
	for i := range stamps {
		ids[i] = stamps[i].id
	}
	return ids, nil
}

// Read returns up to limit entries after the watermark, decoded.
func (l *Log) Read(ctx context.Context, conv string, after int64, limit int) ([]Entry, error) {
	return l.ReadBytes(ctx, conv, after, limit, 0)
}

// ReadBytes is Read that stops after the entry whose stored body brings
// the total to maxBytes or more (at least one entry; maxBytes <= 0: no
// byte bound), so a reader holds a bounded number of bytes whatever the
// activities' sizes.
func (l *Log) ReadBytes(ctx context.Context, conv string, after int64, limit, maxBytes int) ([]Entry, error) {
	recs, err := l.st.ReadBytes(ctx, conv, after, limit, maxBytes)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(recs))
	for _, r := range recs {
		e := Entry{Seq: r.Seq, Visibility: r.Visibility}
		if r.Visibility != store.VisibleNone {
			if e.JSON, err = l.codec.DecodeRecord(ctx, conv, r.Seq, r.Body); err != nil {
				return nil, fmt.Errorf("read %s: %w", conv, err)
			}
		}
		if r.Visibility == store.VisibleStream && l.staleChunk(conv, r.Seq, r.CreatedAt, e.JSON) {
			// An abandoned stream's chunk: replays skip it (its sequence
			// number still advances the watermark).
			e.Visibility, e.JSON = store.VisibleNone, nil
		}
		out = append(out, e)
	}
	return out, nil
}

// Get returns one entry.
func (l *Log) Get(ctx context.Context, conv string, seq int64) (Entry, error) {
	r, err := l.st.GetRecord(ctx, conv, seq)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Seq: r.Seq, Visibility: r.Visibility}
	if r.Visibility != store.VisibleNone {
		if e.JSON, err = l.codec.DecodeRecord(ctx, conv, r.Seq, r.Body); err != nil {
			return Entry{}, fmt.Errorf("get %s: %w", conv, err)
		}
	}
	return e, nil
}

// Replace swaps a stored activity (a bot's update) and pushes the new
// version, under the same id, to open streams.
func (l *Log) Replace(ctx context.Context, conv string, seq int64, a Activity) error {
	plain, err := a.Encode()
	if err != nil {
		return err
	}
	if err := l.codec.Prepare(ctx, conv); err != nil {
		return err
	}
	blob, err := l.codec.EncodeRecord(ctx, conv, seq, plain)
	if err != nil {
		return err
	}
	if err := l.st.ReplaceRecord(ctx, conv, seq, store.VisibleAll, blob); err != nil {
		return fmt.Errorf("replace %s: %w", conv, err)
	}
	l.hub.publish(conv, Event{Update: true, Entries: []Entry{{Seq: seq, Visibility: store.VisibleAll, JSON: plain}}})
	return nil
}

// Delete removes an activity's content; its sequence number stays taken.
func (l *Log) Delete(ctx context.Context, conv string, seq int64) error {
	if err := l.st.ReplaceRecord(ctx, conv, seq, store.VisibleNone, []byte{}); err != nil {
		return fmt.Errorf("delete %s: %w", conv, err)
	}
	return nil
}

// Deliver enqueues an activity for the bot only (a conversationUpdate):
// it gets an id and timestamp but is not part of the clients' log.
func (l *Log) Deliver(ctx context.Context, conv, botID string, a Activity) error {
	a = a.Clone()
	id := conv + "|" + NewID()
	a.Set("id", id)
	a.Set("timestamp", l.clock.Next().Format(TimestampFormat))
	a.Set("conversation", map[string]string{"id": conv})
	plain, err := a.Encode()
	if err != nil {
		return err
	}
	if err := l.codec.Prepare(ctx, conv); err != nil {
		return err
	}
	blob, err := l.codec.EncodeOutbox(ctx, conv, plain)
	if err != nil {
		return err
	}
	_, err = l.st.Append(ctx, conv, nil, []store.NewOutbox{{BotID: botID, Build: func([]int64) (string, []byte, error) { return id, blob, nil }}})
	if err != nil {
		return fmt.Errorf("enqueue for bot in %s: %w", conv, err)
	}
	return nil
}

// Stamp returns a fresh server timestamp (for activities that are not
// stored, such as a conversationUpdate to the bot).
func (l *Log) Stamp() string { return l.clock.Next().Format(TimestampFormat) }

// --- subscribers ---

// Event is what a subscriber is told: new entries in log order, or an
// updated entry.
type Event struct {
	Entries []Entry
	Update  bool
}

// maxQueued and maxQueuedBytes bound a subscriber's backlog (events, and
// bytes of activity JSON); past either the subscriber is marked lagged and
// must re-read from the store. The byte bound keeps a stream whose client
// reads slowly from holding more than one frame's worth of activities.
const (
	maxQueued      = 256
	maxQueuedBytes = 4 << 20
)

// Sub is one subscription to a conversation.
type Sub struct {
	conv   string
	hub    *Hub
	notify func()

	mu     sync.Mutex
	queue  []Event
	bytes  int // JSON bytes in queue
	lagged bool
}

// Take returns the queued events; lagged reports that some were dropped
// and the subscriber must catch up from the store.
func (s *Sub) Take() (events []Event, lagged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, lagged = s.queue, s.lagged
	s.queue, s.lagged, s.bytes = nil, false, 0
	return events, lagged
}

// Close unsubscribes.
func (s *Sub) Close() { s.hub.unsubscribe(s) }

func (s *Sub) push(e Event) {
	size := 0
	for _, en := range e.Entries {
		size += len(en.JSON)
	}
	s.mu.Lock()
	if len(s.queue) >= maxQueued || s.bytes+size > maxQueuedBytes {
		s.queue, s.lagged, s.bytes = nil, true, 0
	} else {
		s.queue = append(s.queue, e)
		s.bytes += size
	}
	s.mu.Unlock()
	s.notify()
}

// Hub fans appends out to the subscribers of each conversation.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*Sub]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Sub]struct{}{}} }

// Subscribe starts receiving events for conv: notify is called, on the
// publisher's goroutine, after events are queued; it must not block, and
// the subscriber collects them with Take. Subscribe before reading the
// backlog, then skip entries already seen, so nothing falls in between. An
// idle subscription holds no goroutine.
func (h *Hub) Subscribe(conv string, notify func()) *Sub {
	s := &Sub{conv: conv, hub: h, notify: notify}
	h.mu.Lock()
	m := h.subs[conv]
	if m == nil {
		m = map[*Sub]struct{}{}
		h.subs[conv] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Count is the number of open subscriptions (for metrics and tests).
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}

func (h *Hub) unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.conv]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.conv)
		}
	}
}

func (h *Hub) publish(conv string, e Event) {
	h.mu.Lock()
	subs := make([]*Sub, 0, len(h.subs[conv]))
	for s := range h.subs[conv] {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.push(e)
	}
}

// PutAttachment stores a file (a bot's upload) sealed like the log's.
func (l *Log) PutAttachment(ctx context.Context, a store.Attachment) error {
	if err := l.codec.Prepare(ctx, a.ConversationID); err != nil {
		return fmt.Errorf("put attachment: %w", err)
	}
	data, err := l.codec.EncodeFile(ctx, a.ConversationID, a.ID, a.Data)
	if err != nil {
		return fmt.Errorf("put attachment: %w", err)
	}
	a.Data = data
	if a.Name, err = l.sealName(ctx, a.ConversationID, a.ID, a.Name); err != nil {
		return err
	}
	return l.st.PutAttachment(ctx, a)
}

// sealedNamePrefix marks an attachment's file name sealed like its bytes
// (a file name is user content: "passport-jane-doe.pdf"). Names stored
// before encryption at rest have no prefix and are read as they are.
const sealedNamePrefix = "sealed:"

func nameID(id string) string { return id + "\x00name" }

func (l *Log) sealName(ctx context.Context, conv, id, name string) (string, error) {
	return SealAttachmentName(ctx, l.codec, conv, id, name)
}

// SealAttachmentName seals a file name under the conversation's data key
// (Prepare first), bound to the attachment (its own associated data, apart
// from the bytes'). The plain codec keeps names as they are.
func SealAttachmentName(ctx context.Context, codec Codec, conv, id, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	blob, err := codec.EncodeFile(ctx, conv, nameID(id), []byte(name))
	if err != nil {
		return "", fmt.Errorf("seal name of attachment %s: %w", id, err)
	}
	if len(blob) > 0 && blob[0] == formatPlain {
		return name, nil
	}
	return sealedNamePrefix + base64.RawURLEncoding.EncodeToString(blob), nil
}

func (l *Log) openName(ctx context.Context, conv, id, name string) (string, error) {
	enc, ok := strings.CutPrefix(name, sealedNamePrefix)
	if !ok {
		return name, nil
	}
	blob, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("name of attachment %s: %w", id, ErrNotSealed)
	}
	plain, err := l.codec.DecodeFile(ctx, conv, nameID(id), blob)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// OpenAttachment decrypts a file read from the store (callers read it,
// check access, then open it).
func (l *Log) OpenAttachment(ctx context.Context, a store.Attachment) (store.Attachment, error) {
	var err error
	if a.Data, err = l.codec.DecodeFile(ctx, a.ConversationID, a.ID, a.Data); err != nil {
		return store.Attachment{}, fmt.Errorf("get attachment: %w", err)
	}
	if a.Name, err = l.openName(ctx, a.ConversationID, a.ID, a.Name); err != nil {
		return store.Attachment{}, fmt.Errorf("get attachment: %w", err)
	}
	return a, nil
}
