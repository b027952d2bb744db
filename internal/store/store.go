// Package store defines Parley's persistence contract. Every backend
// (SQLite now, PostgreSQL later) implements Store and must pass the one
// conformance suite in package storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors every backend returns (wrapped) so callers can use errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrKEKRetired refuses to wrap a data key under a key-encryption key
	// that is retired or destroyed (the writer's view of the key set is
	// stale: it reloads and uses the active one).
	ErrKEKRetired = errors.New("key-encryption key is retired or destroyed")
	// ErrConflict means a concurrent change won: what the caller checked
	// before is no longer so.
	ErrConflict = errors.New("changed concurrently")
	// ErrFull means the storage is full: writes cannot commit until space
	// returns (SQLite: SQLITE_FULL; PostgreSQL: disk_full, 53100).
	ErrFull = errors.New("storage full")
	// ErrStoreReplaced means the database file was removed or replaced
	// while the store had it open: a commit would land in a file no one
	// will open again, so writes are refused until the file is back (or
	// the gateway restarts on a restored one).
	ErrStoreReplaced = errors.New("the database file was removed or replaced while open")
	// ErrNameTaken means another bot (or another site of the same bot)
	// already has the name, compared case-insensitively; the error is a
	// *NameTakenError naming the existing one.
	ErrNameTaken = errors.New("name already taken")
)

// Bot is a registered bot.
type Bot struct {
	ID       string // app id
	Name     string
	Endpoint string // messaging endpoint, e.g. https://bot.example/api/messages
	// InsecureNoAuth marks a development bot that is called without a
	// channel JWT and may call back without a bearer token. Only allowed
	// on loopback endpoints.
	InsecureNoAuth bool
	// SecretHashes holds the hashes of the two client-secret slots for
	// the token endpoint; a nil entry is an empty slot.
	SecretHashes [2][]byte
	CreatedAt    time.Time
	// DeliveryTimeout bounds one delivery attempt to this bot (zero: the
	// gateway's default). Set with SetBotDeliveryTimeout.
	DeliveryTimeout time.Duration
}

// Site is a Direct Line site of a bot: its secrets and client policy.
type Site struct {
	ID             string
	BotID          string
	Name           string
	EnhancedAuth   bool
	TrustedOrigins []string
	// SecretHashes holds the hashes of the two secret slots; a nil entry
	// is an empty slot.
	SecretHashes [2][]byte
	CreatedAt    time.Time
	// ClientAttachmentURLs is what the site does with attachment links a
	// client supplies (contentUrl or thumbnailUrl other than a data: URL;
	// files sent through the upload route are Parley's own).
	ClientAttachmentURLs AttachmentURLPolicy
	// Masking is what the site masks in its users' activities before
	// they are stored and forwarded to the bot (issue 10, item 7).
	Masking MaskingPolicy
	// Retention is how long the site's conversations are kept (the zero
	// value: the deployment's default, config retention.default).
	Retention Retention
}

// MaskingPolicy says which detected data a site masks in user activities.
type MaskingPolicy string

const (
	// MaskingOff masks nothing. The zero value means this too.
	MaskingOff MaskingPolicy = "off"
	// MaskingCards masks card numbers to their last four digits.
	MaskingCards MaskingPolicy = "cards"
	// MaskingAllPII masks card numbers to their last four digits and
	// replaces the other detected personal data (SSNs, IBANs, emails,
	// phone numbers) with placeholders.
	MaskingAllPII MaskingPolicy = "all-pii"
)

// Cards reports whether card numbers are masked.
func (p MaskingPolicy) Cards() bool { return p == MaskingCards || p == MaskingAllPII }

// AllPII reports whether the other personal data is masked too.
func (p MaskingPolicy) AllPII() bool { return p == MaskingAllPII }

// ParseMaskingPolicy reads "off", "cards" or "all-pii" ("" is off).
func ParseMaskingPolicy(s string) (MaskingPolicy, error) {
	switch p := MaskingPolicy(s); p {
	case "":
		return MaskingOff, nil
	case MaskingOff, MaskingCards, MaskingAllPII:
		return p, nil
	}
	return "", fmt.Errorf("masking policy %q: want off, cards or all-pii", s)
}

// AttachmentURLPolicy says what happens to attachment links from clients.
type AttachmentURLPolicy string

const (
	// AttachmentURLsRefuse refuses an activity that carries one (400).
	// The zero value means this too.
	AttachmentURLsRefuse AttachmentURLPolicy = "refuse"
	// AttachmentURLsUntrusted passes them to the bot, each such
	// attachment marked untrusted.
	AttachmentURLsUntrusted AttachmentURLPolicy = "untrusted"
)

// Untrusted reports whether links pass through marked untrusted; every
// other value, the zero value included, refuses them.
func (p AttachmentURLPolicy) Untrusted() bool { return p == AttachmentURLsUntrusted }

// ParseAttachmentURLPolicy reads "refuse" or "untrusted".
func ParseAttachmentURLPolicy(s string) (AttachmentURLPolicy, error) {
	switch p := AttachmentURLPolicy(s); p {
	case AttachmentURLsRefuse, AttachmentURLsUntrusted:
		return p, nil
	}
	return "", fmt.Errorf("attachment URL policy %q: want refuse or untrusted", s)
}

// Conversation is a started Direct Line conversation.
type Conversation struct {
	ID        string
	BotID     string
	SiteID    string
	UserID    string // the user bound at start (may be empty without enhanced auth)
	CreatedAt time.Time
}

// Visibility says who may read a stored activity.
type Visibility int

const (
	// VisibleAll activities appear in GET history and on streams.
	VisibleAll Visibility = 0
	// VisibleStream activities (typing) appear on streams only.
	VisibleStream Visibility = 1
	// VisibleNone marks a deleted activity: its sequence number stays
	// taken, its content is gone.
	VisibleNone Visibility = 2
)

// Record is one activity in a conversation's log. Body is opaque to the
// store (the conversation package decides its encoding, and later its
// encryption).
type Record struct {
	ConversationID string
	Seq            int64
	Visibility     Visibility
	Body           []byte
	CreatedAt      time.Time
}

// NewRecord is an activity to append; the store assigns Seq.
type NewRecord struct {
	Visibility Visibility
	// Build produces the body once the sequence number is known (ids and
	// timestamps derive from it). It must be fast (it runs inside the write
	// transaction) and may run more than once for one append (a shared
	// transaction that failed is retried alone): only its last result
	// counts.
	Build func(seq int64) ([]byte, error)
	// Attachments are files stored with this record, in the same
	// transaction (an upload): the append stores all of them or, failing,
	// none. Their ConversationID is the append's.
	Attachments []Attachment
	// EndsConversation marks an endOfConversation activity: the append
	// records that the conversation ended (for the on-end-of-conversation
	// retention policy) in its transaction.
	EndsConversation bool
	// Supersedes lists earlier records of the same conversation that this
	// one replaces (a streamed reply's newer chunk, or its final message):
	// in the append's transaction, each of them that is still VisibleStream
	// is emptied (VisibleNone, no body); a record of any other visibility
	// is left as it is. Their sequence numbers stay taken, so watermarks
	// keep their meaning and no other record moves (a sealed record stays
	// bound to its position).
	Supersedes []int64
}

// OutboxItem is a pending delivery to a bot.
type OutboxItem struct {
	ID             int64
	ConversationID string
	BotID          string
	ActivityID     string
	Body           []byte
	Attempts       int
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	// FirstAttemptAt is when the first failed attempt was made (zero: no
	// failed attempt yet).
	FirstAttemptAt time.Time
}

// DeadLetter is an outbox item that will not be retried: the bot refused
// it for good, or it was not delivered within the retry window. Its body
// stays readable; it can be moved back to the outbox (redelivered).
type DeadLetter struct {
	OutboxItem
	LastAttemptAt time.Time
	// LastStatus is the bot's HTTP status on the last attempt (0: no
	// answer, e.g. refused connection or timeout).
	LastStatus int
	// LastError says why the last attempt failed. It never holds message
	// text, nor the endpoint's userinfo or query (callers redact them).
	LastError string
	DeadAt    time.Time
}

// NewOutbox is a delivery to enqueue together with an append. Build gets
// the sequence numbers assigned to the appended records (for ids) and runs
// after every NewRecord.Build of the same append.
type NewOutbox struct {
	BotID string
	Build func(seqs []int64) (activityID string, body []byte, err error)
}

// Attachment is an uploaded file.
type Attachment struct {
	ID             string
	ConversationID string
	ContentType    string
	Name           string
	Data           []byte
	CreatedAt      time.Time
}

// Session binds a browser session (by the hash the client sees) to a
// conversation's user, for sign-in without a magic code.
type Session struct {
	ID             string
	ConversationID string
	UserID         string
	ExpiresAt      time.Time
}

// Key is a key of any purpose (keyring.KeySet: Direct Line token, channel
// and token-service signing, log pseudonyms, key-encryption keys). Sealed
// is its material sealed by the keyring, or for a key-encryption key the
// key provider's handle. It signs (or wraps) from ActivatedAt (zero: not
// yet, it is the next key); RetiredAt (zero: not retired) ends that and
// starts its purpose's overlap. Rows are never removed: a key is destroyed
// only on request (DestroyKey).
//
// DestroyedAt (zero: not destroyed) marks a key whose material is gone:
// Sealed is empty, the row stays as a tombstone so listings show it and
// data under it reports a destroyed key rather than a missing one.
type Key struct {
	ID          string // kid
	Purpose     string
	Sealed      []byte
	CreatedAt   time.Time
	ActivatedAt time.Time
	RetiredAt   time.Time
	DestroyedAt time.Time
}

// DataKey is the data-encryption key of one scope ("conv:" + conversation
// id, "bot:" + bot id), wrapped by a key-encryption key: KEKID is the id
// of that key's row (purpose "kek"). Destroying the row destroys
// everything sealed under it (crypto-shredding).
type DataKey struct {
	Scope     string
	KEKID     string
	Wrapped   []byte
	CreatedAt time.Time
}

// LegacyBlob is content stored before encryption at rest: a body or file
// whose first byte is 0 (the plain format).
type LegacyBlob struct {
	Kind           string // LegacyActivity, LegacyOutbox, LegacyDeadLetter or LegacyAttachment
	ConversationID string
	Seq            int64  // an activity's
	ID             string // an outbox item's or dead letter's id (decimal), an attachment's id
	Body           []byte
}

// Kinds of LegacyBlob.
const (
	LegacyActivity   = "activity"
	LegacyOutbox     = "outbox"
	LegacyDeadLetter = "dead_letter"
	LegacyAttachment = "attachment"
	// LegacyAttachmentName is an attachment's file name stored in the
	// clear (Body is the name; no format byte): one without the sealed
	// prefix "sealed:".
	LegacyAttachmentName = "attachment_name"
)

// OAuthConnection is a bot's named connection to an identity provider
// (issue 12): the bot's OAuthPrompt names it. Kind is one of the
// OAuthKind* values. SealedSecret is the client secret sealed by the
// token service under the bot's data key (scope "bot:" + BotID); the
// store keeps it opaque.
type OAuthConnection struct {
	BotID        string
	Name         string
	Kind         string
	Issuer       string // oidc: the issuer (discovery at Issuer + /.well-known/openid-configuration)
	AuthURL      string // oauth2: the authorization endpoint
	TokenURL     string // oauth2: the token endpoint
	Tenant       string // entra: the tenant id or domain
	ClientID     string
	SealedSecret []byte
	Scopes       []string
	// MaxLogin is how long a user stays signed in through this
	// connection, whatever the provider's refresh tokens allow.
	MaxLogin  time.Duration
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Kinds of OAuthConnection.
const (
	OAuthKindOIDC   = "oidc"
	OAuthKindOAuth2 = "oauth2"
	OAuthKindGitHub = "github"
	OAuthKindEntra  = "entra"
)

// UserToken is a user's token from a connection of a bot. Sealed is the
// provider's token (access, refresh, expiry) sealed by the token service
// under the bot's data key; ExpiresAt is the end of the login (SignedInAt
// plus the connection's MaxLogin): after it the token is never served.
type UserToken struct {
	BotID      string
	UserID     string
	Connection string
	Sealed     []byte
	SignedInAt time.Time
	ExpiresAt  time.Time
}

// Store is the persistence contract. Implementations must be safe for
// concurrent use.
type Store interface {
	// CreateBot refuses a name another bot has (compared
	// case-insensitively, at least for ASCII letters) with a
	// *NameTakenError (errors.Is ErrNameTaken); UpdateBot refuses a
	// rename to such a name the same way. Duplicates stored before this
	// rule stay, and can be updated without renaming. CreateSite refuses
	// a name another site of the same bot has, the same way. CreateBot
	// stores every field of b, its DeliveryTimeout included, and
	// CreateSite every field of s, its Masking included (one write: a
	// create that shows a secret once never half-succeeds).
	CreateBot(ctx context.Context, b Bot) error
	GetBot(ctx context.Context, id string) (Bot, error)
	ListBots(ctx context.Context) ([]Bot, error)
	// UpdateBot changes a bot's name, endpoint and insecure flag.
	UpdateBot(ctx context.Context, b Bot) error
	// SetBotDeliveryTimeout changes a bot's per-attempt delivery timeout
	// (zero: back to the default; negative is refused); GetBot and
	// ListBots return it, and a cached GetBot sees it at once in this
	// process. ErrNotFound for an unknown bot.
	SetBotDeliveryTimeout(ctx context.Context, id string, d time.Duration) error
	// SetBotSecret replaces the client-secret hash in one slot (0 or 1).
	SetBotSecret(ctx context.Context, id string, slot int, hash []byte) error

	CreateSite(ctx context.Context, s Site) error
	GetSite(ctx context.Context, id string) (Site, error)
	ListSites(ctx context.Context, botID string) ([]Site, error)
	UpdateSitePolicy(ctx context.Context, id string, enhancedAuth bool, origins []string) error
	// SetSiteSecret replaces the hash in one slot (0 or 1) and leaves the
	// other untouched.
	SetSiteSecret(ctx context.Context, id string, slot int, hash []byte) error
	SiteBySecretHash(ctx context.Context, hash []byte) (Site, error)
	// CreateSite stores ClientAttachmentURLs too (the zero value as
	// refuse) and GetSite, ListSites and SiteBySecretHash return it.
	// SetSiteClientAttachmentURLs changes it; it refuses a value
	// ParseAttachmentURLPolicy refuses, and answers ErrNotFound for an
	// unknown site.
	SetSiteClientAttachmentURLs(ctx context.Context, id string, p AttachmentURLPolicy) error
	// CreateSite stores Masking too (the zero value as off) and GetSite,
	// ListSites and SiteBySecretHash return it. SetSiteMasking changes it;
	// it refuses a value ParseMaskingPolicy refuses, and answers
	// ErrNotFound for an unknown site.
	SetSiteMasking(ctx context.Context, id string, p MaskingPolicy) error

	// CreateConversation inserts c; created is false (and no error) when a
	// conversation with that id already exists for the same bot and site.
	CreateConversation(ctx context.Context, c Conversation) (created bool, err error)
	GetConversation(ctx context.Context, id string) (Conversation, error)

	// Append adds records to a conversation's log, with their attachments,
	// and enqueues outbox items in one transaction: either everything is
	// durable or nothing is. An attachment id that is taken fails the
	// append (ErrExists).
	Append(ctx context.Context, conversationID string, recs []NewRecord, out []NewOutbox) ([]Record, error)
	// Read returns up to limit records with Seq > after, in order.
	Read(ctx context.Context, conversationID string, after int64, limit int) ([]Record, error)
	// ReadBytes is Read that also stops after the record that brings the
	// bodies' total to maxBytes or more, so that what a reader holds is
	// bounded by bytes, not only by count: it returns at least one record
	// when there is one, and never more than maxBytes plus one body.
	// maxBytes <= 0 means no byte bound.
	ReadBytes(ctx context.Context, conversationID string, after int64, limit, maxBytes int) ([]Record, error)
	GetRecord(ctx context.Context, conversationID string, seq int64) (Record, error)
	// ReplaceRecord swaps the body (and visibility) of an existing record.
	ReplaceRecord(ctx context.Context, conversationID string, seq int64, vis Visibility, body []byte) error
	// Head is the highest assigned sequence number, -1 for an empty log.
	Head(ctx context.Context, conversationID string) (int64, error)

	// DueOutbox lists the conversations' heads (their lowest pending item)
	// whose next attempt is at or before now, by outbox id, at most limit.
	// Body is left empty: a scheduler needs the ids, and reads bodies with
	// PendingOutboxPage when it is about to send them, so a large backlog
	// is never loaded at once.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error)
	// PendingOutbox lists all of a conversation's undelivered items in
	// order, bodies included, however many: for tools and tests. Delivery
	// uses PendingOutboxPage.
	PendingOutbox(ctx context.Context, conversationID string) ([]OutboxItem, error)
	// PendingOutboxPage lists a conversation's undelivered items with
	// id > afterID, in order, bodies included: at most limit items (limit
	// >= 1), and no more than maxBytes of bodies in all, except that the
	// first item is always returned whatever its size. more reports that
	// items beyond the page were pending when it was read. It never reads
	// more than one body beyond the page.
	PendingOutboxPage(ctx context.Context, conversationID string, afterID int64, limit, maxBytes int) (items []OutboxItem, more bool, err error)
	// CompleteOutbox removes delivered (or abandoned) items in one commit;
	// ids already gone are ignored.
	CompleteOutbox(ctx context.Context, ids ...int64) error
	// SetOutboxListener registers fn to receive outbox items after their
	// transaction commits, in commit order (so per-conversation order holds).
	// Each item is as PendingOutbox would return it: CreatedAt included
	// (delivery's retry window, bots.delivery_retry_for, starts there).
	// fn must not block; nil removes it.
	SetOutboxListener(fn func([]OutboxItem))
	// RetryOutbox records a failed attempt made at attemptAt: the new
	// attempt count, the first attempt's time (set once, kept after) and
	// when the item is next due.
	RetryOutbox(ctx context.Context, id int64, attempts int, attemptAt, next time.Time) error
	// DeadLetterOutbox moves outbox item d.ID, in one commit, to the dead
	// letters with its body and d's account of why it died (Attempts,
	// FirstAttemptAt, LastAttemptAt, LastStatus, LastError, DeadAt; the
	// other fields are taken from the outbox row). ErrNotFound when the
	// item is not in the outbox.
	DeadLetterOutbox(ctx context.Context, d DeadLetter) error
	// ListDeadLetters lists the dead letters of botID (all bots when
	// empty), by outbox id (so per conversation in delivery order).
	ListDeadLetters(ctx context.Context, botID string) ([]DeadLetter, error)
	// CountDeadLetters counts every dead letter.
	CountDeadLetters(ctx context.Context) (int, error)
	// OutboxStats counts the pending outbox items (every conversation's,
	// due or in backoff; not the dead letters) and returns the creation
	// time of the oldest (zero when there is none).
	OutboxStats(ctx context.Context) (pending int, oldest time.Time, err error)
	// RedeliverDeadLetter moves dead letter id back to the outbox under its
	// original outbox id, so it keeps its place before its conversation's
	// later pending items; it starts afresh (no attempts, due and created
	// at now: a new retry window). The listener is not called: the delivery
	// poller finds it. ErrNotFound when there is no such dead letter.
	RedeliverDeadLetter(ctx context.Context, id int64, now time.Time) (OutboxItem, error)
	// GetDeadLetter returns dead letter id (ErrNotFound when there is
	// none); DropDeadLetter deletes it for good, its body with it: the bot
	// never receives it (ErrNotFound when there is none). The admin API's
	// dead-letter routes (internal/admin).
	GetDeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	DropDeadLetter(ctx context.Context, id int64) error

	// PutAttachment stores a file of an existing conversation: ErrNotFound
	// (and nothing stored) when a.ConversationID does not exist, never
	// created or deleted meanwhile, so an upload racing a deletion leaves
	// no orphan. ErrExists for a taken id.
	PutAttachment(ctx context.Context, a Attachment) error
	GetAttachment(ctx context.Context, id string) (Attachment, error)

	// PutSession stores (or replaces) a session of an existing
	// conversation: ErrNotFound, as PutAttachment, otherwise.
	PutSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)

	PutKey(ctx context.Context, k Key) error
	// ListKeys lists a purpose's keys, oldest first.
	ListKeys(ctx context.Context, purpose string) ([]Key, error)
	// RotateKeys, in one transaction: retires the purpose's active keys
	// (RetiredAt = now), activates the oldest key not yet activated, which
	// must be activate (the key the caller checked, e.g. for its age), and
	// inserts next (not activated). It removes nothing. It fails with
	// ErrNotFound when no key was waiting, and with ErrConflict, changing
	// nothing, when the waiting key is not activate (a concurrent rotation
	// won: activating its brand-new next key would skip every check).
	RotateKeys(ctx context.Context, purpose, activate string, next Key, now time.Time) error
	// DestroyKey empties key id's material (Sealed) and sets DestroyedAt;
	// the row stays. ErrNotFound for an unknown key. Destroying a
	// destroyed key changes nothing and is not an error.
	DestroyKey(ctx context.Context, id string, at time.Time) error

	// PutDataKey stores a scope's data key; ErrExists when the scope has
	// one already (the caller then reads the winner with GetDataKey). A
	// conversation's scope (DataKeyScope) is refused with ErrNotFound
	// unless the conversation exists: no key outlives, or precedes, its
	// conversation. A KEKID naming a key row (purpose kek) that is retired
	// or destroyed is refused with ErrKEKRetired, in the same statement: a
	// retired KEK gains no data key, so the count that allows its
	// destruction cannot grow behind it.
	PutDataKey(ctx context.Context, k DataKey) error
	// GetDataKey reads a scope's data key; ErrNotFound when it has none.
	GetDataKey(ctx context.Context, scope string) (DataKey, error)
	// RewrapDataKey replaces the scope's KEKID and Wrapped with k's, only
	// while the key is still wrapped by oldKEK (a concurrent rewrap or
	// deletion wins): ErrNotFound otherwise. A k.KEKID that is retired or
	// destroyed is refused with ErrKEKRetired, as by PutDataKey.
	RewrapDataKey(ctx context.Context, oldKEK string, k DataKey) error
	// ListDataKeys lists, by scope, up to limit data keys wrapped by kekID
	// whose scope sorts after afterScope ("" for the first page).
	ListDataKeys(ctx context.Context, kekID, afterScope string, limit int) ([]DataKey, error)
	// CountDataKeys counts the data keys wrapped by kekID.
	CountDataKeys(ctx context.Context, kekID string) (int, error)
	// DeleteDataKey removes a scope's data key; ErrNotFound when it has
	// none.
	DeleteDataKey(ctx context.Context, scope string) error

	// LegacyPending reports whether content written before encryption at
	// rest may remain (set by the migration that brought encryption when
	// the store held content; cleared by ClearLegacyPending).
	LegacyPending(ctx context.Context) (bool, error)
	// ListLegacy lists up to limit blobs of kind in the plain format (first
	// byte 0; an empty body is not one), in key order, after the page
	// cursor after (the last blob of the previous page; zero for the first).
	ListLegacy(ctx context.Context, kind string, after LegacyBlob, limit int) ([]LegacyBlob, error)
	// ReplaceLegacy replaces b's stored content with body only while it is
	// still b.Body: replaced is false (no error) when it changed or is gone.
	ReplaceLegacy(ctx context.Context, b LegacyBlob, body []byte) (replaced bool, err error)
	// ClearLegacyPending records that no plain content remains.
	ClearLegacyPending(ctx context.Context) error

	// SetSiteRetention changes a site's retention policy; it refuses a
	// policy Retention.Validate refuses and answers ErrNotFound for an
	// unknown site. CreateSite stores Site.Retention too (validated the
	// same way) and GetSite, ListSites and SiteBySecretHash return it.
	SetSiteRetention(ctx context.Context, id string, r Retention) error

	// Every Append also records, in its transaction, the time of the
	// conversation's last activity (refreshed at most once per
	// ActivityGranularity: the recorded time may lag the true one by that
	// much) and, for a record with EndsConversation, that the conversation
	// ended (always at once); an Append to a
	// conversation that does not exist (never created, or deleted by
	// DeleteConversation, possibly by another process) fails with
	// ErrNotFound and stores nothing, so a concurrent deletion never leaves
	// orphan rows. A conversation's last activity starts at its creation.

	// DeleteConversation erases conversation id and everything stored
	// under it in ONE transaction: its activities, outbox items, dead
	// letters, attachments and sessions, its data key (scope
	// DataKeyScope(id): crypto-shredding) and the conversation row. It
	// returns what it removed. Afterwards GetConversation and Append answer
	// ErrNotFound (in another process running the same store, within
	// ConversationCacheTTL), Read returns nothing, and CreateConversation
	// refuses the id with ErrNotFound until the tombstone expires (see
	// PruneTombstones), so a client token minted before the deletion cannot
	// bring the conversation back. ErrNotFound when nothing was stored
	// under id.
	DeleteConversation(ctx context.Context, id string, now time.Time) (Erased, error)
	// ExpiredConversations lists, by id, up to limit conversations of
	// siteID whose last activity is before idleBefore, or (when ended is
	// true) whose log holds an endOfConversation activity and that have
	// nothing left in the outbox (the bot has had everything, the end
	// included). Ids sort after afterID ("" for the first page).
	ExpiredConversations(ctx context.Context, siteID string, idleBefore time.Time, ended bool, afterID string, limit int) ([]string, error)
	// UserConversations lists, by id, every conversation bound to userID
	// (Conversation.UserID), across bots and sites. An empty userID lists
	// nothing: conversations without a bound user are not anyone's.
	UserConversations(ctx context.Context, userID string) ([]string, error)

	// UpdateBotAuth is UpdateBot that also replaces both client-secret
	// slots with b.SecretHashes and the delivery timeout with
	// b.DeliveryTimeout, in the same commit: switching a bot between
	// authentication and --insecure-no-auth never leaves it half
	// switched, and a switch that makes a secret shown once is one write.
	// Errors as UpdateBot (ErrNotFound, ErrNameTaken).
	UpdateBotAuth(ctx context.Context, b Bot) error
	// UpdateSite changes a site's name and enhanced authentication in one
	// commit; the rest (origins, secrets, policies) is unchanged.
	// ErrNotFound for an unknown site; a name another site of the same bot
	// has is refused as CreateSite refuses it (ErrNameTaken).
	UpdateSite(ctx context.Context, id, name string, enhancedAuth bool) error
	// ListConversations summarizes conversations, never their content:
	// those of f.SiteID and/or f.BotID (all when both are empty), most
	// recently active first (then by id), at most f.Limit (<= 0: 100).
	ListConversations(ctx context.Context, f ConversationFilter) ([]ConversationSummary, error)
	// PlanDeleteSite counts what DeleteSite would remove now, changing
	// nothing; PlanDeleteBot what DeleteBot(cascade true) would. Both
	// answer ErrNotFound for an unknown id.
	PlanDeleteSite(ctx context.Context, id string) (Removal, error)
	PlanDeleteBot(ctx context.Context, id string) (Removal, error)
	// DeleteSite removes site id in ONE transaction: every conversation of
	// the site exactly as DeleteConversation removes one (activities,
	// outbox items, dead letters, attachments, sessions, the data key,
	// with a tombstone each), then the site row and so its secrets. It
	// returns what it removed. Afterwards GetSite and SiteBySecretHash
	// answer ErrNotFound, CreateConversation for the site answers
	// ErrNotFound (as for a deleted conversation), and every
	// conversation of the site behaves as after DeleteConversation (in
	// another process, within ConversationCacheTTL): the delivery worker
	// finds its outbox items gone (CompleteOutbox ignores them,
	// RetryOutbox and DeadLetterOutbox answer ErrNotFound). ErrNotFound
	// for an unknown site. With opt.EmptyOnly a site that still has a
	// conversation is refused with ErrHasConversations, changing nothing
	// (checked in the same transaction).
	DeleteSite(ctx context.Context, id string, now time.Time, opt DeleteOptions) (Removal, error)
	// DeleteBot removes bot id in ONE transaction: with opt.Cascade, each of
	// its sites as DeleteSite does, then every outbox item and dead letter
	// still addressed to the bot, the bot's data key (scope "bot:" + id)
	// and the bot row (its client secrets). Without cascade a bot that
	// still has a site is refused with ErrHasSites, changing nothing.
	// Afterwards GetBot answers ErrNotFound (in another process within a
	// few seconds: backends may cache bots briefly). ErrNotFound for an
	// unknown bot. opt.EmptyOnly refuses as for DeleteSite.
	DeleteBot(ctx context.Context, id string, now time.Time, opt DeleteOptions) (Removal, error)
	// PruneActivities removes content from conversation id without
	// deleting the conversation (the ephemeral policy), in one
	// transaction: every activity created before deliveredBefore that
	// precedes (by creation time) the oldest item still in the outbox (the
	// bot has it), the attachments created before deliveredBefore once no
	// item is in the outbox, and every activity, outbox item, dead letter
	// and attachment created before hardBefore whatever its state. The log's
	// highest record is never removed but emptied (VisibleNone, no body), so
	// sequence numbers are never reused. It returns the number of
	// activities removed or emptied.
	PruneActivities(ctx context.Context, id string, deliveredBefore, hardBefore time.Time) (int, error)
	// ConversationDeleted reports whether id was deleted by
	// DeleteConversation and its tombstone is not yet pruned (token refresh
	// refuses such a conversation, so no token outlives the tombstone).
	ConversationDeleted(ctx context.Context, id string) (bool, error)
	// DeletedConversations lists the ids of the conversations deleted at
	// or after since (by DeleteConversation, DeleteSite or DeleteBot, in
	// any process: the deletion's now), whose tombstones are not yet
	// pruned, oldest first, at most limit. The server ends the open
	// streams of conversations another process deleted with it.
	DeletedConversations(ctx context.Context, since time.Time, limit int) ([]string, error)
	// PruneTombstones forgets the ids of conversations deleted before
	// before (CreateConversation accepts them again).
	PruneTombstones(ctx context.Context, before time.Time) error
	// Scrub makes deleted content unrecoverable from the store's own files
	// as far as the backend can (SQLite: secure_delete is always on, and
	// Scrub checkpoints the WAL and truncates it, so no old page version
	// stays there). Callers run it after deleting something.
	Scrub(ctx context.Context) error

	// Ready reports whether the store can commit writes now: nil, or the
	// error (wrapping ErrFull when the storage is full) of the last commit
	// that failed. It follows the outcome of every commit; while the last
	// one failed, or when none succeeded for a while, it commits a small
	// write probe, at most one per second whatever the number of callers
	// (readiness checks cannot load the writer), and returns nil again as
	// soon as a commit succeeds. It never blocks on a probe in progress.
	Ready(ctx context.Context) error

	// Authentication failures (threat detection, authfailures.go): counts
	// per minute, keyed by site, client pseudonym (never an address),
	// user-agent family, status and reason. AddAuthFailures adds counts in
	// one transaction: a row with the same minute and key gets Count added,
	// the earlier FirstSeen and the later LastSeen (so replicas flushing the
	// same minute add up). TopAuthFailures answers, for the minutes at or
	// after since, the rows of the top offenders (site, client and user
	// agent together; the top most failures, ties by site, client, user
	// agent), summed over minutes per status and reason (Minute zero),
	// offenders in that order. AuthFailureTotals sums the minutes at or
	// after since grouped by the fields in by (a subset of "site",
	// "client", "user_agent"; none: one total row), keeping groups with at
	// least min failures, most first, at most limit; fields not grouped
	// are empty. PruneAuthFailures removes the minutes before before and
	// the alert claims older than that; it returns the rows removed.
	AddAuthFailures(ctx context.Context, counts []AuthFailureCount) error
	TopAuthFailures(ctx context.Context, since time.Time, top int) ([]AuthFailureCount, error)
	AuthFailureTotals(ctx context.Context, since time.Time, by []string, min int64, limit int) ([]AuthFailureCount, error)
	// AuthFailureSeries answers one offender's (site, client, user agent)
	// failures at or after since in buckets of bucket (a whole number of
	// minutes; each bucket starts at a multiple of bucket since the Unix
	// epoch): one row per non-empty bucket, Minute its start and Count its
	// sum over statuses and reasons, by Minute (the security report's
	// chart over time).
	AuthFailureSeries(ctx context.Context, since time.Time, bucket time.Duration, site, client, userAgent string) ([]AuthFailureCount, error)
	PruneAuthFailures(ctx context.Context, before time.Time) (int64, error)
	// ClaimAlert records that alert rule fired for key at now, unless it
	// already fired for that key after now-window: claimed is true for
	// exactly one of concurrent callers (replicas) within a window.
	ClaimAlert(ctx context.Context, rule, key string, now time.Time, window time.Duration) (claimed bool, err error)
	// CreateOAuthConnection stores a bot's connection: ErrExists when
	// the bot has one of that name, ErrNotFound when the bot does not
	// exist. GetOAuthConnection answers ErrNotFound for an unknown one;
	// ListOAuthConnections lists a bot's by name. UpdateOAuthConnection
	// replaces every field but BotID, Name and CreatedAt (ErrNotFound
	// when there is none). DeleteOAuthConnection removes it together with
	// every user token obtained through it, in one transaction.
	CreateOAuthConnection(ctx context.Context, c OAuthConnection) error
	GetOAuthConnection(ctx context.Context, botID, name string) (OAuthConnection, error)
	ListOAuthConnections(ctx context.Context, botID string) ([]OAuthConnection, error)
	UpdateOAuthConnection(ctx context.Context, c OAuthConnection) error
	DeleteOAuthConnection(ctx context.Context, botID, name string) error
	// PutUserToken stores (or replaces) a user's token of a connection;
	// ErrNotFound when the connection does not exist. GetUserToken answers
	// ErrNotFound when there is none. DeleteUserTokens removes a user's
	// tokens of one bot (of one connection, or all when connection is "")
	// and returns how many it removed; EraseUserTokens removes a user's
	// tokens of every bot (erasure) and returns how many.
	PutUserToken(ctx context.Context, t UserToken) error
	GetUserToken(ctx context.Context, botID, userID, connection string) (UserToken, error)
	DeleteUserTokens(ctx context.Context, botID, userID, connection string) (int, error)
	EraseUserTokens(ctx context.Context, userID string) (int, error)

	// The audit log (issue 13, audit.go): a hash chain the audit package
	// computes; the store keeps the fields as given and is append-only:
	// no method updates or removes an entry or a checkpoint.
	//
	// AppendAudit appends one entry in ONE write transaction that first
	// reads the current head (the entry with the highest Seq: prevSeq 0
	// and prevHash nil when the log is empty) and calls build(prevSeq,
	// prevHash) for the entry to insert; concurrent appends (other
	// goroutines, other processes) are serialized, so every entry's Prev
	// is the hash of the entry just before it. The entry build returns
	// must have Seq prevSeq+1 and Prev equal to prevHash (else the append
	// fails and stores nothing). build must be fast and pure: it may run
	// more than once for one append (a shared transaction retried alone);
	// only its last result is stored and returned.
	AppendAudit(ctx context.Context, build func(prevSeq int64, prevHash []byte) (AuditEntry, error)) (AuditEntry, error)
	// ListAudit returns up to limit entries with Seq > after, by Seq,
	// exactly as appended (Detail nil when it had no pair).
	ListAudit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// AuditHead is the entry with the highest Seq; ErrNotFound when the
	// log is empty.
	AuditHead(ctx context.Context) (AuditEntry, error)
	// PutAuditCheckpoint appends a signed checkpoint of the chain head;
	// ListAuditCheckpoints lists every checkpoint in the order they were
	// put (ID increasing).
	PutAuditCheckpoint(ctx context.Context, c AuditCheckpoint) (AuditCheckpoint, error)
	ListAuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
	// Operators, their sessions, enrollment codes and API tokens (issue
	// 13): see OperatorStore.
	OperatorStore

	Close() error
}

// AuthFailureCount is a number of authentication failures (401, 403, 429
// answers and the token service's refusals) of one minute and key. Client
// is a keyed pseudonym of the client address (redact.Pseudonymizer.Addr),
// never the address; UserAgent is a family ("curl", "browser-chrome"),
// never the header itself.
type AuthFailureCount struct {
	Minute              time.Time
	Site                string
	Client              string
	UserAgent           string
	Status              int
	Reason              string
	Count               int64
	FirstSeen, LastSeen time.Time
}

// NameTakenError is ErrNameTaken with the existing object: Kind is "bot"
// or "site", ExistingID its id.
type NameTakenError struct {
	Kind, Name, ExistingID string
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("%s name %q is already used by %s %s", e.Kind, e.Name, e.Kind, e.ExistingID)
}

// Is makes errors.Is(err, ErrNameTaken) true.
func (e *NameTakenError) Is(target error) bool { return target == ErrNameTaken }

// ErrHasSites refuses DeleteBot without cascade for a bot that still has
// sites.
var ErrHasSites = errors.New("the bot still has sites")

// ErrLastOwner refuses an UpdateOperator or DeleteOperator that would
// leave no usable owner (see OperatorStore).
var ErrLastOwner = errors.New("no enabled owner of every bot would be left")

// ConversationFilter selects conversations for ListConversations.
type ConversationFilter struct {
	BotID, SiteID string
	Limit         int
}

// ConversationSummary describes a conversation without its content.
type ConversationSummary struct {
	Conversation
	// LastActivityAt is the recorded last activity (it may lag by
	// ActivityGranularity); EndedAt is zero unless the log holds an
	// endOfConversation.
	LastActivityAt time.Time
	EndedAt        time.Time
	// Activities counts the stored activities (removed ones not
	// counted); PendingDeliveries the outbox items, DeadLetters the dead
	// letters, Attachments the uploads.
	Activities        int
	PendingDeliveries int
	DeadLetters       int
	Attachments       int
}

// DeleteOptions qualify DeleteSite and DeleteBot.
type DeleteOptions struct {
	// Cascade (DeleteBot): delete the bot's sites too.
	Cascade bool
	// EmptyOnly: refuse with ErrHasConversations, changing nothing, when a
	// conversation would be deleted (for a principal who may delete sites
	// and bots but not erase conversations: a plan checked before would
	// race with a conversation started meanwhile).
	EmptyOnly bool
}

// ErrHasConversations refuses a DeleteSite or DeleteBot with EmptyOnly
// that would delete conversations.
var ErrHasConversations = errors.New("has conversations")

// Removal is what DeleteBot or DeleteSite removed, or what PlanDeleteBot
// or PlanDeleteSite counted.
type Removal struct {
	// BotID is the bot removed ("" for DeleteSite); SiteIDs the sites.
	BotID   string
	SiteIDs []string
	// Conversations and what was stored under them.
	Conversations int
	Activities    int
	Attachments   int
	Sessions      int
	// DataKeys counts the data keys destroyed (crypto-shredding).
	DataKeys int
	// OutboxItems are the queued deliveries dropped, DeadLetters the
	// dead letters.
	OutboxItems int
	DeadLetters int
	// SecretSlots counts the site secrets and bot client secrets revoked
	// (filled slots).
	SecretSlots int
	// OAuthConnections and UserTokens are the bot's OAuth connections and
	// the users' tokens obtained through them (DeleteBot only: user tokens
	// belong to a bot and a user, not to a site).
	OAuthConnections int
	UserTokens       int
}

// AuditEntry is one entry of the audit log as stored (internal/audit owns
// its meaning, its hash and its MAC under key KeyID). Detail holds short
// non-secret facts; no field ever holds message text, a raw user id or a
// client address.
type AuditEntry struct {
	Seq                                          int64
	Time                                         time.Time
	Actor, Role, Action, Target, Outcome, Client string
	Detail                                       map[string]string
	Prev, Hash                                   []byte
	KeyID                                        string
	MAC                                          []byte
}

// AuditCheckpoint is a signed head of the audit chain: entry Seq has Hash.
// KeyID names the audit-checkpoint key that made Signature; ID is assigned
// by PutAuditCheckpoint.
type AuditCheckpoint struct {
	ID        int64
	Seq       int64
	Hash      []byte
	CreatedAt time.Time
	KeyID     string
	Signature []byte
}

// OperatorStore keeps operator identity (issue 13). It never holds a
// secret in the clear: passwords as argon2id PHC strings, TOTP secrets
// sealed by the keyring envelope, recovery codes, enrollment codes,
// session ids and API tokens as SHA-256 hashes.
//
// CreateOperator stores o: ErrExists when the id or the name (compared
// case-insensitively) or a non-empty SSOSubject is taken. GetOperator,
// OperatorByName (case-insensitive), OperatorBySSOSubject and
// OperatorByEnrollHash (a non-empty hash) answer ErrNotFound for none.
// ListOperators lists every operator by name. UpdateOperator replaces
// Name, Role, Bots, SSOSubject, PasswordHash, TOTPSealed, TOTPConfirmed,
// EnrollHash, EnrollUntil, Disabled and UpdatedAt (never the TOTP step,
// the recovery codes or the failure count): ErrNotFound for an unknown
// id, ErrExists for a taken name or subject. DeleteOperator removes the
// operator with its recovery codes, sessions and API tokens in one
// transaction (ErrNotFound for an unknown id). Both refuse, changing
// nothing, with ErrLastOwner a change that would leave no usable owner
// (role "owner", not disabled, no bot scope, TOTPConfirmed or an
// SSOSubject) when there was one: checked inside the transaction, so two
// owners demoting each other concurrently cannot both succeed.
//
// AcceptTOTPStep records step as the operator's last accepted TOTP time
// step only if it is greater than the one recorded (a code is never
// accepted twice, nor an older one): ok false otherwise. Concurrent
// callers with the same step: exactly one gets ok.
//
// SetRecoveryCodes replaces the operator's recovery code hashes;
// UseRecoveryCode removes the one matching hash and reports whether
// there was one (single use: of concurrent callers exactly one gets
// ok); RecoveryCodesLeft counts them.
//
// LoginFailed counts a failed sign-in: after max in a row the operator is
// locked until now+lockFor and the count starts again; it returns the
// lock's end (zero when not locked). LoginSucceeded clears the count and
// the lock.
//
// EnrollOperator consumes the enrollment code with codeHash (unexpired at
// now) and creates o with the code's Role and Bots, in one transaction:
// ErrNotFound (nothing changed) for an unknown, used or expired code,
// ErrExists (the code is kept) for a taken name. CreateEnrollment stores
// a code; DeleteBootstrapEnrollments removes every unused bootstrap code
// and returns how many; DeleteEnrollmentsBy removes every unused code
// operator createdBy made (a removed or demoted inviter's invitations die
// with its rights) and returns how many ("" matches none).
// ListEnrollments lists the codes unexpired at now, oldest first;
// DeleteEnrollment removes the code with hash (ErrNotFound for none).
//
// CreateAdminSession stores a session; GetAdminSession answers
// ErrNotFound for an unknown id hash; TouchAdminSession sets LastSeen;
// ReauthAdminSession sets ReauthAt; DeleteAdminSession removes one
// (no error when absent); DeleteOperatorSessions removes every session of
// an operator and returns how many; PruneAdminSessions removes sessions
// that expired (ExpiresAt) before before.
//
// CreateAPIToken stores a token (ErrExists for a taken id or hash, or
// ErrNotFound when CreatedBy is not an operator); APITokenByHash and
// GetAPIToken answer ErrNotFound for none; ListAPITokens lists by
// creation time the tokens created by createdBy ("" for all);
// RevokeAPIToken sets RevokedAt (ErrNotFound for an unknown id; a revoked
// token keeps its first RevokedAt); TouchAPIToken sets LastUsedAt.
type OperatorStore interface {
	CreateOperator(ctx context.Context, o Operator) error
	GetOperator(ctx context.Context, id string) (Operator, error)
	OperatorByName(ctx context.Context, name string) (Operator, error)
	OperatorBySSOSubject(ctx context.Context, subject string) (Operator, error)
	OperatorByEnrollHash(ctx context.Context, hash []byte) (Operator, error)
	ListOperators(ctx context.Context) ([]Operator, error)
	UpdateOperator(ctx context.Context, o Operator) error
	DeleteOperator(ctx context.Context, id string) error
	AcceptTOTPStep(ctx context.Context, id string, step int64) (ok bool, err error)
	SetRecoveryCodes(ctx context.Context, id string, hashes [][]byte) error
	UseRecoveryCode(ctx context.Context, id string, hash []byte) (ok bool, err error)
	RecoveryCodesLeft(ctx context.Context, id string) (int, error)
	LoginFailed(ctx context.Context, id string, now time.Time, max int, lockFor time.Duration) (lockedUntil time.Time, err error)
	LoginSucceeded(ctx context.Context, id string) error

	CreateEnrollment(ctx context.Context, e Enrollment) error
	EnrollOperator(ctx context.Context, codeHash []byte, now time.Time, o Operator) (Operator, error)
	DeleteBootstrapEnrollments(ctx context.Context) (int, error)
	DeleteEnrollmentsBy(ctx context.Context, createdBy string) (int, error)
	ListEnrollments(ctx context.Context, now time.Time) ([]Enrollment, error)
	DeleteEnrollment(ctx context.Context, hash []byte) error

	CreateAdminSession(ctx context.Context, s AdminSession) error
	GetAdminSession(ctx context.Context, idHash []byte) (AdminSession, error)
	TouchAdminSession(ctx context.Context, idHash []byte, now time.Time) error
	ReauthAdminSession(ctx context.Context, idHash []byte, at time.Time) error
	DeleteAdminSession(ctx context.Context, idHash []byte) error
	DeleteOperatorSessions(ctx context.Context, operatorID string) (int, error)
	PruneAdminSessions(ctx context.Context, before time.Time) (int, error)

	CreateAPIToken(ctx context.Context, t APIToken) error
	GetAPIToken(ctx context.Context, id string) (APIToken, error)
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	ListAPITokens(ctx context.Context, createdBy string) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, id string, now time.Time) error
	TouchAPIToken(ctx context.Context, id string, now time.Time) error

	// Operators' WebAuthn passkeys: see WebAuthnStore.
	WebAuthnStore
}

// Operator is a person who administers Parley.
type Operator struct {
	ID   string
	Name string
	// Role is an admin.Role name; Bots scopes it (empty: every bot).
	Role string
	Bots []string
	// SSOSubject is the OpenID Connect subject (or e-mail) the operator
	// signs in as; empty: no SSO.
	SSOSubject string
	// PasswordHash is an argon2id PHC string ("" : no password).
	PasswordHash string
	// TOTPSealed is the TOTP secret sealed by the keyring envelope;
	// TOTPConfirmed is set once the first code was accepted. TOTPStep
	// (read only) is the last accepted time step.
	TOTPSealed    []byte
	TOTPConfirmed bool
	TOTPStep      int64
	// EnrollHash is the hash of the one-time handle that confirms the
	// TOTP enrollment, valid until EnrollUntil.
	EnrollHash  []byte
	EnrollUntil time.Time
	// Failures (read only) counts failed sign-ins in a row; LockedUntil
	// is the lockout's end.
	Failures    int
	LockedUntil time.Time
	Disabled    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Enrollment is a one-time code that lets someone become an operator
// with Role and Bots. Only its hash is stored.
type Enrollment struct {
	Hash      []byte
	Role      string
	Bots      []string
	Bootstrap bool   // printed at start while no owner exists
	CreatedBy string // "" for bootstrap and the local CLI
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AdminSession is a signed-in operator's console session. IDHash is the
// SHA-256 of the cookie value; the cookie value itself is never stored.
type AdminSession struct {
	IDHash     []byte
	OperatorID string
	CreatedAt  time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time // absolute
	ReauthAt   time.Time // zero: not re-authenticated
	Client     string    // pseudonymized client address
}

// APIToken is an automation credential. Hash is the SHA-256 of the
// token; Prefix its first characters, to recognise it in a list.
type APIToken struct {
	ID         string
	Hash       []byte
	Prefix     string
	Name       string
	Role       string
	Bots       []string
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
}

// WebAuthnStore keeps operators' WebAuthn credentials (passkeys). A
// credential holds no secret: its public key, the authenticator's
// signature counter and facts about the authenticator.
//
// AddWebAuthnCredential stores c: ErrExists when its ID or its
// CredentialID is taken (a credential id belongs to one operator),
// ErrNotFound when OperatorID is not an operator. ListWebAuthnCredentials
// lists an operator's credentials by creation time (none: empty, no
// error). WebAuthnCredentialByCredentialID answers ErrNotFound for none.
//
// UseWebAuthnCredential records a verified assertion of the operator's
// credential with id: it sets SignCount to signCount and LastUsedAt to
// now only if signCount is greater than the stored count, or both are 0
// (an authenticator without a counter); ok false, changing nothing,
// otherwise (a replayed assertion or a cloned authenticator) or when the
// credential is not that operator's. Of concurrent callers with the same
// non-zero count exactly one gets ok.
//
// DeleteWebAuthnCredential removes the operator's credential with id
// (ErrNotFound when it is not that operator's). DeleteOperator removes
// the operator's credentials in its transaction.
type WebAuthnStore interface {
	AddWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error
	ListWebAuthnCredentials(ctx context.Context, operatorID string) ([]WebAuthnCredential, error)
	WebAuthnCredentialByCredentialID(ctx context.Context, credentialID []byte) (WebAuthnCredential, error)
	UseWebAuthnCredential(ctx context.Context, operatorID, id string, signCount uint32, now time.Time) (ok bool, err error)
	DeleteWebAuthnCredential(ctx context.Context, operatorID, id string) error
}

// WebAuthnCredential is an operator's passkey. ID is Parley's handle
// ("pk_..."); CredentialID the authenticator's credential id; PublicKey
// the COSE public key.
type WebAuthnCredential struct {
	ID           string
	OperatorID   string
	CredentialID []byte
	PublicKey    []byte
	// SignCount is the authenticator's signature counter at the last
	// accepted assertion (or at registration).
	SignCount uint32
	// AAGUID names the authenticator model (16 bytes, zeros when not
	// told); Transports are the transports the browser reported ("usb",
	// "internal", ...); AttestationFormat is the registration's
	// attestation statement format ("none", "packed", ...).
	AAGUID            []byte
	Transports        []string
	AttestationFormat string
	// BackupEligible and BackupState are the authenticator data's BE
	// and BS flags (a synced passkey is backup eligible).
	BackupEligible bool
	BackupState    bool
	Name           string
	CreatedAt      time.Time
	LastUsedAt     time.Time // zero: never used to sign in
}
