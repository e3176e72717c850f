package sdk

import (
	"context"
	"crypto"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Client gets tokens and credentials from agentguard for one agent. It is safe for
// concurrent use; create one per agent and keep it for the life of the process, so
// its token cache is shared.
type Client struct {
	cfg     Config
	http    *http.Client
	now     func() time.Time
	retry   retryPolicy
	issuer  string // without a trailing slash
	defAud  string // default target (Config.Scope)
	defScps []string

	signAlg jose.SignatureAlgorithm
	keyID   string

	meta      metadataCache
	tokens    tokenCache
	exchanged tokenCache
	flight    singleflight.Group
}

// Option adjusts a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client for every call to agentguard (default: one
// with the configured connect and request timeouts). Its Timeout, if any, bounds
// each attempt.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithClock sets the clock used for token expiry (tests).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithRetry sets how many attempts a call makes at most (≥ 1; default 4) and the
// first backoff (default 200 ms; doubling, capped at 5 s, with jitter). Only network
// errors and 5xx answers are retried, never 4xx; the caller's context bounds it all.
func WithRetry(attempts int, firstBackoff time.Duration) Option {
	return func(c *Client) {
		if attempts >= 1 {
			c.retry.attempts = attempts
		}
		if firstBackoff > 0 {
			c.retry.base = firstBackoff
		}
	}
}

// New checks cfg and returns a Client. Every configuration mistake (a missing
// issuer, an unreadable key or token file, an unknown method) is reported here as a
// *ConfigError naming the setting. New makes no network call: the token endpoint is
// discovered on first use.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		now:    time.Now,
		retry:  retryPolicy{attempts: 4, base: 200 * time.Millisecond, max: 5 * time.Second},
		issuer: strings.TrimSuffix(cfg.Issuer, "/"),
	}
	if cfg.Scope != "" {
		c.defAud, c.defScps, _ = splitCompatScope(cfg.Scope)
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		connect := orDuration(cfg.ConnectTimeout, 5*time.Second)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = connect
		c.http = &http.Client{Transport: tr, Timeout: orDuration(cfg.RequestTimeout, 30*time.Second),
			// Never follow redirects with credentials in the body or headers.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.AuthMethod == PrivateKeyJWT {
		alg, _ := signingAlg(cfg.PrivateKey)
		c.signAlg = jose.SignatureAlgorithm(alg)
		c.keyID = cfg.KeyID
		if c.keyID == "" {
			jwk := jose.JSONWebKey{Key: cfg.PrivateKey.Public()}
			tp, err := jwk.Thumbprint(crypto.SHA256)
			if err != nil {
				return nil, configErr("authnConfiguration.keyId", "cannot compute the key's thumbprint: set keyId to the kid the key is registered under")
			}
			c.keyID = b64(tp)
		}
	}
	return c, nil
}

// NewFromEnv is New(ConfigFromEnv()).
func NewFromEnv(opts ...Option) (*Client, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

// Issuer is the issuer URL the client talks to.
func (c *Client) Issuer() string { return c.issuer }

// ClientID is the agent's id ("" with FederatedToken unless configured).
func (c *Client) ClientID() string { return c.cfg.ClientID }

// secrets lists the values that must never appear in an error.
func (c *Client) secrets(extra ...string) []string {
	s := make([]string, 0, 2+len(extra))
	if c.cfg.ClientSecret != "" {
		s = append(s, c.cfg.ClientSecret)
	}
	return append(s, extra...)
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// contextWithoutCancel detaches a shared fetch from the one caller that started it,
// so that caller giving up does not fail the others waiting on the same fetch.
func contextWithoutCancel(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
