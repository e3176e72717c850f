package oauth

import (
	"context"
	"errors"
	"slices"

	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
)

// refreshToken is RFC 6749 §6 with rotation (OAuth 2.0 Security BCP §4.14): every
// refresh token works once and comes back with a new one. Presenting a spent one
// means two parties hold the family, so the whole family is revoked, with the access
// tokens issued from it. The user, the session and the agent's inbound rules are
// checked again on every refresh.
func (s *Server) refreshToken(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	c, e := s.authenticateClient(ctx, req.httpRequest, req.form)
	if e != nil {
		return nil, e
	}
	req.client = c
	if c.App == nil {
		return nil, unauthorizedClient("agent %s has no refresh tokens: agents get a new token with client_credentials", c.Agent.ID)
	}
	raw := req.form.Get("refresh_token")
	if raw == "" {
		return nil, invalidRequest("refresh_token is missing")
	}
	if len(raw) > maxCodeBytes || !secret.HasPrefix(raw, RefreshTokenPrefix) {
		return nil, invalidGrant("the refresh token is not one this server issued")
	}
	hash := secret.Hash(raw)
	rt, fam, err := s.Refresh.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("the refresh token is unknown or has expired; sign in again")
	} else if err != nil {
		return nil, serverError()
	}
	req.userID = fam.UserID
	now := s.Now()
	if fam.ClientID != c.App.ID {
		// Only a leak puts one client's refresh token in another's hands.
		if err := s.Refresh.RevokeRefreshFamily(ctx, fam.ID, "presented by another client ("+c.App.ID+")", now); err != nil {
			return nil, serverError()
		}
		return nil, invalidGrant("the refresh token was issued to another client; its family is now revoked")
	}
	if !fam.RevokedAt.IsZero() {
		return nil, invalidGrant("the refresh token is revoked (%s); sign in again", fam.RevokedReason)
	}
	if !rt.UsedAt.IsZero() {
		if err := s.Refresh.RevokeRefreshFamily(ctx, fam.ID, "a spent refresh token was presented again", now); err != nil {
			return nil, serverError()
		}
		return nil, invalidGrant("the refresh token was already used: refresh tokens work once, so every token of its family is now revoked; sign in again")
	}
	if !now.Before(rt.ExpiresAt) || !now.Before(fam.ExpiresAt) {
		return nil, invalidGrant("the refresh token has expired; sign in again")
	}
	if e := s.sameTarget(req, fam.Audience, "a refresh token keeps the target it was issued for:"); e != nil {
		return nil, e
	}
	scope := fam.Scope
	if req.Scope != "" {
		// RFC 6749 §6: a narrower scope for this access token; the family keeps its own.
		granted := grant.SplitScopes(fam.Scope)
		for _, sc := range grant.SplitScopes(req.Scope) {
			if !contains(granted, sc) {
				return nil, invalidScope("scope %q was not granted to this refresh token (it holds %q)", sc, fam.Scope)
			}
		}
		scope = normalizeScope(req.Scope)
	}
	u, e := s.activeUser(ctx, fam.UserID)
	if e != nil {
		return nil, e
	}
	if fam.SID != "" {
		if alive, err := s.Sessions.SessionAlive(ctx, fam.SID); err != nil {
			return nil, serverError()
		} else if !alive {
			return nil, invalidGrant("the sign-in session of this refresh token has ended (logout or timeout); sign in again, or ask for offline_access")
		}
	}
	agentID, e := s.admitAtToken(ctx, req, fam.Audience, c.App.ID, u, StageRefreshToken)
	req.agentID = agentID
	if e != nil {
		return nil, e
	}
	g := userGrant{
		clientID: c.App.ID, user: u, sid: fam.SID, scope: scope, audience: fam.Audience, agentID: agentID,
		authTime: fam.AuthTime, family: &fam,
	}
	return s.issueUserTokens(ctx, g, "refresh_token", func(_ issuedAccess, next session.RefreshToken) error {
		switch err := s.Refresh.RotateRefreshToken(ctx, hash, now, next); {
		case errors.Is(err, session.ErrReused):
			return invalidGrant("the refresh token was already used: refresh tokens work once, so every token of its family is now revoked; sign in again")
		case errors.Is(err, session.ErrRevoked):
			return invalidGrant("the refresh token is revoked; sign in again")
		default:
			return err
		}
	})
}

// normalizeScope sorts and de-duplicates a scope string.
func normalizeScope(s string) string {
	list := grant.SplitScopes(s)
	out := make([]string, 0, len(list))
	for _, sc := range list {
		if !contains(out, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return grant.JoinScopes(out)
}

// sameTarget accepts resource (and audience) parameters that repeat the target a
// code or refresh token was issued for: RFC 8707 §2.2 lets a client send the
// resource again at the token endpoint, and MCP clients do. stored is that target's
// audience; empty means the issuer. Anything else is invalid_target.
func (s *Server) sameTarget(req *tokenRequest, stored, what string) *Error {
	if stored == "" {
		stored = s.Issuer.URL
	}
	for _, r := range append(slices.Clone(req.Resources), req.Audiences...) {
		if r != stored {
			return invalidTarget("resource %q is not the target %s %q; sign in again for another target", r, what, stored)
		}
	}
	return nil
}
