package botauth

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func benchAuthority(b testing.TB) (*Authority, store.Store) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "p.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	kr, _ := keyring.New(make([]byte, 32))
	a, err := New(ctx, Config{PublicURL: "https://chat.example.com"}, st, kr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateBot(ctx, store.Bot{ID: "bot-1", Name: "b", Endpoint: "https://bot.example.com/api", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	return a, st
}

// Minting a channel token: an RS256 signature (what every delivery would
// cost without reuse) and the reused case.
func BenchmarkChannelToken(b *testing.B) {
	a, _ := benchAuthority(b)
	ctx := context.Background()
	bot := store.Bot{ID: "bot-1"}
	b.Run("sign", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.now = func() time.Time { return time.Unix(int64(1_800_000_000+i*120), 0) } // never reusable
			if _, err := a.AuthorizationFor(ctx, bot, "https://chat.example.com/"); err != nil {
				b.Fatal(err)
			}
		}
	})
	a.now = time.Now
	b.Run("reused", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := a.AuthorizationFor(ctx, bot, "https://chat.example.com/"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Checking a bot's bearer token: the first use (RS256 verification and
// claims) and later uses (cached by hash).
func BenchmarkAuthenticateBot(b *testing.B) {
	a, _ := benchAuthority(b)
	ctx := context.Background()
	mint := func() string {
		now := time.Now()
		tok, err := a.sts.Sign([]byte(`{"iss":"https://chat.example.com/botframework/v2.0","aud":"https://chat.example.com","appid":"bot-1","azp":"bot-1","nbf":` +
			strconv.FormatInt(now.Add(-time.Minute).Unix(), 10) + `,"exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `,"jti":"` + strconv.FormatInt(now.UnixNano(), 10) + `"}`))
		if err != nil {
			b.Fatal(err)
		}
		return "Bearer " + tok
	}
	b.Run("first", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			toks[i] = mint()
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := a.AuthenticateBot(ctx, toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		tok := mint()
		for i := 0; i < b.N; i++ {
			if _, err := a.AuthenticateBot(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
