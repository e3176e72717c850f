package credential

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/token"
)

// Caller is an agent calling the Credential API or the gateway, possibly on behalf
// of a user (a delegated token from token exchange).
type Caller struct {
	AgentID  string
	User     string // the user a delegated token acts for; "" for the agent itself
	ClientID string
}

// Authorizer decides whether a caller may use a credential: functional
// authorization (an access token of this server for its own audience with the
// agentguard:credentials scope, of an active agent) and data authorization (the
// agent's outbound rule names the credential). Nothing is cached between requests.
type Authorizer struct {
	Issuer *token.Issuer
	Agents AgentGetter
	Store  Store
}

// Authenticate checks the request's bearer token. The error is an *api.Error
// (401 with the RFC 6750 challenge, or 403 insufficient_scope); the Caller holds
// what is known about the caller even then, for the audit event. That the agent
// exists and is active is checked by Access, in the same query as its rule.
func (a *Authorizer) Authenticate(r *http.Request) (Caller, *api.Error) {
	var c Caller
	h := r.Header.Get("Authorization")
	if h == "" {
		return c, api.Unauthorized("send the agent's access token as Authorization: Bearer <token> (get one from /oauth2/token with the agentguard:credentials scope)")
	}
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return c, api.Unauthorized("the Authorization header must be Bearer <access token>")
	}
	claims, err := a.Issuer.Verify(r.Context(), raw)
	c.AgentID, c.ClientID = claims.ClientID, claims.ClientID
	if err != nil {
		if !errors.Is(err, token.ErrInvalid) && !errors.Is(err, token.ErrExpired) && !errors.Is(err, token.ErrRevoked) {
			return c, api.Problem(http.StatusServiceUnavailable, "the access token could not be checked; try again")
		}
		return c, api.Unauthorized("the access token is not valid: " + err.Error())
	}
	if !slices.Contains(claims.Audience, a.Issuer.URL) {
		return c, api.Unauthorized("the access token is for another audience; the Credential API takes tokens whose audience is this server (" + a.Issuer.URL + ")")
	}
	if claims.Act != nil {
		// Delegated: the current actor (the outermost act) is the agent, acting for sub.
		c.AgentID, c.User = claims.Act.Subject, claims.Subject
		if claims.Act.Subject == "" || claims.Act.Subject != claims.ClientID {
			return c, api.Unauthorized("the delegated token's act.sub is not its client_id")
		}
	} else if claims.Subject != claims.ClientID {
		return c, api.Unauthorized("the access token's subject is not the agent it was issued to; a token acting for a user must be delegated (act)")
	}
	if !slices.Contains(grant.SplitScopes(claims.Scope), grant.ScopeCredentials) {
		e := api.Forbidden("the access token lacks the %s scope (the functional authorization)", grant.ScopeCredentials)
		e.Header = http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="` + grant.ScopeCredentials + `"`}}
		return c, e
	}
	return c, nil
}

// Access returns what the caller's outbound rule allows for identifier. A
// malformed identifier, an unknown one and one outside the rule are all
// ErrNotAllowed, answered alike (see Denied); a disabled or deleted agent is a 401
// *api.Error.
func (a *Authorizer) Access(ctx context.Context, c Caller, identifier string) (Access, error) {
	var acc Access
	err := store.ErrNotFound
	why := fmt.Sprintf("no node names %q", identifier)
	if ValidIdentifier(identifier) {
		acc, err = a.Store.OutboundAccess(ctx, c.AgentID, identifier)
	} else {
		why = fmt.Sprintf("%q is not a valid identifier", clip(identifier))
	}
	switch {
	case err == nil && !acc.AgentActive:
		return acc, errAgentGone
	case errors.Is(err, store.ErrNotFound):
		// No node: the agent may be gone or disabled too, which is a 401.
		ag, err := a.Agents.GetAgent(ctx, c.AgentID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !ag.Active()) {
			return acc, errAgentGone
		} else if err != nil {
			return acc, err
		}
		return acc, fmt.Errorf("%w: %s", ErrNotAllowed, why)
	}
	return acc, err
}

// errAgentGone answers a token whose agent is disabled or deleted.
var errAgentGone = api.Unauthorized("the access token's agent is disabled or gone")

// ErrNotAllowed: the outbound rule does not name the identifier (or it does not exist).
var ErrNotAllowed = errors.New("the agent's outbound rule does not allow it")

// Denied is the one answer for an identifier the caller may not use, whether it
// exists or not, so that an agent cannot probe which identifiers exist.
func Denied(c Caller, kind string) *api.Error {
	return api.Forbidden("agent %s may not use this %s: it is not in the agent's outbound rule, or does not exist", c.AgentID, kind)
}

// Event starts the audit event of a Credential API or gateway call.
func Event(ctx context.Context, action, resourceType, identifier string, c Caller) audit.Event {
	e := audit.Event{
		Category: audit.CategoryCredential, Action: action, ResourceType: resourceType, Resource: clip(identifier),
		AgentID: c.AgentID, User: c.User, ClientID: c.ClientID,
	}
	audit.Fill(ctx, &e)
	return e
}

// clip bounds a caller-supplied string for an audit reason or message.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

// Metrics counts Credential API and gateway decisions by action and decision.
type Metrics struct{ decisions *prometheus.CounterVec }

// NewMetrics registers agentguard_credential_requests_total with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentguard_credential_requests_total",
		Help: "Credential API and gateway requests by action (api_key.retrieve, oauth_token.retrieve, proxy.forward) and decision (allow, deny).",
	}, []string{"action", "decision"})}
	reg.MustRegister(m.decisions)
	return m
}

// Observe counts one decision; a nil Metrics counts nothing.
func (m *Metrics) Observe(action, decision string) {
	if m != nil {
		m.decisions.WithLabelValues(action, decision).Inc()
	}
}
