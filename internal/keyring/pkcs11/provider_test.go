//go:build pkcs11

package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/keyring/pkcs11/softhsmtest"
)

func dataKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(t testing.TB, p *Provider) (string, tink.AEAD) {
	t.Helper()
	ctx := context.Background()
	h, err := p.CreateKEK(ctx)
	if err != nil {
		t.Fatalf("CreateKEK: %v", err)
	}
	a, err := p.AEAD(ctx, h)
	if err != nil {
		t.Fatalf("AEAD(%s): %v", h, err)
	}
	return h, a
}

// rawFind lists the token's secret keys labelled label, with a session of
// the test's own: what an operator's pkcs11-tool --list-objects shows.
func rawFind(t *testing.T, p *Provider, label string) []pkcs11.ObjectHandle {
	t.Helper()
	sh, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.ctx.CloseSession(sh)
	if err := p.ctx.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.ctx.FindObjects(sh, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ctx.FindObjectsFinal(sh); err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestRoundTrip(t *testing.T) {
	p := open(t, 2)
	if p.Name() != "pkcs11" {
		t.Fatalf("Name() = %q", p.Name())
	}
	h, a := newKey(t, p)
	if !strings.HasPrefix(h, "parley-kek-") || len(rawFind(t, p, h)) != 1 {
		t.Fatalf("handle %q does not name one object in the token", h)
	}
	dk := dataKey(t)
	for _, ad := range [][]byte{[]byte("conversation:abc|v1"), nil, {}} {
		ct, err := a.Encrypt(dk, ad)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		if len(ct) != 12+len(dk)+16 {
			t.Fatalf("ciphertext is %d bytes, want IV 12 + %d + tag 16", len(ct), len(dk))
		}
		if bytes.Contains(ct, dk[:8]) {
			t.Fatal("ciphertext contains the data key")
		}
		pt, err := a.Decrypt(ct, ad)
		if err != nil || !bytes.Equal(pt, dk) {
			t.Fatalf("Decrypt = %x, %v; want %x", pt, err, dk)
		}
		ct2, _ := a.Encrypt(dk, ad)
		if bytes.Equal(ct[:12], ct2[:12]) || bytes.Equal(ct, ct2) {
			t.Fatal("two encryptions share an IV")
		}
	}
	// A second AEAD for the same handle (another process, later) opens it.
	ct, _ := a.Encrypt(dk, []byte("ad"))
	b, err := p.AEAD(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ct, []byte("ad")); err != nil || !bytes.Equal(pt, dk) {
		t.Fatalf("second AEAD: %x, %v", pt, err)
	}
}

func TestRefusesWrongAssociatedData(t *testing.T) {
	p := open(t, 1)
	_, a := newKey(t, p)
	ct, err := a.Encrypt(dataKey(t), []byte("conversation:A"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{[]byte("conversation:B"), []byte("conversation:A "), nil} {
		pt, err := a.Decrypt(ct, ad)
		if !errors.Is(err, ErrDecrypt) || pt != nil {
			t.Errorf("Decrypt with AD %q = %x, %v; want ErrDecrypt", ad, pt, err)
		}
	}
}

func TestRefusesTamperedCiphertext(t *testing.T) {
	p := open(t, 1)
	_, a := newKey(t, p)
	ad := []byte("ad")
	ct, err := a.Encrypt(dataKey(t), ad)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 11, 12, 20, len(ct) - 17, len(ct) - 16, len(ct) - 1} { // IV, body, tag
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if pt, err := a.Decrypt(bad, ad); !errors.Is(err, ErrDecrypt) || pt != nil {
			t.Errorf("byte %d flipped: Decrypt = %x, %v; want ErrDecrypt", i, pt, err)
		}
	}
	for _, n := range []int{0, 5, 12, 27, len(ct) - 1} {
		if pt, err := a.Decrypt(ct[:n], ad); !errors.Is(err, ErrDecrypt) || pt != nil {
			t.Errorf("truncated to %d: Decrypt = %x, %v; want ErrDecrypt", n, pt, err)
		}
	}
	if pt, err := a.Decrypt(append(bytes.Clone(ct), 0), ad); !errors.Is(err, ErrDecrypt) || pt != nil {
		t.Errorf("extended: Decrypt = %x, %v; want ErrDecrypt", pt, err)
	}
	// The session that saw the failures still serves.
	if _, err := a.Decrypt(ct, ad); err != nil {
		t.Fatalf("intact ciphertext after failures: %v", err)
	}
}

func TestRefusesAnotherKeysCiphertext(t *testing.T) {
	p := open(t, 1)
	_, a := newKey(t, p)
	_, b := newKey(t, p)
	ct, err := a.Encrypt(dataKey(t), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ct, []byte("ad")); !errors.Is(err, ErrDecrypt) || pt != nil {
		t.Fatalf("key B opened key A's ciphertext: %x, %v", pt, err)
	}
}

func TestDestroyKEK(t *testing.T) {
	p := open(t, 2)
	ctx := context.Background()
	h, a := newKey(t, p)
	other, b := newKey(t, p)
	dk := dataKey(t)
	ct, err := a.Encrypt(dk, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	ctOther, _ := b.Encrypt(dk, []byte("ad"))

	if err := p.DestroyKEK(ctx, h); err != nil {
		t.Fatalf("DestroyKEK: %v", err)
	}
	if objs := rawFind(t, p, h); len(objs) != 0 {
		t.Fatalf("token still holds %d objects labelled %s", len(objs), h)
	}
	// An AEAD taken before the destruction, and one asked for after.
	pt, err := a.Decrypt(ct, []byte("ad"))
	if !errors.Is(err, ErrKeyNotFound) || pt != nil || !strings.Contains(err.Error(), "destroyed or unknown") {
		t.Fatalf("Decrypt under a destroyed key = %x, %v; want ErrKeyNotFound", pt, err)
	}
	if _, err := a.Encrypt(dk, nil); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Encrypt under a destroyed key: %v; want ErrKeyNotFound", err)
	}
	if _, err := p.AEAD(ctx, h); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("AEAD of a destroyed key: %v; want ErrKeyNotFound", err)
	}
	if err := p.DestroyKEK(ctx, h); err != nil {
		t.Fatalf("second DestroyKEK: %v; want nil (idempotent)", err)
	}
	// Other keys are untouched.
	if pt, err := b.Decrypt(ctOther, []byte("ad")); err != nil || !bytes.Equal(pt, dk) {
		t.Fatalf("other key after destroy: %x, %v", pt, err)
	}
	if len(rawFind(t, p, other)) != 1 {
		t.Fatal("other key's object is gone")
	}
	// Handles that are not the provider's are refused, not searched for.
	for _, bad := range []string{"", "parley-kek-", "local:abc", "parley-kek-" + strings.Repeat("g", 32), "*"} {
		if _, err := p.AEAD(ctx, bad); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("AEAD(%q): %v; want ErrKeyNotFound", bad, err)
		}
		if err := p.DestroyKEK(ctx, bad); err == nil {
			t.Errorf("DestroyKEK(%q) accepted", bad)
		}
	}
}

func TestKeyNeverLeavesTheToken(t *testing.T) {
	p := open(t, 1)
	h, _ := newKey(t, p)
	objs := rawFind(t, p, h)
	if len(objs) != 1 {
		t.Fatalf("%d objects", len(objs))
	}
	sh, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.ctx.CloseSession(sh)
	if v, err := p.ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); !is(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Fatalf("reading CKA_VALUE = %v, %v; want CKR_ATTRIBUTE_SENSITIVE", v, err)
	}
	want := map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_ALWAYS_SENSITIVE: true,
		pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_NEVER_EXTRACTABLE: true, pkcs11.CKA_MODIFIABLE: false,
		pkcs11.CKA_ENCRYPT: true, pkcs11.CKA_DECRYPT: true, pkcs11.CKA_WRAP: false, pkcs11.CKA_UNWRAP: false,
	}
	for typ, w := range want {
		attrs, err := p.ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(typ, nil)})
		if err != nil || len(attrs) != 1 || len(attrs[0].Value) != 1 || (attrs[0].Value[0] != 0) != w {
			t.Errorf("attribute %#x = %v, %v; want %v", typ, attrs, err, w)
		}
	}
	attrs, err := p.ctx.GetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
	if err != nil || len(attrs) != 1 || bytes.Count(attrs[0].Value, []byte{0}) == len(attrs[0].Value) || attrs[0].Value[0] != 32 {
		t.Errorf("CKA_VALUE_LEN = %v, %v; want 32 (AES-256)", attrs, err)
	}
	// Nobody can make it extractable later.
	if err := p.ctx.SetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true)}); err == nil {
		t.Fatal("CKA_EXTRACTABLE could be set to true")
	}
	if err := p.ctx.SetAttributeValue(sh, objs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false)}); err == nil {
		t.Fatal("CKA_SENSITIVE could be set to false")
	}
}

func TestKeySurvivesRestart(t *testing.T) {
	tok := softhsmtest.New(t)
	opts := Options{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Sessions: 1}
	p, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h, a := newKey(t, p)
	dk := dataKey(t)
	ct, err := a.Encrypt(dk, []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decrypt(ct, []byte("ad")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Decrypt after Close: %v; want ErrClosed", err)
	}
	q, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	b, err := q.AEAD(context.Background(), h)
	if err != nil {
		t.Fatalf("AEAD after reopening: %v", err)
	}
	if pt, err := b.Decrypt(ct, []byte("ad")); err != nil || !bytes.Equal(pt, dk) {
		t.Fatalf("Decrypt after reopening: %x, %v", pt, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	p := open(t, 4)
	_, a := newKey(t, p)
	_, b := newKey(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := a
			if g%2 == 1 {
				k = b
			}
			ad := []byte{byte(g)}
			for range 40 {
				dk := make([]byte, 32)
				_, _ = rand.Read(dk)
				ct, err := k.Encrypt(dk, ad)
				if err != nil {
					errs <- err
					return
				}
				pt, err := k.Decrypt(ct, ad)
				if err != nil || !bytes.Equal(pt, dk) {
					errs <- errors.Join(errors.New("round trip differs"), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(p.idle); n > 4 {
		t.Fatalf("%d idle sessions, cap 4", n)
	}
}

func TestOpenErrorsSayWhatToDo(t *testing.T) {
	tok, other := softhsmtest.New(t), softhsmtest.New(t)
	ctx := context.Background()
	notLib := filepath.Join(t.TempDir(), "not-a-module.so")
	if err := os.WriteFile(notLib, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	const wrongPIN = "wrong-9731"
	for name, c := range map[string]struct {
		o    Options
		want []string
	}{
		"module missing":  {Options{Module: "/nonexistent/libpkcs11.so", TokenLabel: tok.Label, PIN: tok.PIN}, []string{"/nonexistent/libpkcs11.so", "keys.pkcs11.module"}},
		"not a module":    {Options{Module: notLib, TokenLabel: tok.Label, PIN: tok.PIN}, []string{"cannot be loaded", "keys.pkcs11.module"}},
		"unknown token":   {Options{Module: tok.Module, TokenLabel: "no-such-token", PIN: tok.PIN}, []string{`"no-such-token"`, "keys.pkcs11.token_label", `"` + tok.Label + `"`, "--init-token"}},
		"wrong PIN":       {Options{Module: tok.Module, TokenLabel: other.Label, PIN: wrongPIN}, []string{"PIN is incorrect", "keys.pkcs11.pin_file", "PARLEY_PKCS11_PIN", "CKR_PIN_INCORRECT"}},
		"PIN of another":  {Options{Module: tok.Module, TokenLabel: other.Label, PIN: tok.PIN}, []string{"PIN is incorrect"}},
		"no PIN":          {Options{Module: tok.Module, TokenLabel: tok.Label}, []string{"PARLEY_PKCS11_PIN"}},
		"no token label":  {Options{Module: tok.Module, PIN: tok.PIN}, []string{"keys.pkcs11.token_label"}},
		"no module given": {Options{TokenLabel: tok.Label, PIN: tok.PIN}, []string{"keys.pkcs11.module"}},
	} {
		p, err := Open(ctx, c.o)
		if err == nil {
			p.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
		if strings.Contains(err.Error(), wrongPIN) || strings.Contains(err.Error(), tok.PIN) {
			t.Errorf("%s: error shows the PIN: %q", name, err)
		}
	}
	// The right PIN opens the token the wrong one was refused by.
	p, err := Open(ctx, Options{Module: tok.Module, TokenLabel: other.Label, PIN: other.PIN})
	if err != nil {
		t.Fatalf("right PIN after a wrong one: %v", err)
	}
	p.Close()
}

func TestOptionsHidePIN(t *testing.T) {
	o := Options{Module: "/m.so", TokenLabel: "t", PIN: "s3cret-pin"}
	for _, s := range []string{o.String(), o.GoString()} {
		if strings.Contains(s, "s3cret-pin") {
			t.Fatalf("Options print the PIN: %s", s)
		}
	}
}

// Logins belong to the whole process: closing one provider must not log
// out another on the same token.
func TestCloseKeepsOtherProvidersLoggedIn(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	opts := Options{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}
	p, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	h, a := newKey(t, p)
	ct, _ := a.Encrypt([]byte("dk"), nil)
	q.Close()
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b, err := p.AEAD(ctx, h)
	if err != nil {
		t.Fatalf("AEAD after another provider closed: %v", err)
	}
	if _, err := b.Decrypt(ct, nil); err != nil {
		t.Fatalf("Decrypt after another provider closed: %v", err)
	}
}

// A token that ended the login hides its private keys: that must read as
// "not logged in", never as "destroyed", and DestroyKEK must not report a
// key destroyed that it could not see.
func TestLoggedOutIsNotDestroyed(t *testing.T) {
	p := open(t, 1)
	ctx := context.Background()
	h, a := newKey(t, p)
	ct, _ := a.Encrypt([]byte("dk"), nil)
	if err := p.ctx.Logout(p.login); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AEAD(ctx, h); !errors.Is(err, ErrNotLoggedIn) || errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("AEAD while logged out: %v; want ErrNotLoggedIn", err)
	}
	if pt, err := a.Decrypt(ct, nil); err == nil || pt != nil || errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrDecrypt) {
		t.Fatalf("Decrypt while logged out: %x, %v; want a not-logged-in error", pt, err)
	}
	if err := p.DestroyKEK(ctx, h); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("DestroyKEK while logged out: %v; want ErrNotLoggedIn", err)
	}
}

// Idle sessions the token closed behind Parley's back are replaced.
func TestClosedIdleSessionsAreReplaced(t *testing.T) {
	p := open(t, 2)
	_, a := newKey(t, p)
	ct, err := a.Encrypt([]byte("dk"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.idle) == 0 {
		t.Fatal("no idle session to close")
	}
	for range len(p.idle) {
		sh := <-p.idle
		if err := p.ctx.CloseSession(sh); err != nil {
			t.Fatal(err)
		}
		p.idle <- sh
	}
	if pt, err := a.Decrypt(ct, nil); err != nil || string(pt) != "dk" {
		t.Fatalf("Decrypt after the token closed the idle sessions: %q, %v", pt, err)
	}
}
