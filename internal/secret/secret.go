// Package secret makes identifiers and high-entropy secrets and compares them.
//
// Secrets generated here carry 256 bits of entropy, so a single SHA-256 is the right
// hash for storing them: a slow password hash buys nothing against brute force of a
// 2^256 space and would cost milliseconds per token request.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix_ followed by 26 characters: 48 bits of milliseconds then 80
// random bits, so IDs sort by creation time (ULID layout, Crockford alphabet).
func NewID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// New returns prefix_ followed by 32 random bytes in base64url (256 bits).
func New(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is the stored form of a generated secret: hex-free raw SHA-256, base64url.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Matches reports in constant time whether s hashes to stored.
func Matches(s, stored string) bool {
	return subtle.ConstantTimeCompare([]byte(Hash(s)), []byte(stored)) == 1
}

// Equal compares two secrets in constant time (length leaks, content does not).
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// HasPrefix reports whether s looks like a secret made by New with that prefix.
func HasPrefix(s, prefix string) bool { return strings.HasPrefix(s, prefix+"_") }
