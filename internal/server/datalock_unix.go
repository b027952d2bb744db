//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDataDir takes an exclusive lock on data_dir/parley.lock for as long
// as the returned file is open: one gateway per data directory. Two would
// both deliver the outbox (a bot would get activities twice) and each
// keep caches the other's writes make stale. The lock file holds the
// owner's process id, for the refusal. The CLI does not take it: its
// commands run beside a serving gateway by design.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, "parley.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner := make([]byte, 32)
		n, _ := f.ReadAt(owner, 0)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid := strings.TrimSpace(string(owner[:n])); pid != "" {
				if _, perr := strconv.Atoi(pid); perr == nil {
					who = "process " + pid
				}
			}
			return nil, &PreflightError{Problems: []Problem{{Field: "data_dir", Message: fmt.Sprintf(
				"%s is in use by %s (another parley serve or demo): one gateway per data directory, or both would deliver to the bots; stop it, or give this one its own data_dir", dir, who)}}}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
