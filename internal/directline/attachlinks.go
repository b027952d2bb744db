package directline

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

// Attachment links from clients.
//
// A file a client sends through the upload route is stored by Parley and
// reaches the bot as Parley's own capability link (connector's
// /v3/attachments/{id}/views/original?t=…). Any other link in a client's
// attachment (contentUrl, thumbnailUrl) points wherever the client likes:
// a bot that downloads it can be made to fetch internal addresses (the demo
// bot fetched Parley's own /metrics). Each site decides:
//   - refuse (the default): the activity is refused with 400 BadArgument
//     naming attachments[i].contentUrl or .thumbnailUrl;
//   - untrusted: the link passes through, and the bot's copy of that
//     attachment carries "parleyUntrusted": true.
//
// data: URLs carry their bytes inline, so nothing is fetched: Web Chat sends
// its image thumbnails that way, and they are always accepted. Inline cards
// (content without links) are untouched; links inside card content are not
// inspected (bots render cards, they do not download them).

// UntrustedMember is the member Parley sets on an attachment of the bot's
// copy whose link came from the client; it is Parley's (conversation
// refuses a client's case variant of it, and a client's own value is
// replaced).
const UntrustedMember = "parleyUntrusted"

// clientLinks lists the "attachments[i].member" links a client supplied in
// act; uploaded reports the attachments whose contentUrl Parley set.
func clientLinks(act conversation.Activity, uploaded func(i int) bool) []string {
	raw, ok := act["attachments"]
	if !ok {
		return nil
	}
	var atts []map[string]json.RawMessage
	if json.Unmarshal(raw, &atts) != nil {
		return nil // Parse refuses these
	}
	var out []string
	for i, m := range atts {
		for _, k := range [...]string{"contentUrl", "thumbnailUrl"} {
			if k == "contentUrl" && uploaded(i) {
				continue
			}
			var u string
			if json.Unmarshal(m[k], &u) == nil && isLink(u) {
				out = append(out, fmt.Sprintf("attachments[%d].%s", i, k))
			}
		}
	}
	return out
}

// isLink: anything but empty and data: URLs names something to fetch.
func isLink(u string) bool {
	u = strings.TrimSpace(u)
	return u != "" && !(len(u) >= 5 && strings.EqualFold(u[:5], "data:"))
}

func noneUploaded(int) bool { return false }

// checkClientLinks applies the site's policy to an activity as the client
// sent it (before Parley adds links of its own).
func checkClientLinks(site store.Site, act conversation.Activity) *apiError {
	if site.ClientAttachmentURLs.Untrusted() {
		return nil
	}
	if links := clientLinks(act, noneUploaded); len(links) > 0 {
		return errf(http.StatusBadRequest, "BadArgument",
			"%s: this site does not accept attachment links from clients; send files through the upload route", links[0])
	}
	return nil
}

// markClientLinks sets UntrustedMember on the bot's copy of each attachment
// that carries a client's link, and removes any value the client gave it
// elsewhere.
func markClientLinks(s conversation.Activity, files []botFile) error {
	raw, ok := s["attachments"]
	if !ok || !strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
		return nil
	}
	var atts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &atts); err != nil {
		return err
	}
	uploaded := func(i int) bool { return slices.ContainsFunc(files, func(f botFile) bool { return f.index == i }) }
	links := clientLinks(s, uploaded)
	changed := false
	for i, m := range atts {
		if m == nil {
			continue
		}
		if _, had := m[UntrustedMember]; had {
			delete(m, UntrustedMember)
			changed = true
		}
		for _, k := range [...]string{"contentUrl", "thumbnailUrl"} {
			if slices.Contains(links, fmt.Sprintf("attachments[%d].%s", i, k)) {
				m[UntrustedMember] = json.RawMessage("true")
				changed = true
			}
		}
	}
	if changed {
		s.Set("attachments", atts)
	}
	return nil
}
