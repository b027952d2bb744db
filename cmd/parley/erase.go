package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/store"
)

// Exit codes of parley erase (README): 0 erased; 1 failed (nothing or
// part erased: the receipt on stdout lists what was); 2 refused (no --yes
// off a terminal, or the answer was not yes); 3 nothing to erase (no
// conversation bound to that user, no such conversation).
const (
	exitRefused = 2
	exitNothing = 3
)

// exitError carries a command's exit code to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code.
func (e *exitError) ExitCode() int { return e.code }

// receiptVersion names the receipt's format.
const receiptVersion = "parley-erasure-receipt/1"

// eraseReceipt is what parley erase prints: what was erased, when, and
// under which keys.
type eraseReceipt struct {
	Receipt string `json:"receipt"`
	// Request is what was asked: {"user": ID} or {"conversation": ID}.
	Request  map[string]string `json:"request"`
	ErasedAt time.Time         `json:"erasedAt"`
	// Conversations are the conversations erased, each with its counts.
	Conversations []erasedConversation `json:"conversations"`
	Totals        eraseTotals          `json:"totals"`
	// DataKeyScopes are the data keys destroyed (crypto-shredding);
	// KEKIDs the key-encryption keys that wrapped them.
	DataKeyScopes []string `json:"dataKeyScopes"`
	KEKIDs        []string `json:"kekIds"`
	// Scrubbed is whether the store's files were scrubbed afterwards
	// (SQLite: WAL checkpointed and truncated; secure_delete is always on).
	Scrubbed bool `json:"scrubbed"`
	// Backups says what the erasure cannot reach.
	Backups string `json:"backups"`
}

type erasedConversation struct {
	ID           string `json:"id"`
	BotID        string `json:"botId"`
	SiteID       string `json:"siteId"`
	UserID       string `json:"userId,omitempty"`
	Activities   int    `json:"activities"`
	OutboxItems  int    `json:"outboxItems"`
	DeadLetters  int    `json:"deadLetters"`
	Attachments  int    `json:"attachments"`
	Sessions     int    `json:"sessions"`
	DataKeyScope string `json:"dataKeyScope,omitempty"`
	KEKID        string `json:"kekId,omitempty"`
}

type eraseTotals struct {
	Conversations int `json:"conversations"`
	Activities    int `json:"activities"`
	OutboxItems   int `json:"outboxItems"`
	DeadLetters   int `json:"deadLetters"`
	Attachments   int `json:"attachments"`
	Sessions      int `json:"sessions"`
	DataKeys      int `json:"dataKeys"`
	// UserTokens are the user's tokens of bots' OAuth connections
	// deleted (--user only).
	UserTokens int `json:"userTokens"`
}

const backupsNote = "Copies of these conversations in database backups taken before erasedAt stay readable until the key-encryption keys listed (kekIds) are rotated and destroyed (parley keys). " +
	"With the local key provider each KEK is a file in the data directory's keys/: a backup that also holds keys/ and the master key stays readable whatever is destroyed here (back up keys/ apart, or use an HSM). " +
	"Content stored before encryption at rest is in such backups in the clear."

func (a *app) eraseCmd() *cobra.Command {
	var sf storeFlags
	var userID, convID string
	var yes bool
	cmd := &cobra.Command{
		Use:   "erase",
		Short: "Erase a user's conversations (--user) or one conversation (--conversation) now, with a receipt (GDPR art. 17)",
		Long: "Erase, now, every conversation bound to a user id (--user, across bots and sites) or one conversation\n" +
			"(--conversation): its activities, uploads, pending and dead deliveries, sign-in sessions and its data key\n" +
			"(crypto-shredding), each conversation in one transaction; then the store's files are scrubbed.\n" +
			"A conversation is bound to a user when its token named one (enhanced authentication); conversations\n" +
			"without a bound user cannot be found by user id: erase them with --conversation.\n" +
			"Works while the server runs. Prints a receipt (--json for machines).\n" +
			"Exit codes: 0 erased, 1 failed, 2 refused (confirmation), 3 nothing to erase.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (userID == "") == (convID == "") {
				return errors.New("give exactly one of --user ID and --conversation ID")
			}
			ctx := cmd.Context()
			// Through the service layer, as the admin API erases: each
			// conversation is audited (local:<OS user>).
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			st := as.st
			defer st.Close()
			request := map[string]string{"conversation": convID}
			ids := []string{convID}
			if userID != "" {
				request = map[string]string{"user": userID}
				if ids, err = st.UserConversations(ctx, userID); err != nil {
					return err
				}
				if len(ids) == 0 && !hasUserTokens(ctx, st, userID) {
					return &exitError{exitNothing, fmt.Errorf("no conversation is bound to user %q: nothing erased (conversations without a bound user are erased with --conversation)", userID)}
				}
			} else if _, err := st.GetConversation(ctx, convID); errors.Is(err, store.ErrNotFound) {
				return &exitError{exitNothing, fmt.Errorf("no conversation %q: nothing erased", convID)}
			} else if err != nil {
				return err
			}
			if !yes {
				if err := a.confirm(fmt.Sprintf("Erase %d conversation(s) (%s) now? This cannot be undone. Type yes: ", len(ids), describe(request))); err != nil {
					return err
				}
			}
			now := time.Now().UTC()
			rc := eraseReceipt{Receipt: receiptVersion, Request: request, ErasedAt: now, Conversations: []erasedConversation{}, DataKeyScopes: []string{}, KEKIDs: []string{}, Backups: backupsNote}
			keks := map[string]bool{}
			var errs []error
			erased, err := as.svc.EraseConversations(ctx, as.p, ids, now)
			if err != nil {
				errs = append(errs, err)
			}
			for _, e := range erased {
				rc.add(e.Store)
				if e.KEKID != "" {
					keks[e.KEKID] = true
				}
				rc.Scrubbed = e.Scrubbed
			}
			if userID != "" {
				// The user's sign-in tokens (of every bot) go too.
				n, err := as.svc.EraseUserTokens(ctx, as.p, userID)
				if err != nil {
					errs = append(errs, fmt.Errorf("erase user tokens: %w", err))
				}
				rc.Totals.UserTokens = n
				if n > 0 && len(erased) == 0 {
					if err := st.Scrub(ctx); err != nil {
						errs = append(errs, err)
					} else {
						rc.Scrubbed = true
					}
				}
			}
			for k := range keks {
				rc.KEKIDs = append(rc.KEKIDs, k)
			}
			sort.Strings(rc.KEKIDs)
			if perr := a.print(sf.json, rc, rc.text()); perr != nil {
				errs = append(errs, perr)
			}
			return errors.Join(errs...)
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&userID, "user", "", "erase every conversation bound to this user id")
	cmd.Flags().StringVar(&convID, "conversation", "", "erase this conversation")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}

// hasUserTokens reports whether userID holds a token of any bot's
// connection (they outlive the user's conversations, up to the
// connection's max login duration).
func hasUserTokens(ctx context.Context, st store.Store, userID string) bool {
	bots, err := st.ListBots(ctx)
	if err != nil {
		return true // let the erasure try, and report
	}
	for _, b := range bots {
		conns, err := st.ListOAuthConnections(ctx, b.ID)
		if err != nil {
			return true
		}
		for _, c := range conns {
			if _, err := st.GetUserToken(ctx, b.ID, userID, c.Name); err == nil {
				return true
			}
		}
	}
	return false
}

func describe(req map[string]string) string {
	if u, ok := req["user"]; ok {
		return "user " + u
	}
	return "conversation " + req["conversation"]
}

func (rc *eraseReceipt) add(e store.Erased) {
	rc.Conversations = append(rc.Conversations, erasedConversation{ID: e.ConversationID, BotID: e.BotID, SiteID: e.SiteID, UserID: e.UserID,
		Activities: e.Activities, OutboxItems: e.OutboxItems, DeadLetters: e.DeadLetters, Attachments: e.Attachments, Sessions: e.Sessions,
		DataKeyScope: e.DataKeyScope, KEKID: e.KEKID})
	t := &rc.Totals
	t.Conversations++
	t.Activities += e.Activities
	t.OutboxItems += e.OutboxItems
	t.DeadLetters += e.DeadLetters
	t.Attachments += e.Attachments
	t.Sessions += e.Sessions
	if e.DataKeyScope != "" {
		t.DataKeys++
		rc.DataKeyScopes = append(rc.DataKeyScopes, e.DataKeyScope)
	}
}

func (rc *eraseReceipt) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Erasure receipt (%s)\nrequest:   %s\nerased at: %s\n", rc.Receipt, describe(rc.Request), rc.ErasedAt.Format(time.RFC3339Nano))
	t := rc.Totals
	fmt.Fprintf(&b, "erased:    %d conversation(s): %d activities, %d attachments, %d pending deliveries, %d dead letters, %d sessions, %d data keys; %d user token(s)\n",
		t.Conversations, t.Activities, t.Attachments, t.OutboxItems, t.DeadLetters, t.Sessions, t.DataKeys, t.UserTokens)
	for _, c := range rc.Conversations {
		key := "no data key"
		if c.DataKeyScope != "" {
			key = "data key " + c.DataKeyScope + " (wrapped by " + c.KEKID + ") destroyed"
		}
		fmt.Fprintf(&b, "  %s  site=%s activities=%d attachments=%d deliveries=%d dead=%d sessions=%d  %s\n",
			c.ID, c.SiteID, c.Activities, c.Attachments, c.OutboxItems, c.DeadLetters, c.Sessions, key)
	}
	fmt.Fprintf(&b, "keys:      data keys destroyed: %s; wrapped by KEKs: %s\n", listOrNone(rc.DataKeyScopes), listOrNone(rc.KEKIDs))
	fmt.Fprintf(&b, "scrubbed:  %v\nbackups:   %s\n", rc.Scrubbed, rc.Backups)
	return b.String()
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// confirm asks on a terminal; off a terminal it refuses (scripts pass
// --yes).
func (a *app) confirm(question string) error {
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return &exitError{exitRefused, errors.New("refusing to erase without --yes: stdin is not a terminal")}
	}
	fmt.Fprint(a.stderr, question)
	line, err := bufio.NewReader(io.LimitReader(f, 64)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(line) != "yes" {
		return &exitError{exitRefused, errors.New("not confirmed: nothing erased")}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
