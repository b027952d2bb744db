package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// deadLetterJSON is a dead letter as the CLI shows it; the activity itself
// only with --body.
type deadLetterJSON struct {
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

func (a *app) deliveriesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "Inspect and repair deliveries to bots"}
	dead := &cobra.Command{
		Use:   "dead",
		Short: "Dead letters: activities a bot refused (4xx) or that were not delivered within bots.delivery_retry_for",
	}
	var lf storeFlags
	var listBot string
	var withBody bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first (the activity's content only with --body)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, st, err := a.openAdmin(cmd.Context(), lf.config, lf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			var codec conversation.Codec
			if withBody {
				keys, err := server.OpenKeys(cmd.Context(), cfg, st)
				if err != nil {
					return err
				}
				defer keys.Close() // an HSM's sessions and login
				codec = keys.Codec
			}
			dls, err := st.ListDeadLetters(cmd.Context(), listBot)
			if err != nil {
				return err
			}
			out := []deadLetterJSON{}
			var text strings.Builder
			for _, d := range dls {
				j := deadLetterJSON{ID: d.ID, BotID: d.BotID, ConversationID: d.ConversationID, ActivityID: d.ActivityID, Attempts: d.Attempts,
					LastStatus: d.LastStatus, LastError: d.LastError, EnqueuedAt: d.CreatedAt, LastAttemptAt: d.LastAttemptAt, DeadAt: d.DeadAt}
				if !d.FirstAttemptAt.IsZero() {
					first := d.FirstAttemptAt
					j.FirstAttemptAt = &first
				}
				if withBody {
					body, err := codec.DecodeOutbox(cmd.Context(), d.ConversationID, d.Body)
					if err != nil {
						return fmt.Errorf("dead letter %d: %w", d.ID, err)
					}
					j.Activity = body
				}
				out = append(out, j)
				fmt.Fprintf(&text, "%d\tbot=%s\tconversation=%s\tactivity=%s\tattempts=%d\tstatus=%d\tdead=%s\terror=%s\n",
					d.ID, d.BotID, d.ConversationID, d.ActivityID, d.Attempts, d.LastStatus, d.DeadAt.Format(time.RFC3339), d.LastError)
				if withBody {
					fmt.Fprintf(&text, "\t%s\n", j.Activity)
				}
			}
			if len(dls) == 0 && !lf.json {
				text.WriteString("no dead letters\n")
			}
			return a.print(lf.json, out, text.String())
		},
	}
	lf.add(list)
	list.Flags().StringVar(&listBot, "bot", "", "only this bot's dead letters (app id)")
	list.Flags().BoolVar(&withBody, "body", false, "include each activity (message text and all: handle as user data)")

	var rf storeFlags
	var ids []int64
	var all bool
	var redeliverBot string
	redeliver := &cobra.Command{
		Use:   "redeliver",
		Short: "Move dead letters back to the outbox: a running gateway delivers them within seconds, in order per conversation",
		Long: "Move dead letters back to the outbox under their original outbox id, so each keeps its place before\n" +
			"its conversation's later pending items, with a fresh retry window (bots.delivery_retry_for).\n" +
			"A running gateway picks them up at its next outbox poll (about a second); a stopped one at start.\n" +
			"Bots receive the same activity id again (at-least-once); a bot that deduplicates by id is safe.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case all == (len(ids) > 0):
				return errors.New("give --id N (repeatable; ids from 'parley deliveries dead list') or --all, not both")
			case redeliverBot != "" && !all:
				return errors.New("--bot selects with --all; with --id, the ids alone say what to redeliver")
			}
			st, err := a.openAdminStore(cmd.Context(), rf.config, rf.data)
			if err != nil {
				return err
			}
			defer st.Close()
			if all {
				dls, err := st.ListDeadLetters(cmd.Context(), redeliverBot)
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, d := range dls {
					ids = append(ids, d.ID)
				}
			}
			done := []int64{}
			for _, id := range ids {
				if _, err := st.RedeliverDeadLetter(cmd.Context(), id, time.Now().UTC()); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						err = fmt.Errorf("no dead letter %d (already redelivered?); see 'parley deliveries dead list'", id)
					}
					if len(done) > 0 {
						err = fmt.Errorf("%w (redelivered before this: %v)", err, done)
					}
					return err
				}
				done = append(done, id)
			}
			return a.print(rf.json, map[string][]int64{"redelivered": done}, fmt.Sprintf("redelivered %d dead letter(s) %v\n", len(done), done))
		},
	}
	rf.add(redeliver)
	redeliver.Flags().Int64SliceVar(&ids, "id", nil, "dead letter id to redeliver (repeatable)")
	redeliver.Flags().BoolVar(&all, "all", false, "redeliver every dead letter (of --bot, if given)")
	redeliver.Flags().StringVar(&redeliverBot, "bot", "", "with --all: only this bot's dead letters (app id)")

	dead.AddCommand(list, redeliver)
	cmd.AddCommand(dead)
	return cmd
}
