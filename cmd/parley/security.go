package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/threat"
)

// securityCmd is "security": threat detection reports.
func (a *app) securityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "security",
		Short: "Threat detection: who fails to authenticate (parley security report)",
	}
	cmd.AddCommand(a.securityReportCmd())
	return cmd
}

// securityReportCmd is "security report": the top offenders (site,
// pseudonymized client address, user-agent family) by authentication
// failures, read from the data directory's store, so it works without the
// server and covers every replica sharing the store.
func (a *app) securityReportCmd() *cobra.Command {
	var sf storeFlags
	var since, top string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "List the top offenders by authentication failures (401, 403, 429, token service refusals): --since 1h --top 20",
		Long: "List the top offenders by authentication failures: answers 401, 403 and 429 and the token service's refusals,\n" +
			"counted per minute by site (when the credential named one), pseudonymized client address (a keyed HMAC: the\n" +
			"same address gives the same pseudonym while the log-pseudonym key lasts; raw addresses are never stored) and\n" +
			"user-agent family. A running server stores its counts every security.flush_every (10s); the report reads the\n" +
			"data directory's store, so it covers every replica sharing it. Client \"other\" counts the failures past\n" +
			"security.max_keys_per_minute distinct keys in a minute (many addresses at once).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := threat.ReportParams(since, top); err != nil {
				return fmt.Errorf("--%w", err)
			}
			as, err := a.openService(cmd.Context(), sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			rep, err := as.svc.SecurityReport(cmd.Context(), as.p, since, top)
			if err != nil {
				return err
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				return err
			}
			return a.print(sf.json, rep, text.String())
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&since, "since", "1h", "how far back: a duration from 1m to 8784h (15m, 1h, 24h)")
	cmd.Flags().StringVar(&top, "top", "20", "how many offenders, 1..1000")
	return cmd
}
