package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed console
var consoleFiles embed.FS

// ConsoleCSP is the console's Content-Security-Policy: nothing external,
// no inline script or style, scripts and styles from the console's own
// origin, images from it or data: (the TOTP QR code), requests only to
// the admin listener itself.
const ConsoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleIndex is the page every client-side route is answered with.
const consoleIndex = "index.html"

type consoleFile struct {
	body  []byte
	etag  string
	ctype string
}

// console serves the embedded web console.
type console struct {
	files map[string]consoleFile // by path without the leading slash
}

// Console returns the web console: the static files embedded in the
// binary, for the admin listener's "/" (the admin API lives at
// /admin/v1/, which the caller routes first). Client-side routes (a
// path without a file extension) are answered with index.html; /admin and
// /admin/ redirect to "/", and other paths under /admin/ are never the
// console's: 404.
func Console() http.Handler {
	c := &console{files: map[string]consoleFile{}}
	sub, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(fmt.Sprintf("open console files: %v", err)) // the embed pattern guarantees the folder
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		c.files[p] = consoleFile{body: b, ctype: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("read console files: %v", err))
	}
	return c
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ConsoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		h.Set("Cache-Control", "no-store")
		http.Error(w, "method not allowed: the console's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/admin" || p == "/admin/" {
		// Where the SSO callback sends a signed-in operator: the console.
		h.Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.HasPrefix(p, "/admin/") {
		c.notFound(w)
		return
	}
	name := strings.TrimPrefix(p, "/")
	f, ok := c.files[name]
	switch {
	case ok && name != consoleIndex:
		// Assets are revalidated on every use (a short cache: the file's
		// hash is its ETag, so an unchanged asset costs a 304).
		h.Set("Cache-Control", "no-cache")
	case ok || name == "" || !strings.Contains(path.Base(name), "."):
		// index.html itself, "/", or a client-side route.
		f = c.files[consoleIndex]
		h.Set("Cache-Control", "no-store")
	default:
		c.notFound(w)
		return
	}
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

func (c *console) notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "not found", http.StatusNotFound)
}
