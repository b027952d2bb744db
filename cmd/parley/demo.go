package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/echobot"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/web"
)

// Demo fixtures: stable ids so a restarted demo keeps its conversations.
const (
	demoBotID  = "demo-echo-bot"
	demoSiteID = "demo-site"
)

type demoInfo struct {
	DirectLine string `json:"directline"`
	Connector  string `json:"connector"`
	Secret     string `json:"secret"`
	Origin     string `json:"origin"`
	Page       string `json:"page"`
	Metrics    string `json:"metrics"`
	// Admin is the operators' web console (with --admin).
	Admin string `json:"admin,omitempty"`
}

func (a *app) demoCmd() *cobra.Command {
	var listen, dataDir, webchatURL, webchatIntegrity, webchatFile, durability string
	var asJSON, noRateLimits, withAdmin bool
	var tokenTTL time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a loopback demo: gateway, echo bot and a Web Chat page",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !config.IsLoopback(listen) {
				return fmt.Errorf("--listen %q: the demo serves plain HTTP and only listens on loopback", listen)
			}
			bundle, err := webChatBundle(cmd, webchatURL, webchatIntegrity, webchatFile)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			defer ln.Close()
			origin := "http://" + ln.Addr().String()
			botLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("listen for the echo bot: %w", err)
			}
			defer botLn.Close()
			metricsLn, err := net.Listen("tcp", "127.0.0.1:0") // the metrics listener, on a free loopback port
			if err != nil {
				return fmt.Errorf("listen for metrics: %w", err)
			}
			defer metricsLn.Close()
			var adminLn net.Listener
			if withAdmin {
				if adminLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					return fmt.Errorf("listen for the admin console: %w", err)
				}
				defer adminLn.Close()
			}

			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			cfg := config.Default()
			cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), origin, abs, true
			cfg.MasterKeyFile = filepath.Join(abs, "master.key")
			cfg.Metrics.Listen = metricsLn.Addr().String()
			if adminLn != nil {
				cfg.Admin.Listen = adminLn.Addr().String()
			}
			if tokenTTL > 0 {
				cfg.DirectLine.TokenTTL = config.Duration(tokenTTL)
			}
			if lvl, ok := a.env("PARLEY_LOG_LEVEL"); ok {
				cfg.LogLevel = lvl
			}
			if noRateLimits {
				cfg.Limits = config.AllOff()
			}
			cfg.Store.Durability = durability
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			log := a.logger(cfg.LogLevel)
			stopPprof, err := a.startPprof(log)
			if err != nil {
				return err
			}
			defer stopPprof()
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			secret, botSecret, err := provisionDemo(ctx, srv.Store(), "http://"+botLn.Addr().String()+"/api/messages", origin)
			if err != nil {
				_ = srv.Close()
				return err
			}
			info := demoInfo{DirectLine: origin + "/v3/directline", Connector: origin + "/", Secret: secret, Origin: origin, Page: origin + "/", Metrics: "http://" + metricsLn.Addr().String() + "/metrics"}
			if adminLn != nil {
				// Prints the first owner's one-time enrollment code on
				// stderr while no owner has enrolled, as serve does.
				if err := srv.EnableAdmin(ctx, server.AdminOptions{Announce: a.stderr}); err != nil {
					_ = srv.Close()
					return err
				}
				info.Admin = "http://" + adminLn.Addr().String() + "/"
			}
			demo := &web.Demo{DirectLine: info.DirectLine, Secret: secret, WebChatURL: bundle.url, WebChatIntegrity: bundle.integrity, WebChatBundle: bundle.file,
				Origin: origin, Client: &http.Client{Timeout: 10 * time.Second}, Log: log}
			demo.Register(srv)

			// The echo bot authenticates both ways, as a production bot would.
			botAuth := &echobot.Auth{AppID: demoBotID, Secret: botSecret, Gateway: origin}
			botSrv := &http.Server{Handler: echobot.New(log, botAuth), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = botSrv.Serve(botLn) }()
			defer botSrv.Close()

			if asJSON {
				if err := json.NewEncoder(a.stdout).Encode(info); err != nil {
					return err
				}
			} else {
				console := "off (--admin serves it)"
				if info.Admin != "" {
					console = info.Admin + " (enroll the first owner with the one-time code printed on stderr)"
				}
				fmt.Fprintf(a.stdout, "Parley demo (plain HTTP on loopback only; not for production)\n\n"+
					"  Web Chat page:    %s\n  Web Chat script:  %s\n  Direct Line API:  %s\n  Bot Connector:    %s\n  Echo bot:         http://%s/api/messages\n  Trusted origin:   %s\n  Metrics:          %s\n  Admin console:    %s\n  Site secret:      %s (server-side only; shown once per start)\n  Data:             %s\n\nPress Ctrl+C to stop.\n",
					info.Page, bundle.describe(origin), info.DirectLine, info.Connector, botLn.Addr(), origin, info.Metrics, console, secret, abs)
			}
			ls := server.Listeners{Main: ln, Metrics: metricsLn}
			if adminLn != nil {
				ls.Admin = adminLn
			}
			return srv.Serve(ctx, ls)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "loopback address to listen on")
	cmd.Flags().StringVar(&dataDir, "data", "./parley-data", "data directory (SQLite database and master key)")
	cmd.Flags().StringVar(&webchatURL, "webchat-url", web.PinnedWebChatURL, "Web Chat script URL the demo page loads (the default is pinned with its integrity hash; another URL gets no hash unless --webchat-integrity is given)")
	cmd.Flags().StringVar(&webchatIntegrity, "webchat-integrity", "", "Subresource Integrity hash (sha384-…) the browser checks the Web Chat script against")
	cmd.Flags().StringVar(&webchatFile, "webchat-file", "", "serve this local Web Chat bundle (e.g. node_modules/botframework-webchat/dist/webchat.js) from the demo itself: works offline")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object with the URLs and the secret, then serve")
	cmd.Flags().DurationVar(&tokenTTL, "token-ttl", 0, "Direct Line token lifetime (default 1h)")
	cmd.Flags().StringVar(&durability, "durability", config.DurabilityFull, "store.durability: full (an acknowledged activity survives a power cut) or normal (survives a process crash)")
	cmd.Flags().BoolVar(&withAdmin, "admin", false, "also serve the operators' web console and admin API on a free loopback port (plain HTTP); the first owner's one-time enrollment code is printed on stderr")
	cmd.Flags().BoolVar(&noRateLimits, "no-rate-limits", false, "turn the Direct Line rate limits off (parley bench measures the gateway, not its limits)")
	return cmd
}

// provisionDemo creates or re-points the demo bot (authenticated, with a
// fresh client secret) and site, and issues a fresh site secret in slot 1
// (slot 2 stays empty).
func provisionDemo(ctx context.Context, st store.Store, botEndpoint, origin string) (siteSecret, botSecret string, err error) {
	now := time.Now().UTC()
	if botSecret, err = identity.NewSecret(); err != nil {
		return "", "", err
	}
	bot := store.Bot{ID: demoBotID, Name: "Echo Bot", Endpoint: botEndpoint, CreatedAt: now}
	if _, err := st.GetBot(ctx, demoBotID); err == nil {
		if err := st.UpdateBot(ctx, bot); err != nil {
			return "", "", err
		}
	} else if err := st.CreateBot(ctx, bot); err != nil {
		return "", "", err
	}
	if err := st.SetBotSecret(ctx, demoBotID, 0, botauth.HashClientSecret(botSecret)); err != nil {
		return "", "", err
	}
	secret, err := identity.NewSecret()
	if err != nil {
		return "", "", err
	}
	if _, err := st.GetSite(ctx, demoSiteID); err == nil {
		if err := st.UpdateSitePolicy(ctx, demoSiteID, true, []string{origin}); err != nil {
			return "", "", err
		}
		if err := st.SetSiteSecret(ctx, demoSiteID, 0, identity.HashSecret(secret)); err != nil {
			return "", "", err
		}
		return secret, botSecret, nil
	}
	site := store.Site{ID: demoSiteID, BotID: demoBotID, Name: "Demo page", EnhancedAuth: true, TrustedOrigins: []string{origin}, CreatedAt: now}
	site.SecretHashes[0] = identity.HashSecret(secret)
	return secret, botSecret, st.CreateSite(ctx, site)
}

// demoBundle is what the demo page loads Web Chat from.
type demoBundle struct {
	url, integrity string
	// file is a local bundle the demo serves itself (--webchat-file).
	file []byte
}

// webChatBundle resolves the --webchat-* flags: the pinned CDN bundle with
// its hash by default; a local file, served by the demo with the hash of
// its bytes (or the one given, which must match); another URL with the
// hash given, or none.
func webChatBundle(cmd *cobra.Command, rawURL, integrity, file string) (demoBundle, error) {
	urlSet := cmd.Flags().Changed("webchat-url")
	if integrity != "" {
		if err := web.CheckIntegrity(integrity); err != nil {
			return demoBundle{}, err
		}
	}
	if file != "" {
		if urlSet {
			return demoBundle{}, fmt.Errorf("--webchat-file and --webchat-url: give one (the file is served by the demo itself)")
		}
		b, err := web.LoadBundle(file)
		if err != nil {
			return demoBundle{}, err
		}
		if integrity == "" {
			integrity = web.Integrity(b)
		} else if !web.MatchesIntegrity(b, integrity) {
			return demoBundle{}, fmt.Errorf("--webchat-file %s does not match --webchat-integrity %s (its sha384 is %s): browsers would refuse it; use the file you audited, or drop --webchat-integrity to trust this one", file, integrity, web.Integrity(b))
		}
		return demoBundle{integrity: integrity, file: b}, nil
	}
	if !urlSet {
		if integrity == "" {
			integrity = web.PinnedWebChatIntegrity
		}
		return demoBundle{url: rawURL, integrity: integrity}, nil
	}
	if err := web.CheckWebChatURL(rawURL); err != nil {
		return demoBundle{}, err
	}
	if rawURL == web.PinnedWebChatURL && integrity == "" {
		integrity = web.PinnedWebChatIntegrity
	}
	return demoBundle{url: rawURL, integrity: integrity}, nil
}

// describe says where the page's Web Chat comes from, for the banner.
func (b demoBundle) describe(origin string) string {
	switch {
	case b.file != nil:
		return origin + web.BundlePath + " (--webchat-file, " + b.integrity + ")"
	case b.integrity != "":
		return b.url + " (" + b.integrity + "; offline? use --webchat-file)"
	default:
		return b.url + " (no integrity hash: --webchat-integrity)"
	}
}
