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
	"sync"
	"time"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix_ followed by 26 characters: 48 bits of milliseconds then 80
// random bits, so IDs sort by creation time (ULID layout, Crockford alphabet).
// Within one process they are strictly increasing: an id made in the same
// millisecond as the previous one adds a random step to its 80 bits instead of
// drawing new ones (ULID's monotonic mode, with an unpredictable step), so ids
// made in a row sort in the order they were made.
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	idState.Lock()
	if ms > idState.ms {
		idState.ms = ms
		mustRand(idState.rnd[:])
	} else {
		var step [4]byte
		mustRand(step[:])
		if addStep(&idState.rnd, uint64(binary.BigEndian.Uint32(step[:]))+1) {
			idState.ms++ // 80 bits overflowed: borrow the next millisecond
		}
	}
	binary.BigEndian.PutUint64(b[:8], idState.ms<<16)
	copy(b[6:], idState.rnd[:])
	idState.Unlock()
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// idState is the last id's millisecond and random part.
var idState struct {
	sync.Mutex
	ms  uint64
	rnd [10]byte
}

// addStep adds step to the big-endian 80-bit r and reports a carry out of it.
func addStep(r *[10]byte, step uint64) bool {
	carry := step
	for i := len(r) - 1; i >= 0 && carry > 0; i-- {
		sum := uint64(r[i]) + carry&0xff
		r[i] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	return carry > 0
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
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
