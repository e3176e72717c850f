package oauth

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
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
			setCaller(&ev, claimedClient(r, form))
		}
		if s.record(ctx, ev) != nil {
			e = serverError()
		}
		if form != nil {
			s.allowClientOrigin(ctx, w, r, nil, claimedClient(r, form))
		}
		writeOAuthError(w, e)
		return
	}
	setCaller(&ev, caller.ID())
	s.allowClientOrigin(ctx, w, r, caller.App, "")
	if raw := form.Get("token"); secret.HasPrefix(raw, RefreshTokenPrefix) && s.Refresh != nil {
		e = s.revokeRefresh(ctx, caller, raw, &ev)
		if e != nil && e.Code == "server_error" {
			writeOAuthError(w, e)
			return
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
		return
	}
	c, err := s.Issuer.VerifySignature(ctx, form.Get("token"))
	switch {
	case err != nil:
		ev.Decision, ev.Reason = audit.Allow, "nothing to revoke: "+err.Error()
	case c.ClientID != caller.ID():
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

// revokeRefresh revokes a refresh token's whole family, and the access tokens
// issued from it (RFC 7009 §2.1), if the caller is the client it was issued to.
func (s *Server) revokeRefresh(ctx context.Context, caller *authenticatedClient, raw string, ev *audit.Event) *Error {
	_, fam, err := s.Refresh.GetRefreshToken(ctx, secret.Hash(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		ev.Decision, ev.Reason = audit.Allow, "nothing to revoke: unknown refresh token"
		return nil
	case err != nil:
		return serverError()
	}
	ev.ResourceType, ev.Resource, ev.User = "refresh_family", fam.ID, fam.UserID
	if fam.ClientID != caller.ID() {
		e := unauthorizedClient("the refresh token was issued to another client; only its own client may revoke it")
		ev.Decision, ev.Reason = audit.Deny, e.Description
		return e
	}
	if err := s.Refresh.RevokeRefreshFamily(ctx, fam.ID, "revoked by the client", s.Now()); err != nil {
		return serverError()
	}
	ev.Decision, ev.Reason = audit.Allow, "revoked the refresh token family and its access tokens"
	return nil
}
