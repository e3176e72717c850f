// Package verify lets a service accept agentguard access tokens: an HTTP
// middleware that validates the RFC 9068 JWTs agentguard issues (signature against
// the issuer's JWKS, typ at+jwt, issuer, audience, expiry, scopes), puts the caller
// in the request context, and answers refusals with RFC 6750 WWW-Authenticate
// challenges; and RFC 9728 protected resource metadata, so OAuth clients such as
// MCP clients find agentguard from the service itself.
//
//	v, err := verify.New(verify.Config{Issuer: "https://agentguard.example.com", Audience: "https://files.example.com"})
//	mux.Handle("GET /files/{id}", v.Require("read:file")(filesHandler))
//
// In the handler, verify.CallerFrom(r.Context()) says who called: the subject (an
// agent, or the user an agent acts for), the client, the actor chain, the scopes.
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config configures a Verifier.
type Config struct {
	// Issuer is agentguard's issuer URL (required); a token's iss must equal it.
	Issuer string
	// Audience is this service's audience, as registered in agentguard (required);
	// a token's aud must contain it. More may be listed in Audiences.
	Audience  string
	Audiences []string
	// RequiredScopes every request through Middleware must carry (all of them).
	// Routes needing more use Require.
	RequiredScopes []string
	// JWKSURL is where the signing keys are; empty: discovered from the issuer's
	// metadata (RFC 8414).
	JWKSURL string
	// Algorithms allowed; default ES256, ES384, RS256, PS256, EdDSA. "none" and the
	// HMAC algorithms are never accepted: a public key is not a shared secret.
	Algorithms []string
	// Leeway tolerated on exp and nbf between clocks; default 30 s, at most 5 min.
	Leeway time.Duration
	// ResourceMetadataURL is this service's RFC 9728 protected resource metadata
	// URL, sent as resource_metadata in WWW-Authenticate challenges (so an MCP
	// client can discover the authorization server). See ResourceMetadata.
	ResourceMetadataURL string
	// KeysTTL is how long fetched keys are used before they are fetched again
	// (default 5 min); MinRefreshInterval is the least time between two fetches
	// caused by an unknown kid (default 10 s).
	KeysTTL            time.Duration
	MinRefreshInterval time.Duration
	// HTTPClient fetches metadata and keys (default: 10 s timeout).
	HTTPClient *http.Client
	// Introspection, when set, also asks agentguard whether each token is still
	// active, so a revoked token is refused before it expires (see Introspection).
	Introspection *Introspection
	// AllowInsecureHTTP permits an http issuer, JWKS or introspection URL that is
	// not loopback.
	AllowInsecureHTTP bool
	// Now is the clock (tests).
	Now func() time.Time
}

// Verifier validates agentguard access tokens. Safe for concurrent use; create one
// per service and audience.
type Verifier struct {
	cfg       Config
	audiences []string
	algs      []string
	keys      *keyCache
	intro     *introspector // nil: tokens are checked locally only
	now       func() time.Time
	leeway    time.Duration
}

// DefaultAlgorithms are the signature algorithms accepted by default.
var DefaultAlgorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

var knownAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

// New checks cfg and returns a Verifier. It makes no network call: keys are
// fetched on the first token.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("verify: Config.Issuer is required: agentguard's issuer URL")
	}
	if err := checkURL(cfg.Issuer, cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("verify: Config.Issuer: %v", err)
	}
	if cfg.JWKSURL != "" {
		if err := checkURL(cfg.JWKSURL, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("verify: Config.JWKSURL: %v", err)
		}
	}
	auds := slices.DeleteFunc(append([]string{cfg.Audience}, cfg.Audiences...), func(s string) bool { return s == "" })
	if len(auds) == 0 {
		return nil, errors.New("verify: Config.Audience is required: this service's audience, as registered in agentguard")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, a := range algs {
		if !slices.Contains(knownAlgs, a) {
			return nil, fmt.Errorf("verify: Config.Algorithms: %q is not accepted (allowed: %s; never none or HMAC)", a, strings.Join(knownAlgs, ", "))
		}
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return nil, errors.New("verify: Config.Leeway must be between 0 and 5 minutes")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.KeysTTL <= 0 {
		cfg.KeysTTL = 5 * time.Minute
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, audiences: auds, algs: slices.Clone(algs), now: cfg.Now, leeway: cfg.Leeway}
	v.keys = &keyCache{http: cfg.HTTPClient, issuer: cfg.Issuer, jwksURL: cfg.JWKSURL, ttl: cfg.KeysTTL,
		minInterval: cfg.MinRefreshInterval, now: cfg.Now, insecure: cfg.AllowInsecureHTTP}
	if cfg.Introspection != nil {
		in, err := newIntrospector(*cfg.Introspection, cfg.Issuer, cfg.HTTPClient, cfg.AllowInsecureHTTP, cfg.Now)
		if err != nil {
			return nil, err
		}
		v.intro = in
	}
	return v, nil
}

// ErrInvalidToken is what every refused token's error matches with errors.Is; the
// *TokenError says why.
var ErrInvalidToken = errors.New("invalid token")

// ErrKeysUnavailable: the issuer's keys could not be fetched (the middleware
// answers 503, not 401: the token may be fine).
var ErrKeysUnavailable = errKeysUnavailable

// TokenError is why a token was refused. Reason is a short code (malformed,
// algorithm, type, signature, unknown_key, issuer, audience, expired,
// not_yet_valid, claims, revoked); Detail says it in words, without echoing the
// token.
type TokenError struct {
	Reason string
	Detail string
}

func (e *TokenError) Error() string        { return "invalid token: " + e.Detail }
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }
func reasonf(reason, f string, a ...any) error {
	return &TokenError{Reason: reason, Detail: fmt.Sprintf(f, a...)}
}

// claims are the access token claims the verifier reads.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	Expiry    *numeric `json:"exp"`
	NotBefore *numeric `json:"nbf"`
	IssuedAt  *numeric `json:"iat"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	Act       *actor   `json:"act"`
}

type actor struct {
	Subject string `json:"sub"`
	Act     *actor `json:"act"`
}

// audience is a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	// The decoder has already checked b is valid JSON: a string without escapes is
	// its bytes between the quotes (the common case, decoded without a second scan).
	if len(b) >= 2 && b[0] == '"' && !bytes.ContainsRune(b, '\\') {
		*a = audience{string(b[1 : len(b)-1])}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// numeric is a NumericDate: seconds since the epoch, possibly fractional, between
// 1970 and the year 5000 (a larger value would not convert to a time faithfully).
type numeric float64

func (n *numeric) UnmarshalJSON(b []byte) error {
	// b is a valid JSON value (the decoder checked): a number parses as is; a
	// string, object or literal does not.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errors.New("NumericDate is not a number")
	}
	if f < 0 || f > 95617584000 {
		return errors.New("NumericDate out of range")
	}
	*n = numeric(f)
	return nil
}

func (n numeric) time() time.Time {
	sec := float64(n)
	return time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9))
}

// maxActDepth bounds the nested act chain.
const maxActDepth = 16

// Verify validates a raw access token and returns its caller. Every refusal
// matches ErrInvalidToken (a *TokenError; Reason revoked when introspection says
// the token is no longer active), except an unreachable JWKS (ErrKeysUnavailable)
// or introspection endpoint (ErrIntrospectionUnavailable). Scopes are not checked
// here: see Caller.HasScopes.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Caller, error) {
	tok, err := parseCompact(raw)
	if err != nil {
		return nil, err
	}
	h := tok.header
	if !slices.Contains(v.algs, h.Alg) {
		return nil, reasonf("algorithm", "the token's algorithm %q is not accepted", truncate(h.Alg, 32))
	}
	if t := strings.ToLower(h.Typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, reasonf("type", "the token's typ is %q, not at+jwt: it is not an access token", truncate(h.Typ, 64))
	}
	if h.Kid == "" {
		return nil, reasonf("unknown_key", "the token names no key (kid)")
	}
	key, err := v.keys.key(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	if !key.allows(h.Alg) {
		return nil, reasonf("algorithm", "the token's algorithm %s is not the one its key %q is for", h.Alg, truncate(h.Kid, 64))
	}
	if !checkSignature(h.Alg, key.key, tok.signingInput, tok.signature) {
		return nil, reasonf("signature", "the token's signature does not verify")
	}
	payload, err := b64.DecodeString(tok.payload)
	if err != nil {
		return nil, reasonf("malformed", "the token's payload is not base64url")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, reasonf("malformed", "the token's payload is not a JSON object of JWT claims")
	}
	if c.Issuer != v.cfg.Issuer {
		return nil, reasonf("issuer", "the token was issued by %q, not %q", truncate(c.Issuer, 200), v.cfg.Issuer)
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(v.audiences, a) }) {
		return nil, reasonf("audience", "the token is for another audience, not %q", v.audiences[0])
	}
	now := v.now()
	if c.Expiry == nil {
		return nil, reasonf("claims", "the token has no exp")
	}
	if exp := c.Expiry.time(); now.After(exp.Add(v.leeway)) {
		return nil, reasonf("expired", "the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(v.leeway).Before(c.NotBefore.time()) {
		return nil, reasonf("not_yet_valid", "the token is not valid before %s", c.NotBefore.time().UTC().Format(time.RFC3339))
	}
	if c.IssuedAt != nil && now.Add(v.leeway).Before(c.IssuedAt.time()) {
		return nil, reasonf("not_yet_valid", "the token was issued in the future (%s)", c.IssuedAt.time().UTC().Format(time.RFC3339))
	}
	if c.Subject == "" {
		return nil, reasonf("claims", "the token has no sub")
	}
	caller := &Caller{
		Subject: c.Subject, ClientID: c.ClientID, Issuer: c.Issuer, Audience: []string(c.Audience),
		Scopes: strings.Fields(c.Scope), TokenID: c.ID, ExpiresAt: c.Expiry.time(), Token: raw,
	}
	if c.IssuedAt != nil {
		caller.IssuedAt = c.IssuedAt.time()
	}
	for a, depth := c.Act, 0; a != nil; a, depth = a.Act, depth+1 {
		if depth == maxActDepth || a.Subject == "" {
			return nil, reasonf("claims", "the token's act chain is malformed or over %d deep", maxActDepth)
		}
		caller.Actors = append(caller.Actors, a.Subject)
	}
	if v.intro != nil {
		active, err := v.intro.active(ctx, raw, caller.ExpiresAt)
		if err != nil {
			return nil, err
		}
		if !active {
			return nil, reasonf("revoked", "the token is no longer active: revoked, or its agent or user disabled")
		}
	}
	return caller, nil
}

func (k publicKey) allows(alg string) bool {
	if k.alg != "" {
		return k.alg == alg
	}
	return slices.Contains(k.algs, alg)
}

// checkURL accepts an absolute https URL, or http on loopback (or anywhere when
// insecure).
func checkURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL without query or user info", truncate(raw, 200))
	}
	if u.Scheme == "http" && !insecure {
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%q uses http on a host that is not loopback; use https (or AllowInsecureHTTP)", truncate(raw, 200))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
