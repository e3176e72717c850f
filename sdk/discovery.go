package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Metadata is the part of agentguard's RFC 8414 metadata the SDK uses.
type Metadata struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
}

// metadataCache holds the discovered metadata once it has been fetched.
type metadataCache struct {
	mu sync.Mutex
	m  *Metadata
}

// Metadata returns the issuer's metadata, fetched once (RFC 8414, then OpenID
// Discovery) and checked: its issuer must be the configured one (RFC 8414 §3.3), and
// its endpoints https (or loopback http).
func (c *Client) Metadata(ctx context.Context) (Metadata, error) {
	c.meta.mu.Lock()
	m := c.meta.m
	c.meta.mu.Unlock()
	if m != nil {
		return *m, nil
	}
	md, err := sharedDo(ctx, &c.flight, "discovery", "discovery", c.discover)
	if err != nil {
		return Metadata{}, err
	}
	c.meta.mu.Lock()
	c.meta.m = &md
	c.meta.mu.Unlock()
	return md, nil
}

func (c *Client) tokenEndpoint(ctx context.Context) (string, error) {
	if c.cfg.TokenEndpoint != "" {
		return c.cfg.TokenEndpoint, nil
	}
	m, err := c.Metadata(ctx)
	if err != nil {
		return "", err
	}
	return m.TokenEndpoint, nil
}

func (c *Client) discover(ctx context.Context) (Metadata, error) {
	var lastErr error
	for _, u := range wellKnownURLs(c.issuer) {
		body, _, err := c.do(ctx, call{op: "discovery", build: func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Accept", "application/json")
			}
			return req, err
		}})
		if err != nil {
			lastErr = err
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return Metadata{}, err
		}
		var m Metadata
		if err := json.Unmarshal(body, &m); err != nil {
			return Metadata{}, &Error{Op: "discovery", Err: errors.New(u + " is not JSON metadata"), kind: ErrProtocol}
		}
		if strings.TrimSuffix(m.Issuer, "/") != c.issuer {
			return Metadata{}, &Error{Op: "discovery", Err: errors.New(u + " names issuer " + truncate(m.Issuer, 200) + ", not the configured " + c.issuer), kind: ErrProtocol}
		}
		if err := checkURL(m.TokenEndpoint, c.cfg.AllowInsecureHTTP); err != nil {
			return Metadata{}, &Error{Op: "discovery", Err: errors.New("token_endpoint: " + err.Error()), kind: ErrProtocol}
		}
		return m, nil
	}
	return Metadata{}, lastErr
}

// wellKnownURLs are RFC 8414's location (the well-known segment before the issuer's
// path) and OpenID Discovery's (after it).
func wellKnownURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return []string{issuer + "/.well-known/openid-configuration"}
	}
	path := strings.TrimSuffix(u.Path, "/")
	rfc := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path
	return []string{rfc, issuer + "/.well-known/openid-configuration"}
}
