package oauth

import (
	"context"
	"errors"
	"slices"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/token"
)

// FederatedAlgorithms are accepted on workload tokens from trusted issuers.
var FederatedAlgorithms = AssertionAlgorithms

// jwtBearer is RFC 7523 §2.1 workload identity federation: a JWT from a trusted
// external issuer (Kubernetes, SPIFFE, CI) proves the caller is the agent mapped to
// its issuer and subject. No secret is stored anywhere.
func (s *Server) jwtBearer(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	assertion := req.form.Get("assertion")
	if assertion == "" {
		return nil, invalidRequest("assertion is missing: send the workload's JWT in the assertion parameter")
	}
	if len(assertion) > maxAssertionBytes {
		return nil, invalidGrant("assertion is over %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(assertion, FederatedAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalidGrant("assertion is not a signed JWT with one of the algorithms ES256, ES384, RS256, PS256, EdDSA")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" || unverified.Subject == "" {
		return nil, invalidGrant("assertion must carry iss and sub")
	}
	if !validIdentifier(unverified.Issuer, 2048) || !validIdentifier(unverified.Subject, 512) {
		return nil, invalidGrant("assertion iss or sub is too long or holds control characters")
	}
	fed, err := s.Agents.FindFederation(ctx, unverified.Issuer, unverified.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("no agent trusts tokens from issuer %q for subject %q; register one with POST /api/v1/agents/{id}/federation", unverified.Issuer, unverified.Subject)
	} else if err != nil {
		return nil, serverError()
	}
	key, err := s.jwks.key(ctx, fed.Issuer, fed.JWKSURI, tok.Headers[0].KeyID)
	if err != nil {
		return nil, invalidGrant("cannot verify the assertion with the issuer's keys: %v", err)
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, invalidGrant("the assertion's signature does not verify with the issuer's key %q", key.KeyID)
	}
	want := fed.Audience
	if want == "" {
		want = s.Issuer.URL
	}
	if !slices.Contains(claims.Audience, want) && !slices.Contains(claims.Audience, s.TokenEndpoint()) {
		return nil, invalidGrant("the assertion's aud must include %q", want)
	}
	if claims.Expiry == nil {
		return nil, invalidGrant("the assertion has no exp")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: s.Now()}, leeway); err != nil {
		return nil, invalidGrant("the assertion is expired or not yet valid")
	}
	a, err := s.Agents.GetAgent(ctx, fed.AgentID)
	if err != nil {
		return nil, serverError()
	}
	req.client = &authenticatedClient{Agent: a, Method: "federation"}
	if !a.Active() {
		return nil, invalidGrant("agent %s is disabled", a.ID)
	}
	aud, scopes, e := s.requestedTarget(req)
	if e != nil {
		return nil, e
	}
	t, e := s.authorize(ctx, a.ID, aud, scopes)
	if e != nil {
		return nil, e
	}
	return s.issue(token.Claims{Subject: a.ID, ClientID: a.ID}, t, "jwt-bearer/"+fed.Issuer)
}
