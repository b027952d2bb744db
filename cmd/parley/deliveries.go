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

// deadLetterJSON is the service layer's shape; the activity itself only
// with --body.
type deadLetterJSON = admin.DeadLetter

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
			as, err := a.openService(cmd.Context(), lf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			var out []deadLetterJSON
			if withBody {
				out, err = as.svc.DeadLetterActivities(cmd.Context(), as.p, listBot)
			} else {
				var dls []store.DeadLetter
				dls, err = as.svc.ListDeadLetters(cmd.Context(), as.p, listBot)
				out = make([]deadLetterJSON, 0, len(dls))
				for _, d := range dls {
					out = append(out, admin.ToDeadLetter(d))
				}
			}
			if err != nil {
				return err
			}
			var text strings.Builder
			for _, d := range out {
				fmt.Fprintf(&text, "%d\tbot=%s\tconversation=%s\tactivity=%s\tattempts=%d\tstatus=%d\tdead=%s\terror=%s\n",
					d.ID, d.BotID, d.ConversationID, d.ActivityID, d.Attempts, d.LastStatus, d.DeadAt.Format(time.RFC3339), d.LastError)
				if withBody {
					fmt.Fprintf(&text, "\t%s\n", d.Activity)
				}
			}
			if len(out) == 0 && !lf.json {
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
			as, err := a.openService(cmd.Context(), rf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			if all {
				dls, err := as.svc.ListDeadLetters(cmd.Context(), as.p, redeliverBot)
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
				if err := as.svc.RedeliverDeadLetter(cmd.Context(), as.p, id); err != nil {
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

	var df storeFlags
	var dropIDs []int64
	var dropYes bool
	drop := &cobra.Command{
		Use:   "drop",
		Short: "Delete dead letters for good (--id N, repeatable; with --yes): the bot never receives them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(dropIDs) == 0 {
				return errors.New("give --id N (repeatable; ids from 'parley deliveries dead list')")
			}
			if !dropYes {
				return &exitError{exitRefused, fmt.Errorf("not dropped: dropping dead letters %v cannot be undone (the bot never receives them). Run again with --yes", dropIDs)}
			}
			as, err := a.openService(cmd.Context(), df)
			if err != nil {
				return err
			}
			defer as.st.Close()
			done := []int64{}
			for _, id := range dropIDs {
				if err := as.svc.DropDeadLetter(cmd.Context(), as.p, id); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						err = fmt.Errorf("no dead letter %d; see 'parley deliveries dead list'", id)
					}
					if len(done) > 0 {
						err = fmt.Errorf("%w (dropped before this: %v)", err, done)
					}
					return err
				}
				done = append(done, id)
			}
			return a.print(df.json, map[string][]int64{"dropped": done}, fmt.Sprintf("dropped %d dead letter(s) %v\n", len(done), done))
		},
	}
	df.add(drop)
	drop.Flags().Int64SliceVar(&dropIDs, "id", nil, "dead letter id to drop (repeatable)")
	drop.Flags().BoolVar(&dropYes, "yes", false, "drop them (without --yes nothing is dropped)")

	dead.AddCommand(list, redeliver, drop)
	cmd.AddCommand(dead)
	return cmd
}
