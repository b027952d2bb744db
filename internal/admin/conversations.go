package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
)

// Conversation describes a conversation without its content, never its
// user id (UserBound says whether one is bound).
type Conversation struct {
	ID           string     `json:"id"`
	BotID        string     `json:"botId"`
	SiteID       string     `json:"siteId"`
	UserBound    bool       `json:"userBound"`
	CreatedAt    time.Time  `json:"createdAt"`
	LastActivity time.Time  `json:"lastActivityAt"`
	EndedAt      *time.Time `json:"endedAt,omitempty"`
	Activities   int        `json:"activities"`
	Deliveries   int        `json:"queuedDeliveries"`
	DeadLetters  int        `json:"deadLetters"`
	Attachments  int        `json:"attachments"`
}

// ToConversation is c as shown.
func ToConversation(c store.ConversationSummary) Conversation {
	j := Conversation{ID: c.ID, BotID: c.BotID, SiteID: c.SiteID, UserBound: c.UserID != "", CreatedAt: c.CreatedAt, LastActivity: c.LastActivityAt,
		Activities: c.Activities, Deliveries: c.PendingDeliveries, DeadLetters: c.DeadLetters, Attachments: c.Attachments}
	if !c.EndedAt.IsZero() {
		e := c.EndedAt
		j.EndedAt = &e
	}
	return j
}

func convTarget(id string) string { return "conversation:" + id }

// ConversationBot returns the bot conversation id belongs to.
func (s *Service) ConversationBot(ctx context.Context, id string) (string, error) {
	c, err := s.d.Store.GetConversation(ctx, id)
	return c.BotID, err
}

// ListConversations lists conversations in p's scope, most recently
// active first, at most f.Limit (1-100000). f.BotID and f.SiteID, when
// given, must be in the scope (else not found).
func (s *Service) ListConversations(ctx context.Context, p Principal, f store.ConversationFilter) ([]store.ConversationSummary, error) {
	o := s.op(p, ConversationsRead, "list", "conversations")
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	if f.Limit < 1 || f.Limit > 100_000 {
		return nil, o.done(ctx, invalidf("--limit %d: want 1-100000", f.Limit))
	}
	st := s.d.Store
	if f.SiteID != "" {
		if _, err := o.site(ctx, f.SiteID); err != nil {
			return nil, err
		}
	}
	if f.BotID != "" {
		if _, err := o.bot(ctx, f.BotID); err != nil {
			return nil, err
		}
	}
	var out []store.ConversationSummary
	if f.BotID != "" || f.SiteID != "" || len(p.Bots) == 0 {
		convs, err := st.ListConversations(ctx, f)
		if err != nil {
			return nil, o.done(ctx, err)
		}
		for _, c := range convs {
			if p.Scoped(c.BotID) {
				out = append(out, c)
			}
		}
		return out, o.done(ctx, nil)
	}
	// A scoped principal without a filter: each of its bots', merged.
	for _, b := range p.Bots {
		g := f
		g.BotID = b
		convs, err := st.ListConversations(ctx, g)
		if err != nil {
			return nil, o.done(ctx, err)
		}
		out = append(out, convs...)
	}
	slices.SortStableFunc(out, func(a, b store.ConversationSummary) int { return b.LastActivityAt.Compare(a.LastActivityAt) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, o.done(ctx, nil)
}

// GetConversation returns conversation id (for the CLI's confirmation).
func (s *Service) GetConversation(ctx context.Context, p Principal, id string) (store.Conversation, error) {
	o := s.op(p, ConversationsRead, "get", convTarget(id))
	if err := o.allow(ctx); err != nil {
		return store.Conversation{}, err
	}
	c, err := o.conversation(ctx, id)
	if err != nil {
		return c, err
	}
	return c, o.done(ctx, nil)
}

func (o *op) conversation(ctx context.Context, id string) (store.Conversation, error) {
	c, err := o.s.d.Store.GetConversation(ctx, id)
	if err != nil {
		return c, o.done(ctx, asNotFound(err, "conversation", id))
	}
	if err := o.scope(ctx, c.BotID, "conversation", id); err != nil {
		return store.Conversation{}, err
	}
	return c, nil
}

// Erasure is what erasing a conversation removed (never its user id).
type Erasure struct {
	Conversation string    `json:"conversation"`
	BotID        string    `json:"botId"`
	SiteID       string    `json:"siteId"`
	ErasedAt     time.Time `json:"erasedAt"`
	Activities   int       `json:"activities"`
	OutboxItems  int       `json:"outboxItems"`
	DeadLetters  int       `json:"deadLetters"`
	Attachments  int       `json:"attachments"`
	Sessions     int       `json:"sessions"`
	DataKeyScope string    `json:"dataKeyScope,omitempty"`
	KEKID        string    `json:"kekId,omitempty"`
	Scrubbed     bool      `json:"scrubbed"`
	Backups      string    `json:"backups"`
	// Store is the store's account, for the CLI's receipt.
	Store store.Erased `json:"-"`
	// ScrubErr is why scrubbing the store's files failed, if it did.
	ScrubErr error `json:"-"`
}

// EraseBackups says what an erasure cannot reach.
const EraseBackups = "Copies of this conversation in database backups taken before erasedAt stay readable until the key-encryption key listed (kekId) is rotated and destroyed."

// EraseConversation deletes conversation id now, as 'parley conversation
// delete': its activities, uploads, deliveries, dead letters, sessions
// and data key (crypto-shredding); then scrubs the store's files.
func (s *Service) EraseConversation(ctx context.Context, p Principal, id string) (Erasure, error) {
	out, err := s.eraseOne(ctx, p, id, s.d.Now().UTC(), true)
	if err != nil {
		return Erasure{}, err
	}
	return out, nil
}

// EraseConversations erases the conversations ids at now, each as
// EraseConversation does and each audited alike, then scrubs the store's
// files once ('parley erase'). A conversation already gone (the retention
// sweeper got there first) is skipped; a refusal or failure for one is
// reported and the others are still erased. The erasures are those done,
// in order; Scrubbed and ScrubErr of the last one say how the scrub went.
func (s *Service) EraseConversations(ctx context.Context, p Principal, ids []string, now time.Time) ([]Erasure, error) {
	var out []Erasure
	var errs []error
	for _, id := range ids {
		e, err := s.eraseOne(ctx, p, id, now.UTC(), false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("erase conversation %s: %w", id, err))
			continue
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		last := &out[len(out)-1]
		last.ScrubErr = s.d.Store.Scrub(ctx)
		last.Scrubbed = last.ScrubErr == nil
		if last.ScrubErr != nil {
			errs = append(errs, last.ScrubErr)
		}
	}
	return out, errors.Join(errs...)
}

// EraseUserTokens deletes userID's tokens of every bot's OAuth
// connections ('parley erase --user'), audited with their number (the
// user id itself is not written to the audit log).
func (s *Service) EraseUserTokens(ctx context.Context, p Principal, userID string) (int, error) {
	o := s.op(p, ConversationsErase, "erase-user-tokens", "user-tokens")
	if err := o.allow(ctx); err != nil {
		return 0, err
	}
	if len(p.Bots) > 0 {
		// Tokens of every bot: a principal limited to some bots may not.
		_ = o.record(ctx, audit.Denied, "scope")
		return 0, &Error{Kind: KindForbidden, Err: fmt.Errorf("%w: erase a user's tokens of every bot", ErrForbidden),
			Public: "a role limited to some bots may not erase a user's tokens of every bot"}
	}
	n, err := s.d.Store.EraseUserTokens(ctx, userID)
	o.detail = map[string]string{"tokens": strconv.Itoa(n)}
	return n, o.done(ctx, err)
}

// eraseOne erases conversation id at now, audited; with scrub, the
// store's files are scrubbed afterwards.
func (s *Service) eraseOne(ctx context.Context, p Principal, id string, now time.Time, scrub bool) (Erasure, error) {
	o := s.op(p, ConversationsErase, "erase", convTarget(id))
	if err := o.allow(ctx); err != nil {
		return Erasure{}, err
	}
	if _, err := o.conversation(ctx, id); err != nil {
		return Erasure{}, err
	}
	e, err := s.d.Store.DeleteConversation(ctx, id, now)
	if err != nil {
		return Erasure{}, o.done(ctx, asNotFound(err, "conversation", id))
	}
	if s.d.Erased != nil {
		s.d.Erased(e)
	}
	out := Erasure{Conversation: id, BotID: e.BotID, SiteID: e.SiteID, ErasedAt: now, Activities: e.Activities, OutboxItems: e.OutboxItems,
		DeadLetters: e.DeadLetters, Attachments: e.Attachments, Sessions: e.Sessions, DataKeyScope: e.DataKeyScope, KEKID: e.KEKID, Backups: EraseBackups, Store: e}
	if scrub {
		out.ScrubErr = s.d.Store.Scrub(ctx)
		out.Scrubbed = out.ScrubErr == nil
	}
	return out, o.done(ctx, nil)
}

// DeadLetter is a dead letter as shown; the activity only when asked
// (the CLI's --body; never over the API).
type DeadLetter struct {
	ID             int64           `json:"id"`
	BotID          string          `json:"botId"`
	ConversationID string          `json:"conversationId"`
	ActivityID     string          `json:"activityId"`
	Attempts       int             `json:"attempts"`
	LastStatus     int             `json:"lastStatus"`
	LastError      string          `json:"lastError"`
	EnqueuedAt     time.Time       `json:"enqueuedAt"`
	FirstAttemptAt *time.Time      `json:"firstAttemptAt,omitempty"`
	LastAttemptAt  time.Time       `json:"lastAttemptAt"`
	DeadAt         time.Time       `json:"deadAt"`
	Activity       json.RawMessage `json:"activity,omitempty"`
}

// ToDeadLetter is d as shown, without its activity.
func ToDeadLetter(d store.DeadLetter) DeadLetter {
	j := DeadLetter{ID: d.ID, BotID: d.BotID, ConversationID: d.ConversationID, ActivityID: d.ActivityID, Attempts: d.Attempts,
		LastStatus: d.LastStatus, LastError: d.LastError, EnqueuedAt: d.CreatedAt, LastAttemptAt: d.LastAttemptAt, DeadAt: d.DeadAt}
	if !d.FirstAttemptAt.IsZero() {
		first := d.FirstAttemptAt
		j.FirstAttemptAt = &first
	}
	return j
}

func dlTarget(id int64) string { return "deadletter:" + strconv.FormatInt(id, 10) }

// DeadLetterBot returns the bot dead letter id belongs to.
func (s *Service) DeadLetterBot(ctx context.Context, id int64) (string, error) {
	d, err := s.d.Store.GetDeadLetter(ctx, id)
	return d.BotID, err
}

// ListDeadLetters lists the dead letters in p's scope (of botID, when
// given), oldest first.
func (s *Service) ListDeadLetters(ctx context.Context, p Principal, botID string) ([]store.DeadLetter, error) {
	o := s.op(p, DeadLettersRead, "list", "deadletters")
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	out, err := o.deadLetters(ctx, botID)
	if err != nil {
		return nil, err
	}
	return out, o.done(ctx, nil)
}

// deadLetters lists the dead letters in o's principal's scope (of botID,
// when given); a failure is recorded as o's outcome.
func (o *op) deadLetters(ctx context.Context, botID string) ([]store.DeadLetter, error) {
	if botID != "" && !o.p.Scoped(botID) {
		return nil, o.scope(ctx, botID, "bot", botID)
	}
	dls, err := o.s.d.Store.ListDeadLetters(ctx, botID)
	if err != nil {
		return nil, o.done(ctx, err)
	}
	out := []store.DeadLetter{}
	for _, d := range dls {
		if o.p.Scoped(d.BotID) {
			out = append(out, d)
		}
	}
	return out, nil
}

// DeadLetterActivities lists the dead letters in p's scope (of botID,
// when given) with the activity each holds: user data, so one audit entry
// records the read and how many it returned.
func (s *Service) DeadLetterActivities(ctx context.Context, p Principal, botID string) ([]DeadLetter, error) {
	target := "deadletters"
	if botID != "" {
		target = botTarget(botID)
	}
	o := s.op(p, DeadLettersContent, "read_activities", target)
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	mine, err := o.deadLetters(ctx, botID)
	if err != nil {
		return nil, err
	}
	out, err := s.withActivities(ctx, mine)
	o.detail = map[string]string{"count": fmt.Sprint(len(out))}
	return out, o.done(ctx, err)
}

// DeadLetterActivity is dead letter id with the activity it holds
// (audited as a read of user data).
func (s *Service) DeadLetterActivity(ctx context.Context, p Principal, id int64) (DeadLetter, error) {
	o := s.op(p, DeadLettersContent, "read_activity", dlTarget(id))
	if err := o.allow(ctx); err != nil {
		return DeadLetter{}, err
	}
	d, err := o.deadLetter(ctx, id)
	if err != nil {
		return DeadLetter{}, err
	}
	out, err := s.withActivities(ctx, []store.DeadLetter{d})
	if err != nil {
		return DeadLetter{}, o.done(ctx, err)
	}
	return out[0], o.done(ctx, nil)
}

// withActivities opens each dead letter's sealed activity.
func (s *Service) withActivities(ctx context.Context, dls []store.DeadLetter) ([]DeadLetter, error) {
	out := make([]DeadLetter, 0, len(dls))
	if len(dls) == 0 {
		return out, nil
	}
	keys, err := s.openKeys(ctx)
	if err != nil {
		return nil, err
	}
	defer keys.close()
	if keys.Codec == nil {
		return nil, errors.New("read dead letters: no codec to open their activities")
	}
	for _, d := range dls {
		body, err := keys.Codec.DecodeOutbox(ctx, d.ConversationID, d.Body)
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", d.ID, err)
		}
		j := ToDeadLetter(d)
		j.Activity = body
		out = append(out, j)
	}
	return out, nil
}

func (o *op) deadLetter(ctx context.Context, id int64) (store.DeadLetter, error) {
	ids := strconv.FormatInt(id, 10)
	d, err := o.s.d.Store.GetDeadLetter(ctx, id)
	if err != nil {
		return d, o.done(ctx, asNotFound(err, "dead letter", ids))
	}
	if err := o.scope(ctx, d.BotID, "dead letter", ids); err != nil {
		return store.DeadLetter{}, err
	}
	return d, nil
}

// RedeliverDeadLetter moves dead letter id back to the outbox (a running
// gateway delivers it within seconds, in order per conversation).
func (s *Service) RedeliverDeadLetter(ctx context.Context, p Principal, id int64) error {
	o := s.op(p, DeadLettersRedeliver, "redeliver", dlTarget(id))
	if err := o.allow(ctx); err != nil {
		return err
	}
	if _, err := o.deadLetter(ctx, id); err != nil {
		return err
	}
	_, err := s.d.Store.RedeliverDeadLetter(ctx, id, s.d.Now().UTC())
	if err != nil {
		err = &Error{Kind: kindOf(err), Err: err, Public: fmt.Sprintf("no dead letter %d", id)}
	}
	return o.done(ctx, err)
}

// DropDeadLetter deletes dead letter id for good: the bot never gets it.
func (s *Service) DropDeadLetter(ctx context.Context, p Principal, id int64) error {
	o := s.op(p, DeadLettersRedeliver, "drop", dlTarget(id))
	if err := o.allow(ctx); err != nil {
		return err
	}
	if _, err := o.deadLetter(ctx, id); err != nil {
		return err
	}
	return o.done(ctx, asNotFound(s.d.Store.DropDeadLetter(ctx, id), "dead letter", strconv.FormatInt(id, 10)))
}
