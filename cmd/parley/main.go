// Command parley is the Parley gateway: a self-hosted, security-first
// Direct Line channel for bots.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/redact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr, os.LookupEnv).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(1)
	}
}

// app carries what every command needs; no package-level state.
type app struct {
	stdout, stderr io.Writer
	// stdin is where confirmations are read (nil: none, as off a terminal).
	stdin io.Reader
	env   func(string) (string, bool)
	// resolver looks up bot endpoint hosts at registration (tests give
	// one that never leaves the machine).
	resolver connector.Resolver
	// recorder receives the admin commands' audit events (nil: none).
	recorder admin.Recorder
}

func newRoot(stdout, stderr io.Writer, env func(string) (string, bool)) *cobra.Command {
	return (&app{stdout: stdout, stderr: stderr, stdin: os.Stdin, env: env, resolver: net.DefaultResolver}).root()
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "parley",
		Short:         "Parley: a self-hosted, security-first Direct Line gateway for bots",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.AddCommand(a.serveCmd(), a.demoCmd(), a.botCmd(), a.siteCmd(), a.secretCmd(), a.keysCmd(), a.benchCmd(), a.deliveriesCmd(), a.eraseCmd(), a.versionCmd(), a.securityCmd(), a.oauthCmd())
	root.AddCommand(a.conversationCmd())
	root.AddCommand(a.auditCmd())
	root.AddCommand(a.operatorCmd())
	root.SetFlagErrorFunc(flagOrCommandError)
	root.InitDefaultCompletionCmd() // now, so that strictGroups covers it too
	strictGroups(root)
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("no help topic %q: see 'parley --help' for the commands", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	return root
}

// strictGroups makes every command group below root (bot, site, secret,
// keys, deliveries dead, ...) refuse an unknown subcommand with an error
// (so a non-zero exit) instead of printing its help and exiting 0. With
// no argument a group still prints its help. The root already refuses
// unknown commands (cobra's own check, with suggestions).
func strictGroups(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = unknownSubcommand
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		strictGroups(c)
	}
}

// unknownSubcommand refuses any argument given to a command group, naming
// it, cobra's suggestions and the valid subcommands.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return unknownCommandError(cmd, args[0])
}

func unknownCommandError(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	var valid []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			valid = append(valid, c.Name())
		}
	}
	return fmt.Errorf("%s (valid: %s; see '%s --help')", msg, strings.Join(valid, ", "), cmd.CommandPath())
}

// flagOrCommandError turns the flag error of a mistyped subcommand
// ("parley bot craete --name x": cobra stops at --name, a flag of create,
// not of bot) into "unknown command". Other flag errors are unchanged.
func flagOrCommandError(cmd *cobra.Command, err error) error {
	if cmd.HasSubCommands() && !cmd.Runnable() || cmd.HasSubCommands() && cmd.Args != nil {
		if args := cmd.Flags().Args(); len(args) > 0 {
			return unknownCommandError(cmd, args[0])
		}
	}
	return err
}

func (a *app) logger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	// Redaction is always on; the server adds its pseudonym key when it
	// has opened the store (until then user ids and addresses show as
	// placeholders).
	return slog.New(redact.NewHandler(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: l}), nil))
}
