// Package kms seals secrets at rest with envelope encryption.
//
// Every secret gets its own random 256-bit data key. The data key encrypts the secret
// with AES-256-GCM; a Wrapper (the local key file, or a cloud KMS) encrypts the data
// key. Both layers take the record's associated data, so a sealed value copied into
// another row fails to open. Rotating the KMS key re-wraps data keys only: the sealed
// secrets themselves are never decrypted in bulk.
package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wrapper encrypts and decrypts data keys under a key the application never sees in
// the cloud case. Implementations: Local (a key file), and any cloud KMS behind the
// same three methods.
type Wrapper interface {
	// Wrap encrypts a data key under the current key and says which key it used.
	Wrap(ctx context.Context, dataKey, aad []byte) (keyID string, wrapped []byte, err error)
	// Unwrap decrypts a data key wrapped by the key keyID.
	Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error)
	// CurrentKeyID names the key new data keys are wrapped under.
	CurrentKeyID() string
	// Ping reports whether the KMS answers (for /readyz).
	Ping(ctx context.Context) error
}

// ErrOpen is returned for any sealed value that fails to open: wrong record, wrong
// key, or tampered bytes. It never says which, so it cannot be used as an oracle.
var ErrOpen = errors.New("kms: sealed value does not open (tampered, moved to another record, or its key is gone)")

const formatV1 = 0x01

// Envelope seals and opens secrets with a data key per value.
type Envelope struct{ w Wrapper }

// NewEnvelope uses w to wrap data keys.
func NewEnvelope(w Wrapper) *Envelope { return &Envelope{w: w} }

// Wrapper returns the KMS behind the envelope.
func (e *Envelope) Wrapper() Wrapper { return e.w }

// Seal encrypts plaintext bound to aad (the record's identity, e.g. "api_key/ak_123/v2").
//
// Layout: 0x01 | u8 len(keyID) | keyID | u16 len(wrapped) | wrapped | 12-byte nonce | ciphertext.
func (e *Envelope) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("kms: data key: %w", err)
	}
	defer clear(dek)
	keyID, wrapped, err := e.w.Wrap(ctx, dek, aad)
	if err != nil {
		return nil, fmt.Errorf("kms: wrap data key: %w", err)
	}
	if len(keyID) > 255 || len(wrapped) > 65535 {
		return nil, errors.New("kms: wrapped data key too large")
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+1+len(keyID)+2+len(wrapped)+gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	out = append(out, formatV1, byte(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("kms: nonce: %w", err)
	}
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same aad.
func (e *Envelope) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	p, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	dek, err := e.w.Unwrap(ctx, p.keyID, p.wrapped, aad)
	if err != nil {
		return nil, ErrOpen
	}
	defer clear(dek)
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, ErrOpen
	}
	if len(p.body) < gcm.NonceSize() {
		return nil, ErrOpen
	}
	pt, err := gcm.Open(nil, p.body[:gcm.NonceSize()], p.body[gcm.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Rewrap re-encrypts the data key of sealed under the current KMS key, leaving the
// ciphertext as it is. It reports changed=false when the value already uses that key.
func (e *Envelope) Rewrap(ctx context.Context, sealed, aad []byte) (out []byte, changed bool, err error) {
	p, err := parse(sealed)
	if err != nil {
		return nil, false, err
	}
	if p.keyID == e.w.CurrentKeyID() {
		return sealed, false, nil
	}
	dek, err := e.w.Unwrap(ctx, p.keyID, p.wrapped, aad)
	if err != nil {
		return nil, false, ErrOpen
	}
	defer clear(dek)
	keyID, wrapped, err := e.w.Wrap(ctx, dek, aad)
	if err != nil {
		return nil, false, fmt.Errorf("kms: wrap data key: %w", err)
	}
	out = make([]byte, 0, len(sealed)+len(wrapped))
	out = append(out, formatV1, byte(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	out = append(out, p.body...)
	return out, true, nil
}

// KeyIDOf names the KMS key that wrapped sealed's data key.
func KeyIDOf(sealed []byte) (string, error) {
	p, err := parse(sealed)
	return p.keyID, err
}

type parsed struct {
	keyID   string
	wrapped []byte
	body    []byte // nonce | ciphertext
}

func parse(b []byte) (parsed, error) {
	if len(b) < 2 || b[0] != formatV1 {
		return parsed{}, ErrOpen
	}
	n := int(b[1])
	b = b[2:]
	if len(b) < n+2 {
		return parsed{}, ErrOpen
	}
	p := parsed{keyID: string(b[:n])}
	b = b[n:]
	m := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < m {
		return parsed{}, ErrOpen
	}
	p.wrapped, p.body = b[:m], b[m:]
	return p, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return cipher.NewGCM(block)
}
