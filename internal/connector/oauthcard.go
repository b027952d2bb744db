package connector

import (
	"context"
	"encoding/json"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

// SignInLinker mints Parley's own sign-in URL for a user of a bot's
// conversation and one of the bot's OAuth connections (the user token
// service implements it).
type SignInLinker interface {
	SignInLink(ctx context.Context, botID string, conv store.Conversation, connectionName string) (string, error)
}

const oauthCardType = "application/vnd.microsoft.card.oauth"

// fillOAuthCards sets the signin button of every OAuthCard in act to
// Parley's own sign-in URL (botbuilder's OAuthPrompt leaves it empty on
// Direct Line). A link the bot supplied is never kept: when no link can
// be minted (no such connection, no bound user) the button has no value.
func (a *API) fillOAuthCards(ctx context.Context, act conversation.Activity, conv store.Conversation, bot store.Bot) {
	raw, ok := act["attachments"]
	if !ok {
		return
	}
	var atts []map[string]json.RawMessage
	if json.Unmarshal(raw, &atts) != nil {
		return
	}
	changed := false
	for _, att := range atts {
		var ct string
		_ = json.Unmarshal(att["contentType"], &ct)
		if ct != oauthCardType {
			continue
		}
		var card map[string]json.RawMessage
		if json.Unmarshal(att["content"], &card) != nil || card == nil {
			card = map[string]json.RawMessage{}
		}
		var conn string
		_ = json.Unmarshal(card["connectionName"], &conn)
		title := "Sign in"
		var buttons []map[string]any
		if json.Unmarshal(card["buttons"], &buttons) == nil && len(buttons) > 0 {
			if t, ok := buttons[0]["title"].(string); ok && t != "" {
				title = t
			}
		}
		button := map[string]any{"type": "signin", "title": title}
		if a.signIn != nil && conn != "" {
			if u, err := a.signIn.SignInLink(ctx, bot.ID, conv, conn); err == nil {
				button["value"] = u
			} else {
				a.logger.Warn("OAuthCard left without a sign-in link", "bot", bot.ID, "conversation", conv.ID, "err", err)
			}
		}
		b, _ := json.Marshal([]any{button})
		card["buttons"] = b
		att["content"], _ = json.Marshal(card)
		changed = true
	}
	if changed {
		act.Set("attachments", atts)
	}
}
