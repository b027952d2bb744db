package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal: the controller (what a person types
// into) and the terminal the command reads.
func openPTY(t *testing.T) (controller, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("TIOCGPTN: %v", e)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("TIOCSPTLCK: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// runOnTerminal runs the CLI with stdin on a terminal where answer is typed.
func runOnTerminal(t *testing.T, answer string, args ...string) (string, string, error) {
	t.Helper()
	m, tty := openPTY(t)
	if _, err := m.WriteString(answer); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	root := (&app{stdout: &out, stderr: &errb, stdin: tty, env: func(string) (string, bool) { return "", false }, resolver: testHosts}).root()
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// On a terminal, a deletion asks; only "yes" deletes.
func TestDeletionAsksOnATerminal(t *testing.T) {
	data := t.TempDir()
	b := createBot(t, data, "Support", "--endpoint", "https://public.example.test/api/messages", "--public-url", testPublicURL)
	s := createSite(t, data, b.ID, "www")
	_, stderr, err := runOnTerminal(t, "no\n", "site", "delete", s.ID, "--data", data)
	if exitCode(err) != exitRefused || !strings.Contains(stderr, "Type yes") || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("answer no: exit %d, %v\n%s", exitCode(err), err, stderr)
	}
	if out, _, _ := run(t, nil, "site", "list", "--data", data); !strings.Contains(out, s.ID) {
		t.Fatal("answer no deleted the site")
	}
	out, stderr, err := runOnTerminal(t, "yes\n", "site", "delete", s.ID, "--data", data)
	if err != nil || !strings.Contains(stderr, "Type yes") || !strings.Contains(out, "site "+s.ID+" (www) deleted") {
		t.Fatalf("answer yes: %v\n%s\n%s", err, stderr, out)
	}
	if out, _, _ := run(t, nil, "site", "list", "--data", data); strings.Contains(out, s.ID) {
		t.Fatal("answer yes left the site")
	}
}
