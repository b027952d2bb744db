//go:build pkcs11

package server

// pkcs11Built tells whether this binary has the PKCS#11 provider.
const pkcs11Built = true

var errNoPKCS11Build error
