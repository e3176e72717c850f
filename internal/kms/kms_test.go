package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newLocal(t testing.TB) (*Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", LocalKeyFile)
	l, err := OpenLocal(path)
	if err != nil {
		t.Fatalf("OpenLocal: %v", err)
	}
	return l, path
}

func seal(t testing.TB, e *Envelope, plaintext, aad string) []byte {
	t.Helper()
	b, err := e.Seal(context.Background(), []byte(plaintext), []byte(aad))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return b
}

func TestSealOpenRoundTrip(t *testing.T) {
	l, _ := newLocal(t)
	e := NewEnvelope(l)
	for _, tt := range []struct{ name, plaintext, aad string }{
		{"empty value", "", "api_key/ak_1/v1"},
		{"short value", "sk-live-123", "api_key/ak_1/v1"},
		{"empty aad", "value", ""},
		{"64 KiB value", strings.Repeat("x", 64<<10), "signing_key/sig_1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed := seal(t, e, tt.plaintext, tt.aad)
			if tt.plaintext != "" && bytes.Contains(sealed, []byte(tt.plaintext)) {
				t.Fatal("sealed value contains the plaintext")
			}
			got, err := e.Open(context.Background(), sealed, []byte(tt.aad))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if string(got) != tt.plaintext {
				t.Fatalf("Open = %d bytes, want the %d sealed", len(got), len(tt.plaintext))
			}
			if id, err := KeyIDOf(sealed); err != nil || id != l.CurrentKeyID() {
				t.Fatalf("KeyIDOf = %q, %v; want the current key %q", id, err, l.CurrentKeyID())
			}
		})
	}
	// Two seals of one value differ (fresh data key and nonce each time).
	if bytes.Equal(seal(t, e, "v", "a"), seal(t, e, "v", "a")) {
		t.Fatal("sealing twice gave identical bytes")
	}
}

// A sealed value copied into another record must not open there.
func TestOpenWithAnotherRecordsAADFails(t *testing.T) {
	l, _ := newLocal(t)
	e := NewEnvelope(l)
	sealed := seal(t, e, "secret", "api_key/ak_1/v1")
	for _, aad := range []string{"api_key/ak_2/v1", "api_key/ak_1/v2", "", "api_key/ak_1/v1 "} {
		if _, err := e.Open(context.Background(), sealed, []byte(aad)); !errors.Is(err, ErrOpen) {
			t.Errorf("Open with aad %q: err = %v, want ErrOpen", aad, err)
		}
	}
}

// Every byte is covered: header, key id, wrapped key, nonce, ciphertext and tag.
func TestOpenFlippedByteAnywhereFails(t *testing.T) {
	l, _ := newLocal(t)
	e := NewEnvelope(l)
	sealed := seal(t, e, "secret value", "rec")
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(sealed)
			b[i] ^= mask
			if pt, err := e.Open(context.Background(), b, []byte("rec")); !errors.Is(err, ErrOpen) {
				t.Fatalf("byte %d ^ %#x: Open = %q, %v; want ErrOpen", i, mask, pt, err)
			}
		}
	}
}

func TestOpenTruncatedFails(t *testing.T) {
	l, _ := newLocal(t)
	e := NewEnvelope(l)
	sealed := seal(t, e, "secret value", "rec")
	for n := 0; n < len(sealed); n++ {
		if _, err := e.Open(context.Background(), sealed[:n], []byte("rec")); !errors.Is(err, ErrOpen) {
			t.Fatalf("first %d of %d bytes: err = %v, want ErrOpen", n, len(sealed), err)
		}
	}
	// Extra bytes appended are tampering too.
	if _, err := e.Open(context.Background(), append(bytes.Clone(sealed), 0), []byte("rec")); !errors.Is(err, ErrOpen) {
		t.Fatalf("appended byte: err = %v, want ErrOpen", err)
	}
}

// The keyring holds every KMS key in the clear: only the owner may read it.
func TestKeyringFileIsCreated0600(t *testing.T) {
	_, path := newLocal(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("keyring mode = %v, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("data dir mode = %v, want no group/other access", perm)
	}
	// Rotation rewrites the file: still 0600, and no temporary file is left.
	l, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Rotate(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode after rotate = %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d files after rotate, want only the keyring", len(entries))
	}
}

func TestRotateNewSealsUseNewKeyOldStillOpen(t *testing.T) {
	l, path := newLocal(t)
	e := NewEnvelope(l)
	old := l.CurrentKeyID()
	before := seal(t, e, "before", "rec")
	id, err := l.Rotate()
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if id == old || l.CurrentKeyID() != id || !strings.HasPrefix(id, "kek_") {
		t.Fatalf("Rotate = %q, current %q, old %q: want a new kek_ id made current", id, l.CurrentKeyID(), old)
	}
	after := seal(t, e, "after", "rec")
	if got, _ := KeyIDOf(after); got != id {
		t.Fatalf("new seal uses key %q, want the rotated key %q", got, id)
	}
	if got, _ := KeyIDOf(before); got != old {
		t.Fatalf("old seal reports key %q, want %q", got, old)
	}
	for name, v := range map[string][]byte{"before": before, "after": after} {
		if pt, err := e.Open(context.Background(), v, []byte("rec")); err != nil || string(pt) != name {
			t.Fatalf("Open %s rotation: %q, %v", name, pt, err)
		}
	}
	if ids := l.KeyIDs(); len(ids) != 2 || ids[0] != old || ids[1] != id {
		t.Fatalf("KeyIDs = %v, want [%s %s]", ids, old, id)
	}
	// The file keeps both keys and both creation times.
	var f keyringFile
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Current != id || len(f.Keys) != 2 || f.Created[old] == "" || f.Created[id] == "" {
		t.Fatalf("keyring after rotate: current %q, %d keys, created %v", f.Current, len(f.Keys), f.Created)
	}
}

// `agentguard kms rotate` runs in another process than the servers: a server's
// Local must open values sealed under the key it has not seen yet, and seal new
// values under it.
func TestSecondLocalSeesAnotherProcesssRotation(t *testing.T) {
	server, path := newLocal(t)
	cli, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if server.CurrentKeyID() != cli.CurrentKeyID() {
		t.Fatal("two Locals on one file disagree on the current key")
	}
	id, err := cli.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, NewEnvelope(cli), "rotated", "rec")
	pt, err := NewEnvelope(server).Open(context.Background(), sealed, []byte("rec"))
	if err != nil || string(pt) != "rotated" {
		t.Fatalf("server opening a value sealed after another process rotated: %q, %v", pt, err)
	}
	fresh := seal(t, NewEnvelope(server), "fresh", "rec")
	if got, _ := KeyIDOf(fresh); got != id {
		t.Fatalf("server seals under %q after the rotation, want the new key %q", got, id)
	}
	// A key id that is in no keyring fails to open, without reading forever.
	bogus := bytes.Clone(sealed)
	copy(bogus[2:], "kek_zzzzzzzzzzzzzzzzzzzzzzzzzz")
	if _, err := NewEnvelope(server).Open(context.Background(), bogus, []byte("rec")); !errors.Is(err, ErrOpen) {
		t.Fatalf("unknown key id: err = %v, want ErrOpen", err)
	}
}

func TestRewrapChangesOnlyTheWrappedKey(t *testing.T) {
	l, _ := newLocal(t)
	e := NewEnvelope(l)
	ctx := context.Background()
	sealed := seal(t, e, "secret", "rec")
	old, _ := parse(sealed)

	if out, changed, err := e.Rewrap(ctx, sealed, []byte("rec")); err != nil || changed || !bytes.Equal(out, sealed) {
		t.Fatalf("Rewrap under the current key: changed=%v err=%v, want unchanged", changed, err)
	}
	id, err := l.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Rewrap(ctx, sealed, []byte("other")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Rewrap with another record's aad: err = %v, want ErrOpen", err)
	}
	out, changed, err := e.Rewrap(ctx, sealed, []byte("rec"))
	if err != nil || !changed {
		t.Fatalf("Rewrap after rotate: changed=%v err=%v", changed, err)
	}
	p, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.keyID != id {
		t.Fatalf("rewrapped key id = %q, want %q", p.keyID, id)
	}
	if !bytes.Equal(p.body, old.body) {
		t.Fatal("Rewrap changed the nonce or ciphertext; it must only re-wrap the data key")
	}
	if bytes.Equal(p.wrapped, old.wrapped) {
		t.Fatal("Rewrap left the wrapped data key as it was")
	}
	if pt, err := e.Open(ctx, out, []byte("rec")); err != nil || string(pt) != "secret" {
		t.Fatalf("Open rewrapped: %q, %v", pt, err)
	}
	if _, err := e.Open(ctx, out, []byte("other")); !errors.Is(err, ErrOpen) {
		t.Fatalf("rewrapped value opens with another aad: %v", err)
	}
	if _, changed, _ := e.Rewrap(ctx, out, []byte("rec")); changed {
		t.Fatal("second Rewrap changed a value already under the current key")
	}
	if _, _, err := e.Rewrap(ctx, out[:5], []byte("rec")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Rewrap of truncated input: err = %v, want ErrOpen", err)
	}
}

// A damaged keyring must stop the process with a message naming the file and the
// problem, and must never be replaced by a fresh one (that would lose every key).
func TestCorruptKeyringGivesClearError(t *testing.T) {
	for _, tt := range []struct{ name, content, want string }{
		{"not JSON", "{not json", "not a valid keyring file"},
		{"empty file", "", "not a valid keyring file"},
		{"current key missing", `{"current":"kek_a","keys":{"kek_b":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`, `current key "kek_a" is missing`},
		{"key not base64", `{"current":"kek_a","keys":{"kek_a":"***"}}`, `key "kek_a" is not 32 base64 bytes`},
		{"key too short", `{"current":"kek_a","keys":{"kek_a":"AAAA"}}`, `key "kek_a" is not 32 base64 bytes`},
		{"no keys", `{"current":"","keys":{}}`, `current key "" is missing`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), LocalKeyFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenLocal(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("OpenLocal = %v, want an error naming %s and saying %q", err, path, tt.want)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Fatal("OpenLocal rewrote a damaged keyring")
			}
		})
	}
}

// Several processes starting on an empty data dir end up with one keyring.
func TestConcurrentOpenLocalCreatesOneKeyring(t *testing.T) {
	path := filepath.Join(t.TempDir(), LocalKeyFile)
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := OpenLocal(path)
			if err == nil {
				ids[i] = l.CurrentKeyID()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("OpenLocal %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("OpenLocal %d uses key %q, %d uses %q: one keyring overwrote another", i, ids[i], 0, ids[0])
		}
	}
}

// FuzzOpen: arbitrary bytes never panic and never open; KeyIDOf and Rewrap agree.
func FuzzOpen(f *testing.F) {
	l, err := OpenLocal(filepath.Join(f.TempDir(), LocalKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	e := NewEnvelope(l)
	valid := seal(f, e, "secret", "rec")
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Add([]byte{formatV1, 0, 0, 0})
	f.Add([]byte{formatV1, 255, 1, 2, 3})
	f.Add(append([]byte{formatV1, 0, 0xff, 0xff}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Equal(b, valid) {
			return
		}
		pt, err := e.Open(context.Background(), b, []byte("rec"))
		if err == nil {
			t.Fatalf("forged input opened to %q", pt)
		}
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("Open error %v is not ErrOpen", err)
		}
		_, _ = KeyIDOf(b)
		if out, changed, err := e.Rewrap(context.Background(), b, []byte("rec")); err == nil && changed {
			t.Fatalf("forged input re-wrapped to %d bytes", len(out))
		}
	})
}
