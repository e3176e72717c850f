// Package token mints and verifies agentguard's access tokens (RFC 9068 JWTs) and
// keeps the keys that sign them.
package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/secret"
)

// Supported signing algorithms.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// Keyring holds the signing keys: the current one signs, the retired ones stay
// published in the JWKS until every token they signed has expired. Private keys live
// in the store sealed by the KMS and are opened once, at load.
type Keyring struct {
	store Store
	env   *kms.Envelope
	alg   jose.SignatureAlgorithm
	now   func() time.Time
	// retain is how long a retired key stays published: the longest token lifetime
	// plus clock leeway.
	retain time.Duration

	mu      sync.RWMutex
	current *signingKey
	public  map[string]jose.JSONWebKey
	jwks    []byte
	// lastMiss limits reloads triggered by unknown key ids.
	lastMiss time.Time
}

type signingKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer jose.Signer // access tokens: typ at+jwt
	// idSigner signs OpenID Connect ID tokens with the same key but typ JWT, so an ID
	// token is never accepted where an access token is expected.
	idSigner jose.Signer
}

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	Algorithm jose.SignatureAlgorithm // default ES256
	Retain    time.Duration           // how long retired keys stay in the JWKS
	Now       func() time.Time
}

// NewKeyring loads the keys from st, creating the first one if there is none.
func NewKeyring(ctx context.Context, st Store, env *kms.Envelope, cfg KeyringConfig) (*Keyring, error) {
	if cfg.Algorithm == "" {
		cfg.Algorithm = jose.ES256
	}
	if !validAlg(cfg.Algorithm) {
		return nil, fmt.Errorf("signing algorithm %q is not supported (use ES256, RS256 or EdDSA)", cfg.Algorithm)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keyring{store: st, env: env, alg: cfg.Algorithm, now: cfg.Now, retain: cfg.Retain}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	empty := k.current == nil || k.current.alg != k.alg
	k.mu.RUnlock()
	if empty {
		if _, err := k.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func validAlg(a jose.SignatureAlgorithm) bool {
	for _, x := range Algorithms {
		if x == a {
			return true
		}
	}
	return false
}

// Reload reads the published keys from the store (another replica may have rotated).
func (k *Keyring) Reload(ctx context.Context) error {
	keys, err := k.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := k.now()
	public := make(map[string]jose.JSONWebKey, len(keys))
	var set jose.JSONWebKeySet
	var current *signingKey
	for _, sk := range keys {
		if !sk.DropAfter.IsZero() && now.After(sk.DropAfter) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(sk.PublicJWK, &jwk); err != nil {
			return fmt.Errorf("signing key %s: public JWK: %w", sk.KID, err)
		}
		public[sk.KID] = jwk
		set.Keys = append(set.Keys, jwk)
		if current == nil && sk.RetiredAt.IsZero() {
			if current, err = k.open(ctx, sk); err != nil {
				return err
			}
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.current, k.public, k.jwks = current, public, jwks
	k.mu.Unlock()
	return nil
}

func (k *Keyring) open(ctx context.Context, sk SigningKey) (*signingKey, error) {
	der, err := k.env.Open(ctx, sk.PrivateSealed, SigningKeyAAD(sk.KID))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
	}
	alg := jose.SignatureAlgorithm(sk.Alg)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: sk.KID, Algorithm: sk.Alg}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
	}
	idSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: sk.KID, Algorithm: sk.Alg}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.KID, err)
	}
	return &signingKey{kid: sk.KID, alg: alg, signer: signer, idSigner: idSigner}, nil
}

// Rotate makes a new current key and retires the others; they stay published for
// the retention period. It returns the new key id.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	priv, err := generate(k.alg)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	defer clear(der)
	kid := secret.NewID("sig")
	sealed, err := k.env.Seal(ctx, der, SigningKeyAAD(kid))
	if err != nil {
		return "", err
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(k.alg), Use: "sig"})
	if err != nil {
		return "", err
	}
	now := k.now()
	if err := k.store.CreateSigningKey(ctx, SigningKey{KID: kid, Alg: string(k.alg), PublicJWK: pub, PrivateSealed: sealed, CreatedAt: now}); err != nil {
		return "", err
	}
	if err := k.store.RetireSigningKeys(ctx, kid, now, now.Add(k.retain)); err != nil {
		return "", err
	}
	return kid, k.Reload(ctx)
}

func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		return rsa.GenerateKey(rand.Reader, 3072)
	case jose.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("signing algorithm %q is not supported", alg)
}

// JWKS returns the published key set as JSON.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// Algorithm is the algorithm new tokens are signed with.
func (k *Keyring) Algorithm() jose.SignatureAlgorithm { return k.alg }

func (k *Keyring) signer() (*signingKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == nil {
		return nil, fmt.Errorf("no current signing key")
	}
	return k.current, nil
}

// publicKey finds a published key, reloading at most once a second on a miss so a
// rotation on another replica is seen without letting junk kids hammer the store.
func (k *Keyring) publicKey(ctx context.Context, kid string) (jose.JSONWebKey, bool) {
	k.mu.RLock()
	jwk, ok := k.public[kid]
	k.mu.RUnlock()
	if ok {
		return jwk, true
	}
	k.mu.Lock()
	reload := k.now().Sub(k.lastMiss) > time.Second
	if reload {
		k.lastMiss = k.now()
	}
	k.mu.Unlock()
	if !reload || k.Reload(ctx) != nil {
		return jose.JSONWebKey{}, false
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	jwk, ok = k.public[kid]
	return jwk, ok
}

// PublicKeys lists the published keys (for the admin API).
func (k *Keyring) PublicKeys(ctx context.Context) ([]SigningKey, error) {
	return k.store.ListSigningKeys(ctx)
}
