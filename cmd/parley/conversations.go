package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/store"
)

// conversationJSON is the service layer's shape (the admin API's too).
type conversationJSON = admin.Conversation

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
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			convs, err := as.svc.ListConversations(ctx, as.p, store.ConversationFilter{BotID: botID, SiteID: siteID, Limit: limit})
			switch admin.NotFoundObject(err) {
			case "site":
				return unknownID("site", siteID, "parley site list", err)
			case "bot":
				return unknownID("bot", botID, "parley bot list", err)
			}
			if err != nil {
				return err
			}
			out := []conversationJSON{}
			var text strings.Builder
			if len(convs) > 0 {
				fmt.Fprintf(&text, "ID\tSITE\tBOT\tCREATED\tLAST ACTIVITY\tACTIVITIES\tUPLOADS\tQUEUED\tDEAD\tENDED\n")
			}
			for _, c := range convs {
				j := admin.ToConversation(c)
				ended := "-"
				if j.EndedAt != nil {
					ended = j.EndedAt.UTC().Format(time.RFC3339)
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
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			c, err := as.svc.GetConversation(ctx, as.p, id)
			if errors.Is(err, store.ErrNotFound) {
				return &exitError{exitNothing, fmt.Errorf("no conversation %q: nothing deleted (list them with 'parley conversation list')", id)}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Deleting conversation %s (site %s, bot %s) removes its activities, uploads, queued deliveries, dead letters, sign-in sessions and its data key.\n", id, c.SiteID, c.BotID)
			if err := a.confirmDeletion(yes, "conversation "+id); err != nil {
				return err
			}
			er, err := as.svc.EraseConversation(ctx, as.p, id)
			if errors.Is(err, store.ErrNotFound) {
				return &exitError{exitNothing, fmt.Errorf("no conversation %q: deleted meanwhile (retention or another operator)", id)}
			}
			if err != nil {
				return fmt.Errorf("delete conversation %s: %w", id, err)
			}
			now, e := er.ErasedAt, er.Store
			rc := eraseReceipt{Receipt: receiptVersion, Request: map[string]string{"conversation": id}, ErasedAt: now, Conversations: []erasedConversation{}, DataKeyScopes: []string{}, KEKIDs: []string{}, Backups: backupsNote}
			rc.add(e)
			if e.KEKID != "" {
				rc.KEKIDs = append(rc.KEKIDs, e.KEKID)
			}
			serr := er.ScrubErr
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
