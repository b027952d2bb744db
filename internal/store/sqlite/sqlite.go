// Package sqlite is the embedded default Store: one file, WAL journal,
// synchronous commits (an acknowledged append survives kill -9), and group
// commit so that concurrent appends share one fsync.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-gw/parley/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// readers is the size of the reader connection pool.
const readers = 8

// maxBatch bounds how many writes share one transaction.
const maxBatch = 128

// loadedWithin: with synchronous=NORMAL, a batch that starts this soon
// after the previous commit waits one scheduler turn for more requests.
const loadedWithin = 500 * time.Microsecond

// Store is a SQLite-backed store.Store.
type Store struct {
	w writerDB // the single writer connection
	r *sql.DB  // readers

	writes chan *writeReq
	quit   chan struct{}
	// nextSeq caches each conversation's next sequence number; only the
	// writer goroutine touches it. Entries are dropped when a transaction
	// fails, so the cache never runs ahead of what is committed.
	nextSeq map[string]int64
	// syncNormal: synchronous=NORMAL (store.durability normal); lastCommit
	// is when the writer last committed (writer only, normal only).
	syncNormal bool
	lastCommit time.Time
	// Last-activity marks (writer only, retention.go): when the writer
	// last refreshed each conversation's mark in a transaction that
	// committed, and the database's data_version then, so that a mark is
	// trusted only while no other process has committed (it may have
	// deleted the conversation).
	marked      map[string]int64
	dataVersion int64
	txN, dvTxN  uint64
	dvUnchanged bool

	// Group commit counters: committed transactions and the write requests
	// they carried.
	commits, committed atomic.Int64

	listener atomic.Pointer[func([]store.OutboxItem)]
	wg       sync.WaitGroup
	once     sync.Once

	// Prepared statements: SQLite parsing dominated the profile otherwise.
	stmtMu sync.Mutex
	rstmts map[string]*sql.Stmt // on the reader pool, prepared on first use
	wstmts map[string]*sql.Stmt // on the writer connection, prepared at Open
	// The writer's statements bound to the transaction under way (curTx),
	// each bound once per transaction rather than once per use: a batch
	// of appends ran Tx.StmtContext (an allocation and a lock) 3 times
	// per request. Writer only; database/sql closes them with the
	// transaction.
	curTx   *sql.Tx
	txStmts map[string]*sql.Stmt

	// Conversations never change once created: cache them. Bots change
	// rarely and may be changed by another process (the admin CLI), so
	// they are cached briefly.
	convs sync.Map // id -> store.Conversation
	convN atomic.Int64
	bots  sync.Map // id -> cachedBot

	// Conversations may be deleted by another process (parley erase):
	// cached entries are trusted for store.ConversationCacheTTL.
	convAt sync.Map // id -> time.Time the entry was read

	// health is whether commits succeed, for Ready.
	health health
	// path and file identify the database file opened (ready.go,
	// checkFile): every transaction checks it is still there.
	path string
	file os.FileInfo
}

type cachedBot struct {
	bot store.Bot
	at  time.Time
}

// botCacheTTL bounds how long a bot change made by another process takes
// to reach a running gateway.
const botCacheTTL = 5 * time.Second

// maxCachedConversations bounds the conversation cache.
const maxCachedConversations = 100_000

var _ store.Store = (*Store)(nil)

// writeReq is one unit of work for the single writer; requests that arrive
// together share a transaction and its fsync (group commit), and one
// failure does not undo the others (see commit). fn may run more than
// once: it must not keep state from a run that failed.
type writeReq struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	err  error
	done chan struct{}
	// outbox collects the items fn enqueued, for the listener.
	outbox []store.OutboxItem
}

// Queries run inside write transactions; prepared once on the writer.
const (
	// The log's high-water mark: deleted activities keep their row (content
	// emptied), so a sequence number is never reused. Retention that removes
	// rows must keep the highest one.
	qNextSeq        = `SELECT (SELECT COALESCE(MAX(seq), -1) + 1 FROM activities WHERE conversation_id = c.id) FROM conversations c WHERE c.id = ?`
	qInsertActivity = `INSERT INTO activities (conversation_id, seq, visibility, body, created_at) VALUES (?, ?, ?, ?, ?)`
	qInsertOutbox   = `INSERT INTO outbox (conversation_id, bot_id, activity_id, body, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 0, ?, ?)`
	qCompleteOutbox = `DELETE FROM outbox WHERE id = ?`
	qRetryOutbox    = `UPDATE outbox SET attempts = ?, next_attempt_at = ?, first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?`
	qInsertAttach   = `INSERT INTO attachments (id, conversation_id, content_type, name, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	// qTouch records the last activity (and an end) and proves the
	// conversation still exists (retention.go).
	qTouch = `UPDATE conversations SET last_activity_at = ?, ended_at = CASE WHEN ? THEN COALESCE(ended_at, ?) ELSE ended_at END
		WHERE id = ? AND (last_activity_at < ? OR ?)`
	qConvExists  = `SELECT last_activity_at FROM conversations WHERE id = ?`
	qDataVersion = `PRAGMA data_version`
)

var writeQueries = []string{qNextSeq, qInsertActivity, qInsertOutbox, qCompleteOutbox, qRetryOutbox, qInsertAttach, qTouch, qConvExists, qDataVersion}

// Options change how the database is opened.
type Options struct {
	// SyncNormal commits with synchronous=NORMAL instead of FULL: a
	// commit survives a crash of the process, but a power cut or kernel
	// crash may lose the last ones (config store.durability: normal).
	SyncNormal bool
}

// Open opens (creating if needed) the database file at path and migrates it,
// with every commit durable (synchronous=FULL).
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opt Options) (*Store, error) {
	sync := "synchronous(FULL)"
	if opt.SyncNormal {
		sync = "synchronous(NORMAL)"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// Page caches: 1 MB for the writer (appends touch few pages), 256 KB
	// for each reader; the OS caches the file anyway, and SQLite's 2 MB
	// default on every connection would be most of an idle gateway's memory.
	dsn := func(cacheKB int) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", sync, "busy_timeout(10000)", "foreign_keys(1)", "secure_delete(ON)", fmt.Sprintf("cache_size(-%d)", cacheKB)} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		return "file:" + path + "?" + q.Encode()
	}
	// A new database file is created here, private from the start (SQLite
	// would make it with the umask's mode), and removed again when the
	// first start fails (a full disk), so nothing half-made stays behind.
	created, err := createPrivate(path)
	if err != nil {
		return nil, err
	}
	abandon := func() {
		if created {
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				_ = os.Remove(f)
			}
		}
	}
	w, err := sql.Open("sqlite", dsn(1024))
	if err != nil {
		abandon()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		abandon()
		return nil, fmt.Errorf("open sqlite %s: %w", path, orStorage(err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = w.Close()
		abandon()
		return nil, fmt.Errorf("restrict database file permissions: %w", err)
	}
	if err := store.Migrate(ctx, w, migrations, "migrations", "?"); err != nil {
		_ = w.Close()
		abandon()
		return nil, fmt.Errorf("migrate %s: %w", path, orStorage(err))
	}
	r, err := sql.Open("sqlite", dsn(256))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	s := &Store{syncNormal: opt.SyncNormal, w: writerDB{DB: w}, r: r, writes: make(chan *writeReq), nextSeq: map[string]int64{}, marked: map[string]int64{}, quit: make(chan struct{}), rstmts: map[string]*sql.Stmt{}, wstmts: map[string]*sql.Stmt{}, txStmts: map[string]*sql.Stmt{}}
	s.health.okAt, s.health.probeEvery, s.health.staleAfter = time.Now(), probeEvery, staleAfter // the migrations committed
	s.w.s = s
	if s.file, err = os.Stat(path); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.path = path
	for _, q := range writeQueries {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			_ = r.Close()
			_ = w.Close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		s.wstmts[q] = st
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

// createPrivate creates the database file with mode 0600 when it does not
// exist, and reports whether it did.
func createPrivate(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database file %s: %w", path, err)
	}
	return true, f.Close()
}

// orStorage is err marked as a storage failure when it is one (a full
// disk says so: store.ErrFull), else err.
func orStorage(err error) error {
	if serr := storageError(err); serr != nil {
		return serr
	}
	return err
}

// Close stops the writer and closes the database.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.quit)
		s.wg.Wait()
		err = errors.Join(s.r.Close(), s.w.Close())
	})
	return err
}

// rq returns the prepared reader statement for q.
func (s *Store) rq(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.rstmts[q]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	s.rstmts[q] = st
	return st, nil
}

// queryRow runs a prepared reader query.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.rq(ctx, q)
	if err != nil {
		return s.r.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.rq(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// txExec runs a prepared writer statement inside tx.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	return s.txStmt(ctx, tx, q).ExecContext(ctx, args...)
}

// txStmt returns the writer statement q bound to tx.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if tx != s.curTx {
		return tx.StmtContext(ctx, s.wstmts[q])
	}
	st, ok := s.txStmts[q]
	if !ok {
		st = tx.StmtContext(ctx, s.wstmts[q])
		s.txStmts[q] = st
	}
	return st
}

// write hands fn to the writer and waits for its commit.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.submit(ctx, &writeReq{fn: fn, done: make(chan struct{})})
}

func (s *Store) submit(ctx context.Context, req *writeReq) error {
	select {
	case s.writes <- req:
	case <-s.quit:
		return errors.New("store closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed to the writer the work commits or fails as a whole; wait
	// for it even if ctx ends so the caller never acknowledges a write it
	// cannot account for.
	<-req.done
	return req.err
}

func nanos(t time.Time) int64 { return t.UnixNano() }
func fromNanos(n int64) time.Time {
	return time.Unix(0, n).UTC()
}

// secretColumn names the column of a secret slot (0 or 1).
func secretColumn(slot int) (string, error) {
	switch slot {
	case 0:
		return "secret1", nil
	case 1:
		return "secret2", nil
	}
	return "", fmt.Errorf("slot %d out of range", slot)
}

// optNanos stores a zero time as NULL.
func optNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return nanos(t)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// --- bots ---

func (s *Store) CreateBot(ctx context.Context, b store.Bot) error {
	if b.DeliveryTimeout < 0 {
		return fmt.Errorf("create bot %s: negative delivery timeout", b.ID)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO bots (id, name, endpoint, insecure_no_auth, secret1, secret2, created_at, delivery_timeout_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Name, b.Endpoint, b2i(b.InsecureNoAuth), b.SecretHashes[0], b.SecretHashes[1], nanos(b.CreatedAt), b.DeliveryTimeout.Milliseconds())
	if taken := s.nameTaken(ctx, err, "bots", "", b.Name, b.ID); taken != nil {
		return fmt.Errorf("create bot %s: %w", b.ID, taken)
	}
	if isUnique(err) {
		return fmt.Errorf("create bot %s: %w", b.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create bot %s: %w", b.ID, err)
	}
	return nil
}

func (s *Store) UpdateBot(ctx context.Context, b store.Bot) error {
	res, err := s.w.ExecContext(ctx, `UPDATE bots SET name = ?, endpoint = ?, insecure_no_auth = ? WHERE id = ?`, b.Name, b.Endpoint, b2i(b.InsecureNoAuth), b.ID)
	if taken := s.nameTaken(ctx, err, "bots", "", b.Name, b.ID); taken != nil {
		return fmt.Errorf("update bot %s: %w", b.ID, taken)
	}
	s.bots.Delete(b.ID)
	return affected(res, err, "update bot "+b.ID)
}

// SetBotSecret replaces one client-secret slot.
func (s *Store) SetBotSecret(ctx context.Context, id string, slot int, hash []byte) error {
	col, err := secretColumn(slot)
	if err != nil {
		return fmt.Errorf("set bot secret: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE bots SET `+col+` = ? WHERE id = ?`, hash, id)
	s.bots.Delete(id)
	return affected(res, err, "set bot secret "+id)
}

const botCols = `id, name, endpoint, insecure_no_auth, secret1, secret2, created_at, delivery_timeout_ms`

func scanBot(row interface{ Scan(...any) error }) (store.Bot, error) {
	var b store.Bot
	var insecure int
	var created, timeoutMS int64
	err := row.Scan(&b.ID, &b.Name, &b.Endpoint, &insecure, &b.SecretHashes[0], &b.SecretHashes[1], &created, &timeoutMS)
	b.DeliveryTimeout = time.Duration(timeoutMS) * time.Millisecond
	b.InsecureNoAuth = insecure != 0
	b.CreatedAt = fromNanos(created)
	return b, err
}

func (s *Store) GetBot(ctx context.Context, id string) (store.Bot, error) {
	if v, ok := s.bots.Load(id); ok {
		if cb := v.(cachedBot); time.Since(cb.at) < botCacheTTL {
			return cb.bot, nil
		}
	}
	b, err := scanBot(s.queryRow(ctx, `SELECT `+botCols+` FROM bots WHERE id = ?`, id))
	if err != nil {
		s.bots.Delete(id)
		return store.Bot{}, notFound(err, "get bot")
	}
	s.bots.Store(id, cachedBot{bot: b, at: time.Now()})
	return b, nil
}

func (s *Store) ListBots(ctx context.Context) ([]store.Bot, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+botCols+` FROM bots ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list bots: %w", err)
	}
	defer rows.Close()
	var out []store.Bot
	for rows.Next() {
		b, err := scanBot(rows)
		if err != nil {
			return nil, fmt.Errorf("list bots: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// --- sites ---

func (s *Store) CreateSite(ctx context.Context, st store.Site) error {
	origins, err := json.Marshal(nonNil(st.TrustedOrigins))
	if err != nil {
		return fmt.Errorf("create site: %w", err)
	}
	policy := st.ClientAttachmentURLs
	if policy == "" {
		policy = store.AttachmentURLsRefuse
	}
	if _, err := store.ParseAttachmentURLPolicy(string(policy)); err != nil {
		return fmt.Errorf("create site %s: %w", st.ID, err)
	}
	masking, err := store.ParseMaskingPolicy(string(st.Masking))
	if err != nil {
		return fmt.Errorf("create site %s: %w", st.ID, err)
	}
	if err := st.Retention.Validate(); err != nil {
		return fmt.Errorf("create site %s: %w", st.ID, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, secret1, secret2, created_at, client_attachment_urls, masking, retention_mode, retention_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		st.ID, st.BotID, st.Name, b2i(st.EnhancedAuth), string(origins), st.SecretHashes[0], st.SecretHashes[1], nanos(st.CreatedAt), string(policy), string(masking), string(st.Retention.Mode), int64(st.Retention.After))
	if taken := s.nameTaken(ctx, err, "sites", st.BotID, st.Name, st.ID); taken != nil {
		return fmt.Errorf("create site %s: %w", st.ID, taken)
	}
	if isUnique(err) {
		return fmt.Errorf("create site %s: %w", st.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create site %s: %w", st.ID, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const siteCols = `id, bot_id, name, enhanced_auth, trusted_origins, secret1, secret2, created_at, client_attachment_urls, masking, retention_mode, retention_after`

func scanSite(row interface{ Scan(...any) error }) (store.Site, error) {
	var st store.Site
	var enhanced int
	var origins string
	var created, after int64
	if err := row.Scan(&st.ID, &st.BotID, &st.Name, &enhanced, &origins, &st.SecretHashes[0], &st.SecretHashes[1], &created, &st.ClientAttachmentURLs, &st.Masking, &st.Retention.Mode, &after); err != nil {
		return st, err
	}
	st.Retention.After = time.Duration(after)
	st.EnhancedAuth = enhanced != 0
	st.CreatedAt = fromNanos(created)
	if err := json.Unmarshal([]byte(origins), &st.TrustedOrigins); err != nil {
		return st, fmt.Errorf("decode trusted origins: %w", err)
	}
	return st, nil
}

func (s *Store) GetSite(ctx context.Context, id string) (store.Site, error) {
	st, err := scanSite(s.queryRow(ctx, `SELECT `+siteCols+` FROM sites WHERE id = ?`, id))
	if err != nil {
		return store.Site{}, notFound(err, "get site")
	}
	return st, nil
}

func (s *Store) ListSites(ctx context.Context, botID string) ([]store.Site, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+siteCols+` FROM sites WHERE bot_id = ? OR ? = '' ORDER BY created_at, id`, botID, botID)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []store.Site
	for rows.Next() {
		st, err := scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *Store) UpdateSitePolicy(ctx context.Context, id string, enhancedAuth bool, origins []string) error {
	o, err := json.Marshal(nonNil(origins))
	if err != nil {
		return fmt.Errorf("update site: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET enhanced_auth = ?, trusted_origins = ? WHERE id = ?`, b2i(enhancedAuth), string(o), id)
	return affected(res, err, "update site "+id)
}

func (s *Store) SetSiteClientAttachmentURLs(ctx context.Context, id string, p store.AttachmentURLPolicy) error {
	if _, err := store.ParseAttachmentURLPolicy(string(p)); err != nil {
		return fmt.Errorf("update site %s: %w", id, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET client_attachment_urls = ? WHERE id = ?`, string(p), id)
	return affected(res, err, "update site "+id)
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

func (s *Store) SetSiteSecret(ctx context.Context, id string, slot int, hash []byte) error {
	col, err := secretColumn(slot)
	if err != nil {
		return fmt.Errorf("set site secret: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET `+col+` = ? WHERE id = ?`, hash, id)
	if isUnique(err) {
		return fmt.Errorf("set site secret: %w", store.ErrExists)
	}
	return affected(res, err, "set site secret "+id)
}

func (s *Store) SiteBySecretHash(ctx context.Context, hash []byte) (store.Site, error) {
	if len(hash) == 0 {
		return store.Site{}, fmt.Errorf("site by secret: %w", store.ErrNotFound)
	}
	st, err := scanSite(s.queryRow(ctx, `SELECT `+siteCols+` FROM sites WHERE secret1 = ? OR secret2 = ?`, hash, hash))
	if err != nil {
		return store.Site{}, notFound(err, "site by secret")
	}
	return st, nil
}

// --- conversations ---

func (s *Store) CreateConversation(ctx context.Context, c store.Conversation) (bool, error) {
	// A deleted conversation's id stays refused (its tombstone): the
	// lookup below then finds no row and answers ErrNotFound.
	res, err := s.w.ExecContext(ctx, `INSERT INTO conversations (id, bot_id, site_id, user_id, created_at, last_activity_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM conversation_tombstones WHERE id = ?) ON CONFLICT(id) DO NOTHING`,
		c.ID, c.BotID, c.SiteID, c.UserID, nanos(c.CreatedAt), nanos(c.CreatedAt), c.ID)
	if err != nil {
		return false, fmt.Errorf("create conversation: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("create conversation: %w", err)
	}
	if n == 1 {
		return true, nil
	}
	var existing store.Conversation
	var created int64
	err = s.w.QueryRowContext(ctx, `SELECT id, bot_id, site_id, user_id, created_at FROM conversations WHERE id = ?`, c.ID).
		Scan(&existing.ID, &existing.BotID, &existing.SiteID, &existing.UserID, &created)
	if err != nil {
		return false, notFound(err, "create conversation")
	}
	if existing.BotID != c.BotID || existing.SiteID != c.SiteID || existing.UserID != c.UserID {
		return false, fmt.Errorf("create conversation %s: %w", c.ID, store.ErrExists)
	}
	return false, nil
}

func (s *Store) GetConversation(ctx context.Context, id string) (store.Conversation, error) {
	if v, ok := s.convs.Load(id); ok {
		if at, ok := s.convAt.Load(id); ok && time.Since(at.(time.Time)) < store.ConversationCacheTTL {
			return v.(store.Conversation), nil
		}
	}
	var c store.Conversation
	var created int64
	err := s.queryRow(ctx, `SELECT id, bot_id, site_id, user_id, created_at FROM conversations WHERE id = ?`, id).
		Scan(&c.ID, &c.BotID, &c.SiteID, &c.UserID, &created)
	if err != nil {
		s.forgetConversation(id)
		return store.Conversation{}, notFound(err, "get conversation")
	}
	c.CreatedAt = fromNanos(created)
	if _, cached := s.convs.Load(id); cached || s.convN.Load() < maxCachedConversations {
		if _, loaded := s.convs.LoadOrStore(id, c); !loaded {
			s.convN.Add(1)
		}
		s.convAt.Store(id, time.Now())
	}
	return c, nil
}

// --- the log ---

func (s *Store) Append(ctx context.Context, conv string, recs []store.NewRecord, out []store.NewOutbox) ([]store.Record, error) {
	var res []store.Record
	req := &writeReq{done: make(chan struct{})}
	req.fn = func(ctx context.Context, tx *sql.Tx) error {
		var err error
		res, req.outbox, err = s.appendOne(ctx, tx, conv, recs, out)
		return err
	}
	if err := s.submit(ctx, req); err != nil {
		return nil, err
	}
	return res, nil
}

// SetOutboxListener implements store.Store.
func (s *Store) SetOutboxListener(fn func([]store.OutboxItem)) {
	if fn == nil {
		s.listener.Store(nil)
		return
	}
	s.listener.Store(&fn)
}

// announce tells the listener about a committed batch's outbox items.
func (s *Store) announce(batch []*writeReq) {
	fn := s.listener.Load()
	if fn == nil {
		return
	}
	for _, r := range batch {
		if r.err == nil && len(r.outbox) > 0 {
			(*fn)(r.outbox)
		}
	}
}

func (s *Store) writer() {
	defer s.wg.Done()
	busy := false
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.quit:
			return
		}
		batch := s.drain([]*writeReq{first})
		// With synchronous=NORMAL no fsync holds the writer while requests
		// queue, so batches stay small (1.2-1.6 commits per round trip at 10
		// conversations against 0.5 with FULL): there, a commit that
		// follows the previous one closely counts as load too.
		loaded := busy || (s.syncNormal && time.Since(s.lastCommit) < loadedWithin)
		if loaded && len(batch) < maxBatch {
			// Under load, let the goroutines that are about to submit run
			// first: one commit (and fsync) for several requests costs less
			// than several. Not a timer: Go sleeps far longer than a short
			// timer asks when nothing else wakes it (a 50 us wait measured
			// about 1 ms here), and every append on the path paid for it.
			runtime.Gosched()
			batch = s.drain(batch)
		}
		busy = len(batch) > 1
		s.commit(batch)
		if s.syncNormal {
			s.lastCommit = time.Now()
		}
	}
}

// drain adds the requests already waiting to batch, up to maxBatch.
func (s *Store) drain(batch []*writeReq) []*writeReq {
	for len(batch) < maxBatch {
		select {
		case r := <-s.writes:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// WriteStats reports group commit: transactions committed and the write
// requests they carried (requests per commit is how well fsyncs are shared).
func (s *Store) WriteStats() (commits, requests int64) {
	return s.commits.Load(), s.committed.Load()
}

// errRequestFailed means one request of a shared transaction failed and
// the transaction was rolled back.
var errRequestFailed = errors.New("a request in the transaction failed")

// commit runs a batch. The requests share one transaction and its fsync,
// without savepoints (a savepoint copies every page it touches); if one of
// them fails, the transaction is rolled back and each request runs alone,
// so one failure never undoes the others.
func (s *Store) commit(batch []*writeReq) {
	if len(batch) > 1 {
		err := s.runTx(batch)
		if err == nil || !errors.Is(err, errRequestFailed) {
			for _, r := range batch {
				finishReq(r, err)
			}
			return
		}
		for _, r := range batch {
			r.err = nil
		}
	}
	for _, r := range batch {
		finishReq(r, s.runTx([]*writeReq{r}))
	}
}

// finishReq reports a request's outcome to its caller: its own error, or
// the transaction's.
func finishReq(r *writeReq, txErr error) {
	if r.err == nil && txErr != nil && !errors.Is(txErr, errRequestFailed) {
		r.err = fmt.Errorf("write: %w", txErr)
	}
	close(r.done)
}

// runTx runs reqs in one transaction and, once it has committed, hands
// their outbox items to the listener.
func (s *Store) runTx(reqs []*writeReq) error {
	ctx := context.Background()
	if err := s.checkFile(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		if serr := storageError(err); serr != nil {
			s.recordCommit(serr)
			err = serr
		}
		return fmt.Errorf("begin: %w", err)
	}
	s.txN++
	s.curTx = tx
	clear(s.txStmts)
	defer func() { s.curTx = nil; clear(s.txStmts) }()
	for _, r := range reqs {
		if r.err = r.fn(ctx, tx); r.err != nil {
			_ = tx.Rollback()
			clear(s.nextSeq) // advances made in this transaction are undone
			clear(s.marked)
			if serr := storageError(r.err); serr != nil {
				s.recordCommit(serr)
				r.err = serr
			}
			return errRequestFailed
		}
	}
	if err := tx.Commit(); err != nil {
		clear(s.nextSeq)
		clear(s.marked)
		if serr := storageError(err); serr != nil {
			s.recordCommit(serr)
			err = serr
		}
		return fmt.Errorf("commit: %w", err)
	}
	s.recordCommit(nil)
	s.commits.Add(1)
	s.committed.Add(int64(len(reqs)))
	s.announce(reqs)
	return nil
}

func (s *Store) appendOne(ctx context.Context, tx *sql.Tx, conv string, recs []store.NewRecord, outs []store.NewOutbox) ([]store.Record, []store.OutboxItem, error) {
	next, ok := s.nextSeq[conv]
	if !ok {
		if err := s.txStmt(ctx, tx, qNextSeq).QueryRowContext(ctx, conv).Scan(&next); err != nil {
			return nil, nil, notFound(err, "append")
		}
	}
	now := time.Now().UTC()
	if err := s.touch(ctx, tx, conv, recs, now); err != nil {
		return nil, nil, err
	}
	res := make([]store.Record, 0, len(recs))
	seqs := make([]int64, 0, len(recs))
	for i, nr := range recs {
		seq := next + int64(i)
		body, err := nr.Build(seq)
		if err != nil {
			return nil, nil, fmt.Errorf("append: build record: %w", err)
		}
		if err := s.supersede(ctx, tx, conv, nr.Supersedes); err != nil {
			return nil, nil, err
		}
		if _, err := s.txExec(ctx, tx, qInsertActivity, conv, seq, int(nr.Visibility), body, nanos(now)); err != nil {
			return nil, nil, fmt.Errorf("append: insert activity: %w", err)
		}
		for _, a := range nr.Attachments {
			_, err := s.txExec(ctx, tx, qInsertAttach, a.ID, conv, a.ContentType, a.Name, a.Data, nanos(a.CreatedAt))
			if isUnique(err) {
				return nil, nil, fmt.Errorf("append: insert attachment: %w", store.ErrExists)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("append: insert attachment: %w", err)
			}
		}
		res = append(res, store.Record{ConversationID: conv, Seq: seq, Visibility: nr.Visibility, Body: body, CreatedAt: now})
		seqs = append(seqs, seq)
	}
	var items []store.OutboxItem
	for _, o := range outs {
		aid, body, err := o.Build(seqs)
		if err != nil {
			return nil, nil, fmt.Errorf("append: build outbox item: %w", err)
		}
		ins, err := s.txExec(ctx, tx, qInsertOutbox, conv, o.BotID, aid, body, nanos(now), nanos(now))
		if err != nil {
			return nil, nil, fmt.Errorf("append: insert outbox item: %w", err)
		}
		id, err := ins.LastInsertId()
		if err != nil {
			return nil, nil, fmt.Errorf("append: outbox item id: %w", err)
		}
		items = append(items, store.OutboxItem{ID: id, ConversationID: conv, BotID: o.BotID, ActivityID: aid, Body: body, NextAttemptAt: now, CreatedAt: now})
	}
	if len(s.nextSeq) >= maxCachedConversations {
		clear(s.nextSeq)
	}
	s.nextSeq[conv] = next + int64(len(recs))
	return res, items, nil
}

func (s *Store) Read(ctx context.Context, conv string, after int64, limit int) ([]store.Record, error) {
	return s.ReadBytes(ctx, conv, after, limit, 0)
}

func (s *Store) ReadBytes(ctx context.Context, conv string, after int64, limit, maxBytes int) ([]store.Record, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.query(ctx, `SELECT seq, visibility, body, created_at FROM activities WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?`, conv, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []store.Record
	total := 0
	for rows.Next() {
		rec := store.Record{ConversationID: conv}
		var vis int
		var created int64
		if err := rows.Scan(&rec.Seq, &vis, &rec.Body, &created); err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		rec.Visibility = store.Visibility(vis)
		rec.CreatedAt = fromNanos(created)
		out = append(out, rec)
		if total += len(rec.Body); maxBytes > 0 && total >= maxBytes {
			break // the remaining rows are not scanned: nothing more is held
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

func (s *Store) GetRecord(ctx context.Context, conv string, seq int64) (store.Record, error) {
	rec := store.Record{ConversationID: conv, Seq: seq}
	var vis int
	var created int64
	err := s.queryRow(ctx, `SELECT visibility, body, created_at FROM activities WHERE conversation_id = ? AND seq = ?`, conv, seq).
		Scan(&vis, &rec.Body, &created)
	if err != nil {
		return store.Record{}, notFound(err, "get activity")
	}
	rec.Visibility = store.Visibility(vis)
	rec.CreatedAt = fromNanos(created)
	return rec, nil
}

func (s *Store) ReplaceRecord(ctx context.Context, conv string, seq int64, vis store.Visibility, body []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE activities SET visibility = ?, body = ? WHERE conversation_id = ? AND seq = ?`, int(vis), body, conv, seq)
	return affected(res, err, "replace activity")
}

func (s *Store) Head(ctx context.Context, conv string) (int64, error) {
	var next int64
	if err := s.queryRow(ctx, qNextSeq, conv).Scan(&next); err != nil {
		return 0, notFound(err, "head")
	}
	return next - 1, nil
}

// --- outbox ---

const outboxCols = `id, conversation_id, bot_id, activity_id, body, attempts, next_attempt_at, created_at, first_attempt_at`

func scanOutbox(rows *sql.Rows) ([]store.OutboxItem, error) {
	defer rows.Close()
	var out []store.OutboxItem
	for rows.Next() {
		var it store.OutboxItem
		var next, created int64
		var first sql.NullInt64
		if err := rows.Scan(&it.ID, &it.ConversationID, &it.BotID, &it.ActivityID, &it.Body, &it.Attempts, &next, &created, &first); err != nil {
			return nil, fmt.Errorf("scan outbox: %w", err)
		}
		it.NextAttemptAt = fromNanos(next)
		it.CreatedAt = fromNanos(created)
		if first.Valid {
			it.FirstAttemptAt = fromNanos(first.Int64)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// outboxColsNoBody is outboxCols without the body (scanned as nil).
const outboxColsNoBody = `id, conversation_id, bot_id, activity_id, NULL, attempts, next_attempt_at, created_at, first_attempt_at`

func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxItem, error) {
	// The heads come from the covering index outbox_conversation (ids
	// only); only their rows are read. There is no index on
	// next_attempt_at (migration 0017): the hot path would maintain it.
	rows, err := s.r.QueryContext(ctx, `SELECT `+outboxColsNoBody+` FROM outbox
		WHERE id IN (SELECT MIN(id) FROM outbox GROUP BY conversation_id) AND next_attempt_at <= ?
		ORDER BY id LIMIT ?`, nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due outbox: %w", err)
	}
	return scanOutbox(rows)
}

func (s *Store) PendingOutbox(ctx context.Context, conv string) ([]store.OutboxItem, error) {
	rows, err := s.query(ctx, `SELECT `+outboxCols+` FROM outbox WHERE conversation_id = ? ORDER BY id`, conv)
	if err != nil {
		return nil, fmt.Errorf("pending outbox: %w", err)
	}
	return scanOutbox(rows)
}

func (s *Store) PendingOutboxPage(ctx context.Context, conv string, afterID int64, limit, maxBytes int) ([]store.OutboxItem, bool, error) {
	if limit < 1 {
		limit = 1
	}
	// Rows stream from SQLite one at a time: the scan stops at the first
	// row past the page, so at most one body beyond it is ever read.
	rows, err := s.query(ctx, `SELECT `+outboxCols+` FROM outbox WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?`, conv, afterID, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("pending outbox page: %w", err)
	}
	defer rows.Close()
	var out []store.OutboxItem
	size := 0
	for rows.Next() {
		var it store.OutboxItem
		var next, created int64
		var first sql.NullInt64
		if err := rows.Scan(&it.ID, &it.ConversationID, &it.BotID, &it.ActivityID, &it.Body, &it.Attempts, &next, &created, &first); err != nil {
			return nil, false, fmt.Errorf("scan outbox: %w", err)
		}
		if len(out) == limit || (len(out) > 0 && size+len(it.Body) > maxBytes) {
			return out, true, nil
		}
		it.NextAttemptAt = fromNanos(next)
		it.CreatedAt = fromNanos(created)
		if first.Valid {
			it.FirstAttemptAt = fromNanos(first.Int64)
		}
		size += len(it.Body)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("pending outbox page: %w", err)
	}
	return out, false, nil
}

func (s *Store) CompleteOutbox(ctx context.Context, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := s.txExec(ctx, tx, qCompleteOutbox, id); err != nil {
				return fmt.Errorf("complete outbox item %d: %w", id, err)
			}
		}
		return nil
	})
}

func (s *Store) RetryOutbox(ctx context.Context, id int64, attempts int, attemptAt, next time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, qRetryOutbox, attempts, nanos(next), nanos(attemptAt), id)
		return affected(res, err, "retry outbox item")
	})
}

// --- dead letters ---

func (s *Store) DeadLetterOutbox(ctx context.Context, d store.DeadLetter) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var first any
		if !d.FirstAttemptAt.IsZero() {
			first = nanos(d.FirstAttemptAt)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO dead_letters (id, conversation_id, bot_id, activity_id, body, attempts, created_at, first_attempt_at, last_attempt_at, last_status, last_error, dead_at)
			SELECT id, conversation_id, bot_id, activity_id, body, ?, created_at, COALESCE(?, first_attempt_at), ?, ?, ?, ? FROM outbox WHERE id = ?`,
			d.Attempts, first, nanos(d.LastAttemptAt), d.LastStatus, d.LastError, nanos(d.DeadAt), d.ID)
		if err := affected(res, err, fmt.Sprintf("dead-letter outbox item %d", d.ID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, d.ID); err != nil {
			return fmt.Errorf("dead-letter outbox item %d: %w", d.ID, err)
		}
		return nil
	})
}

func (s *Store) ListDeadLetters(ctx context.Context, botID string) ([]store.DeadLetter, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, conversation_id, bot_id, activity_id, body, attempts, created_at, first_attempt_at, last_attempt_at, last_status, last_error, dead_at
		FROM dead_letters WHERE ? = '' OR bot_id = ? ORDER BY id`, botID, botID)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []store.DeadLetter
	for rows.Next() {
		var d store.DeadLetter
		var created, last, dead int64
		var first sql.NullInt64
		if err := rows.Scan(&d.ID, &d.ConversationID, &d.BotID, &d.ActivityID, &d.Body, &d.Attempts, &created, &first, &last, &d.LastStatus, &d.LastError, &dead); err != nil {
			return nil, fmt.Errorf("scan dead letter: %w", err)
		}
		d.CreatedAt, d.LastAttemptAt, d.DeadAt = fromNanos(created), fromNanos(last), fromNanos(dead)
		if first.Valid {
			d.FirstAttemptAt = fromNanos(first.Int64)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) CountDeadLetters(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

func (s *Store) RedeliverDeadLetter(ctx context.Context, id int64, now time.Time) (store.OutboxItem, error) {
	var it store.OutboxItem
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		it = store.OutboxItem{ID: id, NextAttemptAt: now, CreatedAt: now}
		err := tx.QueryRowContext(ctx, `SELECT conversation_id, bot_id, activity_id, body FROM dead_letters WHERE id = ?`, id).
			Scan(&it.ConversationID, &it.BotID, &it.ActivityID, &it.Body)
		if err != nil {
			return notFound(err, fmt.Sprintf("redeliver dead letter %d", id))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, conversation_id, bot_id, activity_id, body, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
			id, it.ConversationID, it.BotID, it.ActivityID, it.Body, nanos(now), nanos(now)); err != nil {
			return fmt.Errorf("redeliver dead letter %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = ?`, id); err != nil {
			return fmt.Errorf("redeliver dead letter %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return store.OutboxItem{}, err
	}
	return it, nil
}

// --- attachments, sessions, keys ---

func (s *Store) PutAttachment(ctx context.Context, a store.Attachment) error {
	// Only into a conversation that exists: an upload racing a deletion
	// leaves no orphan row.
	res, err := s.w.ExecContext(ctx, `INSERT INTO attachments (id, conversation_id, content_type, name, data, created_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?)`,
		a.ID, a.ConversationID, a.ContentType, a.Name, a.Data, nanos(a.CreatedAt), a.ConversationID)
	if isUnique(err) {
		return fmt.Errorf("put attachment: %w", store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put attachment: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("put attachment: no conversation %s: %w", a.ConversationID, store.ErrNotFound)
	}
	return nil
}

func (s *Store) GetAttachment(ctx context.Context, id string) (store.Attachment, error) {
	var a store.Attachment
	var created int64
	err := s.queryRow(ctx, `SELECT id, conversation_id, content_type, name, data, created_at FROM attachments WHERE id = ?`, id).
		Scan(&a.ID, &a.ConversationID, &a.ContentType, &a.Name, &a.Data, &created)
	if err != nil {
		return store.Attachment{}, notFound(err, "get attachment")
	}
	a.CreatedAt = fromNanos(created)
	return a, nil
}

func (s *Store) PutSession(ctx context.Context, se store.Session) error {
	// Only for a conversation that exists (see PutAttachment). The WHERE
	// makes the upsert parse: SQLite needs it before ON CONFLICT.
	res, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id, conversation_id, user_id, expires_at)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?)
		ON CONFLICT(id) DO UPDATE SET conversation_id = excluded.conversation_id, user_id = excluded.user_id, expires_at = excluded.expires_at`,
		se.ID, se.ConversationID, se.UserID, nanos(se.ExpiresAt), se.ConversationID)
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("put session: no conversation %s: %w", se.ConversationID, store.ErrNotFound)
	}
	return nil
}

func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var se store.Session
	var exp int64
	err := s.r.QueryRowContext(ctx, `SELECT id, conversation_id, user_id, expires_at FROM sessions WHERE id = ?`, id).
		Scan(&se.ID, &se.ConversationID, &se.UserID, &exp)
	if err != nil {
		return store.Session{}, notFound(err, "get session")
	}
	se.ExpiresAt = fromNanos(exp)
	return se, nil
}

func (s *Store) PutKey(ctx context.Context, k store.Key) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys (kid, purpose, sealed, created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Purpose, k.Sealed, nanos(k.CreatedAt), optNanos(k.ActivatedAt), optNanos(k.RetiredAt))
	if isUnique(err) {
		return fmt.Errorf("put key %s: %w", k.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put key %s: %w", k.ID, err)
	}
	return nil
}

func (s *Store) ListKeys(ctx context.Context, purpose string) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, purpose, sealed, created_at, activated_at, retired_at, destroyed_at FROM signing_keys WHERE purpose = ? ORDER BY created_at, kid`, purpose)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		var k store.Key
		var created int64
		var activated, retired, destroyed sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Sealed, &created, &activated, &retired, &destroyed); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		k.CreatedAt = fromNanos(created)
		if activated.Valid {
			k.ActivatedAt = fromNanos(activated.Int64)
		}
		if retired.Valid {
			k.RetiredAt = fromNanos(retired.Int64)
		}
		if destroyed.Valid {
			k.DestroyedAt = fromNanos(destroyed.Int64)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) RotateKeys(ctx context.Context, purpose, activate string, next store.Key, now time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var waiting string
	err = tx.QueryRowContext(ctx, `SELECT kid FROM signing_keys WHERE purpose = ? AND activated_at IS NULL ORDER BY created_at, kid LIMIT 1`, purpose).Scan(&waiting)
	if err != nil {
		return notFound(err, "rotate keys: no next key")
	}
	if waiting != activate {
		return fmt.Errorf("rotate keys: the next key is %s, not %s: %w", waiting, activate, store.ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE purpose = ? AND activated_at IS NOT NULL AND retired_at IS NULL`, nanos(now), purpose); err != nil {
		return fmt.Errorf("rotate keys: retire: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET activated_at = ? WHERE kid = ?`, nanos(now), waiting); err != nil {
		return fmt.Errorf("rotate keys: activate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, purpose, sealed, created_at) VALUES (?, ?, ?, ?)`, next.ID, purpose, next.Sealed, nanos(next.CreatedAt)); err != nil {
		if isUnique(err) {
			return fmt.Errorf("rotate keys: %w", store.ErrExists)
		}
		return fmt.Errorf("rotate keys: insert next: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rotate keys: commit: %w", err)
	}
	return nil
}
