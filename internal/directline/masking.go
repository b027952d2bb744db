package directline

import (
	"encoding/json"
	"net/http"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// maskedFields are the activity members whose strings a site's masking
// policy scans, at any depth: what a user types or a client form sends.
// Ids, accounts, the conversation, timestamps, locale, entities and
// attachment URLs and content types are not scanned (they carry no
// message content, and bots rely on them unchanged); uploaded files'
// bytes are not scanned either.
var maskedFields = []string{"text", "speak", "summary", "value", "channelData"}

// maskActivity applies the site's masking policy to a user's activity in
// place, before it is appended (so the stored copy and the bot's copy are
// both masked).
func maskActivity(p store.MaskingPolicy, act conversation.Activity) *apiError {
	if !p.Cards() {
		return nil
	}
	m := redact.NewMasker(p.AllPII())
	for _, f := range maskedFields {
		raw, ok := act[f]
		if !ok {
			continue
		}
		out, changed, err := m.JSON(raw)
		if err != nil {
			return errf(http.StatusBadRequest, "BadArgument", "%s is not valid JSON", f)
		}
		if changed {
			act[f] = out
		}
	}
	raw, ok := act["attachments"]
	if !ok {
		return nil
	}
	var atts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &atts); err != nil {
		return errf(http.StatusBadRequest, "BadArgument", "attachments must be an array of objects")
	}
	masked := false
	for _, att := range atts {
		for _, f := range []string{"content", "name"} {
			if v, ok := att[f]; ok {
				out, changed, err := m.JSON(v)
				if err != nil {
					return errf(http.StatusBadRequest, "BadArgument", "attachments[].%s is not valid JSON", f)
				}
				if changed {
					att[f], masked = out, true
				}
			}
		}
	}
	if masked {
		act.Set("attachments", atts)
	}
	return nil
}
