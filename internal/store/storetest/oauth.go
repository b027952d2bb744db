package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

func testOAuth(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, _ := seed(t, s)
	other := store.Bot{ID: "bot-2", Name: "Other", Endpoint: "http://127.0.0.1:3979/api/messages", CreatedAt: epoch}
	if err := s.CreateBot(ctx, other); err != nil {
		t.Fatal(err)
	}
	c := store.OAuthConnection{BotID: b.ID, Name: "gh", Kind: store.OAuthKindGitHub, ClientID: "cid", SealedSecret: []byte{9, 8, 7},
		Scopes: []string{"read:user", "repo"}, MaxLogin: 8 * time.Hour, CreatedAt: epoch, UpdatedAt: epoch}
	if err := s.CreateOAuthConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthConnection(ctx, c); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate connection: err = %v, want ErrExists", err)
	}
	nobot := c
	nobot.BotID = "nope"
	if err := s.CreateOAuthConnection(ctx, nobot); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("connection of unknown bot: err = %v, want ErrNotFound", err)
	}
	// The same name for another bot is another connection.
	oc := c
	oc.BotID, oc.Kind, oc.Issuer = other.ID, store.OAuthKindOIDC, "https://idp.example"
	if err := s.CreateOAuthConnection(ctx, oc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetOAuthConnection(ctx, b.ID, "gh")
	if err != nil || got.Kind != store.OAuthKindGitHub || got.ClientID != "cid" || string(got.SealedSecret) != string(c.SealedSecret) ||
		!slices.Equal(got.Scopes, c.Scopes) || got.MaxLogin != 8*time.Hour || !got.CreatedAt.Equal(epoch) {
		t.Fatalf("GetOAuthConnection = %+v, %v", got, err)
	}
	if _, err := s.GetOAuthConnection(ctx, b.ID, "GH2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown connection: err = %v", err)
	}
	up := got
	up.Kind, up.Issuer, up.Scopes, up.MaxLogin, up.UpdatedAt = store.OAuthKindOIDC, "https://login.example", []string{"openid"}, time.Hour, epoch.Add(time.Minute)
	if err := s.UpdateOAuthConnection(ctx, up); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetOAuthConnection(ctx, b.ID, "gh"); g.Issuer != "https://login.example" || g.MaxLogin != time.Hour || !slices.Equal(g.Scopes, []string{"openid"}) || !g.CreatedAt.Equal(epoch) {
		t.Fatalf("after update: %+v", g)
	}
	up.Name = "missing"
	if err := s.UpdateOAuthConnection(ctx, up); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if l, err := s.ListOAuthConnections(ctx, b.ID); err != nil || len(l) != 1 || l[0].Name != "gh" {
		t.Fatalf("ListOAuthConnections = %+v, %v", l, err)
	}

	tok := store.UserToken{BotID: b.ID, UserID: "dl_u1", Connection: "gh", Sealed: []byte{1, 2, 3}, SignedInAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	if err := s.PutUserToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	noconn := tok
	noconn.Connection = "missing"
	if err := s.PutUserToken(ctx, noconn); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token of unknown connection: %v", err)
	}
	tok.Sealed = []byte{4, 5}
	if err := s.PutUserToken(ctx, tok); err != nil { // replaces
		t.Fatal(err)
	}
	if g, err := s.GetUserToken(ctx, b.ID, "dl_u1", "gh"); err != nil || string(g.Sealed) != string([]byte{4, 5}) || !g.ExpiresAt.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("GetUserToken = %+v, %v", g, err)
	}
	// Another bot's connection of the same name does not see it.
	if _, err := s.GetUserToken(ctx, other.ID, "dl_u1", "gh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other bot reads the token: %v", err)
	}
	otherTok := tok
	otherTok.BotID = other.ID
	if err := s.PutUserToken(ctx, otherTok); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteUserTokens(ctx, b.ID, "dl_u1", ""); err != nil || n != 1 {
		t.Fatalf("DeleteUserTokens = %d, %v", n, err)
	}
	if _, err := s.GetUserToken(ctx, other.ID, "dl_u1", "gh"); err != nil {
		t.Fatalf("sign-out of one bot removed another's token: %v", err)
	}
	if err := s.PutUserToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EraseUserTokens(ctx, "dl_u1"); err != nil || n != 2 {
		t.Fatalf("EraseUserTokens = %d, %v", n, err)
	}
	if n, err := s.EraseUserTokens(ctx, ""); err != nil || n != 0 {
		t.Fatalf("EraseUserTokens(\"\") = %d, %v", n, err)
	}
	// Deleting a connection deletes its tokens.
	if err := s.PutUserToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOAuthConnection(ctx, b.ID, "gh"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserToken(ctx, b.ID, "dl_u1", "gh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token outlived its connection: %v", err)
	}
	if err := s.DeleteOAuthConnection(ctx, b.ID, "gh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
}
