// Package egress is the gateway through which an agent calls a third-party API
// without ever holding its credential: the agent sends the request to
// /gateway/<identifier>/<path> with its own agentguard access token; agentguard
// authorizes it exactly as the Credential API does (functional authorization and
// the agent's outbound rule), then forwards it to the node's upstream URL with the
// API key or OAuth token injected through the node's header template, streaming
// both bodies.
package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/kms"
)

// Defaults (server flags --gateway-timeout and --gateway-max-body).
const (
	DefaultTimeout = 5 * time.Minute
	DefaultMaxBody = 32 << 20
)

// Proxy serves /gateway/{node}/{path...}.
type Proxy struct {
	Auth     *credential.Authorizer
	Tokens   *credential.Tokens
	Envelope *kms.Envelope
	Audit    audit.Recorder
	Metrics  *credential.Metrics // nil: not counted
	// Transport reaches upstreams; nil means NewTransport(Timeout).
	Transport http.RoundTripper
	// MaxBody bounds the forwarded request body; Timeout the whole exchange.
	MaxBody int64
	Timeout time.Duration
	// AllowInsecure lets plain-http upstreams of hosts other than localhost through.
	AllowInsecure bool

	rp *httputil.ReverseProxy
}

// Register adds the gateway routes (every method).
func (p *Proxy) Register(mux *http.ServeMux) {
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.MaxBody <= 0 {
		p.MaxBody = DefaultMaxBody
	}
	if p.Transport == nil {
		p.Transport = NewTransport(p.Timeout)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      p.Transport,
		ModifyResponse: p.onResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	mux.Handle(credential.GatewayPrefix+"{node}", p)
	mux.Handle(credential.GatewayPrefix+"{node}/{path...}", p)
}

// NewTransport is the upstream transport: bounded connect, TLS and first-byte
// times, pooled keep-alive connections.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// forward is what ServeHTTP decided, for the reverse proxy's hooks.
type forward struct {
	node   string
	target *url.URL
	header string // canonical name of the injected header
	value  string // its value, with the credential
	secret string // the credential alone, to scrub from response headers
	// provider and token are set for an OAuth node: the token injected.
	provider *credential.OAuthProvider
	token    credential.Token
}

type forwardKey struct{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	c, aerr := p.Auth.Authenticate(r)
	ev := credential.Event(r.Context(), "proxy.forward", "", node, c)
	if aerr != nil {
		p.refuse(w, r, ev, aerr.Detail, aerr)
		return
	}
	acc, err := p.Auth.Access(r.Context(), c, node)
	if errors.Is(err, credential.ErrNotAllowed) {
		p.refuse(w, r, ev, err.Error(), credential.Denied(c, "outbound node"))
		return
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		p.refuse(w, r, ev, ae.Detail, ae)
		return
	}
	if err != nil {
		p.refuse(w, r, ev, "internal error", err)
		return
	}
	n := acc.Node
	ev.ResourceType = n.CredentialType
	if n.UpstreamURL == "" {
		p.refuse(w, r, ev, "the node has no upstream_url", api.Forbidden(
			"the outbound node %q of agent %s has no upstream_url, so the gateway cannot forward to it; an admin sets one with PATCH /api/v1/agents/%s/outbound/%s",
			node, c.AgentID, c.AgentID, node))
		return
	}
	if msg := credential.CheckSecretURL(n.UpstreamURL, p.AllowInsecure, false); msg != "" {
		p.refuse(w, r, ev, "upstream_url refused: "+msg, api.Problem(http.StatusBadGateway, "the outbound node %q's upstream_url %s", node, msg))
		return
	}
	base, err := url.Parse(n.UpstreamURL)
	if err != nil {
		p.refuse(w, r, ev, "upstream_url does not parse", err)
		return
	}
	target, err := Target(base, restOfPath(r), r.URL.RawQuery)
	if err != nil {
		p.refuse(w, r, ev, "path refused: "+err.Error(), api.Problem(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	if r.ContentLength > p.MaxBody {
		p.refuse(w, r, ev, "body too large", api.Problem(http.StatusRequestEntityTooLarge, "the body is over the gateway's %d-byte limit", p.MaxBody))
		return
	}
	tmplText := n.HeaderTemplate
	if tmplText == "" {
		tmplText = credential.DefaultTemplate(n.CredentialType)
	}
	tmpl, err := credential.ParseHeaderTemplate(tmplText, n.CredentialType)
	if err != nil {
		p.refuse(w, r, ev, "stored header template is invalid", fmt.Errorf("node %s: header template: %w", n.ID, err))
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), p.Timeout)
	defer cancel()
	secret, oauthTok, err := p.secret(ctx, acc)
	var ue *credential.UpstreamError
	if errors.As(err, &ue) {
		p.refuse(w, r, ev, "provider failed: "+ue.Reason, ue)
		return
	}
	if err != nil {
		p.refuse(w, r, ev, "internal error", err)
		return
	}
	value, err := tmpl.Render(secret)
	if err != nil {
		p.refuse(w, r, ev, err.Error(), api.Problem(http.StatusBadGateway, "the credential of node %q cannot be injected: %s", node, err.Error()))
		return
	}

	p.Metrics.Observe(ev.Action, audit.Allow)
	ev.Decision, ev.Reason = audit.Allow, fmt.Sprintf("%s %s://%s%s via outbound node %s (%s)", r.Method, target.Scheme, target.Host, target.EscapedPath(), n.ID, n.NodeType)
	if err := p.Audit.Record(r.Context(), ev); err != nil {
		api.WriteError(w, r, fmt.Errorf("record the audit event: %w", err))
		return
	}
	// The exchange may outlast the server's read and write timeouts (long
	// uploads, streamed answers); it is bounded by the gateway timeout instead.
	// Both deadlines end after the exchange's own: when the connection's read
	// deadline passes, net/http cancels the request as if the agent had gone.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.Timeout + 5*time.Second))
	_ = rc.SetWriteDeadline(time.Now().Add(p.Timeout + 5*time.Second))
	r.Body = http.MaxBytesReader(w, r.Body, p.MaxBody)
	f := &forward{node: node, target: target, header: tmpl.Name, value: value, secret: secret}
	if acc.Provider != nil {
		f.provider, f.token = acc.Provider, oauthTok
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, forwardKey{}, f)))
}

// secret is the credential value to inject: the current API key, or a token of
// the OAuth provider for its default scopes (returned whole too, so a refusal of it
// by the upstream can invalidate it).
func (p *Proxy) secret(ctx context.Context, acc credential.Access) (string, credential.Token, error) {
	if acc.APIKey != nil {
		v, err := p.Envelope.Open(ctx, acc.APIKey.Sealed, credential.APIKeyAAD(credential.VersionID(acc.Node.CredentialID, acc.APIKey.Version)))
		if err != nil {
			return "", credential.Token{}, fmt.Errorf("open API key %s: %w", acc.Node.Identifier, err)
		}
		s := string(v)
		clear(v)
		return s, credential.Token{}, nil
	}
	scopes, err := credential.ResolveScopes(acc.Provider, nil)
	if err != nil {
		return "", credential.Token{}, err
	}
	tok, err := p.Tokens.Get(ctx, acc.Provider, scopes)
	return tok.AccessToken, tok, err
}

// restOfPath is the request path after /gateway/<node>, as sent (escaped).
func restOfPath(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.EscapedPath(), credential.GatewayPrefix)
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i:]
	}
	return ""
}

func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, ev audit.Event, reason string, e error) {
	ev.Decision, ev.Reason = audit.Deny, reason
	p.Metrics.Observe(ev.Action, ev.Decision)
	if err := p.Audit.Record(r.Context(), ev); err != nil {
		slog.ErrorContext(r.Context(), "recording a gateway denial failed", "err", err)
	}
	credential.WriteProblem(w, r, e)
}

// rewrite builds the upstream request: the node's URL, the upstream's Host, no
// agentguard token, and the injected header replacing any the agent sent under
// that name. (httputil has already removed hop-by-hop and X-Forwarded-* headers.)
func rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardKey{}).(*forward)
	pr.Out.URL = f.target
	pr.Out.Host = ""
	h := pr.Out.Header
	h.Del("Authorization")
	h.Del("Proxy-Authorization")
	h.Del(f.header)
	h.Set(f.header, f.value)
}

// onResponse runs on every upstream answer: a 401 to an injected OAuth token means
// the provider no longer honours it (revoked, or its key rotated), so the cached
// token is forgotten and the agent's next call gets a new one; then the headers
// are scrubbed.
func (p *Proxy) onResponse(resp *http.Response) error {
	if f, ok := resp.Request.Context().Value(forwardKey{}).(*forward); ok && f.provider != nil && resp.StatusCode == http.StatusUnauthorized {
		if scopes, err := credential.ResolveScopes(f.provider, nil); err == nil {
			p.Tokens.Invalidate(context.WithoutCancel(resp.Request.Context()), f.provider, scopes, f.token)
		}
	}
	return scrubResponse(resp)
}

// scrubResponse drops response headers that echo the credential back, and moves
// the upstream's X-Request-Id to X-Upstream-Request-Id (X-Request-Id is
// agentguard's, the id of its audit event). Bodies are passed through as they are
// (and never logged).
func scrubResponse(resp *http.Response) error {
	if id := resp.Header.Values("X-Request-Id"); len(id) > 0 {
		resp.Header.Del("X-Request-Id")
		resp.Header["X-Upstream-Request-Id"] = id
	}
	f, ok := resp.Request.Context().Value(forwardKey{}).(*forward)
	if !ok || f.secret == "" {
		return nil
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			if strings.Contains(v, f.secret) {
				resp.Header.Del(k)
				slog.Warn("the gateway dropped an upstream response header that held the credential", "node", f.node, "header", k)
				break
			}
		}
	}
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	node := ""
	if f, ok := r.Context().Value(forwardKey{}).(*forward); ok {
		node = f.node
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		api.WriteError(w, r, api.Problem(http.StatusRequestEntityTooLarge, "the body is over the gateway's %d-byte limit", p.MaxBody))
	case errors.Is(err, context.DeadlineExceeded):
		api.WriteError(w, r, api.Problem(http.StatusGatewayTimeout, "the upstream of node %q did not answer within %s", node, p.Timeout))
	case errors.Is(err, context.Canceled):
		// Usually the agent went away and nobody reads this.
		api.WriteError(w, r, api.Problem(http.StatusBadGateway, "the request to the upstream of node %q was canceled", node))
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its query
		}
		slog.Warn("gateway: upstream request failed", "node", node, "err", err)
		api.WriteError(w, r, api.Problem(http.StatusBadGateway, "the upstream of node %q could not be reached", node))
	}
}
