package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// jwksCache fetches and caches the key sets of federated issuers. A set is kept for
// jwksTTL; an unknown kid refetches it, at most once per jwksMinRefetch, so a
// token with a junk kid cannot make us hammer the issuer.
type jwksCache struct {
	client *http.Client
	now    func() time.Time
	group  singleflight.Group

	mu   sync.Mutex
	sets map[string]cachedSet
	// uris caches the jwks_uri each issuer's discovery document names, so a token
	// request does not fetch the discovery document every time.
	uris map[string]cachedURI
}

type cachedURI struct {
	uri     string
	fetched time.Time
}

type cachedSet struct {
	keys    jose.JSONWebKeySet
	fetched time.Time
}

const (
	jwksTTL        = 5 * time.Minute
	jwksMinRefetch = 10 * time.Second
	maxJWKSBytes   = 1 << 20
)

func newJWKSCache(c *http.Client, now func() time.Time) *jwksCache {
	return &jwksCache{client: c, now: now, sets: map[string]cachedSet{}, uris: map[string]cachedURI{}}
}

// key finds kid in the set at uri (or, if uri is empty, the one issuer's discovery
// document names).
func (c *jwksCache) key(ctx context.Context, issuer, uri, kid string) (jose.JSONWebKey, error) {
	if uri == "" {
		var err error
		if uri, err = c.discover(ctx, issuer); err != nil {
			return jose.JSONWebKey{}, err
		}
	}
	c.mu.Lock()
	set, ok := c.sets[uri]
	c.mu.Unlock()
	now := c.now()
	if ok && now.Sub(set.fetched) < jwksTTL {
		if k, found := find(set.keys, kid); found {
			return k, nil
		}
		if now.Sub(set.fetched) < jwksMinRefetch {
			return jose.JSONWebKey{}, fmt.Errorf("no key %q in the issuer's JWKS", kid)
		}
	}
	v, err, _ := c.group.Do(uri, func() (any, error) {
		var keys jose.JSONWebKeySet
		if err := c.getJSON(ctx, uri, &keys); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.sets[uri] = cachedSet{keys: keys, fetched: c.now()}
		c.mu.Unlock()
		return keys, nil
	})
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	if k, found := find(v.(jose.JSONWebKeySet), kid); found {
		return k, nil
	}
	return jose.JSONWebKey{}, fmt.Errorf("no key %q in the issuer's JWKS", kid)
}

func find(set jose.JSONWebKeySet, kid string) (jose.JSONWebKey, bool) {
	for _, k := range set.Keys {
		if (kid == "" || k.KeyID == kid) && k.Use != "enc" {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// discover returns the jwks_uri of issuer's discovery document, cached for jwksTTL.
func (c *jwksCache) discover(ctx context.Context, issuer string) (string, error) {
	c.mu.Lock()
	cached, ok := c.uris[issuer]
	c.mu.Unlock()
	if ok && c.now().Sub(cached.fetched) < jwksTTL {
		return cached.uri, nil
	}
	v, err, _ := c.group.Do("discovery\x00"+issuer, func() (any, error) {
		uri, err := c.fetchDiscovery(ctx, issuer)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		c.uris[issuer] = cachedURI{uri: uri, fetched: c.now()}
		c.mu.Unlock()
		return uri, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *jwksCache) fetchDiscovery(ctx context.Context, issuer string) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := c.getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return "", err
	}
	if doc.Issuer != issuer || doc.JWKSURI == "" {
		return "", fmt.Errorf("the discovery document of %s names issuer %q and jwks_uri %q", issuer, doc.Issuer, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

func (c *jwksCache) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(v); err != nil {
		return fmt.Errorf("fetch %s: not JSON: %w", url, err)
	}
	return nil
}
