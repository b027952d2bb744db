package identity

import "crypto"

import _ "crypto/sha256" // registers SHA-256 for thumbprints

const cryptoSHA256 = crypto.SHA256
