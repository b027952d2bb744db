package conversation

import (
	"context"
	"errors"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// oneKeySealer seals every scope under one Tink key: only the associated
// data the codec chooses can tell where a ciphertext belongs.
type oneKeySealer struct{ a tink.AEAD }

var errOpen = errors.New("does not authenticate")

func (oneKeySealer) Prepare(context.Context, string) error { return nil }
func (s oneKeySealer) Seal(_ context.Context, _ string, p, aad []byte) ([]byte, error) {
	return s.a.Encrypt(p, aad)
}
func (s oneKeySealer) Open(_ context.Context, _ string, c, aad []byte) ([]byte, error) {
	p, err := s.a.Decrypt(c, aad)
	if err != nil {
		return nil, errOpen
	}
	return p, nil
}

// A sealed activity is bound to its position in its conversation's log and
// to being a log record: moved to another sequence number, or into the
// outbox (where it would be delivered to the bot again), or a delivery's
// body moved into the log, it fails to open.
func TestSealedCodecBindsRecordsToTheirPlace(t *testing.T) {
	ctx := context.Background()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	c := SealedCodec{S: oneKeySealer{a}}
	rec, err := c.EncodeRecord(ctx, "conv1", 3, []byte(`{"id":"conv1|0000003"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.DecodeRecord(ctx, "conv1", 3, rec); err != nil || string(got) != `{"id":"conv1|0000003"}` {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	del, err := c.EncodeOutbox(ctx, "conv1", []byte(`{"id":"conv1|0000003"}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"record at another seq":           func() ([]byte, error) { return c.DecodeRecord(ctx, "conv1", 4, rec) },
		"record in another conv":          func() ([]byte, error) { return c.DecodeRecord(ctx, "conv2", 3, rec) },
		"record as a delivery":            func() ([]byte, error) { return c.DecodeOutbox(ctx, "conv1", rec) },
		"delivery as a record":            func() ([]byte, error) { return c.DecodeRecord(ctx, "conv1", 3, del) },
		"delivery of another conv":        func() ([]byte, error) { return c.DecodeOutbox(ctx, "conv2", del) },
		"record as an attachment's bytes": func() ([]byte, error) { return c.DecodeFile(ctx, "conv1", "3", rec) },
	} {
		if got, err := open(); !errors.Is(err, errOpen) {
			t.Errorf("%s: opened %q, %v; want the sealer's refusal", name, got, err)
		}
	}
}
