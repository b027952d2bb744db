package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/store"
)

// conversationJSON describes a conversation without its content.
type conversationJSON struct {
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

func (a *app) conversationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "conversation", Short: "List conversations (never their content) and delete one"}
	cmd.AddCommand(a.conversationListCmd(), a.conversationDeleteCmd())
	return cmd
}

func (a *app) conversationListCmd() *cobra.Command {
	var sf storeFlags
	var siteID, botID string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List conversations, most recently active first: ids, site, times and counts, never content",
		Long: "List conversations, most recently active first (at most --limit): id, bot, site, creation, last activity\n" +
			"(recorded at most once a minute), end, and how many activities, uploads, queued deliveries and dead letters\n" +
			"each holds. Never content, never user ids ('userBound' says whether a user id is bound).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100_000 {
				return fmt.Errorf("--limit %d: want 1-100000", limit)
			}
			ctx := cmd.Context()
			st, err := a.openAdminStore(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if siteID != "" {
				if _, err := st.GetSite(ctx, siteID); err != nil {
					return unknownID("site", siteID, "parley site list", err)
				}
			}
			if botID != "" {
				if _, err := st.GetBot(ctx, botID); err != nil {
					return unknownID("bot", botID, "parley bot list", err)
				}
			}
			convs, err := st.ListConversations(ctx, store.ConversationFilter{BotID: botID, SiteID: siteID, Limit: limit})
			if err != nil {
				return err
			}
			out := []conversationJSON{}
			var text strings.Builder
			if len(convs) > 0 {
				fmt.Fprintf(&text, "ID\tSITE\tBOT\tCREATED\tLAST ACTIVITY\tACTIVITIES\tUPLOADS\tQUEUED\tDEAD\tENDED\n")
			}
			for _, c := range convs {
				j := conversationJSON{ID: c.ID, BotID: c.BotID, SiteID: c.SiteID, UserBound: c.UserID != "", CreatedAt: c.CreatedAt, LastActivity: c.LastActivityAt,
					Activities: c.Activities, Deliveries: c.PendingDeliveries, DeadLetters: c.DeadLetters, Attachments: c.Attachments}
				ended := "-"
				if !c.EndedAt.IsZero() {
					e := c.EndedAt
					j.EndedAt = &e
					ended = e.UTC().Format(time.RFC3339)
				}
				out = append(out, j)
				fmt.Fprintf(&text, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", c.ID, c.SiteID, c.BotID, c.CreatedAt.UTC().Format(time.RFC3339),
					c.LastActivityAt.UTC().Format(time.RFC3339), c.Activities, c.Attachments, c.PendingDeliveries, c.DeadLetters, ended)
			}
			if len(convs) == limit {
				fmt.Fprintf(a.stderr, "note: showing the %d most recently active; there may be more (--limit)\n", limit)
			}
			if len(convs) == 0 {
				text.WriteString("no conversations\n")
			}
			return a.print(sf.json, out, text.String())
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&siteID, "site", "", "only this site's conversations")
	cmd.Flags().StringVar(&botID, "bot", "", "only this bot's conversations")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (the most recently active)")
	return cmd
}

func (a *app) conversationDeleteCmd() *cobra.Command {
	var sf storeFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete one conversation now: its content, uploads, deliveries, sessions and data key (asks first)",
		Long: "Delete one conversation in one transaction, as 'parley erase --conversation' does: its activities, uploads,\n" +
			"queued deliveries, dead letters, sign-in sessions and its data key (crypto-shredding); then the store's files\n" +
			"are scrubbed and a receipt printed. Tokens issued for it stop working within a few seconds, and cannot start\n" +
			"it again. Asks on a terminal; elsewhere it needs --yes.\n" +
			"Exit codes: 0 deleted, 1 failed, 2 refused (confirmation), 3 no such conversation.",
		Args: oneID("conversation", "parley conversation list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			st, err := a.openAdminStore(ctx, sf.config, sf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := st.GetConversation(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return &exitError{exitNothing, fmt.Errorf("no conversation %q: nothing deleted (list them with 'parley conversation list')", id)}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Deleting conversation %s (site %s, bot %s) removes its activities, uploads, queued deliveries, dead letters, sign-in sessions and its data key.\n", id, c.SiteID, c.BotID)
			if err := a.confirmDeletion(yes, "conversation "+id); err != nil {
				return err
			}
			now := time.Now().UTC()
			e, err := st.DeleteConversation(ctx, id, now)
			if errors.Is(err, store.ErrNotFound) {
				return &exitError{exitNothing, fmt.Errorf("no conversation %q: deleted meanwhile (retention or another operator)", id)}
			}
			if err != nil {
				return fmt.Errorf("delete conversation %s: %w", id, err)
			}
			rc := eraseReceipt{Receipt: receiptVersion, Request: map[string]string{"conversation": id}, ErasedAt: now, Conversations: []erasedConversation{}, DataKeyScopes: []string{}, KEKIDs: []string{}, Backups: backupsNote}
			rc.add(e)
			if e.KEKID != "" {
				rc.KEKIDs = append(rc.KEKIDs, e.KEKID)
			}
			serr := st.Scrub(ctx)
			rc.Scrubbed = serr == nil
			if err := a.print(sf.json, rc, rc.text()); err != nil {
				return err
			}
			return serr
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}
