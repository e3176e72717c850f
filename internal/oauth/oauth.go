// Package oauth is the authorization server: the token endpoint with one file per
// grant, client authentication, introspection, revocation, JWKS and discovery.
package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/token"
)

// Grant type identifiers.
const (
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Agents is what the authorization server reads about agents.
type Agents interface {
	GetAgent(ctx context.Context, id string) (agent.Agent, error)
	ListSecrets(ctx context.Context, agentID string) ([]agent.Secret, error)
	ListKeys(ctx context.Context, agentID string) ([]agent.Key, error)
	FindFederation(ctx context.Context, issuer, subject string) (agent.Federation, error)
}

// Server serves the OAuth endpoints.
type Server struct {
	Issuer    *token.Issuer
	Agents    Agents
	Grants    grant.Store
	Resources resource.Store
	Replay    ReplayStore
	Audit     audit.Recorder
	Now       func() time.Time
	// HTTPClient fetches federated issuers' JWKS; it must have a timeout.
	HTTPClient *http.Client
	// MaxAssertionLifetime bounds how far in the future a client assertion's exp may be.
	MaxAssertionLifetime time.Duration

	jwks    *jwksCache
	metrics *metrics
	grants  map[string]grantHandler
	// extensions add other packages' endpoints to the discovery document.
	extensions []func(*Metadata)
}

// grantHandler issues a token for one grant type; the form is already parsed.
type grantHandler func(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error)

type metrics struct {
	tokens *prometheus.CounterVec
}

// Init prepares the server and registers its metrics on reg (may be nil).
func (s *Server) Init(reg prometheus.Registerer) {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.HTTPClient == nil {
		s.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if s.MaxAssertionLifetime == 0 {
		s.MaxAssertionLifetime = 5 * time.Minute
	}
	s.jwks = newJWKSCache(s.HTTPClient, s.Now)
	s.metrics = &metrics{tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentguard_token_requests_total",
		Help: "Token endpoint requests by grant type and result (issued, or the OAuth error code).",
	}, []string{"grant_type", "result"})}
	if reg != nil {
		reg.MustRegister(s.metrics.tokens)
	}
	s.grants = map[string]grantHandler{
		GrantClientCredentials: s.clientCredentials,
		GrantJWTBearer:         s.jwtBearer,
	}
}

// Register adds the OAuth routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /oauth2/introspect", s.handleIntrospect)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleDiscovery)
}

// TokenEndpoint is the token endpoint's URL (an accepted client assertion audience).
func (s *Server) TokenEndpoint() string { return s.Issuer.URL + "/oauth2/token" }

// record writes e and returns once it is durable. Callers answer server_error when
// it fails: nothing is answered that the audit log does not hold.
func (s *Server) record(ctx context.Context, e audit.Event) error {
	audit.Fill(ctx, &e)
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	if err := s.Audit.Record(ctx, e); err != nil {
		slog.ErrorContext(ctx, "audit write failed; refusing the request", "action", e.Action, "err", err)
		return err
	}
	return nil
}

// claimedClient is the client id a request names, for refusal events: the body's
// client_id, else the Basic user name. It is unauthenticated, so only recorded.
func claimedClient(r *http.Request, form url.Values) string {
	id := form.Get("client_id")
	if user, _, ok := r.BasicAuth(); ok && id == "" {
		if u, err := url.QueryUnescape(user); err == nil {
			id = u
		}
	}
	return truncate(id, 128)
}
