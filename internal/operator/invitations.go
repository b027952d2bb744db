package operator

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
)

// Invitation is a pending enrollment code as shown: what it grants and
// who made it, never the code. ID names it for revocation (the first 8
// bytes of the code's hash, in hex: it reveals nothing of the code).
type Invitation struct {
	ID        string   `json:"id"`
	Role      string   `json:"role"`
	Bots      []string `json:"bots"`
	Bootstrap bool     `json:"bootstrap"`
	CreatedBy string   `json:"createdBy"` // "" for the bootstrap code and the local CLI
	CreatedAt string   `json:"createdAt"`
	ExpiresAt string   `json:"expiresAt"`
}

func invitationID(hash []byte) string { return hex.EncodeToString(hash[:min(8, len(hash))]) }

// Invitations lists the pending (unused, unexpired) enrollment codes.
func (s *Service) Invitations(ctx context.Context) ([]Invitation, error) {
	es, err := s.st.ListEnrollments(ctx, s.now())
	if err != nil {
		return nil, err
	}
	out := []Invitation{}
	for _, e := range es {
		out = append(out, Invitation{ID: invitationID(e.Hash), Role: e.Role, Bots: nonNil(e.Bots), Bootstrap: e.Bootstrap,
			CreatedBy: e.CreatedBy, CreatedAt: ts(e.CreatedAt), ExpiresAt: ts(e.ExpiresAt)})
	}
	return out, nil
}

// ErrNoInvitation is a revocation of an id no pending code has.
var ErrNoInvitation = errors.New("no pending invitation has this id (parley operator invitations lists them)")

// RevokeInvitation deletes the pending code id names, recorded as p's.
func (s *Service) RevokeInvitation(ctx context.Context, p admin.Principal, id string) error {
	es, err := s.st.ListEnrollments(ctx, s.now())
	if err != nil {
		return err
	}
	for _, e := range es {
		if invitationID(e.Hash) != id {
			continue
		}
		if err := s.st.DeleteEnrollment(ctx, e.Hash); errors.Is(err, store.ErrNotFound) {
			return ErrNoInvitation // used or revoked meanwhile
		} else if err != nil {
			return fmt.Errorf("revoke invitation: %w", err)
		}
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.invitation_revoke", Target: "invitation:" + id,
			Outcome: audit.Success, Client: p.Client, Detail: map[string]string{"role": e.Role, "bots": fmt.Sprint(e.Bots)}})
		return nil
	}
	return ErrNoInvitation
}

func (s *Service) listInvitations(w http.ResponseWriter, r *http.Request, _ admin.Principal) {
	list, err := s.Invitations(r.Context())
	if err != nil {
		s.internalError(w, "list invitations", err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"invitations": list})
}

func (s *Service) revokeInvitation(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	err := s.RevokeInvitation(r.Context(), p, r.PathValue("invitation"))
	switch {
	case errors.Is(err, ErrNoInvitation):
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, ErrNoInvitation.Error())
	case err != nil:
		s.internalError(w, "revoke invitation", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
