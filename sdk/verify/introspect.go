package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Introspection makes the Verifier ask agentguard (RFC 7662) whether each token
// that verified locally is still active, so that a revoked token, or one of a
// disabled agent, is refused before it expires. It costs one call to agentguard
// per token every CacheFor; without it a revoked token is accepted until its exp
// (agentguard's tokens live minutes).
type Introspection struct {
	// ClientID and ClientSecret are the credentials the Verifier introspects with
	// (client_secret_basic): an agent's, or a confidential client's, registered for
	// this service. Both are required.
	ClientID, ClientSecret string
	// Endpoint is agentguard's introspection endpoint; default
	// <Issuer>/oauth2/introspect.
	Endpoint string
	// CacheFor is how long an "active" answer is used before the token is asked
	// about again (default 30 s, at most 5 min): the longest a revocation can go
	// unseen. An inactive answer stands until the token expires.
	CacheFor time.Duration
}

// String, GoString and LogValue leave the client secret out of prints and logs.
func (c Introspection) String() string {
	return fmt.Sprintf("Introspection{client_id=%q endpoint=%q cache_for=%s client_secret=[redacted]}", c.ClientID, c.Endpoint, c.CacheFor)
}

func (c Introspection) GoString() string { return c.String() }

func (c Introspection) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ErrIntrospectionUnavailable: agentguard could not say whether the token is
// active (the middleware answers 503: the token may be fine). Errors that match it
// say why without the client secret.
var ErrIntrospectionUnavailable = errors.New("the token's status cannot be checked with agentguard")

// maxIntrospectionCache bounds the remembered answers; past it they start over.
const maxIntrospectionCache = 10000

type introspector struct {
	cfg     Introspection
	http    *http.Client
	now     func() time.Time
	flights singleflight.Group

	mu      sync.Mutex
	answers map[[32]byte]introAnswer
}

type introAnswer struct {
	active bool
	until  time.Time
}

func newIntrospector(c Introspection, issuer string, hc *http.Client, insecure bool, now func() time.Time) (*introspector, error) {
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, errors.New("verify: Config.Introspection needs ClientID and ClientSecret: the credentials of an agent or confidential client registered for this service")
	}
	if c.Endpoint == "" {
		c.Endpoint = strings.TrimSuffix(issuer, "/") + "/oauth2/introspect"
	}
	if err := checkURL(c.Endpoint, insecure); err != nil {
		return nil, fmt.Errorf("verify: Config.Introspection.Endpoint: %v", err)
	}
	switch {
	case c.CacheFor < 0 || c.CacheFor > 5*time.Minute:
		return nil, errors.New("verify: Config.Introspection.CacheFor must be between 0 and 5 minutes")
	case c.CacheFor == 0:
		c.CacheFor = 30 * time.Second
	}
	return &introspector{cfg: c, http: hc, now: now, answers: map[[32]byte]introAnswer{}}, nil
}

// active reports whether agentguard holds the token active; expiry bounds how long
// an answer is remembered.
func (in *introspector) active(ctx context.Context, raw string, expiry time.Time) (bool, error) {
	key := sha256.Sum256([]byte(raw))
	now := in.now()
	in.mu.Lock()
	a, ok := in.answers[key]
	in.mu.Unlock()
	if ok && now.Before(a.until) {
		return a.active, nil
	}
	v, err, _ := in.flights.Do(string(key[:]), func() (any, error) {
		// The answer serves every caller waiting for it: one leaving early
		// does not cancel it for the others (the HTTP client's timeout bounds it).
		active, err := in.ask(context.WithoutCancel(ctx), raw)
		if err != nil {
			return false, err
		}
		until := expiry
		if next := now.Add(in.cfg.CacheFor); active && next.Before(until) {
			until = next
		}
		in.mu.Lock()
		if len(in.answers) >= maxIntrospectionCache {
			clear(in.answers)
		}
		in.answers[key] = introAnswer{active: active, until: until}
		in.mu.Unlock()
		return active, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// ask POSTs the token to the introspection endpoint.
func (in *introspector) ask(ctx context.Context, raw string) (bool, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrIntrospectionUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the credentials are form-urlencoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrIntrospectionUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false, fmt.Errorf("%w: reading the answer of %s: %v", ErrIntrospectionUnavailable, in.cfg.Endpoint, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest:
		var oe struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &oe)
		return false, fmt.Errorf("%w: %s refused the introspection (HTTP %d %s): check Introspection.ClientID %q and its secret", ErrIntrospectionUnavailable, in.cfg.Endpoint, resp.StatusCode, truncate(oe.Error, 64), truncate(in.cfg.ClientID, 100))
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("%w: %s answered HTTP %d", ErrIntrospectionUnavailable, in.cfg.Endpoint, resp.StatusCode)
	}
	var answer struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Active == nil {
		return false, fmt.Errorf("%w: %s did not answer an RFC 7662 object with active", ErrIntrospectionUnavailable, in.cfg.Endpoint)
	}
	return *answer.Active, nil
}
