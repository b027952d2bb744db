package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Canaries: unique values that must never be found in the clear in the data
// directory. The card number is Luhn-valid (a Visa test number).
var canaries = map[string]string{
	"card":          "4111111111111111",
	"email":         "canary.alice@example.com",
	"secret":        "CANARY-SECRET-7f3a9c",
	"upload":        "UPLOAD-CANARY-55d1e0",
	"bot reply":     "BOTREPLY-CANARY-91c2",
	"bot file":      "BOTFILE-CANARY-0e77aa",
	"queued outbox": "OUTBOX-CANARY-3b8f",
	"edited":        "EDITED-CANARY-c4d2",
	"upload name":   "UPNAME-CANARY-6a2f.txt",
	"bot file name": "BOTNAME-CANARY-9e1b.txt",
}

// scanDataDir reads every file under dir, the database, its WAL and shared
// memory, the key files, and reports which needles appear in the raw bytes.
func scanDataDir(t *testing.T, dir string, needles map[string]string) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				found[name] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestCanariesNeverInTheClearOnDisk puts canaries in client messages, an
// upload, a bot reply, a bot's file, an edited activity and a delivery
// queued for a bot that is down, checks each one is stored (it reads back
// through the API), then scans the raw bytes of the data directory while
// the server runs and after it stops. A control value stored in the clear
// on purpose (a bot's name) proves the scan sees the database and its WAL.
func TestCanariesNeverInTheClearOnDisk(t *testing.T) {
	canaryScan(t)
}

// canaryScan runs the scenario on a harness built with opts (the key
// provider's configuration, for the HSM variant).
func canaryScan(t *testing.T, opts ...harnessOpt) {
	h := newHarness(t, opts...)
	ctx := t.Context()
	control := map[string]string{"control": "CONTROL-BOTNAME-in-clear-8d1f"}
	b, err := h.st.GetBot(ctx, "bot-a")
	if err != nil {
		t.Fatal(err)
	}
	b.Name = control["control"]
	if err := h.st.UpdateBot(ctx, b); err != nil {
		t.Fatal(err)
	}

	tok, conv, _ := h.started("dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "text": "my card is " + canaries["card"] + ", mail me at " + canaries["email"]})
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:" + canaries["bot reply"], "value": map[string]any{"pin": canaries["secret"]}})
	body, ct := multipartBody(t, map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "text/plain", "name": canaries["upload name"]}}},
		[]filePart{{canaries["upload name"], "text/plain", []byte("file says " + canaries["upload"])}})
	if r := h.doRaw("POST", "/conversations/"+conv+"/upload", tok, body, ct, nil); r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.raw)
	}
	h.botRec.waitFor(t, "the bot reply's trigger", func(a map[string]any) bool {
		s, _ := a["text"].(string)
		return strings.Contains(s, canaries["bot reply"])
	})

	// The bot stores a file and edits one of its activities.
	svc := h.base + "/v3/conversations/" + conv
	up, _ := json.Marshal(map[string]any{"type": "text/plain", "name": canaries["bot file name"], "originalBase64": base64.StdEncoding.EncodeToString([]byte(canaries["bot file"]))})
	res, err := http.Post(svc+"/attachments", "application/json", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	var att struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&att)
	res.Body.Close()
	if res.StatusCode != 200 || att.ID == "" {
		t.Fatalf("bot attachment upload = %d", res.StatusCode)
	}
	res, err = http.Post(svc+"/activities", "application/json", strings.NewReader(`{"type":"message","from":{"id":"bot-a"},"text":"draft"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sent struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&sent)
	res.Body.Close()
	edit, _ := json.Marshal(map[string]any{"type": "message", "from": map[string]string{"id": "bot-a"}, "text": canaries["edited"]})
	req, _ := http.NewRequest("PUT", svc+"/activities/"+sent.ID, bytes.NewReader(edit))
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("bot update = %d", res.StatusCode)
	}

	// The bot goes down: the next message waits in the outbox.
	h.botRec.mu.Lock()
	h.botRec.fail = func(map[string]any) int { return http.StatusServiceUnavailable }
	h.botRec.mu.Unlock()
	// (The client is told the bot did not answer in time; the activity is
	// stored and its delivery retried.)
	h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "from": map[string]string{"id": "dl_alice"}, "text": canaries["queued outbox"]}, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		pend, err := h.st.PendingOutbox(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if len(pend) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delivery to the down bot was not queued")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Each canary is stored: it reads back through the API.
	acts, _ := h.history(tok, conv, "")
	all, _ := json.Marshal(acts)
	for _, name := range []string{"card", "email", "secret", "bot reply", "edited", "queued outbox"} {
		if !bytes.Contains(all, []byte(canaries[name])) {
			t.Fatalf("canary %s is not in the conversation's history: the test did not store it", name)
		}
	}
	res, err = http.Get(h.base + "/v3/attachments/" + att.ID + "/views/original")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != canaries["bot file"] {
		t.Fatalf("bot file reads back as %q (%d)", got, res.StatusCode)
	}
	res, err = http.Get(h.base + "/v3/attachments/" + att.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(got, []byte(canaries["bot file name"])) {
		t.Fatalf("bot file's info reads back as %q (%d): its name is not stored", got, res.StatusCode)
	}

	needles := map[string]string{}
	for k, v := range canaries {
		needles[k] = v
	}
	for k, v := range control {
		needles[k] = v
	}
	check := func(when string) {
		t.Helper()
		found := scanDataDir(t, h.cfg.DataDir, needles)
		if found["control"] == "" {
			t.Fatalf("%s: the control value stored in the clear was not found: the scan does not see the database", when)
		}
		delete(found, "control")
		for name, path := range found {
			t.Errorf("%s: canary %s (%q) in the clear in %s", when, name, canaries[name], path)
		}
	}
	check("while serving")
	h.stop()
	check("after shutdown")
}

// TestTamperedOrMovedCiphertextFailsClearly modifies a stored activity's
// ciphertext, and moves another conversation's ciphertext into this one:
// reading fails with a server error in the Direct Line shape and a log line
// that names the conversation, never with garbage or the other
// conversation's text.
func TestTamperedOrMovedCiphertextFailsClearly(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		mutil func(t *testing.T, h *harness, conv, other string) []byte
	}{
		{"modified", func(t *testing.T, h *harness, conv, _ string) []byte {
			r, err := h.st.GetRecord(ctx, conv, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := bytes.Clone(r.Body)
			b[len(b)-20] ^= 0x40
			return b
		}},
		{"moved from another conversation", func(t *testing.T, h *harness, _, other string) []byte {
			r, err := h.st.GetRecord(ctx, other, 0)
			if err != nil {
				t.Fatal(err)
			}
			return r.Body
		}},
		{"moved from another position in the same conversation", func(t *testing.T, h *harness, conv, _ string) []byte {
			// Same data key, same conversation: only the sequence number
			// bound to the ciphertext can tell the copy from the original
			// (otherwise history silently repeats one activity and loses
			// another).
			recs, err := h.st.ReadBytes(ctx, conv, 0, 100, 0)
			if err != nil || len(recs) == 0 {
				t.Fatalf("records after 0: %v %v", recs, err)
			}
			return recs[len(recs)-1].Body
		}},
		{"replaced by plain JSON", func(*testing.T, *harness, string, string) []byte {
			return append([]byte{0}, `{"type":"message","text":"forged"}`...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tok, conv, _ := h.started("dl_alice")
			otok, other, _ := h.started("dl_bob")
			h.post(tok, conv, map[string]any{"type": "message", "text": "alice's words"})
			h.post(tok, conv, map[string]any{"type": "message", "text": "alice's second words"})
			h.post(otok, other, map[string]any{"type": "message", "text": "BOB-PRIVATE-words"})
			if err := h.st.ReplaceRecord(ctx, conv, 0, 0, tc.mutil(t, h, conv, other)); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", h.dl+"/conversations/"+conv+"/activities", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var shape struct{ Error struct{ Code string } }
			if res.StatusCode != http.StatusInternalServerError || json.Unmarshal(raw, &shape) != nil || shape.Error.Code == "" {
				t.Fatalf("history of a tampered conversation = %d %s; want 500 in the error shape", res.StatusCode, raw)
			}
			if bytes.Contains(raw, []byte("BOB-PRIVATE")) || bytes.Contains(raw, []byte("forged")) || bytes.Contains(raw, []byte("alice")) {
				t.Fatalf("tampered read returned content: %s", raw)
			}
			if logs := h.logs.String(); !strings.Contains(logs, conv) || !(strings.Contains(logs, "authenticate") || strings.Contains(logs, "not sealed")) {
				t.Fatalf("no log line says why the read failed:\n%s", logs)
			}
		})
	}
}
