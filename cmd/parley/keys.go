package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// openAdminKeys opens the admin store and every key over it (the
// server's key set, key provider and envelope); done closes both.
func (a *app) openAdminKeys(ctx context.Context, f storeFlags) (config.Config, store.Store, server.Keys, func(), error) {
	cfg, st, err := a.openAdmin(ctx, f.config, f.data)
	if err != nil {
		return cfg, nil, server.Keys{}, nil, err
	}
	keys, err := server.OpenKeys(ctx, cfg, st)
	if err != nil {
		_ = st.Close()
		return cfg, nil, server.Keys{}, nil, err
	}
	return cfg, st, keys, func() {
		_ = keys.Close() // an HSM's sessions and login
		_ = st.Close()
	}, nil
}

// listKeySet is the gateway's key set over st for listing: it opens no
// key (no master key, no provider needed).
func listKeySet(cfg config.Config, st store.Store) *keyring.KeySet {
	return keyring.NewKeySet(keyring.KeySetConfig{Store: st, Purposes: server.KeyPurposes(cfg, keyring.KEKPurpose(nil, nil))})
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Every key Parley holds: list, rotate, destroy",
		Long: "Keys of every purpose share one lifecycle: next (made ahead of use, published where the purpose\n" +
			"publishes), active (signs), retired (still verifies for the purpose's overlap), expired (past the\n" +
			"overlap: neither published nor accepted, material kept) and destroyed (material gone, only on request).\n" +
			"Purposes: directline-token (Direct Line tokens), channel (tokens Parley sends to bots), sts (the bots'\n" +
			"access tokens), log-pseudonym (pseudonyms of user ids and addresses in logs), kek (key-encryption keys),\n" +
			"audit-checkpoint (signs the audit log's checkpoints).",
	}
	cmd.AddCommand(a.keysListCmd(), a.keysRotateCmd(), a.keysDestroyCmd(), a.keysRewrapCmd())
	return cmd
}

func (a *app) keysListCmd() *cobra.Command {
	var f storeFlags
	var purpose string
	c := &cobra.Command{
		Use:   "list",
		Short: "List every key of every purpose and its state (never key material)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer as.st.Close()
			list, err := as.svc.ListKeys(cmd.Context(), as.p, purpose)
			if err != nil {
				return err
			}
			var text strings.Builder
			tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PURPOSE\tID\tSTATE\tCREATED\tACTIVATED\tRETIRED\tDESTROYED\tHANDLE")
			when := func(t *time.Time) string {
				if t == nil {
					return "-"
				}
				return t.UTC().Format(time.RFC3339)
			}
			for _, k := range list {
				handle := k.Handle
				if handle == "" {
					handle = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Purpose, k.ID, k.State, when(&k.CreatedAt),
					when(k.ActivatedAt), when(k.RetiredAt), when(k.DestroyedAt), handle)
			}
			_ = tw.Flush()
			return a.print(f.json, list, text.String())
		},
	}
	f.add(c)
	c.Flags().StringVar(&purpose, "purpose", "", "only this purpose's keys")
	return c
}

func (a *app) keysRotateCmd() *cobra.Command {
	var f storeFlags
	var purpose string
	var force, purge bool
	c := &cobra.Command{
		Use:   "rotate",
		Short: "Sign with the next key, retire the active one, make a new next key",
		Long: "Rotation switches a purpose to its next key, made (and published, for channel and sts) at the previous\n" +
			"rotation, so verifiers already have it. The retired key keeps verifying for the purpose's overlap\n" +
			"(channel, sts: 25 hours, published; directline-token: the longest Direct Line token lifetime plus\n" +
			"leeway; log-pseudonym: none), then stops; it is destroyed only by 'parley keys destroy'.\n" +
			"A running Parley picks the change up within bots.key_reload (30 seconds by default). Without --force a\n" +
			"rotation is refused while the next key is younger than its purpose requires (channel, sts: 24 hours,\n" +
			"the bots' key-cache refresh; directline-token: one key reload, so every replica has the key).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer as.st.Close()
			cfg := as.cfg
			r, p, err := as.svc.RotateKeys(cmd.Context(), as.p, purpose, keyring.RotateOptions{Force: force, PurgeRetired: purge})
			if err != nil {
				return err
			}
			var text strings.Builder
			note := p.RotateNote + "."
			if len(r.Destroyed) > 0 {
				// What the retired keys signed does not keep working: they
				// are destroyed (next line), whatever the overlap says.
				note = "The retired keys are not kept for an overlap:"
			}
			fmt.Fprintf(&text, "%s: now signing with %s; retired %s; new next key %s\n%s\n", purpose, r.Activated, strings.Join(r.Retired, ", "), r.Next, note)
			if len(r.Destroyed) > 0 {
				fmt.Fprintf(&text, "Destroyed (--purge-retired): %s: %s.\n", strings.Join(r.Destroyed, ", "), p.DestroyNote)
			}
			fmt.Fprintf(&text, "A running Parley picks this up within %v.\n", time.Duration(cfg.Bots.KeyReload))
			return a.print(f.json, r, text.String())
		},
	}
	f.add(c)
	c.Flags().StringVar(&purpose, "purpose", "", "which keys: directline-token, channel, sts, log-pseudonym or kek (required)")
	c.Flags().BoolVar(&force, "force", false, "rotate even if the next key is younger than its purpose requires (risk: verifiers that have not fetched or loaded it yet refuse what it signs until they do)")
	c.Flags().BoolVar(&purge, "purge-retired", false, "destroy every retired key of the purpose at once, the one just retired too (for a key that may be compromised: everything they signed is refused from the next reload)")
	_ = c.MarkFlagRequired("purpose")
	return c
}

func (a *app) keysDestroyCmd() *cobra.Command {
	var f storeFlags
	var id string
	var yes, force bool
	c := &cobra.Command{
		Use:   "destroy",
		Short: "Destroy a retired key's material (the row stays, marked destroyed); cannot be undone",
		Long: "Only a retired (or expired) key can be destroyed, never the active or the next one: rotate first.\n" +
			"What it signed becomes unverifiable at once (from the next key reload in a running Parley); what a\n" +
			"key-encryption key wraps becomes unreadable, backups included. Without --yes it only says what it would do.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer as.st.Close()
			cfg, ctx := as.cfg, cmd.Context()
			opts := keyring.DestroyOptions{Force: force}
			plan, p, err := as.svc.PlanDestroyKey(ctx, as.p, id, opts)
			if err != nil {
				return err
			}
			if plan.AlreadyDestroyed {
				return a.print(f.json, plan, fmt.Sprintf("%s key %s was destroyed already; nothing changed\n", p.Name, id))
			}
			if !yes {
				// Exit code 2 (refused), as the delete commands without --yes.
				return &exitError{exitRefused, fmt.Errorf("not destroyed: destroying %s key %s (%s) cannot be undone: %s.\nRun again with --yes to destroy it", p.Name, id, plan.Key.State, plan.Effect)}
			}
			d, _, err := as.svc.DestroyKey(ctx, as.p, id, opts)
			if err != nil {
				return err
			}
			return a.print(f.json, d, fmt.Sprintf("destroyed %s key %s: %s.\nA running Parley stops accepting it within %v.\n", p.Name, id, d.Effect, time.Duration(cfg.Bots.KeyReload)))
		},
	}
	f.add(c)
	c.Flags().StringVar(&id, "id", "", "the key's id (see parley keys list)")
	c.Flags().BoolVar(&yes, "yes", false, "destroy it: without --yes the command only says what would become unverifiable or unreadable")
	c.Flags().BoolVar(&force, "force", false, "destroy a key-encryption key that still wraps data keys, or that retired less than two bots.key_reload ago (a running Parley may still wrap under it): what it wraps becomes unrecoverable")
	_ = c.MarkFlagRequired("id")
	return c
}

func (a *app) keysRewrapCmd() *cobra.Command {
	var f storeFlags
	c := &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key still under a retired key-encryption key under the active one",
		Long: "A KEK rotation re-wraps the data keys at once, and a running Parley re-wraps those it made under the\n" +
			"old KEK before it saw the rotation (every bots.key_reload). Run this to finish an interrupted rotation\n" +
			"before 'parley keys destroy' of the retired KEK. It is safe to run while Parley runs, and to run again.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := a.openService(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer as.st.Close()
			n, err := as.svc.Rewrap(cmd.Context(), as.p)
			if err != nil {
				return err
			}
			return a.print(f.json, map[string]int{"rewrapped": n}, fmt.Sprintf("re-wrapped %d data keys under the active key-encryption key\n", n))
		},
	}
	f.add(c)
	return c
}
