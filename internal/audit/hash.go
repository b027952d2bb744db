package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// entryDomain starts every entry's canonical encoding: a hash of an audit
// entry is never the hash of anything else Parley encodes.
const entryDomain = "parley-audit-entry-v1\x00"

// Canonical is the unambiguous encoding an entry's hash covers: the
// domain string, then seq (8 bytes, big endian), the time as Unix
// nanoseconds (8 bytes, big endian, two's complement), then actor, role,
// action, target, outcome and client, each as a 4-byte big-endian length
// and its bytes, then the number of detail pairs (4 bytes) and each pair,
// sorted by key, as two length-prefixed strings, and last the previous
// hash, length-prefixed. Every variable field carries its length, so no
// two different entries encode alike.
func Canonical(e Entry) []byte {
	n := len(entryDomain) + 16 + 4*9 + len(e.Prev)
	for _, s := range []string{e.Actor, e.Role, e.Action, e.Target, string(e.Outcome), e.Client} {
		n += len(s)
	}
	for k, v := range e.Detail {
		n += 8 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, entryDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	for _, s := range []string{e.Actor, e.Role, e.Action, e.Target, string(e.Outcome), e.Client} {
		b = appendString(b, s)
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, e.Detail[k])
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Prev)))
	return append(b, e.Prev...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// HashEntry is SHA-256 over Canonical(e): what e.Hash must be.
func HashEntry(e Entry) []byte {
	h := sha256.Sum256(Canonical(e))
	return h[:]
}
