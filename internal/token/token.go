package token

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/secret"
)

// Claims are an access token's claims (RFC 9068 plus RFC 8693 act).
type Claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope,omitempty"`
	Act       *Actor           `json:"act,omitempty"`
}

// Actor is the RFC 8693 act claim; nested for chained delegation.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Leeway tolerated on exp/nbf/iat between clocks.
const Leeway = 30 * time.Second

// Issuer signs and verifies this server's access tokens.
type Issuer struct {
	URL     string
	Keyring *Keyring
	Store   Store
	Now     func() time.Time

	verified verifiedCache
}

// Issue fills iss, iat, nbf, exp and jti (unless the caller chose one with NewJTI,
// to record it before the token exists) and signs the claims. It returns the token.
func (is *Issuer) Issue(c Claims, lifetime time.Duration) (string, Claims, error) {
	now := is.Now()
	c.Issuer = is.URL
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = c.IssuedAt
	c.Expiry = jwt.NewNumericDate(now.Add(lifetime))
	if c.ID == "" {
		c.ID = NewJTI()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", c, err
	}
	sk, err := is.Keyring.signer()
	if err != nil {
		return "", c, err
	}
	jws, err := sk.signer.Sign(payload)
	if err != nil {
		return "", c, fmt.Errorf("sign token: %w", err)
	}
	s, err := jws.CompactSerialize()
	return s, c, err
}

// NewJTI makes an access token id.
func NewJTI() string { return secret.NewID("at") }

// Verification errors. ErrInvalid covers any token that is not one of ours, so a
// caller learns nothing about which check failed beyond what it logs.
var (
	ErrInvalid = errors.New("token is malformed, not signed by this issuer, or of the wrong type")
	ErrExpired = errors.New("token is expired or not yet valid")
	ErrRevoked = errors.New("token is revoked")
)

// Verify checks signature, type, issuer and time of an access token of this issuer,
// and that it is not revoked. It does not check the audience: callers do.
func (is *Issuer) Verify(ctx context.Context, raw string) (Claims, error) {
	c, err := is.VerifySignature(ctx, raw)
	if err != nil {
		return c, err
	}
	revoked, err := is.Store.IsRevoked(ctx, c.ID)
	if err != nil {
		return c, err
	}
	if revoked {
		return c, ErrRevoked
	}
	return c, nil
}

// VerifySignature is Verify without the revocation lookup.
func (is *Issuer) VerifySignature(ctx context.Context, raw string) (Claims, error) {
	var c Claims
	if len(raw) > 16<<10 {
		return c, ErrInvalid
	}
	key := sha256.Sum256([]byte(raw))
	c, ok := is.verified.get(key)
	if !ok {
		var err error
		if c, err = is.verifySignature(ctx, raw); err != nil {
			return c, err
		}
		is.verified.put(key, c)
	}
	now := is.Now()
	if now.After(c.Expiry.Time().Add(Leeway)) || (c.NotBefore != nil && now.Add(Leeway).Before(c.NotBefore.Time())) {
		return c, ErrExpired
	}
	return c, nil
}

// verifySignature parses raw and checks its header, signature and issuer.
func (is *Issuer) verifySignature(ctx context.Context, raw string) (Claims, error) {
	var c Claims
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return c, ErrInvalid
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return c, ErrInvalid
	}
	jwk, ok := is.Keyring.publicKey(ctx, h.KeyID)
	if !ok || jwk.Algorithm != h.Algorithm {
		return c, ErrInvalid
	}
	if err := tok.Claims(jwk.Key, &c); err != nil {
		return c, ErrInvalid
	}
	if c.Issuer != is.URL || c.ID == "" || c.Expiry == nil {
		return c, ErrInvalid
	}
	return c, nil
}

// verifiedCache remembers the claims of tokens whose signature checked out, keyed by
// the SHA-256 of the exact token text, so a resource server introspecting the same
// token on every call costs one signature check, not one per call (an ES256
// verification is most of an introspection's CPU). Only the signature, header and
// issuer checks are remembered: time and revocation are checked on every call, and
// a retired signing key stays published until every token it signed has expired,
// so a remembered signature never outlives its key. Bounded: full means cleared.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[[32]byte]Claims
}

const maxVerified = 8192

func (v *verifiedCache) get(k [32]byte) (Claims, bool) {
	v.mu.RLock()
	c, ok := v.m[k]
	v.mu.RUnlock()
	return c, ok
}

func (v *verifiedCache) put(k [32]byte, c Claims) {
	v.mu.Lock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[32]byte]Claims, 256)
	}
	v.m[k] = c
	v.mu.Unlock()
}
