package directline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// activityPartType identifies the activity part of an upload, whatever the
// part's name or filename (browsers add filename="blob").
const activityPartType = "application/vnd.microsoft.activity"

// AttachmentTTL is how long an upload's download URL works for the bot.
const AttachmentTTL = 24 * time.Hour

type uploadedFile struct {
	name, contentType string
	data              []byte
}

// upload: POST /conversations/{id}/upload?userId=.
//
// Everything is checked before anything is written (the number of files,
// their sizes and content types, the activity and its attachment
// metadata), and the files are stored in the transaction that appends the
// activity: a refused upload, or a crash, leaves no file behind.
func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	if !a.allow(w, r, RouteUpload) {
		return
	}
	p, c, ok := a.authorized(w, r)
	if !ok || !a.allowIn(w, r, RouteUpload, c.ID) {
		return
	}
	// An upload holds up to max_upload_bytes while it is checked and
	// stored: the number in progress is capped, per client address and
	// gateway-wide, so memory is bounded however many are sent at once.
	leave, ok := a.enter(w, r, a.uploads, "uploads")
	if !ok {
		return
	}
	defer leave()
	limit := a.cfg.MaxUploadBytes + int64(a.cfg.Limits.MaxBytes) + 64<<10
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	act, files, e := a.parseUpload(r)
	if e == nil && act != nil {
		e = checkClientLinks(p.site, act)
	}
	if e != nil {
		a.fail(w, r, e)
		return
	}
	if act == nil {
		act = conversation.Activity{}
		act.Set("type", "message")
		if uid := r.URL.Query().Get("userId"); uid != "" {
			act.Set("from", conversation.Account{ID: uid})
		}
	}
	if len(files) == 0 {
		a.fail(w, r, errf(http.StatusBadRequest, "MissingProperty", "upload has no file"))
		return
	}
	// Match files to the activity's attachment metadata by filename; file
	// parts arrive in any order.
	var meta []map[string]json.RawMessage
	if raw, ok := act["attachments"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &meta); err != nil {
			a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "attachments must be an array of objects"))
			return
		}
	}
	used := make([]bool, len(files))
	placeholder, _ := json.Marshal(a.cfg.PublicURL + "/v3/directline/static/placeholder.png")
	now := time.Now().UTC()
	var bot []botFile
	for i, m := range meta {
		if _, hasURL := m["contentUrl"]; hasURL {
			continue // a link or card the client sent as is
		}
		if _, hasContent := m["content"]; hasContent {
			continue
		}
		var name string
		_ = json.Unmarshal(m["name"], &name)
		j := -1
		for k, f := range files {
			if !used[k] && f.name == name {
				j = k
				break
			}
		}
		if j < 0 {
			a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "attachment %q has no file part", name))
			return
		}
		used[j] = true
		if raw, ok := m["contentType"]; ok {
			var ct string
			if err := json.Unmarshal(raw, &ct); err != nil || !validMediaType(ct) {
				a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "attachment %q: contentType must be a media type such as image/png", name))
				return
			}
		} else {
			m["contentType"], _ = json.Marshal(files[j].contentType)
		}
		m["contentUrl"] = placeholder
		bf, e := a.planFile(c, files[j], now, p.site.Masking)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		bf.index = i
		bot = append(bot, bf)
	}
	for k, f := range files {
		if used[k] {
			continue
		}
		bf, e := a.planFile(c, f, now, p.site.Masking)
		if e != nil {
			a.fail(w, r, e)
			return
		}
		ct, _ := json.Marshal(f.contentType)
		nm, _ := json.Marshal(f.name)
		meta = append(meta, map[string]json.RawMessage{"contentType": ct, "name": nm, "contentUrl": placeholder})
		bf.index = len(meta) - 1
		bot = append(bot, bf)
	}
	if len(meta) > a.cfg.Limits.MaxAttachments {
		a.fail(w, r, errf(http.StatusBadRequest, "BadArgument", "at most %d attachments are allowed", a.cfg.Limits.MaxAttachments))
		return
	}
	act.Set("attachments", meta)
	a.submit(w, r, p, c, act, bot) // stores the files with the activity
}

// planFile prepares an uploaded file for storage with its activity (nothing
// is written here): its id and the bot's download URL.
//
// The stored file name (what the bot reads in the attachment's info) is
// masked like the activity under the site's masking policy.
func (a *API) planFile(c store.Conversation, f uploadedFile, now time.Time, mask store.MaskingPolicy) (botFile, *apiError) {
	if mask.Cards() {
		f.name = redact.NewMasker(mask.AllPII()).String(f.name)
	}
	id := conversation.NewID()
	tok, _, err := a.issuer.Issue(identity.Claims{Scope: identity.ScopeAttachment, Bot: c.BotID, Site: c.SiteID, Conv: c.ID, Attachment: id}, AttachmentTTL)
	if err != nil {
		return botFile{}, errf(http.StatusInternalServerError, "ServiceError", "token issuance failed")
	}
	return botFile{
		url:  a.cfg.ServiceURL() + "v3/attachments/" + id + "/views/original?t=" + tok,
		file: store.Attachment{ID: id, ConversationID: c.ID, ContentType: f.contentType, Name: f.name, Data: f.data, CreatedAt: now},
	}, nil
}

// validMediaType reports whether s is a media type (type/subtype, RFC
// 6838 names, optional parameters), as a file's content type must be.
func validMediaType(s string) bool {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return false
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

// restrictedName is an RFC 6838 restricted-name: 1-127 characters, a
// letter or digit first, then letters, digits and !#$&-^_.+
func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' // ParseMediaType lowercases
		if i == 0 && !alnum {
			return false
		}
		if !alnum && !strings.ContainsRune("!#$&-^_.+", r) {
			return false
		}
	}
	return true
}

// parseUpload reads a multipart upload (activity part found by content
// type) or a single raw file.
func (a *API) parseUpload(r *http.Request) (conversation.Activity, []uploadedFile, *apiError) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, nil, errf(http.StatusBadRequest, "BadArgument", "Content-Type is missing or invalid")
	}
	remaining := a.cfg.MaxUploadBytes
	tooBig := errf(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "upload is larger than %d bytes", a.cfg.MaxUploadBytes)
	if !strings.HasPrefix(mt, "multipart/") {
		// Single-file form: the body is the file.
		_, dparams, _ := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
		data, err := io.ReadAll(io.LimitReader(r.Body, remaining+1))
		if err != nil {
			return nil, nil, readErr(err, tooBig)
		}
		if int64(len(data)) > remaining {
			return nil, nil, tooBig
		}
		if !validMediaType(mt) {
			return nil, nil, errf(http.StatusBadRequest, "BadArgument", "Content-Type must be a media type such as image/png")
		}
		return nil, []uploadedFile{{name: cleanName(dparams["filename"]), contentType: mt, data: data}}, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, nil, errf(http.StatusBadRequest, "BadArgument", "multipart body without boundary")
	}
	mr := multipart.NewReader(r.Body, boundary)
	var act conversation.Activity
	var files []uploadedFile
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, readErr(err, errf(http.StatusBadRequest, "BadArgument", "malformed multipart body"))
		}
		rawType := part.Header.Get("Content-Type")
		pt, _, _ := mime.ParseMediaType(rawType)
		if pt == activityPartType {
			if act != nil {
				return nil, nil, errf(http.StatusBadRequest, "BadArgument", "more than one activity part")
			}
			body, err := io.ReadAll(io.LimitReader(part, int64(a.cfg.Limits.MaxBytes)+1))
			if err != nil {
				return nil, nil, readErr(err, errf(http.StatusBadRequest, "BadArgument", "malformed multipart body"))
			}
			if act, err = conversation.Parse(body, a.cfg.Limits); err != nil {
				return nil, nil, validationError(err)
			}
			continue
		}
		if len(files) >= a.cfg.Limits.MaxAttachments {
			return nil, nil, errf(http.StatusBadRequest, "BadArgument", "at most %d attachments are allowed", a.cfg.Limits.MaxAttachments)
		}
		data, err := io.ReadAll(io.LimitReader(part, remaining+1))
		if err != nil {
			return nil, nil, readErr(err, errf(http.StatusBadRequest, "BadArgument", "malformed multipart body"))
		}
		remaining -= int64(len(data))
		if remaining < 0 {
			return nil, nil, tooBig
		}
		switch {
		case rawType == "":
			pt = "application/octet-stream"
		case !validMediaType(rawType):
			return nil, nil, errf(http.StatusBadRequest, "BadArgument", "file %q: Content-Type must be a media type such as image/png", cleanName(part.FileName()))
		}
		files = append(files, uploadedFile{name: cleanName(part.FileName()), contentType: pt, data: data})
	}
	return act, files, nil
}

// readErr is the answer to an upload whose body could not be read: 413
// past the limit, 408 when the body did not arrive in time (a trickle cut
// by its deadline, not a size or format problem), otherwise otherwise.
func readErr(err error, otherwise *apiError) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errf(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "upload is too large")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errf(http.StatusRequestTimeout, "BadArgument", "request body was not received in time")
	}
	return otherwise
}

// cleanName keeps a file name displayable and harmless: no directories,
// no control characters, bounded length.
func cleanName(n string) string {
	n = path.Base(strings.ReplaceAll(n, "\\", "/"))
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, n)
	for len(n) > 200 {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	if n == "" || n == "." || n == "/" {
		n = "file"
	}
	return n
}

var placeholderPNG = sync.OnceValue(func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{0xe1, 0xe5, 0xea, 0xff})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(fmt.Sprintf("placeholder: %v", err))
	}
	return b.Bytes()
})

// placeholder stands in for uploaded files in what clients see: the file
// itself only goes to the bot.
func (a *API) placeholder(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store") // every Direct Line response (issue 9, finding 11)
	_, _ = w.Write(placeholderPNG())
}
