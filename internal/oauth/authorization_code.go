package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
)

// Prefixes of the opaque secrets handed to clients.
const (
	CodePrefix         = "agac"
	RefreshTokenPrefix = "agrt"
)

// CodeGrant is a validated authorization request of a signed-in user, ready for a
// code: everything the code is bound to.
type CodeGrant struct {
	ClientID      string
	UserID        string
	SID           string
	RedirectURI   string
	CodeChallenge string
	Nonce         string
	Target        UserTarget
	AuthTime      time.Time
}

// IssueCode stores a single-use authorization code for g (only its hash) and returns
// the code, to be sent to the client once.
func (s *Server) IssueCode(ctx context.Context, g CodeGrant) (string, error) {
	code := secret.New(CodePrefix)
	now := s.Now()
	err := s.Codes.CreateCode(ctx, session.Code{
		Hash: secret.Hash(code), ClientID: g.ClientID, UserID: g.UserID, SID: g.SID, RedirectURI: g.RedirectURI,
		CodeChallenge: g.CodeChallenge, Scope: g.Target.Scope(), Audience: g.Target.Audience, Nonce: g.Nonce,
		AuthTime: g.AuthTime, CreatedAt: now, ExpiresAt: now.Add(s.CodeLifetime),
	})
	return code, err
}

// maxCodeBytes bounds a code, refresh token or PKCE verifier presented to us.
const maxCodeBytes = 256

// authorizationCode redeems a code (RFC 6749 §4.1.3) with PKCE (RFC 7636): the
// client that got it, the same redirect_uri, and the verifier of the challenge. A
// code works once; presenting it again revokes what it was exchanged for.
func (s *Server) authorizationCode(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	c, e := s.authenticateClient(ctx, req.httpRequest, req.form)
	if e != nil {
		return nil, e
	}
	req.client = c
	if c.App == nil {
		return nil, unauthorizedClient("agent %s cannot redeem authorization codes: codes are issued to clients that sign users in", c.Agent.ID)
	}
	if len(req.Audiences) > 0 {
		return nil, invalidRequest("audience is a token-exchange parameter; the code already names its target")
	}
	code := req.form.Get("code")
	if code == "" {
		return nil, invalidRequest("code is missing")
	}
	if len(code) > maxCodeBytes || !secret.HasPrefix(code, CodePrefix) {
		return nil, invalidGrant("the code is not one this server issued")
	}
	hash := secret.Hash(code)
	row, err := s.Codes.GetCode(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("the code is unknown or has expired; start the sign-in again")
	} else if err != nil {
		return nil, serverError()
	}
	req.userID = row.UserID
	now := s.Now()
	if !row.UsedAt.IsZero() {
		// RFC 6749 §4.1.2: a second use revokes what the first one got.
		if err := s.Codes.RedeemCode(ctx, hash, now, "", time.Time{}, nil, nil); err != nil && !errors.Is(err, session.ErrReused) {
			return nil, serverError()
		}
		return nil, invalidGrant("the code was already used; the tokens issued from it are revoked")
	}
	if row.ClientID != c.App.ID {
		return nil, invalidGrant("the code was issued to another client")
	}
	if !now.Before(row.ExpiresAt) {
		return nil, invalidGrant("the code has expired (codes live %s); start the sign-in again", s.CodeLifetime)
	}
	if e := s.sameTarget(req, row.Audience, "the authorization request named"); e != nil {
		return nil, e
	}
	if redirect := req.form.Get("redirect_uri"); redirect != row.RedirectURI {
		return nil, invalidGrant("redirect_uri must be the one of the authorization request")
	}
	if e := checkVerifier(row.CodeChallenge, req.form.Get("code_verifier")); e != nil {
		return nil, e
	}
	if scope := req.form.Get("scope"); scope != "" && scope != row.Scope {
		return nil, invalidRequest("scope belongs in the authorization request; leave it out when redeeming the code")
	}
	u, e := s.activeUser(ctx, row.UserID)
	if e != nil {
		return nil, e
	}
	if alive, err := s.Sessions.SessionAlive(ctx, row.SID); err != nil {
		return nil, serverError()
	} else if !alive {
		return nil, invalidGrant("the sign-in session of this code has ended; sign in again")
	}
	agentID, e := s.admitAtToken(ctx, req, row.Audience, c.App.ID, u, StageAuthorizationCode)
	req.agentID = agentID
	if e != nil {
		return nil, e
	}
	fam := &session.RefreshFamily{
		ID: secret.NewID("rtf"), ClientID: c.App.ID, UserID: u.ID, SID: row.SID, Scope: row.Scope, Audience: row.Audience,
		AuthTime: row.AuthTime, CreatedAt: now, ExpiresAt: now.Add(s.RefreshTokenLifetime),
	}
	if contains(grant.SplitScopes(row.Scope), ScopeOfflineAccess) {
		fam.SID = "" // offline_access: the refresh tokens outlive the session
	}
	g := userGrant{
		clientID: c.App.ID, user: u, sid: row.SID, scope: row.Scope, audience: row.Audience, agentID: agentID,
		nonce: row.Nonce, authTime: row.AuthTime, family: fam,
	}
	return s.issueUserTokens(ctx, g, "authorization_code", func(at issuedAccess, rt session.RefreshToken) error {
		err := s.Codes.RedeemCode(ctx, hash, now, at.jti, at.expiresAt, fam, &rt)
		if errors.Is(err, session.ErrReused) {
			return invalidGrant("the code was already used; the tokens issued from it are revoked")
		}
		return err
	})
}

// checkVerifier is RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must be the challenge.
// A code bound to a challenge needs the verifier; one that is not refuses one (a
// verifier cannot be added after the fact).
func checkVerifier(challenge, verifier string) *Error {
	switch {
	case challenge == "" && verifier == "":
		return nil
	case challenge == "":
		return invalidGrant("code_verifier was sent but the authorization request had no code_challenge")
	case verifier == "":
		return invalidGrant("code_verifier is missing: the authorization request sent a code_challenge (PKCE)")
	case !ValidVerifier(verifier):
		return invalidGrant("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)")
	}
	sum := sha256.Sum256([]byte(verifier))
	if !secret.Equal(base64.RawURLEncoding.EncodeToString(sum[:]), challenge) {
		return invalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// ValidVerifier checks RFC 7636 §4.1 code_verifier syntax.
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// ValidS256Challenge checks an S256 code_challenge: base64url (no padding) of a
// SHA-256 hash, 43 characters.
func ValidS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}
