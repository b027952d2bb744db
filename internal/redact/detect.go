// Package redact finds personal data and credentials in text and replaces
// them with typed placeholders ([card], [email], ...); its slog handler
// applies that to every log record and pseudonymizes user ids and client
// addresses with a keyed HMAC.
//
// The detectors are written by hand (no regular expressions) so that a log
// attribute without PII costs one pass over its bytes and no allocation.
package redact

import (
	"strings"
	"unicode/utf8"
)

// The placeholders that replace what a detector found.
const (
	Card   = "[card]"
	SSN    = "[ssn]"
	IBAN   = "[iban]"
	Email  = "[email]"
	Phone  = "[phone]"
	Bearer = "[bearer]"
	JWT    = "[jwt]"
	Secret = "[secret]"
	CVV    = "[cvv]"
)

// Kinds selects detectors.
type Kinds uint16

// The detector kinds.
const (
	KindCard Kinds = 1 << iota
	KindSSN
	KindIBAN
	KindEmail
	KindPhone
	KindBearer
	KindJWT
	KindSecret

	// All is every detector (what logs get).
	All = KindCard | KindSSN | KindIBAN | KindEmail | KindPhone | KindBearer | KindJWT | KindSecret
	// PII is the personal-data detectors (what --all-pii masking uses).
	PII = KindCard | KindSSN | KindIBAN | KindEmail | KindPhone
)

// secretLen is the length of a Parley site or bot client secret: 32
// random bytes in unpadded URL-safe base64 (identity.NewSecret).
const secretLen = 43

// String returns s with every detected item replaced by its placeholder.
// It returns s itself (no allocation) when nothing is found.
func String(s string) string { return Replace(s, All, nil) }

// Bounded returns s redacted, then cut to at most n bytes (at a rune
// boundary), for a client's text logged with a bound: cutting first could
// split a card number, token or address into a piece no detector
// recognises.
func Bounded(s string, n int) string {
	s = String(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Replace returns s with the items of the selected kinds replaced. For a
// card number, cardRepl (when not nil) gives the replacement from the
// matched text; otherwise it is Card.
func Replace(s string, kinds Kinds, cardRepl func(match string) string) string {
	var b []byte
	last := 0
	emit := func(start, end int, repl string) {
		if b == nil {
			b = make([]byte, 0, len(s)+8)
		}
		b = append(b, s[last:start]...)
		b = append(b, repl...)
		last = end
	}
	// Emails are found from their '@' outwards, before the forward scan.
	var emailBuf [4]span
	emails := emailBuf[:0]
	if kinds&KindEmail != 0 && strings.IndexByte(s, '@') >= 0 {
		emails = findEmails(s, emails)
	}
	n := len(s)
	for i := 0; i < n; {
		for len(emails) > 0 && emails[0].start < i {
			emails = emails[1:]
		}
		if len(emails) > 0 && emails[0].start == i {
			emit(i, emails[0].end, Email)
			i = emails[0].end
			emails = emails[1:]
			continue
		}
		c := s[i]
		var p byte
		if i > 0 {
			p = s[i-1]
		}
		if (isDigit(c) || c == '+' || c == '(') && !isAlnum(p) {
			if kinds&KindCard != 0 && isDigit(c) {
				if end := cardAt(s, i); end > 0 {
					m := s[i:end]
					repl := Card
					if cardRepl != nil {
						repl = cardRepl(m)
					}
					emit(i, end, repl)
					i = end
					// A security code written after the number (sensitive
					// authentication data, never to be retained) goes too.
					if cs, ce := cvvAfter(s, end); cs > 0 {
						cv := CVV
						if cardRepl != nil {
							cv = strings.Repeat("*", ce-cs)
						}
						emit(cs, ce, cv)
						i = ce
					}
					continue
				}
			}
			if kinds&KindSSN != 0 && isDigit(c) {
				if end := ssnAt(s, i); end > 0 {
					emit(i, end, SSN)
					i = end
					continue
				}
			}
			if kinds&KindPhone != 0 && p != ':' && p != '.' && !(i > 1 && isDigit(s[i-2])) { // not the middle of a run of numbers
				if end := phoneAt(s, i); end > 0 {
					emit(i, end, Phone)
					i = end
					continue
				}
			}
		}
		if isB64(c) && !isB64(p) {
			run := i
			for run < n && isB64(s[run]) {
				run++
			}
			if kinds&KindJWT != 0 && strings.HasPrefix(s[i:], "eyJ") {
				if end := jwtAt(s, i, run); end > 0 {
					emit(i, end, JWT)
					i = end
					continue
				}
			}
			if kinds&KindSecret != 0 && run-i == secretLen {
				emit(i, run, Secret)
				i = run
				continue
			}
			if kinds&KindBearer != 0 && run-i == 6 && strings.EqualFold(s[i:run], "bearer") {
				if end := bearerAt(s, run); end > 0 {
					emit(i, end, Bearer)
					i = end
					continue
				}
			}
			if kinds&KindIBAN != 0 && isLetter(c) {
				if end := ibanAt(s, i); end > 0 {
					emit(i, end, IBAN)
					i = end
					continue
				}
			}
		}
		// Nothing starts here: skip the rest of an alphanumeric word, so
		// that digits inside a word (an order id "A1234...") never start
		// a match; stop at the next email, which may start inside a run
		// only at its beginning.
		if isAlnum(c) {
			j := i + 1
			for j < n && isAlnum(s[j]) {
				j++
			}
			if len(emails) > 0 && emails[0].start < j {
				j = max(emails[0].start, i+1)
			}
			i = j
			continue
		}
		i++
	}
	if b == nil {
		return s
	}
	b = append(b, s[last:]...)
	return string(b)
}

type span struct{ start, end int }

// Character classes, looked up in one table.
const (
	cDigit = 1 << iota
	cLetter
	cB64 // base64url: letters, digits, '-', '_'
)

var classes = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit | cB64
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLetter | cB64
		t[c-'a'+'A'] = cLetter | cB64
	}
	t['-'], t['_'] = cB64, cB64
	return t
}()

func isDigit(c byte) bool  { return classes[c]&cDigit != 0 }
func isLetter(c byte) bool { return classes[c]&cLetter != 0 }
func isAlnum(c byte) bool  { return classes[c]&(cDigit|cLetter) != 0 }
func isB64(c byte) bool    { return classes[c]&cB64 != 0 }

// maxGroups bounds the digit groups a number may have.
const maxGroups = 8

// digitGroups reads groups of digits from i, separated by one byte that
// sep accepts; ends[k] is the end of group k and lens[k] its length.
func digitGroups(s string, i int, sep func(byte) bool, ends, lens *[maxGroups]int) int {
	g := 0
	j := i
	for g < maxGroups {
		start := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == start {
			break
		}
		ends[g], lens[g] = j, j-start
		g++
		if j+1 < len(s) && sep(s[j]) && isDigit(s[j+1]) {
			j++
			continue
		}
		break
	}
	return g
}

func cardSep(c byte) bool { return c == ' ' || c == '-' }

// cardAt matches a payment card number at i: 13 to 19 digits, grouped by
// single spaces or dashes (each group of 3 to 7 digits when grouped),
// Luhn-valid, not followed by a letter or digit, and starting as the
// networks' numbers of that length do (see cardPrefixOK). Trailing groups
// that do not belong (an expiry date, a CVV) are dropped: the longest
// valid prefix wins.
func cardAt(s string, i int) int {
	if s[i] == '0' || s[i] == '7' {
		return -1
	}
	var ends, lens [maxGroups]int
	g := digitGroups(s, i, cardSep, &ends, &lens)
	for k := g; k >= 1; k-- {
		end := ends[k-1]
		if end < len(s) && isLetter(s[end]) {
			continue
		}
		if k == g && end < len(s) && isDigit(s[end]) {
			continue // more digits than maxGroups allow
		}
		total, ok := 0, true
		for q := 0; q < k; q++ {
			total += lens[q]
			if k > 1 && (lens[q] < 3 || lens[q] > 7) {
				ok = false
			}
		}
		if ok && cardPrefixOK(s[i], total) && luhn(s[i:end]) {
			return end
		}
	}
	return -1
}

// cvvAfter finds a card security code written just after a card number
// ending at i: 3 or 4 digits, possibly after an expiry date ("12/27",
// "12/2027"), the words "exp", "expiry", "expires", and a label ("cvv",
// "cvc", "csc", "cid", "cvv2", "cvc2", "code"), separated by spaces and
// punctuation. It returns the digits' span, or -1.
func cvvAfter(s string, i int) (int, int) {
	j := i
	for hops := 0; hops < 6; hops++ {
		k := j
		for k < len(s) && k-j < 3 && (s[k] == ' ' || s[k] == ',' || s[k] == ';' || s[k] == ':' || s[k] == '=' || s[k] == '#' || s[k] == '-' || s[k] == '(' || s[k] == ')') {
			k++
		}
		if k == j && hops > 0 || k >= len(s) {
			return -1, -1
		}
		j = k
		w := j
		for w < len(s) && isAlnum(s[w]) {
			w++
		}
		word := s[j:w]
		switch {
		case w < len(s) && s[w] == '/' && len(word) == 2 && allDigits(word): // an expiry date
			e := w + 1
			for e < len(s) && isDigit(s[e]) {
				e++
			}
			if n := e - w - 1; n != 2 && n != 4 {
				return -1, -1
			}
			j = e
		case (len(word) == 3 || len(word) == 4) && allDigits(word):
			if w < len(s) && (s[w] == '/' || s[w] == '.' && w+1 < len(s) && isDigit(s[w+1])) {
				return -1, -1
			}
			return j, w
		case isCVVWord(word):
			j = w
		default:
			return -1, -1
		}
	}
	return -1, -1
}

func allDigits(s string) bool {
	for k := 0; k < len(s); k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return s != ""
}

func isCVVWord(w string) bool {
	for _, x := range [...]string{"exp", "expiry", "expires", "cvv", "cvc", "csc", "cid", "cvv2", "cvc2", "code", "security"} {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

// cardPrefixOK: the first digit a card number of n digits can start with.
// 13 digits: Visa (4); 14: Diners (3); 15: Amex (3), UATP (1); 16: Visa,
// Mastercard, Discover, JCB, UnionPay, Mir, RuPay, Troy (2-6, 8, 9); 17-19:
// Visa, Maestro, Discover, UnionPay, Mir (2-6). This keeps Unix times in
// milliseconds (13 digits) and nanoseconds (19 digits), which start with 1,
// out.
func cardPrefixOK(first byte, n int) bool {
	switch {
	case n == 13:
		return first == '4'
	case n == 14:
		return first == '3'
	case n == 15:
		return first == '1' || first == '3'
	case n == 16:
		return first >= '2' && first <= '6' || first == '8' || first == '9'
	case n >= 17 && n <= 19:
		return first >= '2' && first <= '6'
	}
	return false
}

// luhn checks the Luhn digit of the digits in s (other bytes ignored).
func luhn(s string) bool {
	sum, double := 0, false
	for k := len(s) - 1; k >= 0; k-- {
		c := s[k]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// ssnAt matches a US social security number written AAA-GG-SSSS (or with
// spaces), with a valid area (not 000, 666 or 900-999), group (not 00)
// and serial (not 0000). Nine digits without separators are not matched:
// they cannot be told from other numbers.
func ssnAt(s string, i int) int {
	if len(s)-i < 11 {
		return -1
	}
	t := s[i : i+11]
	sep := t[3]
	if (sep != '-' && sep != ' ') || t[6] != sep {
		return -1
	}
	for _, k := range [...]int{0, 1, 2, 4, 5, 7, 8, 9, 10} {
		if !isDigit(t[k]) {
			return -1
		}
	}
	end := i + 11
	if end < len(s) && (isAlnum(s[end]) || (end+1 < len(s) && (s[end] == '-' || s[end] == sep) && isDigit(s[end+1]))) {
		return -1
	}
	area, group, serial := t[0:3], t[4:6], t[7:11]
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return -1
	}
	return end
}

func phoneSep(c byte) bool { return c == ' ' || c == '-' || c == '.' }

// phoneAt matches a telephone number at i:
//   - international (E.164 as people write it): "+", then 8 to 15 digits,
//     grouped or not;
//   - national: 10 or 11 digits in 2 to 5 groups of 2 to 5 digits,
//     separated by spaces, dashes, dots or an area code in parentheses
//     ("(555) 123-4567", "555-123-4567", "020 7946 0958", "06 12 34 56 78").
//
// Numbers without a "+" and without separators are not phone numbers
// (they are ids and Unix times), nor are dates (a 4-digit group followed by
// a 2-digit one), times (next to ':'), dotted numbers other than 3.3.4
// (IP addresses, versions).
func phoneAt(s string, i int) int {
	j := i
	intl := s[j] == '+'
	if intl {
		j++
	}
	paren := false
	if j < len(s) && s[j] == '(' {
		paren = true
		j++
	}
	if j >= len(s) || !isDigit(s[j]) {
		return -1
	}
	var ends, lens [maxGroups]int
	g := 0
	dots := false
	for g < maxGroups {
		start := j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == start {
			break
		}
		ends[g], lens[g] = j, j-start
		g++
		if paren && g == 1 {
			if j >= len(s) || s[j] != ')' {
				return -1
			}
			j++
			if j < len(s) && isDigit(s[j]) {
				continue
			}
		}
		if j+1 < len(s) && phoneSep(s[j]) && isDigit(s[j+1]) {
			dots = dots || s[j] == '.'
			j++
			continue
		}
		if intl && j+2 < len(s) && s[j] == ' ' && s[j+1] == '(' && isDigit(s[j+2]) {
			// "+44 (0)20 ..." : the parenthesised trunk prefix.
			k := j + 2
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			if k < len(s) && s[k] == ')' {
				j = k + 1
				if j < len(s) && s[j] == ' ' {
					j++
				}
				if j < len(s) && isDigit(s[j]) {
					continue
				}
			}
		}
		break
	}
	for k := g; k >= 1; k-- {
		end := ends[k-1]
		if end < len(s) && (isLetter(s[end]) || s[end] == ':' || s[end] == '_') {
			continue
		}
		if k == g && end < len(s) && isDigit(s[end]) {
			continue
		}
		total := 0
		for q := 0; q < k; q++ {
			total += lens[q]
		}
		if intl {
			if total >= 8 && total <= 15 && s[i+1] != '0' {
				return end
			}
			continue
		}
		if total != 10 && total != 11 || (k < 2 && !paren) || k > 5 {
			continue
		}
		ok := true
		for q := 0; q < k; q++ {
			if lens[q] < 2 || lens[q] > 5 {
				ok = false
			}
		}
		if dots && (k != 3 || lens[0] != 3 || lens[1] != 3 || lens[2] != 4) {
			ok = false
		}
		if lens[0] == 4 && k > 1 && lens[1] == 2 { // 2026-12-01 ...
			ok = false
		}
		if ok {
			return end
		}
	}
	return -1
}

// ibanAt matches an IBAN at i: a country code, two check digits and up to
// 30 letters and digits, optionally in groups of four separated by single
// spaces, 15 to 34 characters in all, passing the ISO 13616 mod-97 check.
func ibanAt(s string, i int) int {
	if len(s)-i < 15 || !isLetter(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return -1
	}
	// Candidate ends: every group boundary.
	var ends [10]int
	ne := 0
	j, count := i, 0
	for j < len(s) && count < 34 {
		c := s[j]
		if isAlnum(c) {
			j++
			count++
			continue
		}
		if c == ' ' && j+1 < len(s) && isAlnum(s[j+1]) && (j-i)%5 == 4 && ne < len(ends) {
			ends[ne] = j
			ne++
			j++
			continue
		}
		break
	}
	if j < len(s) && isAlnum(s[j]) {
		j = -1 // longer than an IBAN: only grouped prefixes remain
	}
	if j > 0 {
		if ne < len(ends) {
			ends[ne] = j
			ne++
		}
	}
	for k := ne - 1; k >= 0; k-- {
		if mod97(s[i:ends[k]]) {
			return ends[k]
		}
	}
	return -1
}

// mod97 checks an IBAN (spaces ignored): the first four characters moved
// to the end, letters as 10..35, the number mod 97 must be 1.
func mod97(s string) bool {
	n, rem := 0, 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isLetter(c):
			v := int(c|0x20-'a') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
		n++
		return true
	}
	var head [4]byte
	h := 0
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c == ' ' {
			continue
		}
		if h < 4 {
			head[h] = c
			h++
			continue
		}
		if !add(c) {
			return false
		}
	}
	for _, c := range head[:h] {
		if !add(c) {
			return false
		}
	}
	return n >= 15 && n <= 34 && rem == 1
}

// jwtAt matches a JWT (or JWE) at i: base64url segments joined by dots,
// three or five of them, the first starting "eyJ" ('{"' encoded).
func jwtAt(s string, i, run int) int {
	j, segs := run, 1
	for segs < 5 && j < len(s) && s[j] == '.' {
		k := j + 1
		for k < len(s) && isB64(s[k]) {
			k++
		}
		j = k
		segs++
	}
	if segs < 3 || run-i < 10 {
		return -1
	}
	return j
}

// bearerAt matches the credential after the word "Bearer" (at i): spaces,
// then at least 8 token68 characters.
func bearerAt(s string, i int) int {
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == i {
		return -1
	}
	k := j
	for k < len(s) && (isB64(s[k]) || s[k] == '.' || s[k] == '~' || s[k] == '+' || s[k] == '/' || s[k] == '=') {
		k++
	}
	if k-j < 8 {
		return -1
	}
	return k
}

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// findEmails finds addresses local@domain.tld around each '@'.
func findEmails(s string, out []span) []span {
	from := 0
	for {
		at := strings.IndexByte(s[from:], '@')
		if at < 0 {
			return out
		}
		at += from
		from = at + 1
		start := at
		for start > 0 && isLocal(s[start-1]) && at-start < 64 {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		if start == at || (len(out) > 0 && start < out[len(out)-1].end) {
			continue
		}
		end, lastDot, labelStart := at+1, -1, at+1
		for end < len(s) && end-at <= 255 {
			c := s[end]
			if isAlnum(c) || c == '-' {
				end++
				continue
			}
			if c == '.' && end > labelStart && end+1 < len(s) && isAlnum(s[end+1]) {
				lastDot = end
				end++
				labelStart = end
				continue
			}
			break
		}
		if lastDot < 0 {
			continue
		}
		tld := s[lastDot+1 : end]
		if len(tld) < 2 {
			continue
		}
		letters := true
		for k := 0; k < len(tld); k++ {
			if !isLetter(tld[k]) {
				letters = false
			}
		}
		if !letters {
			continue
		}
		out = append(out, span{start, end})
		from = end
	}
}

// LastFour masks a card number to its last four digits, keeping its
// length and grouping: "4242 4242 4242 4242" becomes "**** **** **** 4242"
// (ASCII, so a masked activity is exactly as long as the original and
// stays within the size limits it passed). It is the masking policy's
// replacement.
func LastFour(match string) string {
	digits := 0
	for k := 0; k < len(match); k++ {
		if isDigit(match[k]) {
			digits++
		}
	}
	b := []byte(match)
	seen := 0
	for k, c := range b {
		if isDigit(c) {
			seen++
			if seen <= digits-4 {
				b[k] = '*'
			}
		}
	}
	return string(b)
}
