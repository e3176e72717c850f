package oauth

import (
	"net/http"

	"github.com/agentguard/agentguard/internal/audit"
)

// handleRevoke is RFC 7009. An agent may revoke the tokens issued to it. A token that
// is invalid or already expired is answered 200, as the RFC asks.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, e := parseForm(w, r)
	var caller *authenticatedClient
	if e == nil {
		caller, e = s.authenticateClient(ctx, r, form)
	}
	if e == nil && form.Get("token") == "" {
		e = invalidRequest("token is missing")
	}
	if hint := form.Get("token_type_hint"); e == nil && hint != "" && hint != "access_token" && hint != "refresh_token" {
		e = oauthErr(http.StatusBadRequest, "unsupported_token_type", "token_type_hint %q is not supported; use access_token or refresh_token", hint)
	}
	ev := audit.Event{Category: audit.CategoryToken, Action: "token.revoke"}
	if e != nil {
		ev.Decision, ev.Reason = audit.Deny, e.Code+": "+e.Description
		if form != nil {
			ev.AgentID = claimedClient(r, form)
		}
		if s.record(ctx, ev) != nil {
			e = serverError()
		}
		writeOAuthError(w, e)
		return
	}
	ev.AgentID = caller.Agent.ID
	c, err := s.Issuer.VerifySignature(ctx, form.Get("token"))
	switch {
	case err != nil:
		ev.Decision, ev.Reason = audit.Allow, "nothing to revoke: "+err.Error()
	case c.ClientID != caller.Agent.ID:
		e = unauthorizedClient("the token was issued to another client; only its own client may revoke it")
		ev.Decision, ev.Reason, ev.ResourceType, ev.Resource = audit.Deny, e.Description, "token", c.ID
	default:
		if err := s.Issuer.Store.RevokeToken(ctx, c.ID, c.Expiry.Time().Add(leeway)); err != nil {
			writeOAuthError(w, serverError())
			return
		}
		ev.Decision, ev.Reason, ev.ResourceType, ev.Resource = audit.Allow, "revoked", "token", c.ID
	}
	if s.record(ctx, ev) != nil {
		e = serverError()
	}
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
