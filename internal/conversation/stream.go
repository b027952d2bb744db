package conversation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Streamed replies ("livestreaming").
//
// A bot streams a reply as typing activities that each carry the whole
// text so far, then ends it with a message: the stream's final text. The
// stream's metadata comes in one of two forms, and Parley reads both:
//   - channelData {streamType, streamSequence, streamId} (Web Chat's form,
//     botbuilder bots);
//   - one entity {type: "streaminfo", streamType, streamSequence, streamId}
//     (the Microsoft 365 Agents SDK's StreamingResponse).
//
// streamType is "informative" (a status line: "thinking…") or "streaming"
// on the typing chunks, "final" on the message. The first chunk has no
// streamId; its activity id is the stream's id, which later chunks and
// the final message carry.
//
// Web Chat 4.18.1 reads the channelData form only: a chunk of the entity
// form renders as one more bubble per chunk. So the log copies the
// entity's metadata into channelData when channelData has none (the entity
// stays): every Direct Line client sees both forms, whichever the bot
// sent.
//
// What the log keeps: chunks are stream records (VisibleStream: pushed on
// WebSockets, never in GET history), each under its own sequence number so
// that watermarks keep their meaning. A new chunk supersedes the stream's
// previous chunk (emptied in the append's transaction), except the first,
// which a client that reconnects mid-stream needs (Web Chat groups the
// chunks under the first one's id). The final message supersedes both. So
// a stream holds at most two chunks' bodies however long it runs, a client
// that resumes from any watermark gets the latest text once, and once the
// final message is stored nothing of the chunks is left. A stream without
// a chunk for streamIdle is abandoned: replays skip its chunks, and the
// conversation's next stream removes them.

// streamIdle is how long a stream may go without a chunk before it counts
// as abandoned.
const streamIdle = 2 * time.Minute

// maxStreamChunks bounds the chunks of one stream: past it, chunks are
// refused and the bot must end the stream with its final message.
const maxStreamChunks = 1000

// maxOpenStreams bounds the streams the log remembers (past it, one is
// forgotten for each new one, see forgetOneLocked, and found again in the
// store when it goes on).
const maxOpenStreams = 10000

// Stream types.
const (
	streamInformative = "informative"
	streamStreaming   = "streaming"
	streamFinal       = "final"
)

var (
	streamInfoFold      = foldName("streaminfo")
	streamDataMembers   = foldIndex("streamId", "streamType", "streamSequence")
	streamEntityMembers = foldIndex("type", "streamId", "streamType", "streamSequence", "streamResult")
)

// streamInfo is one activity's stream metadata.
type streamInfo struct {
	typ    string
	id     string // "" on a stream's first chunk
	seq    int64  // streamSequence, 0 when absent
	entity bool   // read from the streaminfo entity (channelData has none)
}

// streamFields reads the stream members of one object (channelData or the
// streaminfo entity); ok is false when it has no streamType.
func streamFields(m map[string]json.RawMessage, path string) (streamInfo, bool, error) {
	var si streamInfo
	raw, ok := m["streamType"]
	if !ok || isNull(raw) {
		return si, false, nil
	}
	typ, ok := decodeString(raw)
	if !ok || (typ != streamInformative && typ != streamStreaming && typ != streamFinal) {
		return si, false, &ValidationError{Field: path + "streamType", Msg: `must be "informative", "streaming" or "final"`}
	}
	si.typ = typ
	if raw, ok := m["streamId"]; ok && !isNull(raw) {
		id, ok := decodeString(raw)
		if !ok || len(id) > 256 {
			return si, false, &ValidationError{Field: path + "streamId", Msg: "must be a string of at most 256 bytes"}
		}
		si.id = id
	}
	if raw, ok := m["streamSequence"]; ok && !isNull(raw) {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 1 {
			return si, false, &ValidationError{Field: path + "streamSequence", Msg: "must be a positive integer"}
		}
		si.seq = n
	}
	return si, true, nil
}

// parseStream reads a bot activity's stream metadata: ok is false for an
// activity that is not part of a streamed reply. Member names follow the
// rules of names.go (no duplicates, no case variants of the names read).
func parseStream(a Activity) (streamInfo, bool, error) {
	var fromData, fromEntity streamInfo
	var inData, inEntity bool
	if raw := a["channelData"]; isObject(raw) {
		if err := checkObject(raw, streamDataMembers, "channelData"); err != nil {
			return streamInfo{}, false, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return streamInfo{}, false, &ValidationError{Field: "channelData", Msg: "must be an object"}
		}
		var err error
		if fromData, inData, err = streamFields(m, "channelData."); err != nil {
			return streamInfo{}, false, err
		}
	}
	if raw := a["entities"]; isArray(raw) {
		var ents []json.RawMessage
		if err := json.Unmarshal(raw, &ents); err != nil {
			return streamInfo{}, false, &ValidationError{Field: "entities", Msg: "must be an array"}
		}
		for i, e := range ents {
			if !isObject(e) {
				continue
			}
			path := fmt.Sprintf("entities[%d]", i)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(e, &m); err != nil {
				continue
			}
			typ, _ := decodeString(m["type"])
			if foldName(typ) != streamInfoFold {
				continue
			}
			if typ != "streaminfo" {
				return streamInfo{}, false, &ValidationError{Field: path + ".type", Msg: `differs only in case from "streaminfo"; entity types are case-sensitive`}
			}
			if err := checkObject(e, streamEntityMembers, path); err != nil {
				return streamInfo{}, false, err
			}
			if inEntity {
				return streamInfo{}, false, &ValidationError{Field: path, Msg: "is a second streaminfo entity; an activity carries at most one"}
			}
			si, ok, err := streamFields(m, path+".")
			if err != nil {
				return streamInfo{}, false, err
			}
			if !ok {
				return streamInfo{}, false, &ValidationError{Field: path + ".streamType", Missing: true, Msg: "is required in a streaminfo entity"}
			}
			fromEntity, inEntity = si, true
		}
	}
	var si streamInfo
	switch {
	case inData && inEntity:
		if fromData.typ != fromEntity.typ || fromData.id != fromEntity.id {
			return streamInfo{}, false, &ValidationError{Field: "entities", Msg: "the streaminfo entity and channelData disagree on streamType or streamId"}
		}
		si = fromData
	case inData:
		si = fromData
	case inEntity:
		si = fromEntity
		si.entity = true
	default:
		return streamInfo{}, false, nil
	}
	switch typ := a.Type(); {
	case typ == "typing" && si.typ != streamFinal:
	case typ == "message" && si.typ == streamFinal:
	default:
		return streamInfo{}, false, &ValidationError{Field: "type", Msg: `a streamed reply's chunks are "typing" activities (streamType "informative" or "streaming") and its end a "message" (streamType "final")`}
	}
	if si.typ == streamFinal && si.id == "" {
		return streamInfo{}, false, &ValidationError{Field: "streamId", Missing: true, Msg: "is required on a stream's final message"}
	}
	return si, true, nil
}

// withStreamData copies the entity form's metadata into channelData (Web
// Chat 4.18.1 reads only that), keeping channelData's other members.
//
// A stream's first activity (no streamId) gets no streamSequence there:
// Web Chat 4.18.1 places a typing activity that has one next to the
// earlier typing activity with the same channelData.streamId, and for a
// first activity that is "none", so it matched every earlier stream's
// first activity still on the page and drew the new reply above earlier
// ones (seen with the Agents SDK agent in e2e/agents-webchat.test.mjs).
// Without it the first activity is placed by its timestamp. For the same
// reason a streamSequence the bot itself put in a first activity's
// channelData (Web Chat's own form, as botbuilder bots send it) is removed
// (the entity, if any, keeps its own).
func withStreamData(a Activity, si streamInfo) Activity {
	if !si.entity {
		if si.id != "" {
			return a
		}
		m := a.Object("channelData")
		if _, ok := m["streamSequence"]; !ok {
			return a
		}
		a = a.Clone()
		delete(m, "streamSequence")
		a.Set("channelData", m)
		return a
	}
	a = a.Clone()
	m := a.Object("channelData")
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	// Stream members the bot left in channelData beside the entity (without
	// a streamType, so parseStream read the entity alone) are replaced, not
	// kept: a first chunk must not carry another activity's streamId there,
	// which Web Chat groups by and parseStream would later find at odds
	// with the entity.
	delete(m, "streamId")
	delete(m, "streamSequence")
	m["streamType"], _ = json.Marshal(si.typ)
	if si.id != "" {
		m["streamId"], _ = json.Marshal(si.id)
		if si.seq > 0 {
			m["streamSequence"], _ = json.Marshal(si.seq)
		}
	}
	a.Set("channelData", m)
	return a
}

// streamKey names an open stream: its conversation and the sequence
// number of its first chunk (the stream's id).
type streamKey struct {
	conv  string
	first int64
}

// openStream is what the log remembers of a stream between chunks.
type openStream struct {
	latest int64 // the chunk to supersede next (first when there is one chunk)
	chunks int
	last   time.Time // when its latest chunk was appended
}

// streams tracks open streams. Chunks of one conversation are appended one
// at a time (a lock stripe per conversation), so a chunk always knows the
// one it supersedes. Streams are kept by conversation, so that a new
// stream's look for its conversation's abandoned ones costs that
// conversation's streams, not every open one.
type streams struct {
	locks [64]sync.Mutex
	mu    sync.Mutex
	open  map[string]map[int64]*openStream // by conversation, then first chunk
	n     int                              // streams in open
	now   func() time.Time
	idle  time.Duration
	max   int // chunks per stream
}

func newStreams() *streams {
	return &streams{open: map[string]map[int64]*openStream{}, now: time.Now, idle: streamIdle, max: maxStreamChunks}
}

func (s *streams) lock(conv string) *sync.Mutex {
	return &s.locks[fnv64([]byte(conv))%uint64(len(s.locks))]
}

func (s *streams) get(k streamKey) (openStream, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.open[k.conv][k.first]
	if !ok {
		return openStream{}, false
	}
	return *st, true
}

func (s *streams) put(k streamKey, st openStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byFirst := s.open[k.conv]
	if _, ok := byFirst[k.first]; !ok {
		if s.n >= maxOpenStreams {
			s.forgetOneLocked(k.conv)
			byFirst = s.open[k.conv]
		}
		if byFirst == nil {
			byFirst = map[int64]*openStream{}
			s.open[k.conv] = byFirst
		}
		s.n++
	}
	byFirst[k.first] = &st
}

// forgetOneLocked forgets one open stream to make room for a new one of
// conv (a forgotten stream is found again in the store if it goes on): one
// of conv's own when it has two or more open (a bot that opens streams
// without ending them pushes out its own), else one of another
// conversation.
func (s *streams) forgetOneLocked(conv string) {
	if own := s.open[conv]; len(own) >= 2 {
		for first := range own {
			s.dropLocked(streamKey{conv, first})
			return
		}
	}
	for c, byFirst := range s.open {
		if c == conv && len(s.open) > 1 {
			continue
		}
		for first := range byFirst {
			s.dropLocked(streamKey{c, first})
			return
		}
	}
}

// count is the number of streams remembered.
func (s *streams) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *streams) drop(k streamKey) {
	s.mu.Lock()
	s.dropLocked(k)
	s.mu.Unlock()
}

func (s *streams) dropLocked(k streamKey) {
	byFirst := s.open[k.conv]
	if _, ok := byFirst[k.first]; !ok {
		return
	}
	delete(byFirst, k.first)
	s.n--
	if len(byFirst) == 0 {
		delete(s.open, k.conv)
	}
}

// abandoned returns conv's streams idle past the limit.
func (s *streams) abandoned(conv string) []streamKey {
	cut := s.now().Add(-s.idle)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []streamKey
	for first, st := range s.open[conv] {
		if st.last.Before(cut) {
			out = append(out, streamKey{conv, first})
		}
	}
	return out
}

// streamPlan is what appending one stream activity does to its stream.
type streamPlan struct {
	part       bool // the item is part of a stream
	start, end bool
	key        streamKey
	state      openStream
	supersedes []int64
	dropped    []streamKey // abandoned streams the append removes
}

// planStream reads item's stream metadata (bot activities only), copies it
// into channelData, and works out what the append supersedes. The caller
// holds conv's stream lock.
func (l *Log) planStream(ctx context.Context, conv string, it *Item) (streamPlan, error) {
	var p streamPlan
	if it.ToBot != nil || it.Activity.From().Role != "bot" {
		return p, nil
	}
	si, ok, err := parseStream(it.Activity)
	if err != nil || !ok {
		return p, err
	}
	it.Activity = withStreamData(it.Activity, si)
	if si.id == "" { // a new stream
		p.part, p.start, p.key = true, true, streamKey{conv: conv}
		for _, k := range l.streams.abandoned(conv) {
			if st, ok := l.streams.get(k); ok {
				p.supersedes = append(p.supersedes, k.first)
				if st.latest != k.first {
					p.supersedes = append(p.supersedes, st.latest)
				}
			}
			p.dropped = append(p.dropped, k)
		}
		return p, nil
	}
	first, ok := ParseActivityID(conv, si.id)
	var st openStream
	var extra []int64
	if ok {
		st, extra, ok, err = l.findStream(ctx, conv, first, si.id)
		if err != nil {
			return p, err
		}
	}
	if si.typ == streamFinal {
		if !ok {
			// Not an open stream of this conversation (ended, abandoned, or
			// another's): the message is kept as the plain message it is,
			// and supersedes nothing.
			return p, nil
		}
		p.part, p.end, p.key = true, true, streamKey{conv, first}
		p.supersedes = append([]int64{first}, extra...)
		if st.latest != first {
			p.supersedes = append(p.supersedes, st.latest)
		}
		return p, nil
	}
	if !ok {
		return p, &ValidationError{Field: "streamId", Msg: "is not an open stream of this conversation (it ended, was abandoned, or never started); start a new stream without a streamId"}
	}
	if st.chunks >= l.streams.max {
		return p, &ValidationError{Field: "streamId", Msg: fmt.Sprintf("the stream has reached %d chunks; end it with its final message", l.streams.max)}
	}
	p.part, p.key, p.state = true, streamKey{conv, first}, st
	p.supersedes = extra
	if st.latest != first {
		p.supersedes = append(p.supersedes, st.latest)
	}
	return p, nil
}

// findStream returns the open stream that starts at first, from memory or
// else from the store (after a restart): the first record must be a bot's
// stream start still stored. extra lists stream records of it, other than
// first and latest, that were not superseded (an interrupted append).
func (l *Log) findStream(ctx context.Context, conv string, first int64, id string) (openStream, []int64, bool, error) {
	k := streamKey{conv, first}
	if st, ok := l.streams.get(k); ok {
		return st, nil, true, nil
	}
	rec, err := l.st.GetRecord(ctx, conv, first)
	if err != nil || rec.Visibility != store.VisibleStream {
		return openStream{}, nil, false, nil
	}
	head, err := l.st.Head(ctx, conv)
	if err != nil {
		return openStream{}, nil, false, err
	}
	if head-first > int64(4*l.streams.max) {
		return openStream{}, nil, false, nil // too old to be going on
	}
	if si, ok := l.recordStream(ctx, conv, rec); !ok || si.id != "" {
		return openStream{}, nil, false, nil
	}
	st := openStream{latest: first, chunks: int(head - first + 1), last: l.streams.now()}
	var found []int64
	for after := first; ; {
		recs, err := l.st.ReadBytes(ctx, conv, after, 500, 4<<20)
		if err != nil {
			return openStream{}, nil, false, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			after = r.Seq
			if r.Visibility != store.VisibleStream {
				continue
			}
			if si, ok := l.recordStream(ctx, conv, r); ok && si.id == id {
				found = append(found, r.Seq)
			}
		}
	}
	if n := len(found); n > 0 {
		st.latest = found[n-1]
		found = found[:n-1]
	}
	return st, found, true, nil
}

// recordStream decodes a stored record and reads the stream metadata of a
// bot's activity.
func (l *Log) recordStream(ctx context.Context, conv string, r store.Record) (streamInfo, bool) {
	plain, err := l.codec.DecodeRecord(ctx, conv, r.Seq, r.Body)
	if err != nil {
		return streamInfo{}, false
	}
	return entryStream(plain)
}

func entryStream(plain []byte) (streamInfo, bool) {
	if !bytes.Contains(plain, []byte(`"streamType"`)) && !bytes.Contains(plain, []byte(`\u`)) {
		return streamInfo{}, false // most typing activities: no decoding (a name may be escaped)
	}
	var a Activity
	if json.Unmarshal(plain, &a) != nil || a.From().Role != "bot" {
		return streamInfo{}, false
	}
	si, ok, err := parseStream(a)
	return si, ok && err == nil
}

// settle records in memory what a committed append did to its stream.
func (l *Log) settle(p streamPlan, seq int64) {
	for _, k := range p.dropped {
		l.streams.drop(k)
	}
	switch {
	case !p.part:
	case p.end:
		l.streams.drop(p.key)
	case p.start:
		l.streams.put(streamKey{p.key.conv, seq}, openStream{latest: seq, chunks: 1, last: l.streams.now()})
	default:
		st := p.state
		st.latest, st.chunks, st.last = seq, st.chunks+1, l.streams.now()
		l.streams.put(p.key, st)
	}
}

// staleChunk reports whether a stored stream record belongs to an
// abandoned stream (replays skip it).
func (l *Log) staleChunk(conv string, seq int64, created time.Time, plain []byte) bool {
	si, ok := entryStream(plain)
	if !ok {
		return false
	}
	first := seq
	if si.id != "" {
		if first, ok = ParseActivityID(conv, si.id); !ok {
			return false
		}
	}
	cut := l.streams.now().Add(-l.streams.idle)
	if st, ok := l.streams.get(streamKey{conv, first}); ok {
		return st.last.Before(cut)
	}
	return created.Before(cut)
}
