package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/store"
)

// siteRetentionCmd is "site set-retention": how long a site's
// conversations are kept (the sweeper in the running server applies it).
func (a *app) siteRetentionCmd() *cobra.Command {
	var sf storeFlags
	var siteID, after string
	var onEnd, ephemeral, def bool
	cmd := &cobra.Command{
		Use:   "set-retention",
		Short: "Choose how long a site's conversations are kept: --after 30m|12h|90d|2y, --on-end-of-conversation, --ephemeral or --default",
		Long: "Choose how long a site's conversations are kept. The running server's sweeper deletes a conversation\n" +
			"(activities, uploads, pending deliveries, sessions and its data key) once the policy says so:\n" +
			"  --after D                   D after the conversation's last activity (m, h, d or y: 30m, 12h, 90d, 2y; 1m..10y)\n" +
			"  --on-end-of-conversation    once it holds an endOfConversation activity, and --after D (default: retention.default) after its last activity in any case\n" +
			"  --ephemeral                 each activity only until the bot has it and the client had retention.ephemeral_hold to read it;\n" +
			"                              nothing beyond retention.ephemeral_max; the conversation itself ephemeral_max after its last activity\n" +
			"  --default                   the deployment's retention.default (24h unless configured)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r store.Retention
			modes := 0
			for _, on := range []bool{onEnd, ephemeral, def} {
				if on {
					modes++
				}
			}
			switch {
			case modes > 1:
				return errors.New("choose one of --on-end-of-conversation, --ephemeral and --default")
			case (ephemeral || def) && after != "":
				return errors.New("--after does not apply to --ephemeral or --default")
			case modes == 0 && after == "":
				return errors.New("say how long: --after 30m|12h|90d|2y, --on-end-of-conversation, --ephemeral or --default")
			case ephemeral:
				r.Mode = store.RetentionEphemeral
			case onEnd:
				r.Mode = store.RetentionOnEnd
			case def:
				r.Mode = store.RetentionDefault
			default:
				r.Mode = store.RetentionAfter
			}
			if after != "" {
				d, err := store.ParsePeriod(after)
				if err != nil {
					return fmt.Errorf("--after: %w", err)
				}
				r.After = d
			}
			as, err := a.openService(cmd.Context(), sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			site, err := as.svc.SetRetention(cmd.Context(), as.p, siteID, r)
			if err != nil {
				return siteFlagError(siteID, err)
			}
			return a.print(sf.json, siteOut(site), fmt.Sprintf("site %s retention: %s\n", site.ID, site.Retention))
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&siteID, "site", "", "site id")
	cmd.Flags().StringVar(&after, "after", "", "keep conversations this long after their last activity: 30m, 12h, 90d, 2y (1m..10y)")
	cmd.Flags().BoolVar(&onEnd, "on-end-of-conversation", false, "delete a conversation once it ends (endOfConversation)")
	cmd.Flags().BoolVar(&ephemeral, "ephemeral", false, "keep content only until the bot and the client have it")
	cmd.Flags().BoolVar(&def, "default", false, "use the deployment's default (retention.default)")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}
