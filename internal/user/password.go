package user

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules: long enough to resist guessing, short enough that hashing a
// hostile input costs nothing extra (argon2 reads the whole password).
const (
	MinPasswordLength = 12   // characters (runes)
	MaxPasswordBytes  = 1024 // bytes
)

// Params are argon2id's cost parameters. Hashes carry theirs in the PHC string
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so the defaults can rise later: a hash
// made with older parameters still verifies and is re-hashed at the next sign-in.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams are OWASP's first recommended argon2id setting (Password Storage
// Cheat Sheet): 19 MiB of memory, 2 passes, 1 lane; a 16-byte salt and a 32-byte
// hash. About 25 ms per hash on one core of the project's 2-core test machine.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read back from a stored hash, so a tampered row cannot make
// one verification allocate gigabytes or spin for minutes.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	maxSaltLen = 64
	maxKeyLen  = 128
	minKeyLen  = 16
)

// ErrMalformedHash means a stored hash is not an argon2id PHC string this package
// can verify (corrupt row, unknown algorithm, parameters out of bounds).
var ErrMalformedHash = errors.New("user: stored password hash is malformed")

// Hasher hashes and verifies passwords with argon2id. At most Concurrency hashes
// run at once (each holds Params.Memory KiB): a burst of sign-ins queues instead of
// exhausting memory. The zero value uses DefaultParams and 2×GOMAXPROCS slots.
type Hasher struct {
	Params      Params
	Concurrency int

	once  sync.Once
	slots chan struct{}
	dummy string // a hash of a random password, verified for unknown users
	count atomic.Int64
}

// Computations returns how many argon2id computations the hasher has run (tests
// use it to show that every sign-in path costs exactly one).
func (h *Hasher) Computations() int64 { return h.count.Load() }

func (h *Hasher) init() {
	h.once.Do(func() {
		if h.Params == (Params{}) {
			h.Params = DefaultParams
		}
		n := h.Concurrency
		if n <= 0 {
			n = 2 * runtime.GOMAXPROCS(0)
		}
		h.slots = make(chan struct{}, n)
		var pw [24]byte
		if _, err := rand.Read(pw[:]); err != nil {
			panic("user: crypto/rand failed: " + err.Error())
		}
		h.dummy = h.encode(h.Params, pw[:])
	})
}

// acquire waits for a hashing slot or the context's end.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password under the current parameters.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	h.init()
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.encode(h.Params, []byte(password)), nil
}

func (h *Hasher) encode(p Params, password []byte) string {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic("user: crypto/rand failed: " + err.Error())
	}
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	h.count.Add(1)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify reports whether password matches the PHC string stored, in constant time.
// rehash is true when the match was made with parameters other than the current
// ones. An empty stored hash (a user without a password) verifies against a dummy
// hash and never matches, costing the same time as a real check.
func (h *Hasher) Verify(ctx context.Context, password, stored string) (ok, rehash bool, err error) {
	h.init()
	noPassword := stored == ""
	if noPassword {
		stored = h.dummy
	}
	p, salt, key, err := DecodeHash(stored)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	h.count.Add(1)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	if noPassword {
		return false, false, nil
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return ok, ok && p != h.Params, nil
}

// DecodeHash parses an argon2id PHC string, refusing parameters outside the bounds.
func DecodeHash(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformedHash
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, found := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if !found || perr != nil {
			return p, nil, nil, ErrMalformedHash
		}
		switch k {
		case "m":
			p.Memory, seen[0] = uint32(n), true
		case "t":
			p.Time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return p, nil, nil, ErrMalformedHash
			}
			p.Threads, seen[2] = uint8(n), true
		default:
			return p, nil, nil, ErrMalformedHash
		}
	}
	if seen != [3]bool{true, true, true} || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return p, nil, nil, ErrMalformedHash
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > maxSaltLen {
		return p, nil, nil, ErrMalformedHash
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// CheckPassword says what is wrong with a new password, or "" if it is acceptable:
// 12 to 1024 bytes of UTF-8 without control characters, not the username.
func CheckPassword(password, username string) string {
	switch {
	case !utf8.ValidString(password):
		return "must be valid UTF-8"
	case len(password) > MaxPasswordBytes:
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return fmt.Sprintf("must be at least %d characters; a passphrase of a few words is easy to remember", MinPasswordLength)
	case strings.EqualFold(password, username):
		return "must not be the username"
	}
	for _, r := range password {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}
