package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

func (a *app) serveCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway in production (TLS required off loopback)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			read := map[string]bool{"PARLEY_PPROF_LISTEN": true} // read by startPprof
			cfg, err := config.Load(cfgPath, func(k string) (string, bool) {
				read[k] = true
				return a.env(k)
			})
			if err != nil {
				// The configuration exit code, as Preflight's refusals: a
				// supervisor does not restart into the same mistake.
				return configError{fmt.Errorf("invalid configuration:\n%w", err)}
			}
			log := a.logger(cfg.LogLevel)
			// A misspelled variable is ignored, unlike a misspelled key
			// in the file (refused): say so. Not refused: tooling sets
			// PARLEY_* variables of its own.
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PARLEY_") && !read[k] {
					log.Warn("environment variable ignored: it is no setting Parley reads (misspelled? the README's Configuration table lists them)", "variable", k)
				}
			}
			stopPprof, err := a.startPprof(log)
			if err != nil {
				return err
			}
			defer stopPprof()
			// Everything that can be checked is, before any file or
			// directory is created: the certificate, the master key, the
			// data directory, the key provider; the listen address is
			// bound here and handed to Serve.
			ls, err := server.Preflight(cfg, time.Now(), log)
			if err != nil {
				return err
			}
			ln := ls.Main
			srv, err := server.New(cmd.Context(), cfg, log)
			if err != nil {
				_ = ls.Close()
				return err
			}
			if err := refuseInsecureBots(cmd.Context(), cfg, srv.Store()); err != nil {
				_ = ls.Close()
				_ = srv.Close()
				return err
			}
			if err := srv.EnableAdmin(cmd.Context(), server.AdminOptions{Announce: a.stderr}); err != nil {
				_ = ls.Close()
				_ = srv.Close()
				return err
			}
			bi := currentBuildInfo()
			log.Info("parley serving", "listen", ln.Addr().String(), "public_url", cfg.PublicURL, "version", bi.Version, "commit", bi.Commit)
			if err := srv.Serve(cmd.Context(), ls); err != nil {
				return err
			}
			log.Info("parley stopped cleanly: open streams closed, pending deliveries kept for the next start", "version", bi.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (YAML); PARLEY_* environment variables override it")
	return cmd
}

// refuseInsecureBots: in production (TLS, not insecure_http) no bot may be
// registered without authentication.
func refuseInsecureBots(ctx context.Context, cfg config.Config, st store.Store) error {
	if cfg.InsecureHTTP {
		return nil
	}
	bots, err := st.ListBots(ctx)
	if err != nil {
		return fmt.Errorf("list bots: %w", err)
	}
	for _, b := range bots {
		if b.InsecureNoAuth {
			return fmt.Errorf("bot %[1]s (%[2]s) is registered with --insecure-no-auth; parley serve refuses to run with it in production (TLS). Switch it to authentication with 'parley bot update %[1]s --auth --config <this configuration>' (prints a new client secret for the bot, once), or remove it with 'parley bot delete %[1]s --config <this configuration>'; for development only, use insecure_http on loopback", b.ID, b.Name)
		}
	}
	return nil
}

// openAdmin opens the store of a configuration file or data directory and
// returns the configuration it used.
func (a *app) openAdmin(ctx context.Context, cfgPath, dataDir string) (config.Config, store.Store, error) {
	cfg := config.Default()
	if cfgPath != "" {
		c, err := config.Load(cfgPath, a.env)
		if err != nil {
			return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
		}
		cfg = c
	} else {
		// The environment applies as it does to `parley serve`: the master
		// key (PARLEY_MASTER_KEY, PARLEY_MASTER_KEY_FILE) and the key
		// provider (PARLEY_KEYS_*) are the server's, or the command would
		// make a stray master key and keys the server cannot open.
		if err := cfg.ApplyEnv(a.env); err != nil {
			return cfg, nil, fmt.Errorf("invalid environment:\n%w", err)
		}
		if _, ok := a.env("PARLEY_DATA_DIR"); !ok || dataDir != "./parley-data" {
			cfg.DataDir = dataDir
		}
		if _, ok := a.env("PARLEY_MASTER_KEY_FILE"); !ok {
			cfg.MasterKeyFile = filepath.Join(cfg.DataDir, "master.key")
		}
	}
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, fmt.Errorf("no data directory %s: %w\nGive the server's configuration with --config parley.yaml (its data_dir is used), or its data directory with --data; 'parley serve' creates it on first start", cfg.DataDir, err)
	} else if err != nil {
		return cfg, nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	st, err := server.OpenStore(ctx, cfg)
	return cfg, st, err
}

// configError is an invalid configuration: exit code 78 (EX_CONFIG), as
// for Preflight's refusals.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// ExitCode is server.ExitConfig.
func (configError) ExitCode() int { return server.ExitConfig }
