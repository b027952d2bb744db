package server

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// readyz answers readiness: 200 while the store can read and commit, 503
// with a short reason (never a path or a driver message) while it cannot.
// Load balancers (and anyone) may poll it: what it logs is rate limited by
// rl.
func readyz(w http.ResponseWriter, r *http.Request, st store.Store, rl *readinessLog) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := st.Head(r.Context(), "readiness-probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		rl.notReady("not ready: store unreadable", err)
		http.Error(w, "not ready: store unavailable", http.StatusServiceUnavailable)
		return
	}
	if err := st.Ready(r.Context()); err != nil {
		rl.notReady("not ready: store cannot commit writes", err)
		reason := "not ready: store cannot commit writes"
		switch {
		case errors.Is(err, store.ErrFull):
			reason = "not ready: storage full, writes cannot commit"
		case errors.Is(err, store.ErrStoreReplaced):
			reason = "not ready: the database file was removed or replaced; restore it and restart"
		}
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	rl.ready()
	_, _ = w.Write([]byte("ready\n"))
}

// readinessRemindEvery is how often a lasting not-ready state is logged
// again.
const readinessRemindEvery = time.Minute

// readinessLog logs what /readyz finds when it changes: once when the
// gateway becomes not ready (or the reason changes), again at most once a
// minute while it stays so (with the count of 503s since), and once when
// it is ready again. A healthy gateway polled every second logs nothing.
type readinessLog struct {
	logger *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	down     bool      // the last answer was 503
	reason   string    // its log message
	since    time.Time // when it became not ready
	logged   time.Time // the last not-ready line
	answered int       // 503s since that line
}

func newReadinessLog(logger *slog.Logger) *readinessLog {
	return &readinessLog{logger: logger, now: time.Now}
}

func (l *readinessLog) notReady(reason string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.down {
		l.down, l.since = true, now
	} else if reason == l.reason && now.Sub(l.logged) < readinessRemindEvery {
		l.answered++
		return
	}
	l.logger.Warn(reason, "err", err, "not_ready_for", now.Sub(l.since).Round(time.Second).String(), "not_ready_answers_since_last_log", l.answered)
	l.reason, l.logged, l.answered = reason, now, 0
}

func (l *readinessLog) ready() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.down {
		return
	}
	l.logger.Info("ready again: the store reads and commits", "was_not_ready_for", l.now().Sub(l.since).Round(time.Second).String())
	l.down, l.reason, l.answered = false, "", 0
}
