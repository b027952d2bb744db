package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Kind is the kind of problem Verify finds.
type Kind string

// The kinds of problem.
const (
	// KindEdited: an entry's content no longer matches its hash, or the
	// chain no longer matches a signed checkpoint or an anchored head at
	// that seq (rewritten and re-hashed).
	KindEdited Kind = "edited"
	// KindRemoved: an entry is missing (a gap in seq, or an entry whose
	// content is nowhere in the log any more).
	KindRemoved Kind = "removed"
	// KindReordered: an entry is authentic but at another position.
	KindReordered Kind = "reordered"
	// KindTruncated: a checkpoint or anchored head names a seq past the
	// end of the log.
	KindTruncated Kind = "truncated"
	// KindBadCheckpoint: a checkpoint's signature does not verify, or it
	// names a key this deployment never had (forged), or an anchor line
	// cannot be read.
	KindBadCheckpoint Kind = "bad-checkpoint"
)

// Problem is the first problem Verify found.
type Problem struct {
	Kind Kind `json:"kind"`
	// Seq is the entry at fault (the checkpoint's seq for bad-checkpoint;
	// for truncated, the first missing seq).
	Seq    int64  `json:"seq"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("%s at seq %d: %s", p.Kind, p.Seq, p.Detail) }

// Report is what Verify found. It is the body of GET /admin/v1/audit/verify
// and of 'parley audit verify --json'.
type Report struct {
	OK bool `json:"ok"`
	// Entries is the number of entries read; HeadSeq and HeadHash the
	// last one (0 and "" for an empty log).
	Entries  int64  `json:"entries"`
	HeadSeq  int64  `json:"headSeq"`
	HeadHash string `json:"headHash"`
	// Checkpoints is the number of stored checkpoints whose signature
	// verified; LastCheckpointSeq the highest seq one covers.
	Checkpoints       int   `json:"checkpoints"`
	LastCheckpointSeq int64 `json:"lastCheckpointSeq"`
	// Unverifiable counts checkpoints signed by a destroyed key: they
	// anchor nothing any more. UnverifiableEntries counts entries whose
	// MAC key was destroyed: their hashes still chain, but their origin
	// can no longer be checked.
	Unverifiable        int   `json:"unverifiable,omitempty"`
	UnverifiableEntries int64 `json:"unverifiableEntries,omitempty"`
	// Anchored is true when an anchor file or a head kept outside the
	// store was checked; AnchorCheckpoints counts the anchor file's lines.
	Anchored          bool `json:"anchored"`
	AnchorCheckpoints int  `json:"anchorCheckpoints,omitempty"`
	// Problem is the first problem found (lowest seq); nil when OK.
	Problem *Problem `json:"problem,omitempty"`
	// Unanchored counts the entries after the last checkpoint or anchor:
	// their removal, or a rewrite of them, is not detectable from the
	// store alone.
	Unanchored int64 `json:"unanchored"`
}

// VerifyOptions add heads kept outside the store.
type VerifyOptions struct {
	// AnchorFile is an anchor file (audit.anchor_file) to check; "" none.
	AnchorFile string
	// Heads are heads the operator copied elsewhere (--head SEQ:HASH).
	Heads []Head
}

// Verify checks the whole chain, the stored checkpoints and, when
// configured, the anchor file (audit.anchor_file). See VerifyWith.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	return l.VerifyWith(ctx, VerifyOptions{AnchorFile: l.cfg.AnchorFile})
}

// anchor is a (seq, hash) the chain must hold, and where it came from.
type anchor struct {
	seq  int64
	hash []byte
	from string
}

// VerifyWith checks every entry's hash and link, every stored checkpoint's
// signature and that the chain holds each checkpoint's (seq, hash), and
// likewise the anchor file's checkpoints and the given heads. The error is
// for what stopped the check (the store failed); problems found are in the
// report.
func (l *Log) VerifyWith(ctx context.Context, o VerifyOptions) (Report, error) {
	if l.cfg.Keys == nil {
		return Report{}, errors.New("verify audit log: no keys (the master key is needed to check checkpoints)")
	}
	var rep Report
	var problems []Problem
	found := func(k Kind, seq int64, format string, a ...any) {
		problems = append(problems, Problem{Kind: k, Seq: seq, Detail: fmt.Sprintf(format, a...)})
	}
	var anchors []anchor
	check := func(c Checkpoint, from string) bool {
		err := verifySig(l.cfg.Keys, c)
		switch {
		case errors.Is(err, errUnverifiable):
			rep.Unverifiable++
			return false
		case err != nil:
			found(KindBadCheckpoint, c.Seq, "%s: %v", from, err)
			return false
		}
		anchors = append(anchors, anchor{seq: c.Seq, hash: c.Hash, from: from})
		return true
	}
	cps, err := l.cfg.Store.ListAuditCheckpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	if rl, ok := l.cfg.Keys.(interface{ Reload(context.Context) error }); ok {
		// A key made by another process since ours were loaded.
		if err := rl.Reload(ctx); err != nil {
			return Report{}, fmt.Errorf("verify audit log: %w", err)
		}
	}
	for _, sc := range cps {
		if check(checkpointOf(sc), fmt.Sprintf("stored checkpoint %d", sc.ID)) {
			rep.Checkpoints++
			rep.LastCheckpointSeq = max(rep.LastCheckpointSeq, sc.Seq)
		}
	}
	if o.AnchorFile != "" {
		rep.Anchored = true
		f, err := os.Open(o.AnchorFile)
		if err != nil {
			return Report{}, fmt.Errorf("verify audit log: anchor file: %w", err)
		}
		lines, err := readAnchor(f)
		_ = f.Close()
		if err != nil {
			return Report{}, fmt.Errorf("verify audit log: %w", err)
		}
		for _, al := range lines {
			from := fmt.Sprintf("anchor file %s line %d", o.AnchorFile, al.line)
			if al.err != nil {
				found(KindBadCheckpoint, al.c.Seq, "%s: %v", from, al.err)
				continue
			}
			if check(al.c, from) {
				rep.AnchorCheckpoints++
			}
		}
	}
	for _, h := range o.Heads {
		rep.Anchored = true
		anchors = append(anchors, anchor{seq: h.Seq, hash: h.Hash, from: "head " + h.String()})
	}
	// The hashes the chain holds at anchored seqs, filled during the walk.
	want := map[int64][]byte{}
	for _, a := range anchors {
		want[a.seq] = nil
	}

	chainProblem, last, n, err := l.walk(ctx, want, &rep.UnverifiableEntries)
	if err != nil {
		return Report{}, err
	}
	if chainProblem != nil {
		problems = append(problems, *chainProblem)
	}
	rep.Entries, rep.HeadSeq = n, last.Seq
	if last.Seq > 0 {
		rep.HeadHash = hex.EncodeToString(last.Hash)
	}
	var anchoredTo int64
	for _, a := range anchors {
		switch {
		case a.seq == 0:
			// An empty log's checkpoint: anchors nothing.
		case a.seq > last.Seq:
			found(KindTruncated, last.Seq+1, "%s covers seq %d, but the log ends at seq %d: entries %d-%d were removed", a.from, a.seq, last.Seq, last.Seq+1, a.seq)
		case chainProblem != nil && a.seq >= chainProblem.Seq:
			// Past a broken link the chain's hashes say nothing more.
		case !bytes.Equal(want[a.seq], a.hash):
			found(KindEdited, a.seq, "%s says entry %d has hash %x, the log's has %x: an entry up to seq %d was changed and the chain re-hashed", a.from, a.seq, a.hash, want[a.seq], a.seq)
		default:
			anchoredTo = max(anchoredTo, a.seq)
		}
	}
	rep.Unanchored = max(0, last.Seq-anchoredTo)
	if rep.UnverifiableEntries > 0 && chainProblem == nil {
		// An entry whose MAC key was destroyed is trusted only under a
		// checkpoint of a live key (or a head kept elsewhere): otherwise
		// marking a key destroyed in the database would let anyone append
		// entries naming it.
		p, err := l.firstUnanchoredUnverifiable(ctx, anchoredTo)
		if err != nil {
			return Report{}, err
		}
		if p != nil {
			problems = append(problems, *p)
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Seq < problems[j].Seq })
		rep.Problem = &problems[0]
	}
	rep.OK = rep.Problem == nil
	return rep, nil
}

// walk reads the chain in order, checking each entry's hash, MAC and link,
// and returns its first problem, its last
// entry and the number of entries, recording in want the hash at each seq
// it holds a key for.
func (l *Log) walk(ctx context.Context, want map[int64][]byte, unverifiable *int64) (*Problem, Entry, int64, error) {
	var last Entry
	var n int64
	expect := int64(1)
	var prevHash []byte
	for {
		page, err := l.Entries(ctx, last.Seq, MaxPage)
		if err != nil {
			return nil, last, n, fmt.Errorf("verify audit log: %w", err)
		}
		if len(page) == 0 {
			return nil, last, n, nil
		}
		for _, e := range page {
			n++
			if e.Seq != expect {
				return &Problem{Kind: KindRemoved, Seq: expect, Detail: fmt.Sprintf("entries %d-%d are missing (the next entry is %d)", expect, e.Seq-1, e.Seq)}, e, n, l.drain(ctx, &last, &n, e)
			}
			if !bytes.Equal(HashEntry(e), e.Hash) {
				p, err := l.misplaced(ctx, e)
				if err != nil {
					return nil, last, n, err
				}
				return p, e, n, l.drain(ctx, &last, &n, e)
			}
			if err := l.checkMAC(e); errors.Is(err, errUnverifiable) {
				*unverifiable++
			} else if err != nil {
				return &Problem{Kind: KindEdited, Seq: e.Seq, Detail: fmt.Sprintf("entry %d was not written by Parley: %v (forged, or changed and re-hashed by someone without the master key)", e.Seq, err)}, e, n, l.drain(ctx, &last, &n, e)
			}
			if !bytes.Equal(e.Prev, prevHash) {
				// The entry is intact but not linked to the one before: that
				// one was changed and re-hashed (or replaced).
				return &Problem{Kind: KindEdited, Seq: e.Seq - 1, Detail: fmt.Sprintf("entry %d's hash is not the previous hash entry %d holds: entry %d was changed", e.Seq-1, e.Seq, e.Seq-1)}, e, n, l.drain(ctx, &last, &n, e)
			}
			if _, ok := want[e.Seq]; ok {
				want[e.Seq] = e.Hash
			}
			prevHash = e.Hash
			expect++
			last = e
		}
	}
}

// drain reads the rest of the log after a problem, only to report its head.
func (l *Log) drain(ctx context.Context, last *Entry, n *int64, cur Entry) error {
	*last = cur
	for {
		page, err := l.Entries(ctx, last.Seq, MaxPage)
		if err != nil {
			return fmt.Errorf("verify audit log: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		*n += int64(len(page))
		*last = page[len(page)-1]
	}
}

// misplaced explains an entry at position e.Seq whose hash does not match:
// if its content is an authentic entry of another seq, entries were
// reordered (the content of e.Seq is elsewhere) or removed and renumbered
// (it is nowhere); otherwise the entry was edited.
func (l *Log) misplaced(ctx context.Context, e Entry) (*Problem, error) {
	head, err := l.cfg.Store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	// Renumbering after a removal moves entries down: their true seq is
	// at most the head plus what was removed (searched up to maxMoved).
	const maxMoved = 10_000
	var trueSeq int64
	for s := int64(1); s <= head.Seq+maxMoved; s++ {
		c := e
		c.Seq = s
		if s != e.Seq && bytes.Equal(HashEntry(c), e.Hash) {
			trueSeq = s
			break
		}
	}
	var here bool // some other row holds the authentic content of e.Seq
	err = l.scan(ctx, func(r Entry) {
		if here || r.Seq == e.Seq {
			return
		}
		c := r
		c.Seq = e.Seq
		here = bytes.Equal(HashEntry(c), r.Hash)
	})
	if err != nil {
		return nil, err
	}
	switch {
	case trueSeq != 0 && here:
		return &Problem{Kind: KindReordered, Seq: e.Seq, Detail: fmt.Sprintf("position %d holds entry %d, and entry %d is at another position", e.Seq, trueSeq, e.Seq)}, nil
	case trueSeq > e.Seq:
		return &Problem{Kind: KindRemoved, Seq: e.Seq, Detail: fmt.Sprintf("position %d holds entry %d: entries from %d were removed and the rest renumbered", e.Seq, trueSeq, e.Seq)}, nil
	case trueSeq != 0:
		return &Problem{Kind: KindReordered, Seq: e.Seq, Detail: fmt.Sprintf("position %d holds entry %d", e.Seq, trueSeq)}, nil
	}
	return &Problem{Kind: KindEdited, Seq: e.Seq, Detail: fmt.Sprintf("entry %d does not match its hash: its content was changed", e.Seq)}, nil
}

// scan calls fn for every entry, in order.
func (l *Log) scan(ctx context.Context, fn func(Entry)) error {
	var after int64
	for {
		page, err := l.Entries(ctx, after, MaxPage)
		if err != nil {
			return fmt.Errorf("verify audit log: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, e := range page {
			fn(e)
		}
		after = page[len(page)-1].Seq
	}
}

// firstUnanchoredUnverifiable finds the first entry after seq after whose
// MAC key was destroyed.
func (l *Log) firstUnanchoredUnverifiable(ctx context.Context, after int64) (*Problem, error) {
	for {
		page, err := l.Entries(ctx, after, MaxPage)
		if err != nil {
			return nil, fmt.Errorf("verify audit log: %w", err)
		}
		if len(page) == 0 {
			return nil, nil
		}
		for _, e := range page {
			if err := l.checkMAC(e); errors.Is(err, errUnverifiable) {
				return &Problem{Kind: KindEdited, Seq: e.Seq, Detail: fmt.Sprintf("entry %d's MAC names %v, and no checkpoint of a live key covers it: its origin cannot be checked (after destroying an audit-checkpoint key, a checkpoint by the new key anchors what it authenticated)", e.Seq, err)}, nil
			}
		}
		after = page[len(page)-1].Seq
	}
}
