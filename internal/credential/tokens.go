package credential

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Defaults of the upstream token settings (server flags --upstream-timeout and
// --upstream-token-lifetime).
const (
	DefaultUpstreamTimeout = 10 * time.Second
	DefaultTokenLifetime   = 5 * time.Minute
	// RefreshMargin: a cached token is handed out until this long before it
	// expires (at most half its lifetime, for short-lived tokens); the next call
	// then gets a new one, so an agent always receives a token with time to use it.
	RefreshMargin = 60 * time.Second
	// MaxTokenLifetime caps how long a token is cached, whatever the provider says.
	MaxTokenLifetime = 24 * time.Hour
	// maxUpstreamBody bounds a token endpoint's answer.
	maxUpstreamBody = 256 << 10
	// maxAccessToken bounds an upstream access token.
	maxAccessToken = 64 << 10
	// maxMemo bounds the in-memory token cache (cleared when full).
	maxMemo = 4096
)

// Token is an upstream access token, as cached (sealed at rest) and handed out.
type Token struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	Scope       string    `json:"scope,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	ObtainedAt  time.Time `json:"obtained_at"`
}

// usable reports whether t may still be handed out at now.
func (t Token) usable(now time.Time) bool {
	margin := min(RefreshMargin, t.ExpiresAt.Sub(t.ObtainedAt)/2)
	return now.Add(margin).Before(t.ExpiresAt)
}

// UpstreamError is a provider's token endpoint failing. It never holds the client
// secret or the provider's response body.
type UpstreamError struct {
	Provider string // the provider's identifier
	Code     string // the provider's OAuth error code, when it answered one
	Kind     string // what failed when there is no code: timeout, unreachable, invalid_response, http_<status>, insecure_endpoint, redirect
	Reason   string // for people
}

func (e *UpstreamError) Error() string { return e.Reason }

// Status is the short form recorded as the provider's last error.
func (e *UpstreamError) Status() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind
}

// Tokens gets tokens from OAuth providers with the client credentials grant and
// caches them: in memory, and sealed in storage so replicas reuse each other's
// tokens. Concurrent requests for one provider, generation and scope set wait
// for one upstream call (per process; the shared cache is read first, so
// replicas make at most one call each).
type Tokens struct {
	Store    Store
	Envelope *kms.Envelope
	Now      func() time.Time
	// Client calls token endpoints; NewUpstreamClient makes a suitable one.
	Client *http.Client
	// Timeout bounds one upstream token request.
	Timeout time.Duration
	// DefaultLifetime is how long a token is cached when the provider sends no expires_in.
	DefaultLifetime time.Duration
	// AllowInsecure allows http token endpoints of hosts other than localhost.
	AllowInsecure bool

	group   singleflight.Group
	memo    tokenMemo
	fetches *prometheus.CounterVec
}

// Register adds the upstream request counter to reg.
func (t *Tokens) Register(reg prometheus.Registerer) {
	t.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentguard_upstream_token_requests_total",
		Help: "Token requests agentguard made to OAuth providers, by result (ok, or what failed).",
	}, []string{"result"})
	reg.MustRegister(t.fetches)
}

// ResolveScopes returns the scope set to ask for: the provider's default scopes
// when requested is empty, else requested (which must be a subset of them),
// sorted and without duplicates.
func ResolveScopes(p *OAuthProvider, requested []string) ([]string, error) {
	if len(requested) == 0 {
		requested = p.DefaultScopes
	}
	var bad []string
	for _, s := range requested {
		if !slices.Contains(p.DefaultScopes, s) {
			bad = append(bad, fmt.Sprintf("%q", clip(s)))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s %s not among the provider's default scopes (%s)", strings.Join(bad, ", "), map[bool]string{true: "is", false: "are"}[len(bad) == 1], strings.Join(p.DefaultScopes, " "))
	}
	out := slices.Clone(requested)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CacheKey names the cached token of a provider generation and scope set.
func CacheKey(providerID string, generation int64, scopes []string) string {
	h := sha256.Sum256([]byte(strings.Join(scopes, " ")))
	return fmt.Sprintf("%s/g%d/%s", providerID, generation, base64.RawURLEncoding.EncodeToString(h[:16]))
}

// Get returns a token of p for scopes (as ResolveScopes returns them): the cached
// one while it is usable, else a new one from the provider. Provider failures are
// *UpstreamError; nothing is cached for them.
func (t *Tokens) Get(ctx context.Context, p *OAuthProvider, scopes []string) (Token, error) {
	key := CacheKey(p.ID, p.Generation, scopes)
	if tok, ok := t.memo.get(key); ok && tok.usable(t.Now()) {
		return tok, nil
	}
	ch := t.group.DoChan(key, func() (any, error) {
		// Not tied to the first caller: the others wait for this call too.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout()+5*time.Second)
		defer cancel()
		return t.load(fctx, key, p, scopes)
	})
	select {
	case <-ctx.Done():
		return Token{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Token{}, res.Err
		}
		return res.Val.(Token), nil
	}
}

// Invalidate forgets tok, a token of p for scopes that the upstream service refused
// (HTTP 401): providers can revoke a token before its expiry, and handing it out
// until its refresh point would fail every call until then. The next Get fetches a
// new one. A newer token already cached (by this or another replica) stays.
func (t *Tokens) Invalidate(ctx context.Context, p *OAuthProvider, scopes []string, tok Token) {
	key := CacheKey(p.ID, p.Generation, scopes)
	t.memo.drop(key, tok)
	if err := t.Store.DeleteOAuthToken(ctx, key, tok.ObtainedAt); err != nil {
		slog.Warn("forgetting a refused upstream token", "provider", p.Identifier, "err", err)
	}
	t.count("invalidated")
}

func (t *Tokens) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultUpstreamTimeout
}

// load runs once per key at a time: memory, then the shared cache, then the provider.
func (t *Tokens) load(ctx context.Context, key string, p *OAuthProvider, scopes []string) (Token, error) {
	now := t.Now()
	if tok, ok := t.memo.get(key); ok && tok.usable(now) {
		return tok, nil
	}
	if c, err := t.Store.GetOAuthToken(ctx, key); err == nil {
		if tok, err := t.open(ctx, c); err != nil {
			slog.Warn("a cached upstream token does not open; fetching a new one", "provider", p.Identifier, "err", err)
		} else if tok.usable(now) {
			t.memo.put(key, tok)
			return tok, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return Token{}, err
	}

	tok, err := t.fetch(ctx, p, scopes)
	var ue *UpstreamError
	if errors.As(err, &ue) {
		t.count(ue.Status())
		if ue.Status() != p.LastError || now.Sub(p.LastErrorAt) > time.Minute {
			if err := t.Store.SetOAuthProviderError(ctx, p.ID, p.Generation, ue.Status(), now); err != nil {
				slog.Warn("recording an OAuth provider's failure", "provider", p.Identifier, "err", err)
			}
		}
		slog.Warn("OAuth provider token request failed", "provider", p.Identifier, "status", ue.Status(), "reason", ue.Reason)
		return Token{}, err
	}
	if err != nil {
		return Token{}, err
	}
	t.count("ok")
	if p.LastError != "" {
		if err := t.Store.SetOAuthProviderError(ctx, p.ID, p.Generation, "", now); err != nil {
			slog.Warn("clearing an OAuth provider's failure", "provider", p.Identifier, "err", err)
		}
	}
	t.memo.put(key, tok)
	plain, _ := json.Marshal(tok)
	sealed, err := t.Envelope.Seal(ctx, plain, TokenAAD(key))
	clear(plain)
	if err == nil {
		err = t.Store.PutOAuthToken(ctx, CachedToken{Key: key, CredentialID: p.ID, Sealed: sealed, ExpiresAt: tok.ExpiresAt, CreatedAt: tok.ObtainedAt})
	}
	if err != nil {
		// The token is good; other replicas will fetch their own.
		slog.Warn("could not store an upstream token in the shared cache", "provider", p.Identifier, "err", err)
	}
	return tok, nil
}

func (t *Tokens) count(result string) {
	if t.fetches != nil {
		t.fetches.WithLabelValues(result).Inc()
	}
}

func (t *Tokens) open(ctx context.Context, c CachedToken) (Token, error) {
	plain, err := t.Envelope.Open(ctx, c.Sealed, TokenAAD(c.Key))
	if err != nil {
		return Token{}, err
	}
	defer clear(plain)
	var tok Token
	if err := json.Unmarshal(plain, &tok); err != nil {
		return Token{}, fmt.Errorf("cached token is not JSON: %w", err)
	}
	return tok, nil
}

// fetch asks the provider for a token with the client credentials grant.
func (t *Tokens) fetch(ctx context.Context, p *OAuthProvider, scopes []string) (Token, error) {
	fail := func(kind, format string, args ...any) error {
		return &UpstreamError{Provider: p.Identifier, Kind: kind, Reason: fmt.Sprintf("OAuth provider %q: ", p.Identifier) + fmt.Sprintf(format, args...)}
	}
	if msg := CheckSecretURL(p.TokenEndpoint, t.AllowInsecure, true); msg != "" {
		return Token{}, fail("insecure_endpoint", "agentguard refuses to send the client secret to its token endpoint: it %s", msg)
	}
	secret, err := t.Envelope.Open(ctx, p.ClientSecretSealed, ClientSecretAAD(p.ID))
	if err != nil {
		return Token{}, fmt.Errorf("open the client secret of %s: %w", p.Identifier, err)
	}
	style := oauth2.AuthStyleInHeader
	if p.AuthMethod == AuthPost {
		style = oauth2.AuthStyleInParams
	}
	params := url.Values{}
	for k, v := range p.TokenParams {
		params.Set(k, v)
	}
	cfg := clientcredentials.Config{
		ClientID: p.ClientID, ClientSecret: string(secret), TokenURL: p.TokenEndpoint,
		Scopes: scopes, EndpointParams: params, AuthStyle: style,
	}
	clear(secret)
	client := t.Client
	if client == nil {
		client = NewUpstreamClient(t.timeout())
	}
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, client), t.timeout())
	defer cancel()
	ot, err := cfg.Token(rctx)
	if err != nil {
		// The library's error text can hold the provider's whole answer: it is
		// classified here and never logged or returned as it is.
		return Token{}, classify(err, p, t.timeout())
	}
	if ot.AccessToken == "" || len(ot.AccessToken) > maxAccessToken || !printable(ot.AccessToken) {
		return Token{}, fail("invalid_response", "its access_token is empty, longer than %d bytes, or not printable ASCII", maxAccessToken)
	}
	tok := Token{AccessToken: ot.AccessToken, TokenType: ot.TokenType, Scope: strings.Join(scopes, " "), ObtainedAt: t.Now()}
	if tok.TokenType == "" {
		tok.TokenType = "Bearer"
	} else if len(tok.TokenType) > 64 || !printable(tok.TokenType) {
		return Token{}, fail("invalid_response", "its token_type is not a short printable word")
	}
	if s, ok := ot.Extra("scope").(string); ok && s != "" && len(s) <= 4096 && printable(s) {
		tok.Scope = s
	}
	life := t.DefaultLifetime
	if life <= 0 {
		life = DefaultTokenLifetime
	}
	if !ot.Expiry.IsZero() {
		if d := time.Until(ot.Expiry).Round(time.Second); d > 0 {
			life = d
		}
	}
	tok.ExpiresAt = tok.ObtainedAt.Add(min(life, MaxTokenLifetime))
	return tok, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

var (
	errRedirect = errors.New("the token endpoint answered with a redirect")
	errTooLarge = errors.New("the token endpoint's answer is too large")
)

// classify turns an error of the oauth2 library into an UpstreamError without
// the provider's response body.
func classify(err error, p *OAuthProvider, timeout time.Duration) error {
	ue := &UpstreamError{Provider: p.Identifier}
	prefix := fmt.Sprintf("OAuth provider %q: ", p.Identifier)
	var re *oauth2.RetrieveError
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.As(err, &re) && re.ErrorCode != "":
		ue.Code = cleanCode(re.ErrorCode)
		ue.Reason = fmt.Sprintf("%sthe token endpoint refused the request with error %q (HTTP %d)", prefix, ue.Code, re.Response.StatusCode)
	case errors.As(err, &re):
		ue.Kind = fmt.Sprintf("http_%d", re.Response.StatusCode)
		ue.Reason = fmt.Sprintf("%sthe token endpoint answered HTTP %d without an OAuth error code", prefix, re.Response.StatusCode)
	case errors.Is(err, errRedirect):
		ue.Kind, ue.Reason = "redirect", prefix+"the token endpoint answered with a redirect, which agentguard does not follow with a client secret; configure the final URL"
	case errors.Is(err, errTooLarge):
		ue.Kind, ue.Reason = "invalid_response", fmt.Sprintf("%sthe token endpoint's answer is over %d KiB", prefix, maxUpstreamBody>>10)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		ue.Kind, ue.Reason = "timeout", fmt.Sprintf("%sthe token endpoint did not answer within %s", prefix, timeout)
	case errors.As(err, &dns):
		ue.Kind, ue.Reason = "unreachable", fmt.Sprintf("%sthe token endpoint's host %q could not be resolved", prefix, dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		ue.Kind, ue.Reason = "unreachable", prefix+"the token endpoint refused the connection"
	case errors.As(err, &ne):
		ue.Kind, ue.Reason = "unreachable", prefix+"the token endpoint could not be reached (network error)"
	case strings.Contains(err.Error(), "cannot parse"):
		ue.Kind, ue.Reason = "invalid_response", prefix+"the token endpoint's answer is not a JSON token response"
	case strings.Contains(err.Error(), "missing access_token"):
		ue.Kind, ue.Reason = "invalid_response", prefix+"the token endpoint's answer has no access_token"
	default:
		ue.Kind, ue.Reason = "unreachable", prefix+"the token request failed"
	}
	return ue
}

// cleanCode keeps an error code within RFC 6749's character set and 64 bytes.
func cleanCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// NewUpstreamClient is an HTTP client for token endpoints: bounded connect, TLS
// and answer times, answers of at most 256 KiB, and no redirects (a redirect
// would send the client secret to another URL).
func NewUpstreamClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   min(timeout, 5*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     limitedTransport{tr},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}
}

type limitedTransport struct{ rt http.RoundTripper }

func (l limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxUpstreamBody}
	}
	return resp, err
}

// cappedBody fails with errTooLarge past its limit instead of truncating.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := c.ReadCloser.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// tokenMemo is the in-memory cache: plaintext upstream tokens (never API key
// values), bounded, checked for usability on every read.
type tokenMemo struct {
	mu sync.RWMutex
	m  map[string]Token
}

func (m *tokenMemo) get(key string) (Token, bool) {
	m.mu.RLock()
	t, ok := m.m[key]
	m.mu.RUnlock()
	return t, ok
}

// drop forgets the token under key if it is still t.
func (m *tokenMemo) drop(key string, t Token) {
	m.mu.Lock()
	if cur, ok := m.m[key]; ok && cur.ObtainedAt.Equal(t.ObtainedAt) && secret.Equal(cur.AccessToken, t.AccessToken) {
		delete(m.m, key)
	}
	m.mu.Unlock()
}

func (m *tokenMemo) put(key string, t Token) {
	m.mu.Lock()
	if m.m == nil || len(m.m) >= maxMemo {
		m.m = make(map[string]Token, 64)
	}
	m.m[key] = t
	m.mu.Unlock()
}
