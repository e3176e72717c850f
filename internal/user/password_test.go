package user

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// cheap parameters keep the unit tests fast; the algorithm and encoding are the
// same as with DefaultParams.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := &Hasher{Params: cheap}
	stored, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with its parameters", stored)
	}
	if strings.Contains(stored, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	again, _ := h.Hash(ctx, "correct horse battery staple")
	if again == stored {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, password string
		ok             bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapler", false},
		{"case", "Correct horse battery staple", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		ok, rehash, err := h.Verify(ctx, tt.password, stored)
		if err != nil || ok != tt.ok || rehash {
			t.Errorf("%s: ok %v rehash %v err %v; want ok %v, no rehash", tt.name, ok, rehash, err, tt.ok)
		}
	}
	// Stronger parameters: the old hash still verifies and asks to be re-hashed.
	stronger := &Hasher{Params: Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}}
	ok, rehash, err := stronger.Verify(ctx, "correct horse battery staple", stored)
	if err != nil || !ok || !rehash {
		t.Fatalf("verify under new parameters: ok %v rehash %v err %v; want ok and rehash", ok, rehash, err)
	}
	// A failed match never asks for a re-hash (nothing to re-hash with).
	if _, rehash, _ := stronger.Verify(ctx, "wrong password!!", stored); rehash {
		t.Fatal("rehash requested after a failed match")
	}
}

// A user without a password never matches, even an empty password, and costs one
// argon2id computation like a real check.
func TestVerifyWithoutStoredHash(t *testing.T) {
	h := &Hasher{Params: cheap}
	h.init()
	before := h.Computations()
	for _, pw := range []string{"", "anything at all"} {
		ok, rehash, err := h.Verify(context.Background(), pw, "")
		if ok || rehash || err != nil {
			t.Fatalf("Verify(%q, no hash) = %v %v %v; want false", pw, ok, rehash, err)
		}
	}
	if got := h.Computations() - before; got != 2 {
		t.Fatalf("%d computations for two checks, want 2", got)
	}
}

func TestDecodeHashRefusesMalformed(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	if _, _, _, err := DecodeHash(good); err != nil {
		t.Fatalf("good hash refused: %v", err)
	}
	for name, s := range map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$abcdefghijklmnopqrstuu5Hq8q0nE8aG8VgNQwqgZ5Q0Qe5v4G2",
		"argon2i":          strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":      strings.Replace(good, "v=19", "v=16", 1),
		"missing p":        strings.Replace(good, ",p=1", "", 1),
		"unknown key":      strings.Replace(good, "p=1", "x=1", 1),
		"memory too big":   strings.Replace(good, "m=64", "m=9999999", 1),
		"memory too small": strings.Replace(good, "m=64", "m=1", 1),
		"zero passes":      strings.Replace(good, "t=1", "t=0", 1),
		"many passes":      strings.Replace(good, "t=1", "t=1000", 1),
		"many lanes":       strings.Replace(good, "p=1", "p=300", 1),
		"bad salt":         strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "!!", 1),
		"short salt":       strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "c2E", 1),
		"short hash":       strings.Replace(good, "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", "aGFzaA", 1),
		"padded base64":    good + "=",
		"extra field":      good + "$x",
		"negative":         strings.Replace(good, "m=64", "m=-64", 1),
	} {
		if _, _, _, err := DecodeHash(s); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: err %v, want ErrMalformedHash", name, err)
		}
	}
}

// Whatever a stored hash holds, decoding never panics and never returns parameters
// that would make one verification expensive.
func FuzzDecodeHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$$")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$AA$AA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := DecodeHash(s)
		if err != nil {
			return
		}
		if p.Memory > maxMemory || p.Time > maxTime || p.Threads > maxThreads || len(salt) > maxSaltLen || len(key) > maxKeyLen || len(key) < minKeyLen {
			t.Fatalf("accepted out-of-bounds parameters %+v (salt %d, key %d)", p, len(salt), len(key))
		}
	})
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		password, username string
		ok                 bool
	}{
		{"correct horse battery", "alice", true},
		{"Zwölf Zeichen", "alice", true}, // 13 characters, more bytes
		{"short", "alice", false},
		{"elevenchars", "alice", false},
		{"twelve chars", "alice", true},
		{"alice.example.com", "Alice.Example.Com", false},
		{strings.Repeat("a", MaxPasswordBytes), "alice", true},
		{strings.Repeat("a", MaxPasswordBytes+1), "alice", false},
		{"with a\nnewline inside", "alice", false},
		{"\xff\xfe invalid utf-8 bytes", "alice", false},
	}
	for _, tt := range tests {
		msg := CheckPassword(tt.password, tt.username)
		if (msg == "") != tt.ok {
			t.Errorf("CheckPassword(%.20q) = %q, want ok=%v", tt.password, msg, tt.ok)
		}
	}
}

// When every hashing slot is taken, a caller waits, and gives up when its request
// ends rather than queueing forever.
func TestHasherConcurrencyBound(t *testing.T) {
	h := &Hasher{Params: cheap, Concurrency: 1}
	h.init()
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "some password here"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with all slots taken and a cancelled context: %v, want context.Canceled", err)
	}
	h.release()
	if _, err := h.Hash(context.Background(), "some password here"); err != nil {
		t.Fatalf("Hash after the slot was released: %v", err)
	}
}

func BenchmarkHashDefaultParams(b *testing.B) {
	h := &Hasher{}
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
