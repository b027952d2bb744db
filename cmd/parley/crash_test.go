package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles parley once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type demoProc struct {
	cmd  *exec.Cmd
	info demoInfo
}

// startDemo runs `parley demo --json` and waits for its JSON line.
func startDemo(t *testing.T, bin, listen, data string) *demoProc {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--json", "--listen", listen, "--data", data, "--webchat-url", "http://127.0.0.1:1/webchat.js")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("demo exited without output: %s", stderr.String())
		}
		var info demoInfo
		if err := json.Unmarshal([]byte(line), &info); err != nil {
			t.Fatalf("demo --json printed %q: %v", line, err)
		}
		return &demoProc{cmd: cmd, info: info}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not start: %s", stderr.String())
	}
	return nil
}

func call(t *testing.T, method, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+auth)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestAcknowledgedActivitiesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	listen, data := freePort(t), t.TempDir()
	p := startDemo(t, bin, listen, data)
	dl := p.info.DirectLine
	st, gen := call(t, "POST", dl+"/tokens/generate", p.info.Secret, `{"user":{"id":"dl_crash"}}`)
	if st != 200 {
		t.Fatalf("generate: %d", st)
	}
	tok, conv := gen["token"].(string), gen["conversationId"].(string)
	if st, _ := call(t, "POST", dl+"/conversations", tok, `{}`); st != 201 {
		t.Fatalf("start: %d", st)
	}

	// Post from 8 clients until 60 are acknowledged, then kill -9 while
	// more are in flight.
	const want = 60
	var mu sync.Mutex
	acked := map[string]string{} // id -> text
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("w%d-%d", w, i)
				st, body := call(t, "POST", dl+"/conversations/"+conv+"/activities", tok, `{"type":"message","text":"`+text+`"}`)
				if st == 200 {
					mu.Lock()
					acked[body["id"].(string)] = text
					n := len(acked)
					mu.Unlock()
					if n == want {
						_ = p.cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}
		}(w)
	}
	_ = p.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < want {
		t.Fatalf("only %d activities acknowledged before the kill", n)
	}

	// Restart on the same data and port: the token still works (keys
	// persist), and every acknowledged activity is there, once, in order.
	p2 := startDemo(t, bin, listen, data)
	var all []map[string]any
	wm := ""
	for {
		st, body := call(t, "GET", p2.info.DirectLine+"/conversations/"+conv+"/activities?watermark="+wm, tok, "")
		if st != 200 {
			t.Fatalf("history after restart: %d", st)
		}
		page, _ := body["activities"].([]any)
		for _, a := range page {
			all = append(all, a.(map[string]any))
		}
		next, _ := body["watermark"].(string)
		if len(page) == 0 || next == wm {
			break
		}
		wm = next
	}
	seen := map[string]bool{}
	var ids []string
	for _, a := range all {
		id := a["id"].(string)
		if seen[id] {
			t.Fatalf("activity %s appears twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("history is not in order")
	}
	for id, text := range acked {
		found := false
		for _, a := range all {
			if a["id"] == id {
				found = a["text"] == text
			}
		}
		if !found {
			t.Fatalf("acknowledged activity %s (%s) lost after SIGKILL", id, text)
		}
	}
	// The restarted gateway still talks to the bot.
	if st, _ := call(t, "POST", p2.info.DirectLine+"/conversations/"+conv+"/activities", tok, `{"type":"message","text":"after restart"}`); st != 200 {
		t.Fatalf("post after restart: %d", st)
	}
	t.Logf("%d acknowledged activities survived SIGKILL; %d activities in history", len(acked), len(all))
}
