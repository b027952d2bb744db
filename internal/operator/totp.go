package operator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew accepts the codes of one step before and after the
	// current one (clock drift, a code typed as it changes).
	totpSkew = 1
)

// newTOTP makes a secret (160 bits, RFC 4226's recommendation) for the
// operator name.
func (s *Service) newTOTP(name string) (*otp.Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: name, Period: totpPeriod, SecretSize: 20,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("generate TOTP secret: %w", err)
	}
	return k, nil
}

// qrDataURL is the key's otpauth URI as a PNG QR code in a data: URL.
func qrDataURL(k *otp.Key) (string, error) {
	img, err := k.Image(256, 256)
	if err != nil {
		return "", fmt.Errorf("draw QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("draw QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func totpAAD(operatorID string) []byte { return []byte("operator-totp\x00" + operatorID) }

func (s *Service) sealTOTP(ctx context.Context, operatorID, secret string) ([]byte, error) {
	if err := s.cfg.Sealer.Prepare(ctx, TOTPScope); err != nil {
		return nil, fmt.Errorf("seal TOTP secret: %w", err)
	}
	b, err := s.cfg.Sealer.Seal(ctx, TOTPScope, []byte(secret), totpAAD(operatorID))
	if err != nil {
		return nil, fmt.Errorf("seal TOTP secret: %w", err)
	}
	return b, nil
}

func (s *Service) openTOTP(ctx context.Context, operatorID string, sealed []byte) (string, error) {
	b, err := s.cfg.Sealer.Open(ctx, TOTPScope, sealed, totpAAD(operatorID))
	if err != nil {
		return "", fmt.Errorf("open TOTP secret: %w", err)
	}
	return string(b), nil
}

// matchTOTP returns the time step whose code equals code (within the
// skew), or ok false. Every candidate is compared, in constant time.
func matchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		st := cur + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(st*totpPeriod, 0), totp.ValidateOpts{Period: totpPeriod,
			Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = st, true
		}
	}
	return step, ok
}

// checkTOTP verifies code against the operator's secret and records its
// step, so that the same code (or an older one) is refused afterwards.
func (s *Service) checkTOTP(ctx context.Context, id string, sealed []byte, code string) (bool, error) {
	if len(sealed) == 0 {
		return false, nil
	}
	secret, err := s.openTOTP(ctx, id, sealed)
	if err != nil {
		return false, err
	}
	step, ok := matchTOTP(secret, code, s.now())
	if !ok {
		return false, nil
	}
	return s.st.AcceptTOTPStep(ctx, id, step)
}

// --- recovery codes ---

const recoveryCodes = 10

// recoveryAlphabet: lower-case base32 without 0, 1, 8 and 9's look-alikes.
const recoveryAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// newRecoveryCodes makes 10 codes of 16 characters (80 bits), written
// xxxx-xxxx-xxxx-xxxx, and their hashes.
func newRecoveryCodes(operatorID string) (codes []string, hashes [][]byte) {
	for range recoveryCodes {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			panic("crypto/rand: " + err.Error())
		}
		var b strings.Builder
		for i := range 16 {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[raw[i]&31]) // 32 letters: no bias
		}
		codes = append(codes, b.String())
		hashes = append(hashes, recoveryHash(operatorID, b.String()))
	}
	return codes, hashes
}

// recoveryHash hashes a code normalised (lower case, no dashes or
// spaces), bound to the operator.
func recoveryHash(operatorID, code string) []byte {
	c := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
	return hashOf("recovery\x00" + operatorID + "\x00" + c)
}
