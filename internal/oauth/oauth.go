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
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/token"
	"github.com/agentguard/agentguard/internal/user"
)

// Grant type identifiers.
const (
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Agents is what the authorization server reads about agents.
type Agents interface {
	GetAgent(ctx context.Context, id string) (agent.Agent, error)
	ListKeys(ctx context.Context, agentID string) ([]agent.Key, error)
	FindFederation(ctx context.Context, issuer, subject string) (agent.Federation, error)
	GetAgentByAudience(ctx context.Context, audience string) (agent.Agent, error)
	// GetAgentWithSecrets is GetAgent and ListSecrets in one read (client
	// authentication on every token request).
	GetAgentWithSecrets(ctx context.Context, id string) (agent.Agent, []agent.Secret, error)
}

// Targets reads a resource server and an agent's grant on it in one go (the target
// of every token request); store.ErrNotFound if no resource server has the audience,
// a nil grant if the agent has none there.
type Targets interface {
	ResourceServerAndGrant(ctx context.Context, audience, agentID string) (resource.Server, *grant.Grant, error)
}

// Server serves the OAuth endpoints.
type Server struct {
	Issuer    *token.Issuer
	Agents    Agents
	Grants    grant.Store
	Resources resource.Store
	Replay    ReplayStore
	// Targets, if set, replaces the two reads of Resources and Grants per request.
	Targets Targets
	Audit   audit.Recorder
	Now     func() time.Time
	// HTTPClient fetches federated issuers' JWKS; it must have a timeout.
	HTTPClient *http.Client
	// MaxAssertionLifetime bounds how far in the future a client assertion's exp may be.
	MaxAssertionLifetime time.Duration

	// Users, clients and delegation. The authorization code, refresh token and token
	// exchange grants are served when Clients, Users, Codes, Refresh and Sessions
	// are set; Policy nil denies every user access to every agent.
	Clients  Clients
	Users    user.Getter
	Policy   policy.Decider
	Codes    session.CodeStore
	Refresh  session.RefreshStore
	Sessions Sessions
	// Lifetimes of what users get (defaults: code 60s, ID token 1h, refresh token
	// family 30 days, one unused refresh token 7 days).
	CodeLifetime         time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration
	RefreshTokenIdle     time.Duration

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
	if s.CodeLifetime == 0 {
		s.CodeLifetime = 60 * time.Second
	}
	if s.IDTokenLifetime == 0 {
		s.IDTokenLifetime = time.Hour
	}
	if s.RefreshTokenLifetime == 0 {
		s.RefreshTokenLifetime = 30 * 24 * time.Hour
	}
	if s.RefreshTokenIdle == 0 {
		s.RefreshTokenIdle = 7 * 24 * time.Hour
	}
	s.grants = map[string]grantHandler{
		GrantClientCredentials: s.clientCredentials,
		GrantJWTBearer:         s.jwtBearer,
	}
	if s.signsInUsers() {
		s.grants[GrantAuthorizationCode] = s.authorizationCode
		s.grants[GrantRefreshToken] = s.refreshToken
		s.grants[GrantTokenExchange] = s.tokenExchange
	}
}

// signsInUsers reports whether the user-facing parts are wired.
func (s *Server) signsInUsers() bool {
	return s.Clients != nil && s.Users != nil && s.Codes != nil && s.Refresh != nil && s.Sessions != nil
}

// Register adds the OAuth routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("POST /oauth2/introspect", s.handleIntrospect)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	mux.HandleFunc("OPTIONS /oauth2/token", preflight("POST"))
	mux.HandleFunc("OPTIONS /oauth2/revoke", preflight("POST"))
	if s.signsInUsers() {
		mux.HandleFunc("GET /oauth2/userinfo", s.handleUserinfo)
		mux.HandleFunc("POST /oauth2/userinfo", s.handleUserinfo)
		mux.HandleFunc("OPTIONS /oauth2/userinfo", preflight("GET, POST"))
	}
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

// setCaller names the caller id in an event: a client (cli_…) as client_id, anything
// else as agent_id.
func setCaller(e *audit.Event, id string) {
	if client.IsClientID(id) {
		e.ClientID = id
	} else {
		e.AgentID = id
	}
}
