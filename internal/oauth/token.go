package oauth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/token"
)

// tokenResponse is RFC 6749 §5.1 (and RFC 8693 §2.2.1).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IDToken         string `json:"id_token,omitempty"`

	// audit context, not sent
	event audit.Event
}

// handleToken parses the form once and hands it to the grant's handler.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, e := parseForm(w, r)
	var req *tokenRequest
	if e == nil {
		req, e = parseTokenRequest(r, form)
	}
	var resp *tokenResponse
	if e == nil {
		h, ok := s.grants[req.GrantType]
		if !ok {
			e = oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported; use one of: %s", req.GrantType, strings.Join(s.grantTypes(), ", "))
		} else {
			resp, e = h(ctx, req)
		}
	}
	grantType := "unknown"
	if req != nil && s.grants[req.GrantType] != nil {
		grantType = req.GrantType
	}
	if e != nil {
		s.metrics.tokens.WithLabelValues(grantType, e.Code).Inc()
		ev := audit.Event{Category: audit.CategoryToken, Action: "token.issue", Decision: audit.Deny, Reason: e.Code + ": " + e.Description}
		if req != nil && req.client != nil {
			setCaller(&ev, req.client.ID())
		} else if form != nil {
			setCaller(&ev, claimedClient(r, form))
		}
		if req != nil {
			// What the grant learned before refusing: the user and the agent involved.
			ev.User = req.userID
			if req.agentID != "" {
				ev.AgentID = req.agentID
			}
		}
		var extra []audit.Event
		if req != nil {
			extra = req.events
		}
		if s.recordAll(ctx, ev, extra) != nil {
			e = serverError()
		}
		s.allowClientOrigin(ctx, w, r, req.app(), claimedClient(r, form))
		writeOAuthError(w, e)
		return
	}
	s.allowClientOrigin(ctx, w, r, req.app(), "")
	if s.recordAll(ctx, resp.event, req.events) != nil {
		s.metrics.tokens.WithLabelValues(grantType, "server_error").Inc()
		writeOAuthError(w, serverError())
		return
	}
	s.metrics.tokens.WithLabelValues(grantType, "issued").Inc()
	writeJSON(w, http.StatusOK, resp)
}

// issue signs an access token for the target and builds the response and its event.
func (s *Server) issue(c token.Claims, t target, grantType string) (*tokenResponse, *Error) {
	c.Audience = []string{t.Audience}
	c.Scope = grant.JoinScopes(t.Scopes)
	raw, claims, err := s.Issuer.Issue(c, t.Lifetime)
	if err != nil {
		return nil, serverError()
	}
	ev := audit.Event{
		Category: audit.CategoryToken, Action: "token.issue", Decision: audit.Allow,
		Reason:  grantType + "; scope=" + claims.Scope + "; jti=" + claims.ID,
		AgentID: c.ClientID, ResourceType: "resource_server", Resource: t.Audience,
	}
	if c.Act != nil {
		ev.User = c.Subject
	}
	return &tokenResponse{
		AccessToken: raw, TokenType: "Bearer", ExpiresIn: int64(t.Lifetime / time.Second), Scope: claims.Scope, event: ev,
	}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// recordAll records e and the extra events (the inbound policy's decisions) of one
// request. They are recorded concurrently, so the audit log's group commit writes
// them in one transaction instead of one commit after the other; it returns once all
// are durable.
func (s *Server) recordAll(ctx context.Context, e audit.Event, extra []audit.Event) error {
	if len(extra) == 0 {
		return s.record(ctx, e)
	}
	errs := make(chan error, len(extra))
	for _, x := range extra {
		go func() { errs <- s.record(ctx, x) }()
	}
	err := s.record(ctx, e)
	for range extra {
		if x := <-errs; err == nil {
			err = x
		}
	}
	return err
}
