package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// publicKey is one usable verification key from the JWKS.
type publicKey struct {
	key crypto.PublicKey
	alg string // the JWK's alg, or the only algorithm its type and curve allow
	// algs lists what an RSA key without alg may verify (RS256, PS256, …).
	algs []string
}

// keySet is an immutable snapshot of the issuer's keys.
type keySet struct {
	keys    map[string]publicKey
	fetched time.Time
}

// keyCache holds the issuer's JWKS: read lock-free on every request, refreshed when
// older than ttl, and refetched when a token names an unknown kid, at most once per
// minInterval (so garbage kids cannot make the verifier hammer the issuer).
type keyCache struct {
	http        *http.Client
	issuer      string
	jwksURL     string // empty: discovered from the issuer's metadata
	ttl         time.Duration
	minInterval time.Duration
	now         func() time.Time
	insecure    bool

	set         atomic.Pointer[keySet]
	mu          sync.Mutex
	lastAttempt time.Time
	fetching    bool // a fetch is in flight (under mu)
	flight      singleflight.Group
	fetches     atomic.Int64
}

// errKeysUnavailable: the JWKS could not be fetched and no keys are cached.
var errKeysUnavailable = errors.New("the issuer's signing keys cannot be fetched")

// key returns the key for kid, refreshing the set when needed.
func (kc *keyCache) key(ctx context.Context, kid string) (publicKey, error) {
	ks := kc.set.Load()
	if ks != nil {
		k, ok := ks.keys[kid]
		if ok && kc.now().Sub(ks.fetched) < kc.ttl {
			return k, nil
		}
		if ok {
			// Stale: try to refresh, but a key we have stays usable if that fails.
			if fresh, err := kc.refresh(ctx); err == nil {
				if k2, ok2 := fresh.keys[kid]; ok2 {
					return k2, nil
				}
				return publicKey{}, reasonf("unknown_key", "the token's key %q is no longer published by the issuer", truncate(kid, 64))
			}
			return k, nil
		}
	}
	fresh, err := kc.refresh(ctx)
	if err != nil {
		if ks == nil {
			return publicKey{}, err
		}
		return publicKey{}, reasonf("unknown_key", "the token's key %q is not one of the issuer's", truncate(kid, 64))
	}
	if k, ok := fresh.keys[kid]; ok {
		return k, nil
	}
	return publicKey{}, reasonf("unknown_key", "the token's key %q is not one of the issuer's", truncate(kid, 64))
}

// refresh fetches the JWKS unless one was fetched (or tried) less than minInterval
// ago; concurrent callers share one fetch, and callers that find no keys yet wait
// for the one in flight (a service's first requests all arrive at once).
func (kc *keyCache) refresh(ctx context.Context) (*keySet, error) {
	kc.mu.Lock()
	if !kc.lastAttempt.IsZero() && kc.now().Sub(kc.lastAttempt) < kc.minInterval {
		fetching := kc.fetching
		kc.mu.Unlock()
		if ks := kc.set.Load(); ks != nil {
			return ks, nil
		}
		if !fetching {
			return nil, errKeysUnavailable
		}
	} else {
		kc.lastAttempt, kc.fetching = kc.now(), true
		kc.mu.Unlock()
	}
	ch := kc.flight.DoChan("jwks", func() (any, error) {
		defer func() {
			kc.mu.Lock()
			kc.fetching = false
			kc.mu.Unlock()
		}()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		ks, err := kc.fetch(fctx)
		if err != nil {
			return nil, err
		}
		kc.set.Store(ks)
		return ks, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*keySet), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (kc *keyCache) fetch(ctx context.Context) (*keySet, error) {
	kc.fetches.Add(1)
	u := kc.jwksURL
	if u == "" {
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := kc.getJSON(ctx, metadataURL(kc.issuer), &md); err != nil {
			return nil, err
		}
		if strings.TrimSuffix(md.Issuer, "/") != strings.TrimSuffix(kc.issuer, "/") {
			return nil, fmt.Errorf("%w: the issuer's metadata names issuer %q", errKeysUnavailable, truncate(md.Issuer, 200))
		}
		if err := checkURL(md.JWKSURI, kc.insecure); err != nil {
			return nil, fmt.Errorf("%w: jwks_uri: %v", errKeysUnavailable, err)
		}
		u = md.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := kc.getJSON(ctx, u, &set); err != nil {
		return nil, err
	}
	ks := &keySet{keys: map[string]publicKey{}, fetched: kc.now()}
	for _, k := range set.Keys {
		if k.KeyID == "" || (k.Use != "" && k.Use != "sig") || !k.Valid() || !k.IsPublic() {
			continue
		}
		pk, ok := usableKey(k)
		if ok {
			ks.keys[k.KeyID] = pk
		}
	}
	return ks, nil
}

// usableKey keeps asymmetric public keys and fixes the algorithms each may verify.
func usableKey(k jose.JSONWebKey) (publicKey, bool) {
	switch key := k.Key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[key.Curve.Params().Name]
		if want == "" || (k.Algorithm != "" && k.Algorithm != want) {
			return publicKey{}, false
		}
		return publicKey{key: key, alg: want}, true
	case ed25519.PublicKey:
		if k.Algorithm != "" && k.Algorithm != "EdDSA" {
			return publicKey{}, false
		}
		return publicKey{key: key, alg: "EdDSA"}, true
	case *rsa.PublicKey:
		if key.N.BitLen() < 2048 {
			return publicKey{}, false
		}
		switch k.Algorithm {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return publicKey{key: key, alg: k.Algorithm}, true
		case "":
			return publicKey{key: key, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}, true
		}
	}
	return publicKey{}, false // symmetric ("oct") and anything else: never a verification key here
}

func (kc *keyCache) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := kc.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s answered %d", errKeysUnavailable, u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: %s is not valid JSON: %v", errKeysUnavailable, u, err)
	}
	return nil
}

// metadataURL is RFC 8414's metadata location for issuer.
func metadataURL(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return strings.TrimSuffix(issuer, "/") + "/.well-known/oauth-authorization-server"
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
}
