//go:build !pkcs11

package server

import "errors"

// pkcs11Built tells whether this binary has the PKCS#11 provider.
const pkcs11Built = false

var errNoPKCS11Build = errors.New(`"pkcs11", but this binary was built without PKCS#11 support; build it with ` + "`go build -tags pkcs11 ./cmd/parley`" + ` (needs cgo), or use provider local`)
