package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/store"
)

// siteOut is a stored site as the site commands print it in --json: every
// policy, whichever one the command changed.
func siteOut(s store.Site) admin.Site { return admin.ToSite(s) }

// siteMaskingCmd: parley site set-masking --site ID (--cards [--all-pii] | --all-pii | --off).
func (a *app) siteMaskingCmd() *cobra.Command {
	var sf storeFlags
	var siteID string
	var cards, allPII, off bool
	cmd := &cobra.Command{
		Use:   "set-masking",
		Short: "Mask card numbers (--cards) and optionally other personal data (--all-pii) in user messages before they are stored and reach the bot; --off to stop",
		Long: `Masks data in users' activities before Parley stores them and forwards them to the bot.
--cards: card numbers (13-19 digits, Luhn-valid) keep only their last four digits: "**** **** **** 4242".
--all-pii: also SSNs, IBANs, email addresses and phone numbers, replaced by [ssn], [iban], [email], [phone].
--off: mask nothing (the default).
Scanned: every member of the activity (text, value, channelData, entities, suggested actions, from.name,
attachments' content and name, members Parley does not know) except ids, addresses, timestamps and URLs;
not uploaded files' bytes.
It takes effect within seconds for running servers.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p store.MaskingPolicy
			switch {
			case off && (cards || allPII):
				return errors.New("--off cannot be combined with --cards or --all-pii")
			case off:
				p = store.MaskingOff
			case allPII:
				p = store.MaskingAllPII
			case cards:
				p = store.MaskingCards
			default:
				return errors.New("say what to mask: --cards, --all-pii, or --off")
			}
			as, err := a.openService(cmd.Context(), sf)
			if err != nil {
				return err
			}
			defer as.st.Close()
			site, err := as.svc.SetMasking(cmd.Context(), as.p, siteID, p)
			if err != nil {
				return siteFlagError(siteID, err)
			}
			return a.print(sf.json, siteOut(site), fmt.Sprintf("site %s masking: %s\n", site.ID, admin.MaskingOf(site)))
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&siteID, "site", "", "site id")
	cmd.Flags().BoolVar(&cards, "cards", false, "mask card numbers to their last four digits")
	cmd.Flags().BoolVar(&allPII, "all-pii", false, "mask card numbers and other detected personal data (SSNs, IBANs, emails, phone numbers)")
	cmd.Flags().BoolVar(&off, "off", false, "mask nothing")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}
