package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// One gateway per data directory: a second one on the same directory is
// refused before it opens the store, naming the first one's process and
// with the configuration exit code; once the first stops, it starts.
// (Review: two `parley serve` on one data directory both delivered the
// outbox, so a bot got activities twice.)
func TestSecondGatewayOnADataDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.PublicURL, cfg.DataDir, cfg.MasterKeyFile, cfg.InsecureHTTP = "http://127.0.0.1:1", dir, dir+"/master.key", true
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	first, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	second, err := server.New(context.Background(), cfg, log)
	var pe *server.PreflightError
	if err == nil {
		_ = second.Close()
		t.Fatal("a second gateway started on the same data directory")
	}
	if !errors.As(err, &pe) || pe.ExitCode() != server.ExitConfig || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("second gateway: %v, want a data_dir refusal naming process %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	_ = again.Close()
}
