package reqinfo

import (
	"context"
	"testing"
)

func TestSite(t *testing.T) {
	SetSite(context.Background(), "s1") // no Info: nothing happens
	if From(context.Background()).Site() != "" {
		t.Fatal("a context without Info has a site")
	}
	ctx, i := With(context.Background())
	if i.Site() != "" {
		t.Fatal("new Info has a site")
	}
	SetSite(ctx, "")
	if i.Site() != "" {
		t.Fatal("an empty site was recorded")
	}
	SetSite(ctx, "site_a")
	if i.Site() != "site_a" || From(ctx) != i {
		t.Fatalf("site = %q", i.Site())
	}
}

func TestFinishWaitsForHold(t *testing.T) {
	_, i := With(context.Background())
	n := 0
	i.Finish(func() { n++ })
	if n != 1 {
		t.Fatal("Finish without Hold did not run at once")
	}

	ctx, i := With(context.Background())
	release := Hold(ctx)
	i.Finish(func() { n++ })
	if n != 1 {
		t.Fatal("Finish ran while the request was held")
	}
	release()
	release()
	if n != 2 {
		t.Fatalf("after release: %d runs, want 2", n)
	}

	// Released before the handler returned: Finish runs at once.
	ctx, i = With(context.Background())
	Hold(ctx)()
	i.Finish(func() { n++ })
	if n != 3 {
		t.Fatal("Finish after release did not run")
	}
	Hold(context.Background())() // no Info: harmless
}
