package adminapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/guard"
)

// AuditLog is what the audit routes read (internal/audit's Log).
type AuditLog interface {
	Entries(ctx context.Context, after int64, limit int) ([]audit.Entry, error)
	Export(ctx context.Context, w io.Writer, after int64, follow bool) error
}

func (a *api) auditReady(w http.ResponseWriter) bool {
	if a.cfg.Audit == nil {
		admin.WriteError(w, http.StatusNotImplemented, admin.CodeNotImplemented, "the audit log is not available in this build")
		return false
	}
	return true
}

func after(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		badRequest(w, "after: want a position (0 or more)")
		return 0, false
	}
	return n, true
}

func (a *api) auditEntries(w http.ResponseWriter, r *http.Request) {
	if !a.auditReady(w) || !a.allowRead(w, r) {
		return
	}
	pos, ok := after(w, r)
	if !ok {
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			badRequest(w, "limit: want 1-1000")
			return
		}
		limit = n
	}
	es, err := a.cfg.Audit.Entries(r.Context(), pos, limit)
	if err != nil {
		a.log.Error("admin: read the audit log", "err", err)
		admin.WriteError(w, http.StatusInternalServerError, admin.CodeInternal, "could not read the audit log")
		return
	}
	if !a.recordRead(w, r, map[string]string{"read": "entries", "after": strconv.FormatInt(pos, 10), "entries": strconv.Itoa(len(es))}) {
		return
	}
	admin.WriteJSON(w, http.StatusOK, es)
}

func (a *api) auditVerify(w http.ResponseWriter, r *http.Request) {
	if a.cfg.AuditVerify == nil {
		admin.WriteError(w, http.StatusNotImplemented, admin.CodeNotImplemented, "audit verification is not available in this build")
		return
	}
	if !a.allowRead(w, r) {
		return
	}
	rep, err := a.cfg.AuditVerify(r.Context())
	if err != nil {
		a.log.Error("admin: verify the audit log", "err", err)
		admin.WriteError(w, http.StatusInternalServerError, admin.CodeInternal, "could not verify the audit log")
		return
	}
	if !a.recordRead(w, r, map[string]string{"read": "verify"}) {
		return
	}
	admin.WriteJSON(w, http.StatusOK, rep)
}

func (a *api) auditExport(w http.ResponseWriter, r *http.Request) {
	if !a.auditReady(w) || !a.allowRead(w, r) {
		return
	}
	pos, ok := after(w, r)
	if !ok {
		return
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	if !a.recordRead(w, r, map[string]string{"read": "export", "after": strconv.FormatInt(pos, 10), "follow": strconv.FormatBool(follow)}) {
		return
	}
	ctx := r.Context()
	if follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go a.recheck(ctx, cancel, r)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	if err := a.cfg.Audit.Export(ctx, fw, pos, follow); err != nil && ctx.Err() == nil {
		a.log.Error("admin: export the audit log", "err", err)
	}
}

// Reads of the audit log are limited, since each appends an entry: per
// operator (its sessions and API tokens together, Principal.LimitKey) 1 a
// second after a burst of 30 (the console's audit page reads twice per
// visit), and 5 a second after 60 for all operators together. At most
// about 430,000 entries a day, about 130 MB, whatever is sent; a followed
// export is one read.
var (
	auditReadsPerOperator = guard.Rule{Name: "admin/audit-read", PerSecond: 1, Burst: 30}
	auditReadsAll         = guard.Rule{Name: "admin/audit-read-all", PerSecond: 5, Burst: 60}
)

// allowRead takes a read of the audit log from the limits, before any
// work (a verification walks the whole chain), or answers 429.
func (a *api) allowRead(w http.ResponseWriter, r *http.Request) bool {
	wait := a.limits.Allow(guard.Bucket{Rule: auditReadsPerOperator, Key: principal(r).LimitKey()}, guard.Bucket{Rule: auditReadsAll})
	if wait == 0 {
		return true
	}
	tooMany(w, wait, "too many reads of the audit log (each is recorded in it): retry in %d s, or follow it with /audit/export?follow=1")
	return false
}

// recordRead records an access to the audit log before its content is
// sent (PCI DSS 10.2.1.3 asks for every access to audit logs to be
// logged), on the same target a refusal names (the route's path). An
// access that cannot be recorded is refused, as a read of user data is:
// during an outage of the store, `parley audit export` reads the log
// locally.
func (a *api) recordRead(w http.ResponseWriter, r *http.Request, detail map[string]string) bool {
	p := principal(r)
	err := a.cfg.Recorder.Record(r.Context(), audit.Event{Actor: p.Label(), Role: string(p.Role), Action: string(admin.AuditRead),
		Target: r.URL.Path, Outcome: audit.Success, Client: p.Client, Detail: detail})
	if err != nil {
		a.log.Error("admin: record an access to the audit log", "err", err)
		admin.WriteError(w, http.StatusInternalServerError, admin.CodeInternal, "could not record this access to the audit log; nothing was read (parley audit export reads it locally)")
		return false
	}
	return true
}

// flushWriter flushes every write (a followed export streams).
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// recheck ends a followed export (cancel) once the credential that
// opened it no longer authenticates or no longer holds audit.read: a
// revoked or expired token, a session signed out or past its lifetime,
// an operator disabled, removed, demoted or scoped. Otherwise the stream
// would outlive every revocation.
func (a *api) recheck(ctx context.Context, cancel context.CancelFunc, r *http.Request) {
	every := a.cfg.RecheckEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := a.cfg.Auth.Authenticate(r.WithContext(ctx))
		if _, ok := rateLimited(err); ok {
			continue // the request limit is spent: not a revocation; check at the next tick
		}
		if err != nil || !admin.Grants(p.Role, admin.AuditRead) || len(p.Bots) > 0 {
			if ctx.Err() == nil {
				a.log.Info("admin: a followed audit export ended: its credential is no longer valid")
			}
			cancel()
			return
		}
	}
}
