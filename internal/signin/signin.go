// Package signin is the browser side of the authorization server: the OAuth 2.0
// authorization endpoint (authorization code with PKCE, OpenID Connect), the login
// page, browser sessions, and RP-initiated logout. Codes and tokens themselves are
// the oauth package's; this package decides who is signed in and when a code may be
// issued.
package signin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/oauth"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/user"
)

// LoginOption is an upstream identity provider offered on the login page.
type LoginOption struct {
	ID   string // the provider's id
	Name string // shown as "Sign in with <Name>"
	// URL starts the upstream sign-in; the page appends ?login_id=<login request id>
	// (or &login_id=… if URL has a query). Empty: /login/upstream/<ID>.
	URL string
}

// Upstreams lists the upstream identity providers to offer. The provider's callback
// finishes with Handler.CompleteLogin.
type Upstreams interface {
	LoginOptions(ctx context.Context) ([]LoginOption, error)
}

// Clients is what sign-in reads about clients.
type Clients interface {
	GetClient(ctx context.Context, id string) (client.Client, error)
}

// Handler serves /oauth2/authorize, the login page and /oauth2/logout.
type Handler struct {
	OAuth   *oauth.Server
	Clients Clients
	Store   session.Store
	Users   user.Getter
	Auth    user.Authenticator
	// Upstreams may be nil: no upstream providers.
	Upstreams Upstreams
	Audit     audit.Recorder
	Now       func() time.Time

	// SessionIdle ends a session unused this long; SessionLifetime ends any session
	// this long after sign-in (defaults 1h and 12h).
	SessionIdle     time.Duration
	SessionLifetime time.Duration
	// LoginRequestLifetime is how long the login page of one authorization request
	// stays usable (default 10m).
	LoginRequestLifetime time.Duration
	// LoginAttemptsPerIP limits sign-in attempts per source IP per minute;
	// LoginFailuresPerUser limits failed attempts per username per 15 minutes.
	// 0 turns a limit off. In memory, per replica.
	LoginAttemptsPerIP   int
	LoginFailuresPerUser int

	logins      *prometheus.CounterVec
	secure      bool // the issuer is https: Secure, __Host- cookies
	ipLimit     *limiter
	userLimit   *limiter
	issuer      string
	cookieNames cookieNames
}

type cookieNames struct{ session, browser string }

// Init sets defaults, prepares the limiters and registers the metrics on reg (may
// be nil); call it once before serving.
func (h *Handler) Init(reg prometheus.Registerer) {
	h.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentguard_signin_logins_total",
		Help: "Login attempts on the login page and through upstream providers, by method (password, upstream) and result (success, bad_credentials, rate_limited, csrf, expired).",
	}, []string{"method", "result"})
	if reg != nil {
		reg.MustRegister(h.logins)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.SessionIdle == 0 {
		h.SessionIdle = time.Hour
	}
	if h.SessionLifetime == 0 {
		h.SessionLifetime = 12 * time.Hour
	}
	if h.LoginRequestLifetime == 0 {
		h.LoginRequestLifetime = 10 * time.Minute
	}
	h.issuer = h.OAuth.Issuer.URL
	h.secure = strings.HasPrefix(h.issuer, "https://")
	h.cookieNames = cookieNames{session: "agentguard_session", browser: "agentguard_login"}
	if h.secure {
		// __Host-: the browser keeps them only if Secure, Path=/ and host-only.
		h.cookieNames = cookieNames{session: "__Host-agentguard_session", browser: "__Host-agentguard_login"}
	}
	h.ipLimit = newLimiter(h.LoginAttemptsPerIP, time.Minute, h.Now)
	h.userLimit = newLimiter(h.LoginFailuresPerUser, 15*time.Minute, h.Now)
	h.OAuth.Extend(func(m *oauth.Metadata) {
		m.AuthorizationEndpoint = h.issuer + "/oauth2/authorize"
		m.EndSessionEndpoint = h.issuer + "/oauth2/logout"
		m.ResponseTypesSupported = []string{"code"}
		m.ResponseModesSupported = []string{"query"}
		m.AuthorizationResponseIssParamSupported = true
		m.PromptValuesSupported = []string{"none", "login", "consent", "select_account"}
	})
}

// Register adds the routes.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauth2/authorize", h.handleAuthorize)
	mux.HandleFunc("POST /oauth2/authorize", h.handleAuthorize)
	mux.HandleFunc("POST /login", h.handleLogin)
	mux.HandleFunc("GET /oauth2/logout", h.handleLogout)
	mux.HandleFunc("POST /oauth2/logout", h.handleLogout)
}

// record completes and writes an audit event; the caller refuses to go on if it fails.
func (h *Handler) record(ctx context.Context, e audit.Event) error {
	audit.Fill(ctx, &e)
	if e.Time.IsZero() {
		e.Time = h.Now()
	}
	return h.Audit.Record(ctx, e)
}
