package connector

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
)

// flakyCodec fails DecodeOutbox with err for its first n calls.
type flakyCodec struct {
	conversation.PlainCodec
	n   atomic.Int64
	err error
}

func (c *flakyCodec) DecodeOutbox(ctx context.Context, conv string, blob []byte) ([]byte, error) {
	if c.n.Add(-1) >= 0 {
		return nil, c.err
	}
	return c.PlainCodec.DecodeOutbox(ctx, conv, blob)
}

// A delivery whose body cannot be decrypted for a moment (the HSM is
// unreachable, the store is busy) is retried, not dead-lettered at once as
// if the bot had refused it; one that can never be (tampered) becomes a
// dead letter that says why.
func TestDeliveryDecryptionFailures(t *testing.T) {
	hsmDown := errors.New("pkcs11: CKR_DEVICE_ERROR")
	c := &flakyCodec{err: hsmDown}
	c.n.Store(3)
	r := newRigCodec(t, c, nil, "c1")
	id := r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "not delivered after the key provider came back", func() bool { return len(r.bot.received("c1")) == 1 })
	if got := r.bot.received("c1"); got[0] != id {
		t.Fatalf("bot got %v", got)
	}
	if dls, _ := r.st.ListDeadLetters(context.Background(), "bot-1"); len(dls) != 0 || r.d.DeadLettered() != 0 {
		t.Fatalf("a transient decryption failure made %d dead letters: %+v", len(dls), dls)
	}

	tc := &flakyCodec{err: keyring.ErrTampered}
	tc.n.Store(1 << 40)
	r2 := newRigCodec(t, tc, nil, "c2")
	r2.send(t, "c2", "message")
	r2.until(t, time.Minute, time.Second, "a tampered delivery was not dead-lettered", func() bool { return r2.d.DeadLettered() == 1 })
	dls, err := r2.st.ListDeadLetters(context.Background(), "bot-1")
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].LastError, "decrypt") || dls[0].LastStatus == http.StatusUnprocessableEntity {
		t.Fatalf("dead letter = %+v, %v; want one saying it cannot be decrypted (no bot status)", dls, err)
	}
	if got := r2.bot.received("c2"); len(got) != 0 {
		t.Fatalf("bot got %v", got)
	}
}
