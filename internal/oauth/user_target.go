package oauth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/policy"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Scopes a client may ask for on behalf of a user.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeGroups        = "groups"
	ScopeOfflineAccess = "offline_access"
	// ScopeAgentAccess is the one scope every agent defines as a resource server for
	// the users who call it.
	ScopeAgentAccess = "agent.access"
)

// UserScopes are the scopes users' tokens can carry.
var UserScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeGroups, ScopeOfflineAccess, ScopeAgentAccess}

// UserPrefix starts every user id (the directory's).
const UserPrefix = "usr_"

func isUserSubject(sub string) bool { return strings.HasPrefix(sub, UserPrefix) }

// UserTarget is what a client asks for on behalf of a user: OpenID Connect scopes,
// and optionally a token for one agent (its audience, scope agent.access).
type UserTarget struct {
	Scopes   []string // sorted, without duplicates
	Audience string   // the agent's audience; empty: the issuer (userinfo)
	AgentID  string   // the agent whose audience it is
}

// Scope is the space-separated scope.
func (t UserTarget) Scope() string { return strings.Join(t.Scopes, " ") }

// Has reports whether the target holds the scope.
func (t UserTarget) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

// ParseUserTarget reads the scope and resource parameters of a user's request: the
// OpenID Connect scopes, and agent.access on one agent's audience, named by
// resource=<audience> or written <audience>|agent.access. The agent must exist and
// be active. A resource implies agent.access.
func (s *Server) ParseUserTarget(ctx context.Context, scope string, resources []string) (UserTarget, *Error) {
	if len(scope) > 4096 {
		return UserTarget{}, invalidScope("scope is over 4096 bytes")
	}
	auds := map[string]bool{}
	for _, r := range resources {
		if !api.ValidAudience(r) {
			return UserTarget{}, invalidTarget("resource %q is not an absolute URI without a fragment", r)
		}
		auds[r] = true
	}
	var scopes []string
	for _, tok := range strings.Fields(scope) {
		sc := tok
		if a, after, piped := strings.Cut(tok, "|"); piped {
			if !api.ValidAudience(a) || after != ScopeAgentAccess {
				return UserTarget{}, invalidScope("scope %q is not of the form <agent audience>|%s", tok, ScopeAgentAccess)
			}
			auds[a] = true
			sc = ScopeAgentAccess
		}
		if !slices.Contains(UserScopes, sc) {
			return UserTarget{}, invalidScope("scope %q is not available to users: ask for %s, and for an agent's token add resource=<agent audience> (scope %s)",
				sc, strings.Join(UserScopes[:5], ", "), ScopeAgentAccess)
		}
		scopes = append(scopes, sc)
	}
	if len(scopes) > 32 {
		return UserTarget{}, invalidScope("too many scopes")
	}
	var t UserTarget
	switch len(auds) {
	case 0:
		if slices.Contains(scopes, ScopeAgentAccess) {
			return UserTarget{}, invalidScope("%s needs the agent: add resource=<agent audience> or write the scope as <agent audience>|%s", ScopeAgentAccess, ScopeAgentAccess)
		}
	case 1:
		for a := range auds {
			t.Audience = a
		}
		scopes = append(scopes, ScopeAgentAccess)
	default:
		list := make([]string, 0, len(auds))
		for a := range auds {
			list = append(list, a)
		}
		slices.Sort(list)
		return UserTarget{}, invalidTarget("a token is for one agent; this request names %s", strings.Join(list, ", "))
	}
	if len(scopes) == 0 {
		return UserTarget{}, invalidScope("scope is missing: ask for openid (and profile, email, groups, offline_access), or for an agent with resource=<agent audience>")
	}
	slices.Sort(scopes)
	t.Scopes = slices.Compact(scopes)
	if t.Audience != "" {
		a, e := s.targetAgent(ctx, t.Audience)
		if e != nil {
			return UserTarget{}, e
		}
		t.AgentID = a.ID
	}
	return t, nil
}

// targetAgent finds the active agent whose audience aud is.
func (s *Server) targetAgent(ctx context.Context, aud string) (agent.Agent, *Error) {
	a, err := s.Agents.GetAgentByAudience(ctx, aud)
	if errors.Is(err, store.ErrNotFound) {
		return a, invalidTarget("no agent has the audience %q; users get tokens for agents (resource=<the agent's audience>)", aud)
	} else if err != nil {
		return a, serverError()
	}
	if !a.Active() {
		return a, invalidTarget("agent %s is disabled", a.ID)
	}
	return a, nil
}

// Stages at which the inbound policy is asked, recorded in its events.
const (
	StageAuthorize         = "authorize"
	StageAuthorizationCode = "authorization_code"
	StageRefreshToken      = "refresh_token"
	StageTokenExchange     = "token_exchange"
)

// errPolicy is returned by AdmitUser when no decision could be made or recorded.
var errPolicy = errors.New("the inbound policy could not be evaluated or its decision recorded")

// AdmitUser asks the agent's inbound rules whether u may call the agent through the
// client clientID, and records the decision as an inbound audit event (allow or deny,
// with the policy's reason). No policy engine means deny. An error means neither
// decision can be trusted: the caller refuses.
func (s *Server) AdmitUser(ctx context.Context, agentID, clientID string, u user.User, stage string) (policy.Decision, error) {
	d, ev, err := s.decide(ctx, agentID, clientID, u, stage)
	if err != nil {
		return d, err
	}
	if s.record(ctx, ev) != nil {
		return d, errPolicy
	}
	return d, nil
}

// decide is AdmitUser without recording: the token endpoint records the decision's
// event together with the token event, in one audit commit.
func (s *Server) decide(ctx context.Context, agentID, clientID string, u user.User, stage string) (policy.Decision, audit.Event, error) {
	var d policy.Decision
	var err error
	if s.Policy == nil {
		d = policy.Decision{Reason: "no inbound policy engine is configured"}
	} else if d, err = s.Policy.Decide(ctx, policy.Request{AgentID: agentID, ClientID: clientID, User: u}); err != nil {
		return d, audit.Event{}, errPolicy
	}
	ev := audit.Event{
		Category: audit.CategoryInbound, Action: "agent.access", Decision: audit.Deny,
		Reason: stage + ": " + d.Reason, AgentID: agentID, User: u.ID, ClientID: clientID,
		ResourceType: "agent", Resource: agentID,
	}
	if d.Allow {
		ev.Decision = audit.Allow
	}
	return d, ev, nil
}

// admit is decide at the token endpoint: the event joins the request's events. A
// denial is invalid_grant.
func (s *Server) admit(ctx context.Context, req *tokenRequest, agentID, clientID string, u user.User, stage, denied string) *Error {
	d, ev, err := s.decide(ctx, agentID, clientID, u, stage)
	if err != nil {
		return serverError()
	}
	req.events = append(req.events, ev)
	if !d.Allow {
		return invalidGrant("%s", denied)
	}
	return nil
}

// activeUser loads the user and checks they may still get tokens.
func (s *Server) activeUser(ctx context.Context, id string) (user.User, *Error) {
	u, err := s.Users.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return u, invalidGrant("the user no longer exists")
	} else if err != nil {
		return u, serverError()
	}
	if !u.Active {
		return u, invalidGrant("the user is deactivated")
	}
	return u, nil
}

// admitAtToken re-checks, when tokens are issued from a code or a refresh token,
// that the agent is still active and its inbound rules still admit the user through
// the client. A denial is invalid_grant.
func (s *Server) admitAtToken(ctx context.Context, req *tokenRequest, aud, clientID string, u user.User, stage string) (agentID string, e *Error) {
	if aud == "" {
		return "", nil
	}
	a, e := s.targetAgent(ctx, aud)
	if e != nil {
		return "", invalidGrant("%s", e.Description)
	}
	return a.ID, s.admit(ctx, req, a.ID, clientID, u, stage,
		"agent "+a.ID+"'s inbound rules do not admit user "+u.ID+" through client "+clientID)
}
