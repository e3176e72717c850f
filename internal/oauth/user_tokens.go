package oauth

import (
	"context"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/token"
	"github.com/agentguard/agentguard/internal/user"
)

// userGrant is what a code or a refresh token lets a client have for a user.
type userGrant struct {
	clientID string
	user     user.User
	sid      string
	scope    string
	audience string // the agent's audience; empty: the issuer
	agentID  string
	nonce    string // only when redeeming a code
	authTime time.Time
	// family is the refresh token family the new refresh token joins: a new one
	// when redeeming a code, the token's own when refreshing.
	family *session.RefreshFamily
}

// issuedAccess names the access token about to be signed, so it can be recorded
// (and revoked with its code or family) before it exists.
type issuedAccess struct {
	jti       string
	expiresAt time.Time // exp plus clock leeway: how long a revocation must hold
}

// persistFunc stores what is being issued (the code redeemed, or the refresh token
// rotated) atomically; only then are the tokens signed. It may return an *Error.
type persistFunc func(at issuedAccess, rt session.RefreshToken) error

// userTokenLifetime is the lifetime of users' access tokens: the built-in resource
// server's (PATCH /api/v1/resource-servers/rs_agentguard token_lifetime).
func (s *Server) userTokenLifetime(ctx context.Context) time.Duration {
	if rs, err := s.Resources.GetResourceServer(ctx, resource.BuiltinID); err == nil && rs.TokenLifetime > 0 {
		return rs.TokenLifetime
	}
	return resource.DefaultTokenLifetime
}

// issueUserTokens makes the access token, a rotated refresh token and (with openid)
// an ID token for g, after persist has recorded them.
func (s *Server) issueUserTokens(ctx context.Context, g userGrant, grantType string, persist persistFunc) (*tokenResponse, *Error) {
	now := s.Now()
	lifetime := s.userTokenLifetime(ctx)
	at := issuedAccess{jti: token.NewJTI(), expiresAt: now.Add(lifetime + token.Leeway + time.Second)}
	refresh := secret.New(RefreshTokenPrefix)
	rt := session.RefreshToken{
		Hash: secret.Hash(refresh), FamilyID: g.family.ID, CreatedAt: now,
		ExpiresAt: minTime(now.Add(s.RefreshTokenIdle), g.family.ExpiresAt), AccessJTI: at.jti, AccessExpiresAt: at.expiresAt,
	}
	if err := persist(at, rt); err != nil {
		var oe *Error
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, serverError()
	}
	aud := g.audience
	if aud == "" {
		aud = s.Issuer.URL
	}
	raw, claims, err := s.Issuer.Issue(token.Claims{Subject: g.user.ID, ClientID: g.clientID, Audience: []string{aud}, Scope: g.scope, ID: at.jti}, lifetime)
	if err != nil {
		return nil, serverError()
	}
	resp := &tokenResponse{
		AccessToken: raw, TokenType: "Bearer", ExpiresIn: int64(lifetime / time.Second), Scope: claims.Scope, RefreshToken: refresh,
	}
	scopes := grant.SplitScopes(g.scope)
	if contains(scopes, ScopeOpenID) {
		id := token.IDClaims{Subject: g.user.ID, Audience: []string{g.clientID}, Nonce: g.nonce, SID: g.sid}
		if !g.authTime.IsZero() {
			id.AuthTime = jwtTime(g.authTime)
		}
		fillProfile(&id, g.user, scopes)
		if resp.IDToken, err = s.Issuer.IssueIDToken(id, s.IDTokenLifetime, raw); err != nil {
			return nil, serverError()
		}
	}
	resp.event = audit.Event{
		Category: audit.CategoryToken, Action: "token.issue", Decision: audit.Allow,
		Reason:  grantType + "; scope=" + claims.Scope + "; jti=" + claims.ID + "; refresh_family=" + g.family.ID,
		AgentID: g.agentID, User: g.user.ID, ClientID: g.clientID, ResourceType: "agent", Resource: aud,
	}
	if g.agentID == "" {
		resp.event.ResourceType = "resource_server"
	}
	return resp, nil
}

// fillProfile adds the claims each scope releases (OIDC Core §5.4).
func fillProfile(c *token.IDClaims, u user.User, scopes []string) {
	if contains(scopes, ScopeProfile) {
		c.Name, c.PreferredUsername = u.DisplayName, u.Username
	}
	if contains(scopes, ScopeEmail) {
		c.Email = u.Email
	}
	if contains(scopes, ScopeGroups) {
		c.Groups = u.Groups
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jwtTime(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
