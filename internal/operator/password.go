package operator

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id's cost parameters (config.Argon2).
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLen and MaxPasswordLen bound a password in characters
	// (ASVS 5 V6.2.1, V6.2.9). Nothing is truncated.
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// HashPassword returns the argon2id PHC string of password:
// $argon2id$v=19$m=47104,t=1,p=1$SALT$HASH (unpadded base64).
func HashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash is a stored hash that is not an argon2id PHC string.
var errBadHash = errors.New("not an argon2id PHC string")

// parsePHC reads an argon2id PHC string.
func parsePHC(phc string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var par uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &par); err != nil ||
		par < 1 || par > 255 || p.Iterations < 1 || p.MemoryKiB < 8*par || p.MemoryKiB > 1<<20 || p.Iterations > 100 {
		return p, nil, nil, errBadHash
	}
	p.Parallelism = uint8(par)
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether password matches the PHC string phc,
// comparing in constant time, and whether phc's parameters differ from
// want (the caller then stores a new hash).
func VerifyPassword(phc, password string, want Argon2Params) (ok, rehash bool) {
	p, salt, key, err := parsePHC(phc)
	if err != nil {
		return false, false
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	return ok, ok && (p != want || len(key) != keyLen)
}

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords is the embedded list (common_passwords.txt: where it
// comes from is written at its top).
var commonPasswords = func() map[string]struct{} {
	m := make(map[string]struct{}, 10000)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = struct{}{}
		}
	}
	return m
}()

// PasswordError says why a new password is refused and what to do.
type PasswordError struct{ Message string }

func (e *PasswordError) Error() string { return e.Message }

// leet undoes common character substitutions before the list lookup.
var leet = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i")

// CheckPassword applies the password rules to a new password of the
// operator name: length, the common-password list (also with digits or
// symbols added around a listed password, and with l33t substitutions
// undone), the operator's name, too few distinct characters, and runs
// such as "abcdefghijkl" or "123456789012". The error is a
// *PasswordError whose message says what to do.
func CheckPassword(name, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return &PasswordError{"the password is not valid UTF-8 text"}
	case n < MinPasswordLen:
		return &PasswordError{fmt.Sprintf("the password has %d characters: use at least %d (a passphrase of several unrelated words is easiest to remember)", n, MinPasswordLen)}
	case n > MaxPasswordLen:
		return &PasswordError{fmt.Sprintf("the password has %d characters: use at most %d", n, MaxPasswordLen)}
	}
	lower := strings.ToLower(password)
	if _, ok := commonPasswords[lower]; ok {
		return &PasswordError{"this password is in a list of common, breached passwords: choose another (a passphrase of several unrelated words)"}
	}
	core := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, c := range []string{core, leet.Replace(lower), strings.TrimFunc(leet.Replace(lower), func(r rune) bool { return !unicode.IsLetter(r) })} {
		if _, ok := commonPasswords[c]; ok && len(c) >= 4 {
			return &PasswordError{"this password is a common, breached password with a few characters changed or added: choose another (a passphrase of several unrelated words)"}
		}
	}
	if lname := strings.ToLower(strings.TrimSpace(name)); utf8.RuneCountInString(lname) >= 3 && strings.Contains(lower, lname) {
		return &PasswordError{"the password contains your operator name: choose one that does not"}
	}
	if strings.Contains(lower, "parley") {
		return &PasswordError{"the password contains the word parley: choose one that does not"}
	}
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return &PasswordError{"the password repeats too few different characters: use a longer mix (a passphrase of several unrelated words)"}
	}
	if isRun(lower) {
		return &PasswordError{"the password is a run of consecutive characters (like abcdef or 123456): choose another"}
	}
	return nil
}

// isRun reports whether s is (mostly) consecutive characters up or down,
// or a row of the keyboard.
func isRun(s string) bool {
	rs := []rune(s)
	steps := 0
	for i := 1; i < len(rs); i++ {
		if d := rs[i] - rs[i-1]; d == 1 || d == -1 {
			steps++
		}
	}
	if steps >= len(rs)-2 {
		return true
	}
	for _, row := range []string{"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qazwsxedcrfvtgbyhnujmikolp", "qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p"} {
		if strings.Contains(row+row, s) || strings.Contains(reverse(row+row), s) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	rs := []rune(s)
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return string(rs)
}
