package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
)

// This file is the day-two life of bots and sites (issue 11, item 1):
// bot update, bot delete, site update, site delete.

// oneID is the Args of a command that takes one object id, saying what to
// give when it is missing.
func oneID(kind, list string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return fmt.Errorf("give the %s's id: '%s ID' (ids: '%s')", kind, cmd.CommandPath(), list)
		case len(args) > 1:
			return fmt.Errorf("give one %s id, not %d: '%s ID'", kind, len(args), cmd.CommandPath())
		case strings.TrimSpace(args[0]) == "":
			return fmt.Errorf("the %s id is empty (ids: '%s')", kind, list)
		}
		return nil
	}
}

// unknownID says an id names nothing, and where the ids are.
func unknownID(kind, id, list string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no %s %q: nothing changed (list the ids with '%s')", kind, id, list)
	}
	return err
}

func (a *app) botUpdateCmd() *cobra.Command {
	var sf storeFlags
	var name, endpoint, publicURL string
	var auth, insecure bool
	var deliveryTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a bot's name, endpoint or authentication mode",
		Long: "Change a registered bot. --auth switches a bot registered with --insecure-no-auth to authentication:\n" +
			"it prints a new client secret (shown once) and the bot's settings, with Parley's public URL (--config's\n" +
			"public_url or --public-url). --insecure-no-auth switches a loopback bot to no authentication and revokes\n" +
			"its client secrets. A running Parley picks the change up within a few seconds.",
		Args: oneID("bot", "parley bot list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			f := cmd.Flags()
			if !f.Changed("name") && !f.Changed("endpoint") && !auth && !insecure && !f.Changed("delivery-timeout") {
				return errors.New("nothing to change: give --name, --endpoint, --auth, --insecure-no-auth or --delivery-timeout")
			}
			if err := checkDeliveryTimeout(deliveryTimeout); err != nil {
				return err
			}
			if auth && insecure {
				return errors.New("--auth and --insecure-no-auth contradict each other: give one")
			}
			if f.Changed("name") && !admin.NamePattern.MatchString(name) {
				return errors.New("--name must be " + admin.NameRule)
			}
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			in := admin.BotUpdate{Auth: auth, InsecureNoAuth: insecure, PublicURL: publicURL}
			if f.Changed("name") {
				in.Name = &name
			}
			if f.Changed("endpoint") {
				in.Endpoint = &endpoint
			}
			if f.Changed("delivery-timeout") {
				in.DeliveryTimeout = &deliveryTimeout
			}
			res, err := as.svc.UpdateBot(ctx, as.p, id, in)
			if err != nil && !admin.Unrecorded(err) {
				return unknownID("bot", id, "parley bot list", err)
			}
			unrecorded := err
			b, secret, pub := res.Bot, res.ClientSecret, res.PublicURL
			a.warn(res.Warnings)
			out := admin.ToBot(b)
			var text strings.Builder
			fmt.Fprintf(&text, "bot %s updated: %s -> %s, authentication %s\n", b.ID, b.Name, connector.RedactURL(b.Endpoint), authText(b.InsecureNoAuth))
			if secret != "" {
				settings := botauth.BotSettings(pub, b.ID, secret)
				out.ClientSecret, out.Snippet, out.Settings = secret, botbuilderSnippet, map[string]string{}
				text.Reset()
				fmt.Fprintf(&text, "bot %s now uses authentication (%s -> %s). Configure the bot with these settings before it talks to Parley again;\nthe client secret is shown once, Parley keeps only its hash:\n\n", b.ID, b.Name, connector.RedactURL(b.Endpoint))
				for _, s := range settings {
					out.Settings[s.Name] = s.Value
					fmt.Fprintf(&text, "%s=%s\n", s.Name, s.Value)
				}
				fmt.Fprintf(&text, "\nIn the bot (botbuilder 4.23.x), build the adapter like this:\n\n%s", botbuilderSnippet)
				out.AgentsSDK = agentsSettingsMap(pub, b.ID, secret)
				text.WriteString(agentsSettingsText(pub, b.ID, secret))
			}
			fmt.Fprintf(&text, "A running Parley picks this up within a few seconds.\n")
			return a.printThen(unrecorded, sf.json, out, text.String())
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&name, "name", "", "new display name")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "new messaging endpoint, e.g. https://bot.example.com/api/messages")
	cmd.Flags().BoolVar(&auth, "auth", false, "switch a bot registered with --insecure-no-auth to authentication (prints a new client secret once)")
	cmd.Flags().BoolVar(&insecure, "insecure-no-auth", false, "DEVELOPMENT ONLY: switch to no authentication (loopback endpoints only); revokes the client secrets")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "Parley's public base URL for the printed settings with --auth (default: the configuration's public_url)")
	cmd.Flags().DurationVar(&deliveryTimeout, "delivery-timeout", 0, "how long one delivery attempt waits for the bot's answer (1s to 5m; 0 puts the default, 15s, back)")
	return cmd
}

func authText(insecure bool) string {
	if insecure {
		return "OFF (--insecure-no-auth)"
	}
	return "on"
}

func (a *app) siteUpdateCmd() *cobra.Command {
	var sf storeFlags
	var name string
	var enhanced bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a site's name or enhanced authentication (origins: set-origins)",
		Args:  oneID("site", "parley site list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			f := cmd.Flags()
			if !f.Changed("name") && !f.Changed("enhanced-auth") {
				return errors.New("nothing to change: give --name or --enhanced-auth=true|false (trusted origins: 'parley site set-origins')")
			}
			if f.Changed("name") && !admin.NamePattern.MatchString(name) {
				return errors.New("--name must be " + admin.NameRule)
			}
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			var in admin.SiteUpdate
			if f.Changed("name") {
				in.Name = &name
			}
			if f.Changed("enhanced-auth") {
				in.EnhancedAuth = &enhanced
			}
			site, err := as.svc.UpdateSite(ctx, as.p, id, in)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			if !site.EnhancedAuth {
				fmt.Fprintln(a.stderr, "WARNING: enhanced authentication is OFF for this site: clients may choose their own user ids.")
			}
			return a.print(sf.json, siteOut(site), fmt.Sprintf("site %s updated: name %s, enhanced authentication %v\nA running Parley picks this up within a few seconds.\n", site.ID, site.Name, site.EnhancedAuth))
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&name, "name", "", "new site name")
	cmd.Flags().BoolVar(&enhanced, "enhanced-auth", true, "enhanced authentication: true, or false to let clients choose their own user ids")
	return cmd
}

type deletionJSON = admin.Deletion

// removalText says what a deletion removes, line by line.
func removalText(r store.Removal, verb string) string {
	var b strings.Builder
	if len(r.SiteIDs) > 0 && r.BotID != "" {
		fmt.Fprintf(&b, "  %d site(s): %s\n", len(r.SiteIDs), strings.Join(r.SiteIDs, ", "))
	}
	fmt.Fprintf(&b, "  %d secret(s) %s: they stop working at once (tokens already issued within a few seconds)\n", r.SecretSlots, verb+" revoked")
	fmt.Fprintf(&b, "  %d conversation(s) and their content: %d activities, %d uploads, %d sign-in sessions\n", r.Conversations, r.Activities, r.Attachments, r.Sessions)
	fmt.Fprintf(&b, "  %d data key(s) destroyed (crypto-shredding)\n", r.DataKeys)
	fmt.Fprintf(&b, "  %d queued delivery(ies) dropped: the bot never receives them\n", r.OutboxItems)
	fmt.Fprintf(&b, "  %d dead letter(s) dropped\n", r.DeadLetters)
	if r.BotID != "" {
		fmt.Fprintf(&b, "  %d OAuth connection(s) and %d user token(s) deleted: users sign in again if the bot comes back\n", r.OAuthConnections, r.UserTokens)
	}
	return b.String()
}

// confirmDeletion asks on a terminal (unless yes); off a terminal it
// refuses without --yes.
func (a *app) confirmDeletion(yes bool, what string) error {
	if yes {
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return &exitError{exitRefused, fmt.Errorf("refusing to delete %s without --yes: stdin is not a terminal. Nothing was deleted; read what would go above, then run again with --yes", what)}
	}
	fmt.Fprintf(a.stderr, "Delete %s? This cannot be undone. Type yes: ", what)
	line, err := bufio.NewReader(io.LimitReader(f, 64)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(a.stderr)
	}
	if strings.TrimSpace(line) != "yes" {
		if line == "" {
			return &exitError{exitRefused, errors.New("no answer (stdin closed): nothing deleted; pass --yes to delete without a terminal")}
		}
		return &exitError{exitRefused, errors.New("not confirmed: nothing deleted")}
	}
	return nil
}

func (a *app) botDeleteCmd() *cobra.Command {
	var sf storeFlags
	var yes, cascade bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a bot, its client secrets and everything stored for it (asks first)",
		Long: "Delete a bot in one transaction: its client secrets, every conversation with its content and data key\n" +
			"(crypto-shredding), its queued deliveries and dead letters. A bot that still has sites is refused unless\n" +
			"--cascade is given, which deletes its sites (their secrets) too. Prints what goes first, and asks on a\n" +
			"terminal; elsewhere it needs --yes. Works while the server runs: the bot stops being called at once, and\n" +
			"tokens already issued stop working within a few seconds.\n" +
			"Exit codes: 0 deleted, 1 failed (unknown id, sites without --cascade), 2 refused (confirmation).",
		Args: oneID("bot", "parley bot list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			b, plan, err := as.svc.PlanDeleteBot(ctx, as.p, id)
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			what := "bot " + id
			if len(plan.SiteIDs) > 0 {
				if !cascade {
					fmt.Fprintf(a.stderr, "With --cascade, deleting bot %s (%s) would remove, in one transaction:\n%s", id, b.Name, removalText(plan, "would be"))
					return &admin.ErrHasSites{BotID: id, Sites: plan.SiteIDs}
				}
				what = fmt.Sprintf("bot %s with its %d site(s)", id, len(plan.SiteIDs))
			}
			fmt.Fprintf(a.stderr, "Deleting bot %s (%s) removes, in one transaction:\n%s", id, b.Name, removalText(plan, "are"))
			if err := a.confirmDeletion(yes, what); err != nil {
				return err
			}
			d, err := as.svc.DeleteBot(ctx, as.p, id, cascade)
			var hasSites *admin.ErrHasSites
			if errors.As(err, &hasSites) {
				return hasSites // a site was created meanwhile
			}
			if err != nil {
				return unknownID("bot", id, "parley bot list", err)
			}
			return a.printDeletion(sf.json, d)
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also delete the bot's sites, with their secrets and conversations")
	return cmd
}

func (a *app) siteDeleteCmd() *cobra.Command {
	var sf storeFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a site, its secrets and its conversations (asks first)",
		Long: "Delete a site in one transaction: its two secrets, every conversation with its content and data key\n" +
			"(crypto-shredding), their queued deliveries and dead letters. Prints what goes first, and asks on a\n" +
			"terminal; elsewhere it needs --yes. Works while the server runs: the secrets stop working at once, tokens\n" +
			"already issued within a few seconds.\n" +
			"Exit codes: 0 deleted, 1 failed (unknown id), 2 refused (confirmation).",
		Args: oneID("site", "parley site list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ctx := args[0], cmd.Context()
			as, err := a.openService(ctx, sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			site, plan, err := as.svc.PlanDeleteSite(ctx, as.p, id)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			fmt.Fprintf(a.stderr, "Deleting site %s (%s, bot %s) removes, in one transaction:\n%s", id, site.Name, site.BotID, removalText(plan, "are"))
			if err := a.confirmDeletion(yes, "site "+id); err != nil {
				return err
			}
			d, err := as.svc.DeleteSite(ctx, as.p, id)
			if err != nil {
				return unknownID("site", id, "parley site list", err)
			}
			return a.printDeletion(sf.json, d)
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}

// printDeletion prints what was deleted (the service scrubbed the
// store's files).
func (a *app) printDeletion(asJSON bool, d admin.Deletion) error {
	text := fmt.Sprintf("%s %s (%s) deleted at %s:\n%sscrubbed: %v\n%s\n", d.Deleted, d.ID, d.Name, d.DeletedAt.Format(time.RFC3339), removalText(d.Store, "were"), d.Scrubbed, d.Backups)
	if err := a.print(asJSON, d, text); err != nil {
		return err
	}
	if d.ScrubErr != nil {
		return fmt.Errorf("deleted, but scrubbing the store's files failed (old page versions stay in the WAL until its next checkpoint; a restart of the server checkpoints it): %w", d.ScrubErr)
	}
	return nil
}
