package oauth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/token"
)

// RFC 8693 token type identifiers.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// maxActDepth bounds a delegation chain (nested act claims).
const maxActDepth = 8

// tokenExchange is RFC 8693 delegation: an agent with access_identity human presents
// the access token a user got for it (subject_token, aud = the agent) and gets a
// token for a resource server that says who the user is (sub) and which agent acts
// (act.sub), with the scopes both the agent's grant and the user's groups allow. The
// agent's inbound rules are asked again, so a user removed from them since signing
// in is refused. The target may also be another agent (its audience, agent.access):
// that agent's inbound rules must admit the user through this agent, and it can
// exchange the result in turn (chained delegation, nested act).
func (s *Server) tokenExchange(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	c, e := s.authenticateClient(ctx, req.httpRequest, req.form)
	if e != nil {
		return nil, e
	}
	req.client = c
	if c.App != nil {
		return nil, unauthorizedClient("%s is a client that signs users in; token exchange is for agents acting on behalf of users", c.App.ID)
	}
	a := c.Agent
	if a.AccessIdentity != agent.IdentityHuman {
		return nil, unauthorizedClient("agent %s has access_identity %q: it calls services as itself, so it gets tokens with client_credentials; set access_identity to human to act on behalf of users", a.ID, a.AccessIdentity)
	}
	f := req.form
	switch {
	case f.Get("subject_token") == "":
		return nil, invalidRequest("subject_token is missing: send the user's access token for this agent")
	case f.Get("subject_token_type") == "":
		return nil, invalidRequest("subject_token_type is missing; use %s", TokenTypeAccessToken)
	case f.Get("subject_token_type") != TokenTypeAccessToken:
		return nil, invalidRequest("subject_token_type %q is not supported; use %s", truncate(f.Get("subject_token_type"), 128), TokenTypeAccessToken)
	case f.Get("actor_token") != "" || f.Get("actor_token_type") != "":
		return nil, invalidRequest("actor_token is not supported: the authenticated agent is the actor")
	case f.Get("requested_token_type") != "" && f.Get("requested_token_type") != TokenTypeAccessToken:
		return nil, invalidRequest("requested_token_type %q is not supported; this server issues %s", truncate(f.Get("requested_token_type"), 128), TokenTypeAccessToken)
	}
	subj, err := s.Issuer.Verify(ctx, f.Get("subject_token"))
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, invalidGrant("subject_token has expired; the user's client must get a new one")
	case errors.Is(err, token.ErrRevoked):
		return nil, invalidGrant("subject_token is revoked")
	case errors.Is(err, token.ErrInvalid):
		return nil, invalidGrant("subject_token is not an access token of this issuer")
	case err != nil:
		return nil, serverError()
	}
	if !isUserSubject(subj.Subject) {
		return nil, invalidGrant("subject_token is not a user's token (sub %q); an agent acts for itself with client_credentials", truncate(subj.Subject, 128))
	}
	req.userID = subj.Subject
	if !slices.Contains(subj.Audience, a.Audience) {
		// Another agent's token: an agent can only exchange tokens meant for it.
		return nil, invalidGrant("subject_token was issued for another audience; agent %s can exchange only tokens whose aud is its audience %q", a.ID, a.Audience)
	}
	if !slices.Contains(grant.SplitScopes(subj.Scope), ScopeAgentAccess) {
		return nil, invalidGrant("subject_token lacks the %s scope", ScopeAgentAccess)
	}
	if depth(subj.Act) >= maxActDepth {
		return nil, invalidGrant("the delegation chain is over %d agents long", maxActDepth)
	}
	u, e := s.activeUser(ctx, subj.Subject)
	if e != nil {
		return nil, e
	}
	if e := s.callerStillExists(ctx, subj.ClientID); e != nil {
		return nil, e
	}
	if e := s.admit(ctx, req, a.ID, subj.ClientID, u, StageTokenExchange,
		"agent "+a.ID+"'s inbound rules no longer admit user "+u.ID+" through "+subj.ClientID); e != nil {
		return nil, e
	}

	aud, scopes, e := s.requestedTarget(req)
	if e != nil {
		return nil, e
	}
	// A resource server, usually; else another agent (chained delegation).
	t, e := s.authorizeFor(ctx, a.ID, aud, scopes, &u)
	if e != nil && e.Code == "invalid_target" {
		next, err := s.Agents.GetAgentByAudience(ctx, aud)
		switch {
		case err == nil:
			t, e = s.delegateToAgent(ctx, a, next, scopes)
			if e == nil {
				e = s.admit(ctx, req, next.ID, a.ID, u, StageTokenExchange,
					"agent "+next.ID+"'s inbound rules do not admit user "+u.ID+" through agent "+a.ID)
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, serverError()
		}
	}
	if e != nil {
		return nil, e
	}
	// Never past the subject token: delegation does not extend the user's sign-in.
	if left := subj.Expiry.Time().Sub(s.Now()); left < t.Lifetime {
		t.Lifetime = left.Truncate(time.Second)
	}
	if t.Lifetime < time.Second {
		return nil, invalidGrant("subject_token expires within a second; the user's client must get a new one")
	}
	act := &token.Actor{Subject: a.ID, Act: subj.Act}
	resp, e := s.issue(token.Claims{Subject: u.ID, ClientID: a.ID, Act: act}, t, "token_exchange")
	if e != nil {
		return nil, e
	}
	resp.IssuedTokenType = TokenTypeAccessToken
	resp.event.ClientID = subj.ClientID
	resp.event.Reason += "; act=" + actChain(act)
	return resp, nil
}

// delegateToAgent is the target of an exchange for another agent's audience: the
// scope agent.access only, for an active agent other than the caller.
func (s *Server) delegateToAgent(ctx context.Context, caller, next agent.Agent, scopes []string) (target, *Error) {
	if next.ID == caller.ID {
		return target{}, invalidTarget("agent %s cannot delegate to itself", caller.ID)
	}
	if !next.Active() {
		return target{}, invalidTarget("agent %s is disabled", next.ID)
	}
	for _, sc := range scopes {
		if sc != ScopeAgentAccess {
			return target{}, invalidScope("an agent's audience defines only the scope %s (asked for %q)", ScopeAgentAccess, sc)
		}
	}
	return target{Audience: next.Audience, Scopes: []string{ScopeAgentAccess}, Lifetime: s.userTokenLifetime(ctx)}, nil
}

// callerStillExists checks that the client (or agent, in a chain) the user's token
// was issued to still exists: deleting a client ends what its tokens can do.
func (s *Server) callerStillExists(ctx context.Context, id string) *Error {
	if client.IsClientID(id) {
		if ok, err := s.Clients.ClientExists(ctx, id); err != nil {
			return serverError()
		} else if !ok {
			return invalidGrant("the client %s the subject_token was issued to no longer exists", id)
		}
		return nil
	}
	prev, err := s.Agents.GetAgent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return invalidGrant("the agent %s the subject_token was issued to no longer exists", id)
	} else if err != nil {
		return serverError()
	}
	if !prev.Active() {
		return invalidGrant("the agent %s the subject_token was issued to is disabled", id)
	}
	return nil
}

func depth(a *token.Actor) int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// actChain renders the actors, most recent first: agt_b > agt_a.
func actChain(a *token.Actor) string {
	var parts []string
	for ; a != nil; a = a.Act {
		parts = append(parts, a.Subject)
	}
	return strings.Join(parts, " > ")
}
