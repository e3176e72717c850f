package token

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// IDClaims are an OpenID Connect ID token's claims (OIDC Core §2, §5.1).
type IDClaims struct {
	Issuer   string           `json:"iss"`
	Subject  string           `json:"sub"`
	Audience jwt.Audience     `json:"aud"`
	Expiry   *jwt.NumericDate `json:"exp"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	Nonce    string           `json:"nonce,omitempty"`
	AtHash   string           `json:"at_hash,omitempty"`
	// SID is the sign-in session (OIDC Front-/Back-Channel Logout), so logout can
	// name the session an ID token came from.
	SID string `json:"sid,omitempty"`

	// Claims by scope: profile, email, groups.
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// IssueIDToken fills iss, iat and exp, and at_hash for accessToken when it is not
// empty, and signs the claims with the current key as a JWT (header typ JWT, never
// at+jwt: an ID token is not an access token).
func (is *Issuer) IssueIDToken(c IDClaims, lifetime time.Duration, accessToken string) (string, error) {
	now := is.Now()
	c.Issuer = is.URL
	c.IssuedAt = jwt.NewNumericDate(now)
	c.Expiry = jwt.NewNumericDate(now.Add(lifetime))
	sk, err := is.Keyring.signer()
	if err != nil {
		return "", err
	}
	if accessToken != "" {
		c.AtHash = TokenHash(sk.alg, accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := sk.idSigner.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign ID token: %w", err)
	}
	return jws.CompactSerialize()
}

// TokenHash is OIDC Core §3.1.3.6 at_hash: the left half of the hash of the token,
// with the hash of the signing algorithm (SHA-256 for ES256/RS256, SHA-512 for
// EdDSA as used with Ed25519), base64url.
func TokenHash(alg jose.SignatureAlgorithm, tok string) string {
	var h hash.Hash
	switch alg {
	case jose.EdDSA:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(tok))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// VerifyIDToken checks that raw is an ID token this issuer signed (typ JWT, a
// published key, iss) and returns its claims. It does not check time: an
// id_token_hint at logout may have expired (OIDC RP-Initiated Logout §2).
func (is *Issuer) VerifyIDToken(ctx context.Context, raw string) (IDClaims, error) {
	var c IDClaims
	if len(raw) > 16<<10 {
		return c, ErrInvalid
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil || len(tok.Headers) != 1 {
		return c, ErrInvalid
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return c, ErrInvalid
	}
	jwk, ok := is.Keyring.publicKey(ctx, h.KeyID)
	if !ok || jwk.Algorithm != h.Algorithm {
		return c, ErrInvalid
	}
	if err := tok.Claims(jwk.Key, &c); err != nil {
		return c, ErrInvalid
	}
	if c.Issuer != is.URL || c.Subject == "" || len(c.Audience) == 0 {
		return c, ErrInvalid
	}
	return c, nil
}
