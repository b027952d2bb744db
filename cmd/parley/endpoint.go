package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/connector"
)

// checkBotEndpoint refuses a bot endpoint that delivery would refuse: the
// same address rule (connector.CheckEndpoint) with the same
// bots.allow_private_networks, on every address the host resolves to now.
// A host that does not resolve yet is accepted with a warning (bots are
// often registered before they are deployed: their app id and secret come
// from here); delivery checks every address it dials in any case.
func (a *app) checkBotEndpoint(ctx context.Context, cfg config.Config, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := connector.CheckEndpoint(ctx, endpoint, cfg.AllowedPrivateNetworks(), a.resolver)
	switch {
	case errors.Is(err, connector.ErrUnresolvedHost):
		fmt.Fprintf(a.stderr, "WARNING: %v. Parley could not check where this endpoint points; it checks every address it connects to at delivery and refuses internal ones.\n", err)
		return nil
	case err != nil:
		return fmt.Errorf("--endpoint refused: %w", err)
	}
	return nil
}
