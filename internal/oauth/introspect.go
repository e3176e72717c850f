package oauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/token"
)

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool         `json:"active"`
	Scope     string       `json:"scope,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  any          `json:"aud,omitempty"`
	Issuer    string       `json:"iss,omitempty"`
	Expiry    int64        `json:"exp,omitempty"`
	IssuedAt  int64        `json:"iat,omitempty"`
	NotBefore int64        `json:"nbf,omitempty"`
	JTI       string       `json:"jti,omitempty"`
	TokenType string       `json:"token_type,omitempty"`
	Act       *token.Actor `json:"act,omitempty"`
}

// handleIntrospect answers RFC 7662 for an authenticated agent. A token that is not
// ours, expired, revoked, or whose agent is gone or disabled is {"active": false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, e := parseForm(w, r)
	var caller *authenticatedClient
	if e == nil {
		caller, e = s.authenticateClient(ctx, r, form)
	}
	if e == nil && caller.Method == AuthNone {
		e = invalidClient("client %s is public: introspection needs an authenticated caller (an agent, a confidential client, or a resource server's agent)", caller.ID())
	}
	if e == nil && form.Get("token") == "" {
		e = invalidRequest("token is missing")
	}
	if e != nil {
		ev := audit.Event{Category: audit.CategoryToken, Action: "token.introspect", Decision: audit.Deny, Reason: e.Code + ": " + e.Description}
		if form != nil {
			setCaller(&ev, claimedClient(r, form))
		}
		if s.record(ctx, ev) != nil {
			e = serverError()
		}
		writeOAuthError(w, e)
		return
	}
	res, reason := s.introspect(ctx, form.Get("token"))
	ev := audit.Event{Category: audit.CategoryToken, Action: "token.introspect", Decision: audit.Allow,
		Reason: reason, ResourceType: "token", Resource: res.JTI}
	setCaller(&ev, caller.ID())
	if s.record(ctx, ev) != nil {
		writeOAuthError(w, serverError())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) introspect(ctx context.Context, raw string) (introspection, string) {
	c, err := s.Issuer.Verify(ctx, raw)
	if err != nil {
		return introspection{}, "inactive: " + err.Error()
	}
	switch {
	case client.IsClientID(c.ClientID):
		if s.Clients == nil {
			return introspection{}, "inactive: clients are not served"
		}
		if _, err := s.Clients.GetClient(ctx, c.ClientID); err != nil {
			return introspection{}, "inactive: the token's client no longer exists"
		}
	case c.ClientID != "":
		a, err := s.Agents.GetAgent(ctx, c.ClientID)
		if err != nil {
			return introspection{}, "inactive: the token's agent no longer exists"
		}
		if !a.Active() {
			return introspection{}, "inactive: the token's agent is disabled"
		}
	}
	if isUserSubject(c.Subject) {
		// A user's token (signed in, or delegated to an agent) is active only while
		// the user is.
		if s.Users == nil {
			return introspection{}, "inactive: users are not served"
		}
		u, err := s.Users.GetUser(ctx, c.Subject)
		if err != nil || !u.Active {
			return introspection{}, "inactive: the token's user no longer exists or is deactivated"
		}
	}
	res := introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject, Issuer: c.Issuer,
		Expiry: c.Expiry.Time().Unix(), JTI: c.ID, TokenType: "Bearer", Act: c.Act,
	}
	if c.IssuedAt != nil {
		res.IssuedAt = c.IssuedAt.Time().Unix()
	}
	if c.NotBefore != nil {
		res.NotBefore = c.NotBefore.Time().Unix()
	}
	if len(c.Audience) == 1 {
		res.Audience = c.Audience[0]
	} else {
		res.Audience = []string(c.Audience)
	}
	return res, "active; aud=" + strings.Join(c.Audience, " ")
}
