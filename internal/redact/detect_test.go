package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	const secret = "q5Vq0n3kS8bB1hQwXv9o4yTq2mZsL7cR1uN6aE0fP3g" // 43 chars, identity.NewSecret's shape
	const jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJkbF91c2VyIn0.c2lnbmF0dXJlLWJ5dGVz"
	tests := []struct {
		name, in, want string
	}{
		// Card numbers: Luhn-valid, grouped or not, any major network.
		{"visa plain", "card 4242424242424242 ok", "card [card] ok"},
		{"visa spaced", "card 4242 4242 4242 4242.", "card [card]."},
		{"visa dashed", "4242-4242-4242-4242", "[card]"},
		{"mastercard", "pay with 5555555555554444", "pay with [card]"},
		{"amex 15", "amex 3782 822463 10005", "amex [card]"},
		{"discover", "6011111111111117", "[card]"},
		{"card then expiry", "4242 4242 4242 4242 12/27", "[card] 12/27"},
		{"card then cvv", "4242 4242 4242 4242 123", "[card] [cvv]"},
		{"card expiry cvv", "4242424242424242 exp 12/27 cvv: 123.", "[card] exp 12/27 cvv: [cvv]."},
		{"card cvc label", "4242424242424242, CVC 1234", "[card], CVC [cvv]"},
		{"card then amount", "4242424242424242 for 100 EUR", "[card] for 100 EUR"},
		{"card then decimal", "4242424242424242 123.50", "[card] 123.50"},
		{"card then date", "4242424242424242 2026/12", "[card] 2026/12"},
		{"card in json", `{"n":"4111111111111111"}`, `{"n":"[card]"}`},
		{"card after equals", "pan=4111111111111111&x=1", "pan=[card]&x=1"},
		{"luhn invalid", "card 4242424242424241 ok", "card 4242424242424241 ok"},
		{"luhn invalid spaced", "4242 4242 4242 4243", "4242 4242 4242 4243"},
		{"luhn valid 16 starting 1", "order 1234567812345670", "order 1234567812345670"},
		{"unix millis luhn valid", "at 1764585600125 ms", "at 1764585600125 ms"},
		{"uatp 15", "122000000000003", "[card]"},
		{"rupay 16", "8171999927660000", "[card]"},
		{"too long", "42424242424242424242424", "42424242424242424242424"},
		{"inside a word", "ord4242424242424242", "ord4242424242424242"},
		{"digit uuid", "12345678-1234-4234-8234-123456789012", "12345678-1234-4234-8234-123456789012"},
		{"unix millis", "at 1764585600123 ms", "at 1764585600123 ms"},

		// SSNs with the invalid-range rules.
		{"ssn", "ssn 123-45-6789.", "ssn [ssn]."},
		{"ssn spaces", "ssn 123 45 6789", "ssn [ssn]"},
		{"ssn area 000", "000-12-3456", "000-12-3456"},
		{"ssn area 666", "666-12-3456", "666-12-3456"},
		{"ssn area 9xx", "912-34-5678", "912-34-5678"},
		{"ssn group 00", "123-00-4567", "123-00-4567"},
		{"ssn serial 0000", "123-45-0000", "123-45-0000"},
		{"ssn in longer id", "123-45-6789-2", "123-45-6789-2"},
		{"ssn plain digits", "123456789", "123456789"},

		// IBANs, mod-97 checked.
		{"iban grouped", "to DE89 3704 0044 0532 0130 00 thanks", "to [iban] thanks"},
		{"iban plain", "NL91ABNA0417164300", "[iban]"},
		{"iban letters", "GB82 WEST 1234 5698 7654 32", "[iban]"},
		{"iban bad check", "DE89 3704 0044 0532 0130 01", "DE89 3704 0044 0532 0130 01"},
		{"iban-like word", "AB12CDEFGHIJKLMNOP", "AB12CDEFGHIJKLMNOP"},

		// Emails.
		{"email", "mail jane.doe+x@example.co.uk now", "mail [email] now"},
		{"email in angle brackets", "<a@b.io>", "<[email]>"},
		{"two emails", "a@b.io,c@d.org", "[email],[email]"},
		{"not an email", "user@localhost and @mention and a@b.c1", "user@localhost and @mention and a@b.c1"},

		// Phones.
		{"e164", "call +14155552671 now", "call [phone] now"},
		{"e164 spaced", "call +44 20 7946 0958", "call [phone]"},
		{"e164 trunk", "call +44 (0)20 7946 0958", "call [phone]"},
		{"nanp parens", "call (555) 123-4567 now", "call [phone] now"},
		{"nanp dashes", "555-123-4567", "[phone]"},
		{"nanp dots", "555.123.4567", "[phone]"},
		{"uk national", "020 7946 0958", "[phone]"},
		{"fr national", "06 12 34 56 78", "[phone]"},
		{"phone then count", "555-123-4567 2 times", "[phone] 2 times"},
		{"date time", "2026-12-01 10:30:00", "2026-12-01 10:30:00"},
		{"iso timestamp", "2026-12-01T10:30:00.123456789Z", "2026-12-01T10:30:00.123456789Z"},
		{"us date time", "12 01 2026 10:30", "12 01 2026 10:30"},
		{"unix seconds", "exp 1764585600", "exp 1764585600"},
		{"ip address", "from 192.168.100.200 ok", "from 192.168.100.200 ok"},
		{"version", "v10.200.300.4000", "v10.200.300.4000"},
		{"duration", "took 1.234567890s", "took 1.234567890s"},
		{"uuid", "id 550e8400-e29b-41d4-a716-446655440000", "id 550e8400-e29b-41d4-a716-446655440000"},
		{"watermark", "watermark=0000000042", "watermark=0000000042"},
		{"short plus", "+12345", "+12345"},

		// Credentials.
		{"bearer", "Authorization: Bearer abcdefgh.ijkl", "Authorization: [bearer]"},
		{"bearer lower", "bearer  tok_1234567890", "[bearer]"},
		{"bearer prose", "the Bearer scheme", "the Bearer scheme"},
		{"jwt", "token " + jwt + " end", "token [jwt] end"},
		{"jwt in query", "?t=" + jwt, "?t=[jwt]"},
		{"secret", "secret " + secret, "secret [secret]"},
		{"secret quoted", `"` + secret + `"`, `"[secret]"`},
		{"conversation id", "conversation Xr3Lq0vZ1g8yT5uWm2Kp7A", "conversation Xr3Lq0vZ1g8yT5uWm2Kp7A"},
		{"longer base64", secret + "x", secret + "x"},

		{"activity id", "activity iAWzrqd5U63Yh-NGKxoMaw|0000012", "activity iAWzrqd5U63Yh-NGKxoMaw|0000012"},
		{"activity id big seq", "iAWzrqd5U63Yh-NGKxoMaw|4242424242424242", "iAWzrqd5U63Yh-NGKxoMaw|[card]"},
		{"key id", "kid lp-0123456789abcdef", "kid lp-0123456789abcdef"},
		{"outbox id and sizes", "outbox_id=1234567 bytes=65536 max=1048576", "outbox_id=1234567 bytes=65536 max=1048576"},
		{"go duration", "retry_in=1m2.345678901s", "retry_in=1m2.345678901s"},
		{"host port", "listen 127.0.0.1:8080", "listen 127.0.0.1:8080"},
		{"http status line", "bot answered 503 at 2026-12-01 10:30:00.123 +0000 UTC", "bot answered 503 at 2026-12-01 10:30:00.123 +0000 UTC"},
		{"nothing", "bot delivery failed; will retry", "bot delivery failed; will retry"},
		{"empty", "", ""},
		{"mixed", "a@b.io paid 4242424242424242 from +14155552671", "[email] paid [card] from [phone]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in); got != tc.want {
				t.Fatalf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStringNoAllocWithoutPII(t *testing.T) {
	s := "POST /v3/directline/conversations/Xr3Lq0vZ1g8yT5uWm2Kp7A/activities status=200 duration=1.2ms"
	if n := testing.AllocsPerRun(100, func() { _ = String(s) }); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}

func TestReplaceKinds(t *testing.T) {
	in := "card 4242 4242 4242 4242, mail a@b.io, call +14155552671"
	if got, want := Replace(in, KindCard, LastFour), "card **** **** **** 4242, mail a@b.io, call +14155552671"; got != want {
		t.Fatalf("cards only:\n got %q\nwant %q", got, want)
	}
	if got, want := Replace("4242424242424242 exp 12/27 cvv 123", KindCard, LastFour), "************4242 exp 12/27 cvv ***"; got != want {
		t.Fatalf("cvv:\n got %q\nwant %q", got, want)
	}
	if got, want := Replace(in, PII, LastFour), "card **** **** **** 4242, mail [email], call [phone]"; got != want {
		t.Fatalf("all PII:\n got %q\nwant %q", got, want)
	}
	if got, want := LastFour("4242424242424242"), "************4242"; got != want {
		t.Fatalf("LastFour = %q, want %q", got, want)
	}
}

func TestLuhnAndMod97(t *testing.T) {
	for _, s := range []string{"4242424242424242", "378282246310005", "79927398713"} {
		if !luhn(s) {
			t.Errorf("luhn(%s) = false", s)
		}
	}
	for _, s := range []string{"4242424242424241", "79927398710"} {
		if luhn(s) {
			t.Errorf("luhn(%s) = true", s)
		}
	}
	if !mod97("GB82WEST12345698765432") || mod97("GB82WEST12345698765433") || mod97("GB82") {
		t.Fatal("mod97 wrong")
	}
}

func TestLongInput(t *testing.T) {
	in := strings.Repeat("x 4242424242424242 ", 1000)
	out := String(in)
	if strings.Contains(out, "4242424242424242") || strings.Count(out, Card) != 1000 {
		t.Fatalf("long input: %d placeholders", strings.Count(out, Card))
	}
}

func TestMaskerJSON(t *testing.T) {
	cards := NewMasker(false)
	tests := []struct {
		name    string
		m       Masker
		in      string
		want    string
		changed bool
	}{
		{"string", cards, `"pay 4242 4242 4242 4242"`, `"pay **** **** **** 4242"`, true},
		{"nested", cards, `{"form":{"pan":"4111111111111111","n":[1,"x"]}}`, `{"form":{"n":[1,"x"],"pan":"************1111"}}`, true},
		{"number", cards, `{"pan":4111111111111111}`, `{"pan":"************1111"}`, true},
		{"key", cards, `{"4111111111111111":true}`, `{"************1111":true}`, true},
		{"escaped", cards, `"\u0034111111111111111"`, `"************1111"`, true},
		{"email kept with cards only", cards, `{"m":"a@b.io"}`, `{"m":"a@b.io"}`, false},
		{"email masked with all PII", NewMasker(true), `{"m":"a@b.io","t":"+14155552671"}`, `{"m":"[email]","t":"[phone]"}`, true},
		{"unchanged keeps bytes", cards, `{ "b": 1.50, "a": "x" }`, `{ "b": 1.50, "a": "x" }`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := tc.m.JSON([]byte(tc.in))
			if err != nil || string(out) != tc.want || changed != tc.changed {
				t.Fatalf("JSON(%s) = %s, %v, %v; want %s, %v", tc.in, out, changed, err, tc.want, tc.changed)
			}
		})
	}
	if _, _, err := cards.JSON([]byte(`{`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
