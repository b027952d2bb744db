package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/store"
)

// exitAuditProblem is the exit code of 'parley audit verify' when it
// found a problem (edited, removed, reordered, truncated, bad-checkpoint);
// 1 means it could not verify (no database, no master key).
const exitAuditProblem = 4

// newAuditLog builds the audit log of cfg over st; keys may be nil (then
// it lists and exports, but neither verifies nor checkpoints).
func newAuditLog(cfg config.Config, st store.Store, keys audit.Keys, logger *slog.Logger) (*audit.Log, error) {
	return audit.New(audit.Config{Store: st, Keys: keys, AnchorFile: cfg.Audit.AnchorFile,
		CheckpointEvery: time.Duration(cfg.Audit.CheckpointEvery), FollowPoll: time.Duration(cfg.Audit.FollowPoll), Logger: logger})
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit log: verify, export, list, checkpoint",
		Long: "Every admin action and security event is appended to a hash chain (SHA-256 over each entry and the\n" +
			"previous hash), each entry authenticated by a MAC under a key only the master key opens. Signed checkpoints of the chain head (key purpose audit-checkpoint) are stored, and\n" +
			"appended to audit.anchor_file when set, so that a truncated tail is detected too. 'verify' needs the\n" +
			"master key (it checks the signatures); 'list' and 'export' read the database only.",
	}
	cmd.AddCommand(a.auditVerifyCmd(), a.auditExportCmd(), a.auditListCmd(), a.auditCheckpointCmd())
	return cmd
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var f storeFlags
	var anchor string
	var heads []string
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check every entry, every checkpoint's signature, and the chain against the anchors",
		Long: "Verify reads the whole chain and reports the first problem: an entry edited, removed or reordered,\n" +
			"the tail truncated (a checkpoint or anchor names a seq past the end), or a checkpoint whose signature\n" +
			"does not verify. Without an anchor kept outside the database (--anchor, audit.anchor_file, --head),\n" +
			"removing the tail together with the checkpoints that covered it is NOT detectable: the report says how\n" +
			"many entries are unanchored. Exit status: 0 verified, 4 a problem was found, 1 could not verify.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hs []audit.Head
			for _, h := range heads {
				p, err := audit.ParseHead(h)
				if err != nil {
					return fmt.Errorf("--head: %w", err)
				}
				hs = append(hs, p)
			}
			cfg, l, done, err := a.openAuditKeys(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer done()
			if !cmd.Flags().Changed("anchor") {
				anchor = cfg.Audit.AnchorFile
			}
			rep, err := l.VerifyWith(cmd.Context(), audit.VerifyOptions{AnchorFile: anchor, Heads: hs})
			if err != nil {
				return err
			}
			if err := a.print(f.json, rep, verifyText(rep)); err != nil {
				return err
			}
			if !rep.OK {
				return &exitError{exitAuditProblem, fmt.Errorf("audit log: %s", rep.Problem)}
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&anchor, "anchor", "", "anchor file to check (default: audit.anchor_file of --config)")
	c.Flags().StringArrayVar(&heads, "head", nil, "a head kept outside the database, SEQ:HASH as verify and checkpoint print it (repeatable)")
	return c
}

func verifyText(rep audit.Report) string {
	var b strings.Builder
	if rep.OK {
		fmt.Fprintf(&b, "audit log verified: %d entries\n", rep.Entries)
	} else {
		fmt.Fprintf(&b, "AUDIT LOG PROBLEM: %s\n", rep.Problem)
		fmt.Fprintf(&b, "entries read: %d\n", rep.Entries)
	}
	if rep.HeadSeq > 0 {
		fmt.Fprintf(&b, "head: %d:%s\n", rep.HeadSeq, rep.HeadHash)
	}
	fmt.Fprintf(&b, "checkpoints: %d verified (last at seq %d)", rep.Checkpoints, rep.LastCheckpointSeq)
	if rep.Unverifiable > 0 {
		fmt.Fprintf(&b, ", %d signed by a destroyed key (unverifiable)", rep.Unverifiable)
	}
	b.WriteString("\n")
	if rep.UnverifiableEntries > 0 {
		fmt.Fprintf(&b, "%d entries carry a MAC under a destroyed key: they chain, but their origin can no longer be checked\n", rep.UnverifiableEntries)
	}
	if rep.Anchored {
		fmt.Fprintf(&b, "anchored outside the database: yes (%d anchor-file checkpoints)\n", rep.AnchorCheckpoints)
	} else {
		b.WriteString("anchored outside the database: no (use --anchor or --head, or set audit.anchor_file)\n")
	}
	if rep.OK && rep.Unanchored > 0 {
		fmt.Fprintf(&b, "note: the last %d entries come after the last checkpoint or anchor: their removal or a consistent rewrite of them would not be detected\n", rep.Unanchored)
	}
	return b.String()
}

func (a *app) auditExportCmd() *cobra.Command {
	var f storeFlags
	var after int64
	var follow bool
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the entries after a position as JSON lines (for a SIEM); --follow keeps writing new ones",
		Long: "One entry per line: seq, time, actor, role, action, target, outcome, client (a pseudonym), detail,\n" +
			"prev and hash (hex). A collector stores the last seq it wrote and resumes with --after SEQ: it gets\n" +
			"every later entry exactly once. With --follow the command runs until interrupted.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if after < 0 {
				return errors.New("--after must be 0 or a seq")
			}
			cfg, st, err := a.openAdmin(cmd.Context(), f.config, f.data)
			if err != nil {
				return err
			}
			defer st.Close()
			l, err := newAuditLog(cfg, st, nil, nil)
			if err != nil {
				return err
			}
			w := bufio.NewWriter(a.stdout)
			if err := l.Export(cmd.Context(), w, after, follow); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&f.config, "config", "", "configuration file (its data_dir is used)")
	c.Flags().StringVar(&f.data, "data", "./parley-data", "data directory, when no --config is given")
	c.Flags().Int64Var(&after, "after", 0, "write the entries after this seq (the last one the collector has)")
	c.Flags().BoolVar(&follow, "follow", false, "keep writing new entries until interrupted")
	return c
}

func (a *app) auditListCmd() *cobra.Command {
	var f storeFlags
	var after int64
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "List entries after a position",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > audit.MaxPage {
				return fmt.Errorf("--limit must be 1 to %d", audit.MaxPage)
			}
			cfg, st, err := a.openAdmin(cmd.Context(), f.config, f.data)
			if err != nil {
				return err
			}
			defer st.Close()
			l, err := newAuditLog(cfg, st, nil, nil)
			if err != nil {
				return err
			}
			es, err := l.Entries(cmd.Context(), after, limit)
			if err != nil {
				return err
			}
			var text strings.Builder
			tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tROLE\tACTION\tTARGET\tOUTCOME\tCLIENT\tDETAIL")
			// Cells are shown without control characters: a value chosen by
			// a client (a name, a path) must not forge table rows.
			dash := func(s string) string {
				if s == "" {
					return "-"
				}
				return strings.Map(func(r rune) rune {
					if unicode.IsControl(r) {
						return '?'
					}
					return r
				}, s)
			}
			for _, e := range es {
				var d []string
				for k, v := range e.Detail {
					d = append(d, k+"="+v)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), dash(e.Actor), dash(e.Role), e.Action,
					dash(e.Target), e.Outcome, dash(e.Client), dash(strings.Join(slices.Sorted(slices.Values(d)), " ")))
			}
			_ = tw.Flush()
			if es == nil {
				es = []audit.Entry{}
			}
			return a.print(f.json, es, text.String())
		},
	}
	f.add(c)
	c.Flags().Int64Var(&after, "after", 0, "list the entries after this seq")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	return c
}

type checkpointOut struct {
	Checkpoint audit.Checkpoint `json:"checkpoint"`
	Head       string           `json:"head"`
}

func (a *app) auditCheckpointCmd() *cobra.Command {
	var f storeFlags
	c := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign the chain head now (stored, and appended to audit.anchor_file when set)",
		Long: "Signs the current head of the chain with the active audit-checkpoint key. Copy the printed head\n" +
			"(SEQ:HASH) somewhere the database's writers cannot reach (a ticket, the SIEM); 'parley audit verify\n" +
			"--head SEQ:HASH' then detects a truncation or rewrite up to it.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, l, done, err := a.openAuditKeys(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer done()
			cp, err := l.Checkpoint(cmd.Context())
			if err != nil {
				return err
			}
			head := audit.Head{Seq: cp.Seq, Hash: cp.Hash}.String()
			text := fmt.Sprintf("checkpoint signed: seq %d, key %s\nhead: %s\n", cp.Seq, cp.KeyID, head)
			if cfg.Audit.AnchorFile != "" {
				text += "anchored in " + cfg.Audit.AnchorFile + "\n"
			}
			return a.print(f.json, checkpointOut{Checkpoint: cp, Head: head}, text)
		},
	}
	f.add(c)
	return c
}

// openAuditKeys opens the store, every key over it and the audit log;
// done closes them.
func (a *app) openAuditKeys(ctx context.Context, f storeFlags) (config.Config, *audit.Log, func(), error) {
	cfg, st, keys, done, err := a.openAdminKeys(ctx, f)
	if err != nil {
		return cfg, nil, nil, err
	}
	l, err := newAuditLog(cfg, st, keys.Set, nil)
	if err != nil {
		done()
		return cfg, nil, nil, err
	}
	return cfg, l, done, nil
}
