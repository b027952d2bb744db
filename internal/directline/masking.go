package directline

import (
	"encoding/json"
	"net/http"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// structuralFields are the activity members a site's masking policy does
// not scan: ids, the conversation, timestamps and addresses Parley or the
// protocol set, which bots rely on unchanged. Every other member is
// scanned at any depth (text, value, channelData, entities, suggested
// actions, an event's name, members Parley does not know): a PAN must not
// pass in any of them. from and recipient keep their id and role (their
// name is scanned); attachments keep their URLs and content types (content
// and name are scanned). Uploaded files' bytes are not scanned.
var structuralFields = map[string]bool{"type": true, "id": true, "timestamp": true, "localTimestamp": true,
	"localTimezone": true, "serviceUrl": true, "channelId": true, "conversation": true, "replyToId": true,
	"from": true, "recipient": true, "attachments": true}

// maskActivity applies the site's masking policy to a user's activity in
// place, before it is appended (so the stored copy and the bot's copy are
// both masked).
func maskActivity(p store.MaskingPolicy, act conversation.Activity) *apiError {
	if !p.Cards() {
		return nil
	}
	m := redact.NewMasker(p.AllPII())
	for f, raw := range act {
		if structuralFields[f] {
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
	for _, f := range []string{"from", "recipient"} {
		raw, ok := act[f]
		if !ok {
			continue
		}
		var acct map[string]json.RawMessage
		if err := json.Unmarshal(raw, &acct); err != nil {
			return errf(http.StatusBadRequest, "BadArgument", "%s must be an object", f)
		}
		if name, ok := acct["name"]; ok {
			out, changed, err := m.JSON(name)
			if err != nil {
				return errf(http.StatusBadRequest, "BadArgument", "%s.name is not valid JSON", f)
			}
			if changed {
				acct["name"] = out
				act.Set(f, acct)
			}
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
