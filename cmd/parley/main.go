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
	"syscall"

	"github.com/spf13/cobra"

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
	root.AddCommand(a.serveCmd(), a.demoCmd(), a.botCmd(), a.siteCmd(), a.secretCmd(), a.keysCmd(), a.benchCmd(), a.deliveriesCmd(), a.eraseCmd(), a.versionCmd())
	return root
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
