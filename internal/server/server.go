// Package server wires agentguard together: storage, KMS, keys, the OAuth server,
// the management API, health and metrics. It is the only package that knows every
// other one; each domain package knows only the interfaces it uses.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentguard/agentguard/internal/admin"
	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/egress"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/oauth"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/registration"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/scim"
	"github.com/agentguard/agentguard/internal/signin"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/token"
	"github.com/agentguard/agentguard/internal/topology"
	"github.com/agentguard/agentguard/internal/user"
)

// The SQL store serves as the authorization server's replay store too.
var _ oauth.ReplayStore = (*sqlstore.Store)(nil)

// Server is one running agentguard.
type Server struct {
	Config   config.Config
	Store    *sqlstore.Store
	Envelope *kms.Envelope
	Keyring  *token.Keyring
	Issuer   *token.Issuer
	OAuth    *oauth.Server
	// Tokens gets and caches OAuth providers' tokens (the Credential API and the gateway).
	Tokens   *credential.Tokens
	Signin   *signin.Handler
	Audit    audit.Recorder
	AuditLog *audit.Log
	Registry *prometheus.Registry
	Handler  http.Handler
	// Directory is the user directory: user.Authenticator and user.Getter for sign-in.
	Directory *user.Directory
	// IDP is the upstream identity providers (OIDC sign-in, LDAP passwords).
	IDP *idp.Service
	// Policy decides inbound requests (policy.Decider): who may call which agent
	// through which client.
	Policy *policy.Engine
	// Registrar serves dynamic client registration (nil when it is off).
	Registrar *registration.Registrar

	now       func() time.Time
	closers   []func() error
	retention *audit.Retention
}

// Options are test hooks.
type Options struct {
	Now func() time.Time
	// DiscardAudit records nothing (audit.Discard instead of the Log). For
	// benchmarks only (bench/load -no-audit measures what auditing costs); a real
	// server always audits.
	DiscardAudit bool
}

// New opens storage and the KMS, loads signing keys, makes sure an admin exists,
// and builds the HTTP handler.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{Config: cfg, now: now, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	wrapper, err := kms.OpenLocal(filepath.Join(cfg.DataDir, kms.LocalKeyFile))
	if err != nil {
		return nil, err
	}
	s.Envelope = kms.NewEnvelope(wrapper)

	if s.Store, err = sqlstore.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	s.closers = append(s.closers, s.Store.Close)
	s.Registry.MustRegister(s.Store.ReadCacheCollector())
	// On SQLite: one server per data dir (the audit journal's lock), and what a
	// crash left in the journal goes into the database before anything runs.
	if err := s.Store.OpenAuditJournal(); err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}

	sinks, err := audit.OpenSinks(ctx, cfg.AuditExport, os.Stdout)
	if err != nil {
		return nil, err
	}
	s.AuditLog = audit.New(s.Store, audit.Options{Now: now, Sinks: sinks, CommitDelay: cfg.AuditCommitDelay})
	s.Audit = s.AuditLog
	if opts.DiscardAudit {
		s.Audit = audit.Discard{}
	}
	s.closers = append(s.closers, s.AuditLog.Close) // runs before Store.Close: drains queued events
	s.retention = &audit.Retention{Store: s.Store, Envelope: s.Envelope, MaxAge: cfg.AuditRetention, Now: now}

	if err := s.Store.EnsureResourceServer(ctx, resource.Server{
		ID: resource.BuiltinID, Name: "agentguard", Audience: cfg.Issuer,
		Scopes: []resource.Scope{
			{Name: grant.ScopeCredentials, Description: "call the credential API (functional authorization)"},
			{Name: grant.ScopeAdmin, Description: "call the management API"},
		},
		TokenLifetime: resource.DefaultTokenLifetime, CreatedAt: now(), UpdatedAt: now(),
	}); err != nil {
		return nil, fmt.Errorf("create the built-in resource server: %w", err)
	}

	s.Keyring, err = token.NewKeyring(ctx, s.Store, s.Envelope, token.KeyringConfig{
		Algorithm: jose.SignatureAlgorithm(cfg.SigningAlg),
		// A retired key stays published for the longest token lifetime plus leeway.
		Retain: time.Duration(resource.MaxLifetime)*time.Second + 2*token.Leeway,
		Now:    now,
	})
	if err != nil {
		return nil, err
	}
	s.Issuer = &token.Issuer{URL: cfg.Issuer, Keyring: s.Keyring, Store: s.Store, Now: now}

	envHash, err := admin.Bootstrap(ctx, s.Store, cfg.DataDir, cfg.AdminToken, now())
	if err != nil {
		return nil, err
	}

	s.Directory = &user.Directory{Store: s.Store, Hasher: &user.Hasher{}, Audit: s.Audit, Now: now, SuspendOrphans: cfg.SuspendOrphans}
	s.Policy = &policy.Engine{Store: s.Store}

	s.OAuth = &oauth.Server{
		Issuer: s.Issuer, Agents: s.Store, Grants: s.Store, Resources: s.Store, Targets: s.Store, Replay: s.Store,
		Audit: s.Audit, Now: now,
		Clients: s.Store, Users: s.Directory, Policy: s.Policy, Codes: s.Store, Refresh: s.Store,
		IDTokenLifetime: cfg.IDTokenLifetime, RefreshTokenLifetime: cfg.RefreshTokenLifetime, RefreshTokenIdle: cfg.RefreshTokenIdle,
	}
	// Sign-in: the login page and sessions; the directory's upstream identity
	// providers set Signin.Upstreams and call Signin.CompleteLogin.
	s.Signin = &signin.Handler{
		OAuth: s.OAuth, Clients: s.Store, Store: s.Store, Users: s.Directory, Auth: s.Directory,
		Audit: s.Audit, Now: now,
		SessionIdle: cfg.SessionIdleTimeout, SessionLifetime: cfg.SessionLifetime,
		LoginAttemptsPerIP: cfg.LoginAttemptsPerIP, LoginFailuresPerUser: cfg.LoginFailuresPerUser,
	}
	s.OAuth.Sessions = s.Signin
	s.OAuth.Init(s.Registry)
	s.Signin.Init(s.Registry)
	// Upstream identity providers: OIDC buttons on the login page (finished by
	// Signin.CompleteLogin), LDAP tried by the directory after local passwords.
	s.IDP = &idp.Service{Store: s.Store, Envelope: s.Envelope, Dir: s.Directory, Audit: s.Audit, Now: now,
		Issuer: cfg.Issuer, Completer: s.Signin, Replay: s.Store}
	s.Directory.Upstream = s.IDP
	s.Signin.Upstreams = loginOptions{s.IDP}
	// Dynamic client registration (RFC 7591), advertised in the discovery document.
	if cfg.ClientRegistration != registration.ModeOff {
		s.Registrar = &registration.Registrar{Mode: cfg.ClientRegistration, Store: s.Store, Clients: s.Store, Audit: s.Audit, Now: now,
			PerIP: cfg.ClientRegistrationsPerIP}
		s.Registrar.Init(s.Registry)
		s.OAuth.Extend(func(m *oauth.Metadata) { m.RegistrationEndpoint = cfg.Issuer + "/oauth2/register" })
	}

	s.Tokens = &credential.Tokens{
		Store: s.Store, Envelope: s.Envelope, Now: now,
		Timeout:         orDefault(cfg.UpstreamTimeout, credential.DefaultUpstreamTimeout),
		DefaultLifetime: orDefault(cfg.UpstreamTokenLifetime, credential.DefaultTokenLifetime),
		AllowInsecure:   cfg.AllowInsecureTokenEndpoints,
	}
	s.Tokens.Client = credential.NewUpstreamClient(s.Tokens.Timeout)
	s.Tokens.Register(s.Registry)

	auth := &admin.Authenticator{Store: s.Store, Issuer: s.Issuer, Agents: s.Store, Audit: s.Audit, EnvHash: envHash}
	s.Handler = s.routes(auth)
	return s, nil
}

func (s *Server) routes(auth *admin.Authenticator) http.Handler {
	mux := http.NewServeMux()
	s.OAuth.Register(mux)
	s.Signin.Register(mux)
	(&client.Handler{Store: s.Store, Audit: s.Audit, Now: s.now}).Register(mux, auth.Require)
	if s.Registrar != nil {
		s.Registrar.Register(mux)
	}
	(&registration.Handler{Store: s.Store, Clients: s.Store, Audit: s.Audit, Now: s.now}).Register(mux, auth.Require)
	(&agent.Handler{Store: s.Store, Audit: s.Audit, Now: s.now, Owners: s.Store}).Register(mux, auth.Require)
	(&user.Handler{Dir: s.Directory, Audit: s.Audit}).Register(mux, auth.Require)
	s.IDP.Register(mux)
	(&idp.Handler{Svc: s.IDP}).Register(mux, auth.Require)
	(&scim.TokenHandler{Store: s.Store, Audit: s.Audit, Now: s.now}).Register(mux, auth.Require)
	(&scim.Handler{Dir: s.Directory, Tokens: s.Store, Audit: s.Audit, Now: s.now, BaseURL: s.Config.Issuer + "/scim/v2"}).Register(mux)
	(&policy.Handler{Store: s.Store, Directory: s.Directory, Engine: s.Policy, Audit: s.Audit, Now: s.now,
		Agent: func(ctx context.Context, id string) error { _, err := s.Store.GetAgent(ctx, id); return err },
		Client: func(ctx context.Context, id string) error {
			_, found, err := s.inboundCaller(ctx, id)
			if err == nil && !found {
				err = store.ErrNotFound
			}
			return err
		},
	}).Register(mux, auth.Require)
	(&resource.Handler{Store: s.Store, Audit: s.Audit, Now: s.now}).Register(mux, auth.Require)
	(&grant.Handler{Store: s.Store, Resources: s.Store, Audit: s.Audit, Now: s.now,
		Agent: func(ctx context.Context, id string) error { _, err := s.Store.GetAgent(ctx, id); return err },
	}).Register(mux, auth.Require)
	(&token.KeysHandler{Keyring: s.Keyring, Audit: s.Audit}).Register(mux, auth.Require)
	(&audit.Handler{Store: s.Store, Verifier: &audit.Verifier{Store: s.Store, Key: s.retention.Key}}).Register(mux, auth.Require)
	agentAuth := &credential.Authorizer{Issuer: s.Issuer, Agents: s.Store, Store: s.Store}
	credMetrics := credential.NewMetrics(s.Registry)
	(&credential.Handler{
		Store: s.Store, Agents: s.Store, Envelope: s.Envelope, Tokens: s.Tokens, Auth: agentAuth, Audit: s.Audit, Metrics: credMetrics, Now: s.now,
		AllowInsecureTokenEndpoints: s.Config.AllowInsecureTokenEndpoints, AllowInsecureUpstreams: s.Config.AllowInsecureUpstreams,
	}).Register(mux, auth.Require)
	(&egress.Proxy{
		Auth: agentAuth, Tokens: s.Tokens, Envelope: s.Envelope, Audit: s.Audit, Metrics: credMetrics,
		MaxBody: s.Config.GatewayMaxBody, Timeout: s.Config.GatewayTimeout, AllowInsecure: s.Config.AllowInsecureUpstreams,
	}).Register(mux)
	(&topology.Handler{Store: s.Store, Clients: topology.InboundClients(s.Store, s.inboundCaller)}).Register(mux, auth.Require)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttpHandler(s.Registry))
	mux.HandleFunc(apiFallbackPattern, apiFallback(mux))
	return s.middleware(mux)
}

// inboundCaller names what an inbound rule admits users through: a client (app), or
// an agent for chained delegation (its delegated token is the subject token).
func (s *Server) inboundCaller(ctx context.Context, id string) (name string, found bool, err error) {
	if c, err := s.Store.GetClient(ctx, id); err == nil {
		return c.Name, true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	if a, err := s.Store.GetAgent(ctx, id); err == nil {
		return a.Name, true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", false, err
	}
	return "", false, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// loginOptions offers the upstream OIDC providers on the sign-in page.
type loginOptions struct{ svc *idp.Service }

func (l loginOptions) LoginOptions(ctx context.Context) ([]signin.LoginOption, error) {
	opts, err := l.svc.LoginOptions(ctx)
	out := make([]signin.LoginOption, 0, len(opts))
	for _, o := range opts {
		out = append(out, signin.LoginOption{ID: o.ID, Name: o.Name, URL: o.URL})
	}
	return out, err
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"storage": "ok", "kms": "ok"}
	status := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		checks["storage"], status = "unreachable", http.StatusServiceUnavailable
	}
	if err := s.Envelope.Wrapper().Ping(ctx); err != nil {
		checks["kms"], status = "unreachable", http.StatusServiceUnavailable
	}
	writeJSON(w, status, checks)
}

// Close releases storage and other resources.
func (s *Server) Close() error {
	var err error
	for i := len(s.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, s.closers[i]())
	}
	s.closers = nil
	return err
}

// Run serves on cfg.Addr until ctx is done, then drains in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Config.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(ctx)
	defer stop()
	go s.background(bg)
	if s.Config.AuditRetention > 0 {
		go s.retention.Run(bg, time.Hour)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("agentguard is serving", "addr", ln.Addr().String(), "issuer", s.Config.Issuer, "storage", string(s.Store.Dialect()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down; finishing in-flight requests", "timeout", s.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}
