package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// This file holds the day-two life of bots and sites (issue 11, item 1):
// changing them, listing conversations, and deleting a site or a bot with
// everything stored under it, in one transaction.

func (s *Store) UpdateBotAuth(ctx context.Context, b store.Bot) error {
	if b.DeliveryTimeout < 0 {
		return fmt.Errorf("update bot %s: negative delivery timeout", b.ID)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE bots SET name = ?, endpoint = ?, insecure_no_auth = ?, secret1 = ?, secret2 = ?, delivery_timeout_ms = ? WHERE id = ?`,
		b.Name, b.Endpoint, b2i(b.InsecureNoAuth), b.SecretHashes[0], b.SecretHashes[1], b.DeliveryTimeout.Milliseconds(), b.ID)
	if taken := s.nameTaken(ctx, err, "bots", "", b.Name, b.ID); taken != nil {
		return fmt.Errorf("update bot %s: %w", b.ID, taken)
	}
	s.bots.Delete(b.ID)
	return affected(res, err, "update bot "+b.ID)
}

func (s *Store) UpdateSite(ctx context.Context, id, name string, enhancedAuth bool) error {
	var botID string
	if err := s.w.QueryRowContext(ctx, `SELECT bot_id FROM sites WHERE id = ?`, id).Scan(&botID); err != nil {
		return notFound(err, "update site "+id)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET name = ?, enhanced_auth = ? WHERE id = ?`, name, b2i(enhancedAuth), id)
	if taken := s.nameTaken(ctx, err, "sites", botID, name, id); taken != nil {
		return fmt.Errorf("update site %s: %w", id, taken)
	}
	return affected(res, err, "update site "+id)
}

func (s *Store) ListConversations(ctx context.Context, f store.ConversationFilter) ([]store.ConversationSummary, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, c.bot_id, c.site_id, c.user_id, c.created_at, c.last_activity_at, c.ended_at,
			(SELECT COUNT(*) FROM activities a WHERE a.conversation_id = c.id AND a.visibility <> ?),
			(SELECT COUNT(*) FROM outbox o WHERE o.conversation_id = c.id),
			(SELECT COUNT(*) FROM dead_letters d WHERE d.conversation_id = c.id),
			(SELECT COUNT(*) FROM attachments t WHERE t.conversation_id = c.id)
		FROM (SELECT * FROM conversations WHERE (? = '' OR site_id = ?) AND (? = '' OR bot_id = ?)
			ORDER BY last_activity_at DESC, id LIMIT ?) c
		ORDER BY c.last_activity_at DESC, c.id`,
		int(store.VisibleNone), f.SiteID, f.SiteID, f.BotID, f.BotID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	defer rows.Close()
	out := []store.ConversationSummary{}
	for rows.Next() {
		var c store.ConversationSummary
		var created, last int64
		var ended sql.NullInt64
		if err := rows.Scan(&c.ID, &c.BotID, &c.SiteID, &c.UserID, &created, &last, &ended,
			&c.Activities, &c.PendingDeliveries, &c.DeadLetters, &c.Attachments); err != nil {
			return nil, fmt.Errorf("list conversations: %w", err)
		}
		c.CreatedAt, c.LastActivityAt = fromNanos(created), fromNanos(last)
		if ended.Valid {
			c.EndedAt = fromNanos(ended.Int64)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return out, nil
}

// convContent is what is stored under a conversation, by table: each
// entry counts (plan) or deletes (delete) the rows of the conversations
// selected by a WHERE clause on the conversations table (%[1]s).
var convContent = []struct {
	table, where string
	field        func(r *store.Removal) *int
}{
	{"activities", "conversation_id IN (SELECT id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.Activities }},
	{"outbox", "conversation_id IN (SELECT id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.OutboxItems }},
	{"dead_letters", "conversation_id IN (SELECT id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.DeadLetters }},
	{"attachments", "conversation_id IN (SELECT id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.Attachments }},
	{"sessions", "conversation_id IN (SELECT id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.Sessions }},
	{"data_keys", "scope IN (SELECT 'conv:' || id FROM conversations WHERE %[1]s)", func(r *store.Removal) *int { return &r.DataKeys }},
	{"conversations", "%[1]s", func(r *store.Removal) *int { return &r.Conversations }},
}

// querier is a transaction or the reader pool.
type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// countContent adds to r the rows stored under the conversations that
// match where (with one argument, arg).
func countContent(ctx context.Context, q querier, where string, arg any, r *store.Removal) error {
	for _, c := range convContent {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+c.table+` WHERE `+fmt.Sprintf(c.where, where), arg).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", c.table, err)
		}
		*c.field(r) += n
	}
	return nil
}

// deleteContent deletes, in tx, every conversation that matches where and
// what is stored under it (as DeleteConversation does for one), leaving a
// tombstone for each, and adds the counts to r. It returns their ids.
func (s *Store) deleteContent(ctx context.Context, tx *sql.Tx, where string, arg any, now time.Time, r *store.Removal) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM conversations WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	ids, err := scanIDs(rows, "list conversations")
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_tombstones (id, deleted_at) SELECT id, ? FROM conversations WHERE `+where+`
		ON CONFLICT(id) DO UPDATE SET deleted_at = excluded.deleted_at`, nanos(now), arg); err != nil {
		return nil, fmt.Errorf("tombstones: %w", err)
	}
	for _, c := range convContent { // conversations last: the others select through them
		res, err := tx.ExecContext(ctx, `DELETE FROM `+c.table+` WHERE `+fmt.Sprintf(c.where, where), arg)
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", c.table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", c.table, err)
		}
		*c.field(r) += int(n)
	}
	for _, id := range ids {
		delete(s.nextSeq, id)
		delete(s.marked, id)
	}
	return ids, nil
}

const (
	siteSecrets = `(secret1 IS NOT NULL) + (secret2 IS NOT NULL)`
	siteConvs   = `site_id = ?`
	botConvs    = `bot_id = ?`
)

func (s *Store) PlanDeleteSite(ctx context.Context, id string) (store.Removal, error) {
	r := store.Removal{SiteIDs: []string{id}}
	if err := s.r.QueryRowContext(ctx, `SELECT `+siteSecrets+` FROM sites WHERE id = ?`, id).Scan(&r.SecretSlots); err != nil {
		return store.Removal{}, notFound(err, "plan delete site "+id)
	}
	if err := countContent(ctx, s.r, siteConvs, id, &r); err != nil {
		return store.Removal{}, fmt.Errorf("plan delete site %s: %w", id, err)
	}
	return r, nil
}

func (s *Store) PlanDeleteBot(ctx context.Context, id string) (store.Removal, error) {
	r := store.Removal{BotID: id, SiteIDs: []string{}}
	if err := s.r.QueryRowContext(ctx, `SELECT `+siteSecrets+` FROM bots WHERE id = ?`, id).Scan(&r.SecretSlots); err != nil {
		return store.Removal{}, notFound(err, "plan delete bot "+id)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, `+siteSecrets+` FROM sites WHERE bot_id = ? ORDER BY created_at, id`, id)
	if err != nil {
		return store.Removal{}, fmt.Errorf("plan delete bot %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var site string
		var n int
		if err := rows.Scan(&site, &n); err != nil {
			return store.Removal{}, fmt.Errorf("plan delete bot %s: %w", id, err)
		}
		r.SiteIDs = append(r.SiteIDs, site)
		r.SecretSlots += n
	}
	if err := rows.Err(); err != nil {
		return store.Removal{}, fmt.Errorf("plan delete bot %s: %w", id, err)
	}
	if err := countContent(ctx, s.r, botConvs, id, &r); err != nil {
		return store.Removal{}, fmt.Errorf("plan delete bot %s: %w", id, err)
	}
	// Deliveries addressed to the bot outside its conversations (none
	// normally: every item belongs to a conversation of the bot).
	var out, dead, keys int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM outbox WHERE bot_id = ?1 AND conversation_id NOT IN (SELECT id FROM conversations WHERE bot_id = ?1)),
		(SELECT COUNT(*) FROM dead_letters WHERE bot_id = ?1 AND conversation_id NOT IN (SELECT id FROM conversations WHERE bot_id = ?1)),
		(SELECT COUNT(*) FROM data_keys WHERE scope = 'bot:' || ?1),
		(SELECT COUNT(*) FROM oauth_connections WHERE bot_id = ?1),
		(SELECT COUNT(*) FROM user_tokens WHERE bot_id = ?1)`, id).Scan(&out, &dead, &keys, &r.OAuthConnections, &r.UserTokens); err != nil {
		return store.Removal{}, fmt.Errorf("plan delete bot %s: %w", id, err)
	}
	r.OutboxItems += out
	r.DeadLetters += dead
	r.DataKeys += keys
	return r, nil
}

func (s *Store) DeleteSite(ctx context.Context, id string, now time.Time, opt store.DeleteOptions) (store.Removal, error) {
	var r store.Removal
	var ids []string
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r = store.Removal{SiteIDs: []string{id}} // this may run twice: start afresh
		if err := tx.QueryRowContext(ctx, `SELECT `+siteSecrets+` FROM sites WHERE id = ?`, id).Scan(&r.SecretSlots); err != nil {
			return notFound(err, "delete site "+id)
		}
		if opt.EmptyOnly {
			if err := hasNoConversations(ctx, tx, `site_id = ?`, id); err != nil {
				return fmt.Errorf("delete site %s: %w", id, err)
			}
		}
		var err error
		if ids, err = s.deleteContent(ctx, tx, siteConvs, id, now, &r); err != nil {
			return fmt.Errorf("delete site %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sites WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete site %s: %w", id, err)
		}
		return nil
	})
	for _, c := range ids {
		s.forgetConversation(c)
	}
	if err != nil {
		return store.Removal{}, err
	}
	return r, nil
}

func (s *Store) DeleteBot(ctx context.Context, id string, now time.Time, opt store.DeleteOptions) (store.Removal, error) {
	cascade := opt.Cascade
	var r store.Removal
	var ids []string
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r = store.Removal{BotID: id, SiteIDs: []string{}} // this may run twice: start afresh
		if err := tx.QueryRowContext(ctx, `SELECT `+siteSecrets+` FROM bots WHERE id = ?`, id).Scan(&r.SecretSlots); err != nil {
			return notFound(err, "delete bot "+id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM sites WHERE bot_id = ? ORDER BY created_at, id`, id)
		if err != nil {
			return fmt.Errorf("delete bot %s: %w", id, err)
		}
		if r.SiteIDs, err = scanIDs(rows, "delete bot "+id); err != nil {
			return err
		}
		if r.SiteIDs == nil {
			r.SiteIDs = []string{}
		}
		if len(r.SiteIDs) > 0 && !cascade {
			return fmt.Errorf("delete bot %s: %d site(s): %w", id, len(r.SiteIDs), store.ErrHasSites)
		}
		if opt.EmptyOnly {
			if err := hasNoConversations(ctx, tx, `bot_id = ?`, id); err != nil {
				return fmt.Errorf("delete bot %s: %w", id, err)
			}
		}
		if ids, err = s.deleteContent(ctx, tx, botConvs, id, now, &r); err != nil {
			return fmt.Errorf("delete bot %s: %w", id, err)
		}
		var secrets int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(`+siteSecrets+`), 0) FROM sites WHERE bot_id = ?`, id).Scan(&secrets); err != nil {
			return fmt.Errorf("delete bot %s: %w", id, err)
		}
		r.SecretSlots += secrets
		for _, d := range []struct {
			q   string
			dst *int
		}{
			// Anything still addressed to the bot (normally nothing: the
			// conversations took their items with them).
			{`DELETE FROM outbox WHERE bot_id = ?`, &r.OutboxItems},
			{`DELETE FROM dead_letters WHERE bot_id = ?`, &r.DeadLetters},
			// The users' tokens and the connections (sealed under the
			// bot's data key, destroyed below).
			{`DELETE FROM user_tokens WHERE bot_id = ?`, &r.UserTokens},
			{`DELETE FROM oauth_connections WHERE bot_id = ?`, &r.OAuthConnections},
			{`DELETE FROM sites WHERE bot_id = ?`, nil},
		} {
			res, err := tx.ExecContext(ctx, d.q, id)
			if err != nil {
				return fmt.Errorf("delete bot %s: %w", id, err)
			}
			if n, err := res.RowsAffected(); err == nil && d.dst != nil {
				*d.dst += int(n)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM data_keys WHERE scope = ?`, "bot:"+id)
		if err != nil {
			return fmt.Errorf("delete bot %s: data key: %w", id, err)
		}
		if n, err := res.RowsAffected(); err == nil {
			r.DataKeys += int(n)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM bots WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete bot %s: %w", id, err)
		}
		return nil
	})
	s.bots.Delete(id)
	for _, c := range ids {
		s.forgetConversation(c)
	}
	if err != nil {
		if errors.Is(err, store.ErrHasSites) {
			return r, err // the sites that block it
		}
		return store.Removal{}, err
	}
	return r, nil
}

// hasNoConversations answers store.ErrHasConversations when a
// conversation matches where (a condition on the conversations table with
// one argument), inside the deletion's transaction.
func hasNoConversations(ctx context.Context, tx *sql.Tx, where, arg string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM conversations WHERE `+where, arg).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d conversation(s): %w", n, store.ErrHasConversations)
	}
	return nil
}
