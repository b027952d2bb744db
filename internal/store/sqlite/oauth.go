package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// --- OAuth connections and user tokens (issue 12) ---

const oauthColumns = `bot_id, name, kind, issuer, auth_url, token_url, tenant, client_id, client_secret, scopes, max_login, created_at, updated_at`

func (s *Store) CreateOAuthConnection(ctx context.Context, c store.OAuthConnection) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO oauth_connections (`+oauthColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM bots WHERE id = ?)`,
		c.BotID, c.Name, c.Kind, c.Issuer, c.AuthURL, c.TokenURL, c.Tenant, c.ClientID, c.SealedSecret,
		strings.Join(c.Scopes, " "), int64(c.MaxLogin), nanos(c.CreatedAt), nanos(c.UpdatedAt), c.BotID)
	what := "create OAuth connection " + c.Name + " of bot " + c.BotID
	if isUnique(err) {
		return fmt.Errorf("%s: %w", what, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: no such bot: %w", what, store.ErrNotFound)
	}
	return nil
}

func scanOAuth(sc interface{ Scan(...any) error }) (store.OAuthConnection, error) {
	var c store.OAuthConnection
	var scopes string
	var maxLogin, created, updated int64
	if err := sc.Scan(&c.BotID, &c.Name, &c.Kind, &c.Issuer, &c.AuthURL, &c.TokenURL, &c.Tenant, &c.ClientID, &c.SealedSecret,
		&scopes, &maxLogin, &created, &updated); err != nil {
		return c, err
	}
	c.Scopes = strings.Fields(scopes)
	c.MaxLogin, c.CreatedAt, c.UpdatedAt = time.Duration(maxLogin), fromNanos(created), fromNanos(updated)
	return c, nil
}

func (s *Store) GetOAuthConnection(ctx context.Context, botID, name string) (store.OAuthConnection, error) {
	c, err := scanOAuth(s.r.QueryRowContext(ctx, `SELECT `+oauthColumns+` FROM oauth_connections WHERE bot_id = ? AND name = ?`, botID, name))
	if err != nil {
		return store.OAuthConnection{}, notFound(err, "get OAuth connection "+name)
	}
	return c, nil
}

func (s *Store) ListOAuthConnections(ctx context.Context, botID string) ([]store.OAuthConnection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+oauthColumns+` FROM oauth_connections WHERE bot_id = ? ORDER BY name`, botID)
	if err != nil {
		return nil, fmt.Errorf("list OAuth connections: %w", err)
	}
	defer rows.Close()
	var out []store.OAuthConnection
	for rows.Next() {
		c, err := scanOAuth(rows)
		if err != nil {
			return nil, fmt.Errorf("list OAuth connections: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list OAuth connections: %w", err)
	}
	return out, nil
}

func (s *Store) UpdateOAuthConnection(ctx context.Context, c store.OAuthConnection) error {
	res, err := s.w.ExecContext(ctx, `UPDATE oauth_connections SET kind = ?, issuer = ?, auth_url = ?, token_url = ?, tenant = ?,
		client_id = ?, client_secret = ?, scopes = ?, max_login = ?, updated_at = ? WHERE bot_id = ? AND name = ?`,
		c.Kind, c.Issuer, c.AuthURL, c.TokenURL, c.Tenant, c.ClientID, c.SealedSecret, strings.Join(c.Scopes, " "),
		int64(c.MaxLogin), nanos(c.UpdatedAt), c.BotID, c.Name)
	return affected(res, err, "update OAuth connection "+c.Name)
}

func (s *Store) DeleteOAuthConnection(ctx context.Context, botID, name string) error {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_tokens WHERE bot_id = ? AND connection = ?`, botID, name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_connections WHERE bot_id = ? AND name = ?`, botID, name)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete OAuth connection %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete OAuth connection %s: %w", name, store.ErrNotFound)
	}
	return nil
}

func (s *Store) PutUserToken(ctx context.Context, t store.UserToken) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO user_tokens (bot_id, user_id, connection, sealed, signed_in_at, expires_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM oauth_connections WHERE bot_id = ? AND name = ?)
		ON CONFLICT(bot_id, user_id, connection) DO UPDATE SET sealed = excluded.sealed, signed_in_at = excluded.signed_in_at, expires_at = excluded.expires_at`,
		t.BotID, t.UserID, t.Connection, t.Sealed, nanos(t.SignedInAt), nanos(t.ExpiresAt), t.BotID, t.Connection)
	if err != nil {
		return fmt.Errorf("put user token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("put user token: no connection %s: %w", t.Connection, store.ErrNotFound)
	}
	return nil
}

func (s *Store) GetUserToken(ctx context.Context, botID, userID, connection string) (store.UserToken, error) {
	t := store.UserToken{BotID: botID, UserID: userID, Connection: connection}
	var signed, exp int64
	err := s.r.QueryRowContext(ctx, `SELECT sealed, signed_in_at, expires_at FROM user_tokens WHERE bot_id = ? AND user_id = ? AND connection = ?`,
		botID, userID, connection).Scan(&t.Sealed, &signed, &exp)
	if err != nil {
		return store.UserToken{}, notFound(err, "get user token")
	}
	t.SignedInAt, t.ExpiresAt = fromNanos(signed), fromNanos(exp)
	return t, nil
}

func (s *Store) DeleteUserTokens(ctx context.Context, botID, userID, connection string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM user_tokens WHERE bot_id = ? AND user_id = ? AND (? = '' OR connection = ?)`,
		botID, userID, connection, connection)
	if err != nil {
		return 0, fmt.Errorf("delete user tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) EraseUserTokens(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM user_tokens WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("erase user tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
