package conversation

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Member names and case.
//
// Parley matches member names exactly, as JSON does. Many bot runtimes and
// clients do not: Go's encoding/json and .NET's Newtonsoft and
// System.Text.Json (case-insensitive option) bind "Conversation" or
// "ſerviceUrl" to the conversation and serviceUrl fields, and the last (or,
// in some decoders, the first) duplicate wins. A member that differs from
// one Parley sets only in case would sit beside Parley's own and could be
// what such a bot reads. So every activity Parley receives, from a client
// or a bot, is refused when:
//   - a member name appears twice (first-wins and last-wins decoders would
//     disagree);
//   - two member names fold together (a case-insensitive decoder cannot tell
//     them apart);
//   - a member name folds to a name Parley owns or interprets without being
//     exactly that name (Parley adds its own beside it, or checks the exact
//     name while the bot reads the variant).
//
// The same holds inside the objects Parley writes or interprets: from,
// recipient, conversation and each attachment.

// ownedMembers are the top-level members Parley sets, replaces, deletes or
// interprets on some ingress path: id, timestamp and conversation (stamped
// by the log), from, channelId, serviceUrl, recipient and callerId (set or
// removed by the Direct Line and Bot Connector edges), replyToId (set on
// bot replies), type (checked for channel-only types) and attachments
// (rewritten for uploads and checked against the site's URL policy), and
// channelData (its stream members are read, and a streamed reply's
// streaminfo entity is copied into it for Web Chat).
// localTimestamp and localTimezone belong to the sender and stay theirs.
var ownedMembers = foldIndex("id", "timestamp", "conversation", "from", "recipient", "channelId", "serviceUrl", "callerId", "replyToId", "type", "attachments", "channelData")

// Known members of the nested objects Parley writes or interprets
// (parleyUntrusted is the mark the Direct Line edge sets on client links).
var (
	accountMembers      = foldIndex("id", "name", "role", "aadObjectId")
	conversationMembers = foldIndex("id")
	attachmentMembers   = foldIndex("contentType", "contentUrl", "content", "name", "thumbnailUrl", "parleyUntrusted")
)

// foldIndex maps the folded form of each name to the name.
func foldIndex(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[foldName(n)] = n
	}
	return m
}

// foldName returns a key such that names a case-insensitive JSON decoder
// may bind to the same field have the same key. It is Go encoding/json's
// rule (ASCII letters upper-cased, every other rune replaced by the
// smallest rune of its Unicode simple case folding orbit, so 'ſ' U+017F is
// 'S' and the Kelvin sign U+212A is 'K'), widened by the runes whose simple
// upper- or lower-case mapping is an ASCII letter although they fold alone
// (the Turkish dotless ı U+0131 and dotted İ U+0130), which .NET's
// OrdinalIgnoreCase and Java's locale-sensitive toLowerCase bind to I.
func foldName(s string) string {
	var arr [32]byte
	return string(appendFold(arr[:0], s))
}

func appendFold(out []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune is encoding/json's foldRune (the smallest rune of r's
// SimpleFold orbit), mapped to an upper-case ASCII letter when r's simple
// case mappings reach one.
func foldRune(r rune) rune {
	f := r
	for {
		r2 := unicode.SimpleFold(f)
		if r2 <= f {
			f = r2
			break
		}
		f = r2
	}
	if f >= utf8.RuneSelf {
		if u := unicode.ToUpper(r); u < utf8.RuneSelf {
			return u
		}
		if l := unicode.ToLower(r); l < utf8.RuneSelf {
			return unicode.ToUpper(l)
		}
	}
	return f
}

// checkNames applies the rules above to the member names of one object.
// names holds each name once (duplicates were refused by the caller);
// known maps folded names to the names Parley owns or interprets there;
// path prefixes the member in the error ("" at the top level).
func checkNames(names []string, known map[string]string, path string) error {
	var buf [64]byte
	var offending []string
	var msg map[string]string
	refuse := func(n, m string) {
		if msg == nil {
			msg = map[string]string{}
		}
		offending = append(offending, n)
		msg[n] = m
	}
	// seen indexes the names by a hash of their folded form; a hit is
	// confirmed by folding both again.
	seen := make(map[uint64]int, len(names))
	for i, n := range names {
		f := appendFold(buf[:0], n)
		if exact, ok := known[string(f)]; ok && exact != n {
			refuse(n, fmt.Sprintf("differs only in case from %q, a member Parley owns; member names are case-sensitive", exact))
			continue
		}
		h := fnv64(f)
		if j, ok := seen[h]; ok {
			if foldName(names[j]) != string(f) {
				// Two folded names share a hash: index by the names.
				return checkNamesSlow(names, known, path)
			}
			a, b := min(n, names[j]), max(n, names[j])
			refuse(a, fmt.Sprintf("differs only in case from %q; one of the two must go", b))
			continue
		}
		seen[h] = i
	}
	if len(offending) == 0 {
		return nil
	}
	slices.Sort(offending)
	return &ValidationError{Field: path + offending[0], Msg: msg[offending[0]]}
}

// checkNamesSlow is checkNames indexed by the folded names themselves.
func checkNamesSlow(names []string, known map[string]string, path string) error {
	seen := make(map[string]string, len(names))
	var offending []string
	msg := map[string]string{}
	for _, n := range names {
		f := foldName(n)
		if exact, ok := known[f]; ok && exact != n {
			offending = append(offending, n)
			msg[n] = fmt.Sprintf("differs only in case from %q, a member Parley owns; member names are case-sensitive", exact)
			continue
		}
		if other, ok := seen[f]; ok {
			a, b := min(n, other), max(n, other)
			offending = append(offending, a)
			msg[a] = fmt.Sprintf("differs only in case from %q; one of the two must go", b)
			continue
		}
		seen[f] = n
	}
	if len(offending) == 0 {
		return nil
	}
	slices.Sort(offending)
	return &ValidationError{Field: path + offending[0], Msg: msg[offending[0]]}
}

// fnv64 is FNV-1a.
func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// objectNames lists the member names of a compact, valid JSON object,
// refusing a name that appears twice.
func objectNames(b []byte, path string) ([]string, error) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, &ValidationError{Field: trimDot(path), Msg: "must be an object"}
	}
	var names []string
	var set map[string]bool // past a few names, duplicates are found by map
	for i := 1; i < len(b)-1; {
		end := stringEnd(b, i)
		if end < 0 || end+1 >= len(b) || b[end+1] != ':' {
			return nil, &ValidationError{Field: trimDot(path), Msg: "is not valid JSON"}
		}
		name, ok := decodeString(b[i : end+1])
		if !ok {
			return nil, &ValidationError{Field: trimDot(path), Msg: "is not valid JSON"}
		}
		if set == nil && len(names) >= 16 {
			set = make(map[string]bool, 64)
			for _, n := range names {
				set[n] = true
			}
		}
		if (set == nil && slices.Contains(names, name)) || set[name] {
			return nil, duplicateMember(path + name)
		}
		if set != nil {
			set[name] = true
		}
		names = append(names, name)
		ve := valueEnd(b, end+2)
		if ve <= end+2 {
			return nil, &ValidationError{Field: trimDot(path), Msg: "is not valid JSON"}
		}
		i = ve
		if b[i] == ',' {
			i++
		}
	}
	return names, nil
}

func duplicateMember(field string) *ValidationError {
	return &ValidationError{Field: field, Msg: "appears more than once; member names must be unique"}
}

func trimDot(p string) string {
	if len(p) > 0 && p[len(p)-1] == '.' {
		return p[:len(p)-1]
	}
	return p
}

// checkObject applies the name rules to a nested object member (absent or
// null is fine; its type is checked elsewhere).
func checkObject(raw []byte, known map[string]string, path string) error {
	if len(raw) == 0 || isNull(raw) || !isObject(raw) {
		return nil
	}
	names, err := objectNames(raw, path+".")
	if err != nil {
		return err
	}
	return checkNames(names, known, path+".")
}

// checkNames applies the name rules to the activity's members and to the
// nested objects Parley writes or interprets.
func (a Activity) checkNames() error {
	var arr [32]string
	names := arr[:0]
	for k := range a {
		names = append(names, k)
	}
	if err := checkNames(names, ownedMembers, ""); err != nil {
		return err
	}
	for _, o := range [...]struct {
		name  string
		known map[string]string
	}{{"from", accountMembers}, {"recipient", accountMembers}, {"conversation", conversationMembers}} {
		if err := checkObject(a[o.name], o.known, o.name); err != nil {
			return err
		}
	}
	raw := a["attachments"]
	if !isArray(raw) {
		return nil
	}
	var atts []json.RawMessage
	if err := json.Unmarshal(raw, &atts); err != nil {
		return nil // reported by validate
	}
	for i, att := range atts {
		if err := checkObject(att, attachmentMembers, fmt.Sprintf("attachments[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}
