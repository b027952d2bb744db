package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/parley-gw/parley/internal/audit"
)

// What others choose reaches the log (a request path in token.use and
// session.csrf details, the target of a refusal): bytes that are not
// UTF-8, or a NUL, must neither make the stored entry differ from what
// was hashed (verify would then report the log tampered with, on
// anyone's request) nor make the exported lines fail to re-hash.
func TestRevHostileBytesKeepTheLogVerifiable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, v := range []string{"/admin/v1/bots/\xff/secret", "a\x00b", "\xc3(", "ok\u2028\u0007\x1b[31m"} {
		if err := e.log.Record(ctx, audit.Event{Actor: "token:tok_" + v, Role: "operator", Action: "token.use", Target: v,
			Outcome: audit.Success, Client: v, Detail: map[string]string{"path": v, v: "key"}}); err != nil {
			t.Fatalf("Record(%q): %v", v, err)
		}
	}
	rep, err := e.log.VerifyWith(ctx, audit.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("Verify after hostile bytes = %+v, %v", rep, err)
	}
	var buf bytes.Buffer
	if err := e.log.Export(ctx, &buf, 0, false); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var en audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(audit.HashEntry(en), en.Hash) {
			t.Fatalf("exported entry %d does not re-hash: %s", en.Seq, sc.Bytes())
		}
	}
}
