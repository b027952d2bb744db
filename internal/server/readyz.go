package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/parley-gw/parley/internal/store"
)

// readyz answers readiness: 200 while the store can read and commit, 503
// with a short reason (never a path or a driver message) while it cannot.
func readyz(w http.ResponseWriter, r *http.Request, st store.Store, logger *slog.Logger) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := st.Head(r.Context(), "readiness-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		logger.Warn("not ready: store unreadable", "err", err)
		http.Error(w, "not ready: store unavailable", http.StatusServiceUnavailable)
		return
	}
	if err := st.Ready(r.Context()); err != nil {
		logger.Warn("not ready: store cannot commit writes", "err", err)
		reason := "not ready: store cannot commit writes"
		if errors.Is(err, store.ErrFull) {
			reason = "not ready: storage full, writes cannot commit"
		}
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
