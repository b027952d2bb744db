package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/store"
)

// Local operator commands: bootstrap and recovery by whoever can read the
// data directory and open the master key (the same person can read the
// whole store anyway). They work without a running server.

// openOperators opens the store, the keys (the TOTP secrets are sealed
// under them: the command needs the master key) and the operator service.
func (a *app) openOperators(ctx context.Context, f storeFlags) (config.Config, store.Store, *operator.Service, func(), error) {
	cfg, st, keys, done, err := a.openAdminKeys(ctx, f)
	if err != nil {
		return cfg, nil, nil, nil, err
	}
	var rec operator.Recorder = a.recorder
	if rec == nil {
		l, err := newAuditLog(cfg, st, keys.Set, nil)
		if err != nil {
			done()
			return cfg, nil, nil, nil, err
		}
		rec = l
	}
	svc, err := operator.New(operator.Config{Store: st, Sealer: keys.Envelope, Audit: rec, Settings: cfg.Operators, Announce: a.stderr})
	if err != nil {
		done()
		return cfg, nil, nil, nil, err
	}
	return cfg, st, svc, done, nil
}

func (a *app) operatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Operators of the admin API and console: local bootstrap and recovery",
		Long: "Operators sign in to the admin API and console with a password and TOTP (or SSO).\n" +
			"These commands work on the data directory without a running server, for bootstrap and\n" +
			"recovery; they need read access to the data directory and the master key (whoever has those\n" +
			"can read the whole store anyway). Everything else is done through the admin API or console.",
	}
	cmd.AddCommand(a.operatorEnrollCodeCmd(), a.operatorInviteCmd(), a.operatorListCmd(), a.operatorUnlockCmd(), a.operatorInvitationsCmd())
	return cmd
}

func (a *app) operatorEnrollCodeCmd() *cobra.Command {
	var f storeFlags
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "enroll-code",
		Short: "Print a one-time enrollment code for a new owner (recovery: every owner lost their second factor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.invite(cmd.Context(), f, admin.RoleOwner, nil, ttl)
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the code stays valid (1m..168h)")
	return cmd
}

func (a *app) operatorInviteCmd() *cobra.Command {
	var f storeFlags
	var ttl time.Duration
	var role string
	var bots []string
	cmd := &cobra.Command{
		Use:   "invite --role ROLE [--bots ID,...]",
		Short: "Print a one-time enrollment code for a new operator with ROLE (owner, admin, operator, auditor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := admin.ParseRole(role)
			if err != nil {
				return err
			}
			return a.invite(cmd.Context(), f, r, bots, ttl)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&role, "role", "", "owner, admin, operator or auditor")
	cmd.Flags().StringSliceVar(&bots, "bots", nil, "limit the role to these bot ids (comma-separated; default every bot)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the code stays valid (1m..168h)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (a *app) invite(ctx context.Context, f storeFlags, role admin.Role, bots []string, ttl time.Duration) error {
	if ttl < time.Minute || ttl > 168*time.Hour {
		return fmt.Errorf("--ttl %s: use 1m to 168h", ttl)
	}
	_, _, svc, done, err := a.openOperators(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	if err := svc.CheckBots(ctx, bots); err != nil {
		return fmt.Errorf("--%w", err)
	}
	code, exp, err := svc.Invite(ctx, localPrincipal(), role, bots, ttl)
	if err != nil {
		return err
	}
	scope := "every bot"
	if len(bots) > 0 {
		scope = "bots " + strings.Join(bots, ", ")
	}
	return a.print(f.json, map[string]any{"code": code, "role": role, "bots": bots, "expiresAt": exp},
		fmt.Sprintf("One-time enrollment code for a new %s (%s), valid until %s. It is shown once:\n\n  %s\n\n"+
			"Open the console (or POST /admin/v1/enroll) and enter it with a name and password.\n", role, scope, exp.Format(time.RFC3339), code))
}

func (a *app) operatorListCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the operators (never a secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := a.openAdmin(cmd.Context(), f.config, f.data)
			if err != nil {
				return err
			}
			defer st.Close()
			ops, err := st.ListOperators(cmd.Context())
			if err != nil {
				return err
			}
			type opJSON struct {
				ID          string    `json:"id"`
				Name        string    `json:"name"`
				Role        string    `json:"role"`
				Bots        []string  `json:"bots"`
				MFA         bool      `json:"mfa"`
				SSO         bool      `json:"sso"`
				Disabled    bool      `json:"disabled"`
				LockedUntil time.Time `json:"lockedUntil,omitzero"`
			}
			out := []opJSON{}
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tBOTS\tMFA\tDISABLED")
			for _, o := range ops {
				out = append(out, opJSON{ID: o.ID, Name: o.Name, Role: o.Role, Bots: o.Bots, MFA: o.TOTPConfirmed, SSO: o.SSOSubject != "", Disabled: o.Disabled, LockedUntil: o.LockedUntil})
				bots := "all"
				if len(o.Bots) > 0 {
					bots = strings.Join(o.Bots, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\n", o.ID, o.Name, o.Role, bots, o.TOTPConfirmed, o.Disabled)
			}
			_ = tw.Flush()
			return a.print(f.json, out, b.String())
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) operatorUnlockCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "unlock NAME",
		Short: "Lift an operator's lockout after failed sign-ins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, st, err := a.openAdmin(ctx, f.config, f.data)
			if err != nil {
				return err
			}
			rec, st, err := a.cliRecorder(ctx, cfg, st)
			if err != nil {
				return err
			}
			defer st.Close()
			op, err := st.OperatorByName(ctx, args[0])
			if err != nil {
				return fmt.Errorf("unlock operator %q: %w", args[0], err)
			}
			if err := st.LoginSucceeded(ctx, op.ID); err != nil {
				return err
			}
			p := localPrincipal()
			if err := rec.Record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.unlock", Target: "operator:" + op.ID, Outcome: audit.Success}); err != nil {
				return fmt.Errorf("record the unlock in the audit log: %w", err)
			}
			_, err = fmt.Fprintf(a.stdout, "Unlocked %s.\n", op.Name)
			return err
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) operatorInvitationsCmd() *cobra.Command {
	var f storeFlags
	var revoke string
	cmd := &cobra.Command{
		Use:   "invitations [--revoke ID]",
		Short: "List the pending enrollment codes (what each grants, who made it; never a code), or revoke one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, _, svc, done, err := a.openOperators(ctx, f)
			if err != nil {
				return err
			}
			defer done()
			if revoke != "" {
				if err := svc.RevokeInvitation(ctx, localPrincipal(), revoke); err != nil {
					if errors.Is(err, operator.ErrNoInvitation) {
						return &exitError{exitNothing, fmt.Errorf("--revoke %q: %w", revoke, err)}
					}
					return err
				}
				return a.print(f.json, map[string]string{"revoked": revoke}, fmt.Sprintf("invitation %s revoked: its code no longer enrolls anyone\n", revoke))
			}
			list, err := svc.Invitations(ctx)
			if err != nil {
				return err
			}
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tBOTS\tBY\tEXPIRES")
			for _, in := range list {
				bots, by := "all", in.CreatedBy
				if len(in.Bots) > 0 {
					bots = strings.Join(in.Bots, ",")
				}
				switch {
				case in.Bootstrap:
					by = "(bootstrap)"
				case by == "":
					by = "(local CLI)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", in.ID, in.Role, bots, by, in.ExpiresAt)
			}
			_ = tw.Flush()
			if len(list) == 0 {
				b.Reset()
				b.WriteString("no pending invitations\n")
			}
			return a.print(f.json, list, b.String())
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&revoke, "revoke", "", "revoke the pending code with this id (from the list)")
	return cmd
}
