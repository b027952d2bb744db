package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Store is what the log needs of the store.
type Store interface {
	AppendAudit(ctx context.Context, build func(prevSeq int64, prevHash []byte) (store.AuditEntry, error)) (store.AuditEntry, error)
	ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error)
	AuditHead(ctx context.Context) (store.AuditEntry, error)
	PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) (store.AuditCheckpoint, error)
	ListAuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error)
}

// Config builds a Log. Values come from internal/config (audit.*).
type Config struct {
	Store Store
	// Keys authenticates entries and signs checkpoints (the key set);
	// nil: the log lists and exports, but Record, Checkpoint and Verify
	// fail (an entry without a MAC would not verify).
	Keys Keys
	// AnchorFile, when set, receives every checkpoint as one JSON line
	// (audit.anchor_file): put it on another volume or WORM storage.
	AnchorFile string
	// CheckpointEvery is how often the chain head is signed: Record signs
	// one when the last was made longer ago, and Run signs one each
	// period while the head moved (0: only on demand).
	CheckpointEvery time.Duration
	// FollowPoll is how often Export with follow looks for entries other
	// processes appended (this process's own wake it at once). Required
	// (> 0) for follow.
	FollowPoll time.Duration
	Logger     *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Log is the audit log. Safe for concurrent use.
type Log struct {
	cfg Config
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) at each append

	cpMu   sync.Mutex
	lastCP time.Time // when this process last signed a checkpoint
	cpSeq  int64     // and of which seq

	macMu   sync.Mutex
	macKeys map[string][]byte // entry-MAC keys by audit-checkpoint key id
}

// New builds a log over cfg.Store.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("new audit log: no store")
	}
	if cfg.CheckpointEvery < 0 || cfg.FollowPoll < 0 {
		return nil, errors.New("new audit log: negative interval")
	}
	l := &Log{cfg: cfg, now: cfg.Now, log: cfg.Logger, changed: make(chan struct{}), cpSeq: -1, macKeys: map[string][]byte{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// Limits of an event: short facts, not documents.
const (
	maxField       = 256
	maxDetailPairs = 16
	maxDetailKey   = 64
	maxDetailValue = 256
)

var actionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ErrInvalidEvent refuses an event no caller should make (no actor, an
// action that is not a dotted name, an unknown outcome).
var ErrInvalidEvent = errors.New("invalid audit event")

// isAddress reports whether s is an IP address (with or without a port):
// the log holds pseudonyms of client addresses, never the addresses.
func isAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}

// validate refuses what only a caller's bug produces: no actor, an action
// that is not a dotted name, an unknown outcome.
func validate(e Event) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEvent}, a...)...)
	}
	if e.Actor == "" {
		return bad("no actor (use \"anonymous\" before sign-in)")
	}
	if !actionPattern.MatchString(e.Action) {
		return bad("action %q: want a dotted lower-case name such as session.login", e.Action)
	}
	switch e.Outcome {
	case Success, Failure, Denied:
	default:
		return bad("outcome %q: want success, failure or denied", e.Outcome)
	}
	return nil
}

// Markers sanitize leaves in an entry.
const (
	// AddressRemoved replaces a value that is a client address: the log
	// holds pseudonyms (redact.Pseudonymizer.Addr), never addresses.
	AddressRemoved = "[address removed]"
	// Truncated ends a value cut to its limit.
	Truncated = "…[truncated]"
	// DroppedKey is the detail key that counts pairs dropped past the
	// limit.
	DroppedKey = "dropped"
)

// sanitize makes what others can choose (a request path, a name typed at
// enrollment) fit the log without refusing the event, which would let
// whoever chooses it keep the event out: over-long values are cut, client
// addresses replaced, detail pairs past the limit dropped (counted). It
// returns a copy; the caller's map is not kept.
func sanitize(e Event) Event {
	fix := func(v string, limit int) string {
		if isAddress(v) {
			return AddressRemoved
		}
		// Bytes that are not UTF-8 would not survive the JSON of the
		// stored detail and of the export: the entry would no longer
		// match its hash (verify: "edited"). Replace them before hashing.
		return cut(strings.ToValidUTF8(v, "\uFFFD"), limit)
	}
	e.Actor, e.Role, e.Target, e.Client = fix(e.Actor, maxField), fix(e.Role, maxField), fix(e.Target, maxField), fix(e.Client, maxField)
	if len(e.Detail) == 0 {
		e.Detail = nil
		return e
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	d := make(map[string]string, min(len(keys), maxDetailPairs))
	for i, k := range keys {
		if len(keys) > maxDetailPairs && i == maxDetailPairs-1 {
			d[DroppedKey] = strconv.Itoa(len(keys) - i)
			break
		}
		ck := cut(strings.ToValidUTF8(k, "\uFFFD"), maxDetailKey)
		if ck == "" {
			ck = "-"
		}
		d[ck] = fix(e.Detail[k], maxDetailValue)
	}
	e.Detail = d
	return e
}

// cut shortens s to at most limit bytes, on a UTF-8 boundary, marked.
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit - len(Truncated)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "") + Truncated
}

func toStore(e Entry) store.AuditEntry {
	return store.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Role: e.Role, Action: e.Action, Target: e.Target,
		Outcome: string(e.Outcome), Client: e.Client, Detail: e.Detail, Prev: e.Prev, Hash: e.Hash, KeyID: e.KeyID, MAC: e.MAC}
}

func fromStore(s store.AuditEntry) Entry {
	return Entry{Seq: s.Seq, Time: s.Time, Event: Event{Actor: s.Actor, Role: s.Role, Action: s.Action, Target: s.Target,
		Outcome: Outcome(s.Outcome), Client: s.Client, Detail: s.Detail}, Prev: s.Prev, Hash: s.Hash, KeyID: s.KeyID, MAC: s.MAC}
}

// macKeyOf returns the entry-MAC key of audit-checkpoint key k (cached).
func (l *Log) macKeyOf(k *keyring.Key) ([]byte, error) {
	l.macMu.Lock()
	defer l.macMu.Unlock()
	if mk, ok := l.macKeys[k.ID]; ok {
		return mk, nil
	}
	mk, err := macKey(k)
	if err != nil {
		return nil, err
	}
	l.macKeys[k.ID] = mk
	return mk, nil
}

// errNoKeys refuses what needs the key set.
var errNoKeys = errors.New("no keys (the master key is needed)")

// checkMAC verifies e's MAC: nil, errUnverifiable (its key was destroyed)
// or why it does not verify.
func (l *Log) checkMAC(e Entry) error {
	v, err := l.cfg.Keys.View(PurposeCheckpoint)
	if err != nil {
		return err
	}
	k := v.Accepted(e.KeyID)
	if k == nil {
		if s, ok := v.Unusable(e.KeyID); ok && s == keyring.StateDestroyed {
			return fmt.Errorf("key %s: %w", e.KeyID, errUnverifiable)
		}
		return fmt.Errorf("its MAC names key %q, which is not an audit-checkpoint key of this deployment", e.KeyID)
	}
	mk, err := l.macKeyOf(k)
	if err != nil {
		return err
	}
	if !hmac.Equal(entryMAC(mk, e.Hash), e.MAC) {
		return fmt.Errorf("its MAC does not verify under key %s", e.KeyID)
	}
	return nil
}

// Record appends e to the chain, in one store transaction that reads the
// previous entry's hash, and returns only once it is durable. It never
// drops an event silently: an invalid event (ErrInvalidEvent) or a failed
// write is returned. Values others can choose are made to fit rather than
// refused (see sanitize: cut, addresses replaced, extra pairs dropped).
// When a checkpoint is due (CheckpointEvery) it signs one after the
// append; a failure there is logged, not returned (the event is recorded).
func (l *Log) Record(ctx context.Context, e Event) error {
	if err := validate(e); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	e = sanitize(e)
	if l.cfg.Keys == nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, errNoKeys)
	}
	k, err := l.cfg.Keys.Active(PurposeCheckpoint)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	mk, err := l.macKeyOf(k)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	_, err = l.cfg.Store.AppendAudit(ctx, func(prevSeq int64, prevHash []byte) (store.AuditEntry, error) {
		en := Entry{Seq: prevSeq + 1, Time: l.now().UTC(), Event: e, Prev: prevHash, KeyID: k.ID}
		en.Hash = HashEntry(en)
		en.MAC = entryMAC(mk, en.Hash)
		return toStore(en), nil
	})
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.maybeCheckpoint(ctx)
	return nil
}

// maybeCheckpoint signs a checkpoint when the last one this process made
// is older than CheckpointEvery; one at a time.
func (l *Log) maybeCheckpoint(ctx context.Context) {
	if l.cfg.Keys == nil || l.cfg.CheckpointEvery <= 0 {
		return
	}
	if !l.cpMu.TryLock() {
		return // another Record is signing one now
	}
	due := l.lastCP.IsZero() || l.now().Sub(l.lastCP) >= l.cfg.CheckpointEvery
	l.cpMu.Unlock()
	if !due {
		return
	}
	if _, err := l.Checkpoint(ctx); err != nil {
		l.log.Error("audit checkpoint failed", "err", err)
	}
}

// wait returns a channel closed at this process's next append.
func (l *Log) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// MaxPage bounds one Entries call.
const MaxPage = 1000

// Entries returns up to limit entries with Seq > after, in order (limit is
// capped at MaxPage; <= 0 means MaxPage).
func (l *Log) Entries(ctx context.Context, after int64, limit int) ([]Entry, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	rows, err := l.cfg.Store.ListAudit(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = fromStore(r)
	}
	return out, nil
}

// flusher is what Export flushes after each batch: an http.ResponseWriter
// (http.Flusher) or a *bufio.Writer.
type flusher interface{ Flush() }
type errFlusher interface{ Flush() error }

// Export writes the entries after seq after to w as JSON lines, one entry
// per line, in order. Without follow it returns at the end of the log;
// with follow it then waits for new entries (appended by this process, or
// found every FollowPoll) and writes them too, until ctx ends (returning
// nil). A collector resumes with after = the last seq it stored: it gets
// every later entry exactly once.
func (l *Log) Export(ctx context.Context, w io.Writer, after int64, follow bool) error {
	if follow && l.cfg.FollowPoll <= 0 {
		return errors.New("export audit log: follow needs FollowPoll")
	}
	enc := json.NewEncoder(w)
	for {
		changed := l.wait() // before reading: an append after the read wakes us
		page, err := l.Entries(ctx, after, MaxPage)
		if err != nil {
			if follow && ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("export audit log: %w", err)
		}
		for _, e := range page {
			if err := enc.Encode(e); err != nil {
				return fmt.Errorf("export audit log: %w", err)
			}
			after = e.Seq
		}
		if len(page) > 0 {
			switch f := w.(type) {
			case flusher:
				f.Flush()
			case errFlusher:
				if err := f.Flush(); err != nil {
					return fmt.Errorf("export audit log: %w", err)
				}
			}
		}
		if len(page) == MaxPage {
			continue
		}
		if !follow {
			return nil
		}
		t := time.NewTimer(l.cfg.FollowPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Checkpoint signs the current head of the chain with the active
// audit-checkpoint key, stores it and, when AnchorFile is set, appends it
// there (synced). An empty log is checkpointed at seq 0.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	var seq int64
	var hash []byte
	head, err := l.cfg.Store.AuditHead(ctx)
	switch {
	case err == nil:
		seq, hash = head.Seq, head.Hash
	case errors.Is(err, store.ErrNotFound):
	default:
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	if l.cfg.Keys == nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", errNoKeys)
	}
	if seq > 0 {
		// Never sign a head Parley did not write (one appended by someone
		// with write access to the database only).
		if e := fromStore(head); !bytes.Equal(HashEntry(e), e.Hash) {
			return Checkpoint{}, fmt.Errorf("audit checkpoint: the head entry %d does not match its hash: not signing it; run parley audit verify", seq)
		} else if err := l.checkMAC(e); err != nil && !errors.Is(err, errUnverifiable) {
			return Checkpoint{}, fmt.Errorf("audit checkpoint: the head entry %d: %v: not signing it; run parley audit verify", seq, err)
		}
	}
	now := l.now()
	c, err := sign(l.cfg.Keys, seq, hash, now)
	if err != nil {
		return Checkpoint{}, err
	}
	if _, err := l.cfg.Store.PutAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: c.Seq, Hash: c.Hash, CreatedAt: c.Time, KeyID: c.KeyID, Signature: c.Signature}); err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	l.cpMu.Lock()
	l.lastCP, l.cpSeq = now, seq
	l.cpMu.Unlock()
	if l.cfg.AnchorFile != "" {
		if err := appendAnchor(l.cfg.AnchorFile, c); err != nil {
			return c, fmt.Errorf("audit checkpoint %d stored, but not anchored: %w", c.Seq, err)
		}
	}
	return c, nil
}

// Run signs a checkpoint every CheckpointEvery while the head moved since
// the last one this process signed, until ctx ends: the server runs it so
// the tail is anchored even when no further event comes.
func (l *Log) Run(ctx context.Context) error {
	if l.cfg.CheckpointEvery <= 0 || l.cfg.Keys == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(l.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		head, err := l.cfg.Store.AuditHead(ctx)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			l.log.Error("audit checkpoint failed", "err", err)
			continue
		}
		l.cpMu.Lock()
		moved := head.Seq != l.cpSeq
		l.cpMu.Unlock()
		if !moved {
			continue
		}
		if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("audit checkpoint failed", "err", err)
		}
	}
}
