package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// Token is an access token and what the SDK knows about it. Printing it (fmt, slog)
// shows its audience, scope and expiry, never the token itself: use AccessToken.
type Token struct {
	// AccessToken is the bearer token to send: "Authorization: Bearer " + AccessToken.
	AccessToken string
	// TokenType is "Bearer".
	TokenType string
	// Audience is the audience the token was asked for.
	Audience string
	// Scope is the space-separated scope granted.
	Scope string
	// ExpiresAt is when the token stops being valid (from expires_in).
	ExpiresAt time.Time
}

// String describes the token without revealing it.
func (t Token) String() string {
	return "Token{audience=" + strconv.Quote(t.Audience) + " scope=" + strconv.Quote(t.Scope) +
		" expires=" + t.ExpiresAt.UTC().Format(time.RFC3339) + " access_token=[redacted]}"
}

// GoString is String, so %#v does not reveal the token either.
func (t Token) GoString() string { return t.String() }

// LogValue keeps the token out of slog output.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("audience", t.Audience), slog.String("scope", t.Scope),
		slog.Time("expires", t.ExpiresAt))
}

// Scopes for the credential API (the functional authorization).
const scopeCredentials = "agentguard:credentials"

// AccessToken returns a token for the resource server whose audience is given, with
// the scopes (none: every scope the agent is granted there), using the
// client_credentials grant with an RFC 8707 resource indicator (or the jwt-bearer
// grant with FederatedToken). An empty audience means agentguard itself, or, when
// no scopes are given and Config.Scope is set, that default target.
//
// Tokens are cached per audience and scope list and fetched again shortly before
// they expire; concurrent callers share one request. A cached token is returned
// without allocating.
func (c *Client) AccessToken(ctx context.Context, audience string, scopes ...string) (Token, error) {
	if audience == "" {
		if len(scopes) == 0 && c.defAud != "" {
			audience, scopes = c.defAud, c.defScps
		} else {
			audience = c.issuer
		}
	}
	key := cacheKey{audience: audience}
	if e := c.tokens.get(key, scopes); e != nil {
		if c.now().Before(e.refreshAt) {
			return e.tok, nil
		}
		return c.refreshToken(ctx, e, strings.Clone(audience), slices.Clone(scopes))
	}
	return c.fetchAccessToken(ctx, strings.Clone(audience), slices.Clone(scopes))
}

// refreshToken fetches a new token for a cached one near its expiry. If agentguard
// cannot be reached, the cached token is served while it is still valid.
func (c *Client) refreshToken(ctx context.Context, old *cacheEntry, audience string, scopes []string) (Token, error) {
	tok, err := c.fetchAccessToken(ctx, audience, scopes)
	if err != nil && errors.Is(err, ErrUnavailable) && c.now().Add(minValidity).Before(old.tok.ExpiresAt) {
		return old.tok, nil
	}
	return tok, err
}

// minValidity is how long a token must still be valid to be handed out.
const minValidity = 5 * time.Second

func (c *Client) fetchAccessToken(ctx context.Context, audience string, scopes []string) (Token, error) {
	flightKey := "at\x00" + audience + "\x00" + strings.Join(scopes, " ")
	return c.shared(ctx, "token", flightKey, func(ctx context.Context) (Token, error) {
		tok, err := c.requestToken(ctx, "token", audience, scopes, nil)
		if err != nil {
			return tok, err
		}
		c.tokens.put(cacheKey{audience: audience}, scopes, tok, c.refreshAt(tok), c.now())
		return tok, nil
	})
}

// InvalidateToken drops the cached token for audience and scopes, so the next
// AccessToken fetches a new one (e.g. after a resource server refused it).
func (c *Client) InvalidateToken(audience string, scopes ...string) {
	if audience == "" {
		audience = c.issuer
	}
	c.tokens.drop(cacheKey{audience: audience}, scopes, "")
}

// shared runs fetch once for all concurrent callers with the same key. The fetch is
// detached from the first caller's context (its cancellation must not fail the
// others) and bounded by the retry policy; every caller still returns when its own
// context ends.
func (c *Client) shared(ctx context.Context, op, key string, fetch func(context.Context) (Token, error)) (Token, error) {
	return sharedDo(ctx, &c.flight, op, key, fetch)
}

func sharedDo[T any](ctx context.Context, g *singleflight.Group, op, key string, fetch func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (any, error) {
		fctx, cancel := contextWithoutCancel(ctx, 2*time.Minute)
		defer cancel()
		return fetch(fctx)
	})
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, &Error{Op: op, Err: ctx.Err(), kind: ctx.Err()}
	}
}

// refreshAt is when a token is fetched again: a tenth of its lifetime before it
// expires, at least 5 s and at most a minute before, and never before half of it.
func (c *Client) refreshAt(t Token) time.Time {
	life := t.ExpiresAt.Sub(c.now())
	early := min(max(life/10, 5*time.Second), time.Minute, life/2)
	return t.ExpiresAt.Add(-early)
}

// tokenResponse is RFC 6749 §5.1 (and RFC 8693 §2.2.1).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type"`
}

// requestToken posts to the token endpoint: client_credentials (or jwt-bearer with a
// workload token), or, with extra set, the grant extra describes.
func (c *Client) requestToken(ctx context.Context, op, audience string, scopes []string, extra url.Values) (Token, error) {
	endpoint, err := c.tokenEndpoint(ctx)
	if err != nil {
		return Token{}, err
	}
	var secrets []string
	if extra != nil {
		secrets = append(secrets, extra.Get("subject_token"))
	}
	body, resp, err := c.do(ctx, call{op: op, secrets: c.secrets(secrets...), build: func(ctx context.Context) (*http.Request, error) {
		form := url.Values{}
		for k, v := range extra {
			form[k] = v
		}
		if extra == nil {
			form.Set("grant_type", "client_credentials")
		}
		if audience != "" {
			form.Set("resource", audience)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		basic, err := c.authenticate(form, endpoint, extra != nil)
		if err != nil {
			return nil, err
		}
		req, err := formRequest(ctx, endpoint, form.Encode())
		if err != nil {
			return nil, err
		}
		if basic != "" {
			req.Header.Set("Authorization", basic)
		}
		return req, nil
	}})
	if err != nil {
		return Token{}, err
	}
	return c.parseToken(op, resp, body, audience)
}

func (c *Client) parseToken(op string, resp *http.Response, body []byte, audience string) (Token, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return Token{}, &Error{Op: op, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"),
			Err: errors.New("the answer has no access_token"), kind: ErrProtocol}
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return Token{}, &Error{Op: op, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"),
			Err: errors.New("token_type " + strconv.Quote(truncate(tr.TokenType, 40)) + " is not Bearer"), kind: ErrProtocol}
	}
	t := Token{AccessToken: tr.AccessToken, TokenType: "Bearer", Audience: audience, Scope: tr.Scope}
	if tr.ExpiresIn > 0 {
		t.ExpiresAt = c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	} else {
		// Without expires_in the token is used once and not cached.
		t.ExpiresAt = c.now()
	}
	return t, nil
}
