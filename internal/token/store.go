package token

import (
	"context"
	"time"
)

// SigningKey is one key the issuer signs tokens with. The private key is PKCS#8,
// sealed by the KMS envelope with SigningKeyAAD(KID).
type SigningKey struct {
	KID           string
	Alg           string
	PublicJWK     []byte
	PrivateSealed []byte
	CreatedAt     time.Time
	RetiredAt     time.Time // zero: the current key
	DropAfter     time.Time // zero: keep; else leave the JWKS after this time
}

// SigningKeyAAD binds a sealed private key to its key id.
func SigningKeyAAD(kid string) []byte { return []byte("signing_key/" + kid) }

// Store keeps signing keys and revoked token ids.
type Store interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key still published, newest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKeys marks every current key other than keepKID as retired at
	// `at`, to leave the JWKS after dropAfter.
	RetireSigningKeys(ctx context.Context, keepKID string, at, dropAfter time.Time) error
	// DeleteDroppedSigningKeys removes keys whose DropAfter has passed.
	DeleteDroppedSigningKeys(ctx context.Context, now time.Time) (int, error)

	// RevokeToken records jti as revoked until expiresAt (idempotent).
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
}
