package oauth

import (
	"context"

	"github.com/agentguard/agentguard/internal/token"
)

// clientCredentials: an agent gets a token as itself (RFC 6749 §4.4), for the
// audience and scopes it was granted.
func (s *Server) clientCredentials(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	if len(req.Audiences) > 0 {
		return nil, invalidRequest("audience is a token-exchange parameter; for client_credentials name the resource server with resource=<audience>")
	}
	client, e := s.authenticateClient(ctx, req.httpRequest, req.form)
	if e != nil {
		return nil, e
	}
	req.client = client
	if client.App != nil {
		return nil, unauthorizedClient("%s is a client that signs users in; client_credentials is for agents (a client gets tokens with authorization_code)", client.App.ID)
	}
	aud, scopes, e := s.requestedTarget(req)
	if e != nil {
		return nil, e
	}
	t, e := s.authorize(ctx, client.Agent.ID, aud, scopes)
	if e != nil {
		return nil, e
	}
	return s.issue(token.Claims{Subject: client.Agent.ID, ClientID: client.Agent.ID}, t, "client_credentials/"+client.Method)
}
