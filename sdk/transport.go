package sdk

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Target says which token a Transport attaches to requests under a URL prefix.
type Target struct {
	// Prefix is where the target's requests go: a scheme, a host (with port, if not
	// the default) and optionally a path, e.g. "https://files.example.com" or
	// "https://api.example.com/v2/". A path matches whole segments: "/v2" covers
	// "/v2" and "/v2/x", not "/v2x".
	Prefix string
	// Audience is the resource server's audience. Empty: the prefix's scheme and
	// host, e.g. "https://files.example.com".
	Audience string
	// Scopes to ask for (none: every scope the agent is granted there).
	Scopes []string
	// UserToken, if set, is a function returning the signed-in user's token for a
	// request (from its context); the Transport then sends a token exchanged on
	// that user's behalf (ExchangeToken) instead of the agent's own.
	UserToken func(*http.Request) string
}

type target struct {
	Target
	scheme, host, path string
}

// Transport returns an http.RoundTripper that adds "Authorization: Bearer <token>"
// to requests whose URL falls under one of targets (the longest prefix wins), using
// AccessToken (or ExchangeToken with Target.UserToken) and its cache. Requests to
// any other URL go out untouched, so a token never leaks to a host it is not for;
// a request that already has an Authorization header is not changed either.
//
// If the resource server answers 401 with error="invalid_token" (the token was
// revoked or the server's clock disagrees), the Transport drops the token, gets a
// new one and sends the request once more (when its body can be replayed).
//
// base is the RoundTripper that sends the requests (nil: http.DefaultTransport).
// An invalid prefix, or http to a host that is not loopback (without
// Config.AllowInsecureHTTP), is an error.
func (c *Client) Transport(base http.RoundTripper, targets ...Target) (http.RoundTripper, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("agentguard sdk: Transport needs at least one Target")
	}
	t := &transport{c: c, base: base}
	for i, tg := range targets {
		u, err := url.Parse(tg.Prefix)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("agentguard sdk: targets[%d].Prefix %q: want an absolute http(s) URL prefix without query or user info", i, truncate(tg.Prefix, 200))
		}
		if u.Scheme == "http" && !c.cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("agentguard sdk: targets[%d].Prefix %q: tokens would be sent in clear text to a host that is not loopback; use https (or Config.AllowInsecureHTTP)", i, truncate(tg.Prefix, 200))
		}
		tg.Scopes = slices.Clone(tg.Scopes)
		if tg.Audience == "" {
			tg.Audience = u.Scheme + "://" + u.Host
		}
		t.targets = append(t.targets, target{Target: tg, scheme: u.Scheme, host: strings.ToLower(u.Host), path: strings.TrimSuffix(u.Path, "/")})
	}
	// Longest path first, so the most specific prefix wins.
	slices.SortStableFunc(t.targets, func(a, b target) int { return len(b.path) - len(a.path) })
	return t, nil
}

type transport struct {
	c       *Client
	base    http.RoundTripper
	targets []target
}

func (t *transport) match(u *url.URL) *target {
	for i := range t.targets {
		tg := &t.targets[i]
		if u.Scheme != tg.scheme || !strings.EqualFold(u.Host, tg.host) {
			continue
		}
		p := u.Path
		if tg.path == "" || p == tg.path || strings.HasPrefix(p, tg.path+"/") {
			return tg
		}
	}
	return nil
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tg := t.match(req.URL)
	if tg == nil || req.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(req)
	}
	tok, err := t.token(req, tg)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withBearer(req, tok.AccessToken))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || bearerError(resp.Header.Get("WWW-Authenticate")) != "invalid_token" {
		return resp, err
	}
	// One retry with a fresh token, if the body can be sent again.
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	t.drop(req, tg, tok.AccessToken)
	fresh, err := t.token(req, tg)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		return resp, nil
	}
	retry := withBearer(req, fresh.AccessToken)
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

func (t *transport) token(req *http.Request, tg *target) (Token, error) {
	if tg.UserToken != nil {
		if ut := tg.UserToken(req); ut != "" {
			return t.c.ExchangeToken(req.Context(), ut, tg.Audience, tg.Scopes...)
		}
	}
	return t.c.AccessToken(req.Context(), tg.Audience, tg.Scopes...)
}

func (t *transport) drop(req *http.Request, tg *target, accessToken string) {
	if tg.UserToken != nil {
		if ut := tg.UserToken(req); ut != "" {
			t.c.dropExchanged(ut, tg.Audience, tg.Scopes, accessToken)
			return
		}
	}
	t.c.tokens.drop(cacheKey{audience: tg.Audience}, tg.Scopes, accessToken)
}

// withBearer clones req (a RoundTripper must not change its request) with the token.
func withBearer(req *http.Request, token string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// closeBody closes a request body the RoundTripper will not send (its contract).
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
