package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

func testSiteMasking(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, st := seed(t, s)
	if gs, err := s.GetSite(ctx, st.ID); err != nil || gs.Masking != store.MaskingOff || gs.Masking.Cards() {
		t.Fatalf("default masking = %q, %v; want off", gs.Masking, err)
	}
	cards := store.Site{ID: "site-m", BotID: b.ID, Name: "m", SecretHashes: [2][]byte{{5}, nil}, CreatedAt: epoch, Masking: store.MaskingCards}
	if err := s.CreateSite(ctx, cards); err != nil {
		t.Fatal(err)
	}
	if gs, err := s.SiteBySecretHash(ctx, []byte{5}); err != nil || gs.Masking != store.MaskingCards || !gs.Masking.Cards() || gs.Masking.AllPII() {
		t.Fatalf("SiteBySecretHash masking = %q, %v", gs.Masking, err)
	}
	if err := s.SetSiteMasking(ctx, st.ID, store.MaskingAllPII); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSiteMasking(ctx, cards.ID, store.MaskingOff); err != nil {
		t.Fatal(err)
	}
	sites, err := s.ListSites(ctx, b.ID)
	if err != nil || len(sites) != 2 {
		t.Fatalf("ListSites = %+v, %v", sites, err)
	}
	for _, gs := range sites {
		if want := map[string]store.MaskingPolicy{st.ID: store.MaskingAllPII, cards.ID: store.MaskingOff}[gs.ID]; gs.Masking != want {
			t.Fatalf("site %s masking = %q, want %q", gs.ID, gs.Masking, want)
		}
	}
	if gs, err := s.GetSite(ctx, st.ID); err != nil || !gs.Masking.AllPII() || !gs.Masking.Cards() {
		t.Fatalf("GetSite masking = %q, %v", gs.Masking, err)
	}
	// The policy is independent of the attachment-link policy.
	if gs, _ := s.GetSite(ctx, st.ID); gs.ClientAttachmentURLs != store.AttachmentURLsRefuse {
		t.Fatalf("attachment URL policy changed to %q", gs.ClientAttachmentURLs)
	}
	if err := s.SetSiteMasking(ctx, "nope", store.MaskingCards); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetSiteMasking(missing) err = %v, want ErrNotFound", err)
	}
	for _, bad := range []store.MaskingPolicy{"", "everything", "CARDS"} {
		if err := s.SetSiteMasking(ctx, st.ID, bad); err == nil {
			t.Fatalf("SetSiteMasking(%q) accepted", bad)
		}
	}
	if gs, _ := s.GetSite(ctx, st.ID); gs.Masking != store.MaskingAllPII {
		t.Fatalf("a refused update changed the policy to %q", gs.Masking)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-bad", BotID: b.ID, CreatedAt: epoch, Masking: "everything"}); err == nil {
		t.Fatal("CreateSite accepted an unknown masking policy")
	}
}
