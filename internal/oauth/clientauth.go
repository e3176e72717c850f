package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Client authentication methods.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
)

// AssertionAlgorithms are accepted for private_key_jwt client assertions.
var AssertionAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// AuthNone is how a public client "authenticates": its client_id alone (RFC 6749
// §2.1), accepted only where the code was bound to a PKCE challenge or for the
// client's own tokens.
const AuthNone = "none"

// authenticatedClient is the caller of a token, introspection or revocation request:
// an agent, or a client (an app users sign in through).
type authenticatedClient struct {
	Agent  agent.Agent    // the agent, when App is nil
	App    *client.Client // the client, when a client authenticated
	Method string
}

// ID is the caller's client_id.
func (c *authenticatedClient) ID() string {
	if c.App != nil {
		return c.App.ID
	}
	return c.Agent.ID
}

// dummyHash keeps unknown-client checks as slow as known-client ones.
var dummyHash = secret.Hash("agentguard-unknown-client")

// authenticateClient authenticates the agent calling the endpoint by exactly one
// method (RFC 6749 §2.3). Every failure is invalid_client.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*authenticatedClient, *Error) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	postSecret := form.Get("client_secret")
	assertionType, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	methods := 0
	for _, used := range []bool{hasBasic, postSecret != "", assertion != "" || assertionType != ""} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0 && client.IsClientID(form.Get("client_id")):
		return s.authenticatePublic(ctx, form.Get("client_id"))
	case methods == 0:
		return nil, invalidClient("client authentication is missing: use HTTP Basic (client_secret_basic), client_id and client_secret in the body (client_secret_post), or a client_assertion (private_key_jwt)")
	case methods > 1:
		return nil, invalidRequest("use exactly one client authentication method; this request used %d", methods)
	case hasBasic:
		// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
		id, err1 := url.QueryUnescape(basicID)
		sec, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("the Basic credentials are not form-encoded correctly")
		}
		if cid := form.Get("client_id"); cid != "" && cid != id {
			return nil, invalidRequest("client_id in the body differs from the one in the Authorization header")
		}
		return s.authenticateSecret(ctx, id, sec, AuthSecretBasic)
	case postSecret != "":
		return s.authenticateSecret(ctx, form.Get("client_id"), postSecret, AuthSecretPost)
	default:
		if assertionType != AssertionTypeJWTBearer {
			return nil, invalidClient("client_assertion_type must be %s", AssertionTypeJWTBearer)
		}
		return s.authenticateAssertion(ctx, form.Get("client_id"), assertion)
	}
}

const secretFailed = "client authentication failed: unknown client_id or wrong client_secret"

func (s *Server) authenticateSecret(ctx context.Context, clientID, presented, method string) (*authenticatedClient, *Error) {
	const failed = secretFailed
	if !validIdentifier(clientID, 128) || len(presented) > 512 {
		return nil, invalidClient(failed)
	}
	if client.IsClientID(clientID) {
		return s.authenticateClientSecret(ctx, clientID, presented, method)
	}
	a, secrets, err := s.Agents.GetAgentWithSecrets(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		secret.Matches(presented, dummyHash)
		return nil, invalidClient(failed)
	}
	if err != nil {
		return nil, serverError()
	}
	now := s.Now()
	ok, expired := false, false
	for _, sec := range secrets {
		if secret.Matches(presented, sec.Hash) {
			if sec.Expired(now) {
				expired = true
				continue
			}
			ok = true
		}
	}
	if expired && !ok {
		return nil, invalidClient("client authentication failed: the client_secret has expired; create a new one")
	}
	if !ok {
		return nil, invalidClient(failed)
	}
	if !a.Active() {
		return nil, invalidClient("client %s is disabled", a.ID)
	}
	return &authenticatedClient{Agent: a, Method: method}, nil
}

// authenticateClientSecret checks a confidential client's secret, with the same
// constant-time comparison and unknown-client cost as an agent's.
func (s *Server) authenticateClientSecret(ctx context.Context, clientID, presented, method string) (*authenticatedClient, *Error) {
	if s.Clients == nil {
		secret.Matches(presented, dummyHash)
		return nil, invalidClient(secretFailed)
	}
	c, err := s.Clients.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		secret.Matches(presented, dummyHash)
		return nil, invalidClient(secretFailed)
	}
	if err != nil {
		return nil, serverError()
	}
	if c.Public() {
		secret.Matches(presented, dummyHash)
		return nil, invalidClient("client %s is a public %s client: it has no secret; send only client_id (and use PKCE)", c.ID, c.Type)
	}
	secrets, err := s.Clients.ListClientSecrets(ctx, clientID)
	if err != nil {
		return nil, serverError()
	}
	now := s.Now()
	ok, expired := false, false
	for _, sec := range secrets {
		if secret.Matches(presented, sec.Hash) {
			if sec.Expired(now) {
				expired = true
				continue
			}
			ok = true
		}
	}
	if len(secrets) == 0 {
		secret.Matches(presented, dummyHash)
	}
	if expired && !ok {
		return nil, invalidClient("client authentication failed: the client_secret has expired; create a new one")
	}
	if !ok {
		return nil, invalidClient(secretFailed)
	}
	return &authenticatedClient{App: &c, Method: method}, nil
}

// authenticatePublic accepts a public client's client_id alone. A confidential
// client must authenticate with its secret.
func (s *Server) authenticatePublic(ctx context.Context, clientID string) (*authenticatedClient, *Error) {
	const failed = "client authentication failed: unknown client_id"
	if s.Clients == nil || !validIdentifier(clientID, 128) {
		return nil, invalidClient(failed)
	}
	c, err := s.Clients.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidClient(failed)
	} else if err != nil {
		return nil, serverError()
	}
	if !c.Public() {
		return nil, invalidClient("client %s is confidential: authenticate with its client_secret (HTTP Basic or client_secret in the body)", c.ID)
	}
	return &authenticatedClient{App: &c, Method: AuthNone}, nil
}

// maxAssertionBytes bounds a client assertion or jwt-bearer assertion.
const maxAssertionBytes = 16 << 10

// authenticateAssertion checks an RFC 7523 client assertion: signed by one of the
// agent's registered keys, iss = sub = client_id, aud naming this server, a bounded
// exp, and a jti never seen before on any replica.
func (s *Server) authenticateAssertion(ctx context.Context, clientID, assertion string) (*authenticatedClient, *Error) {
	if assertion == "" || len(assertion) > maxAssertionBytes {
		return nil, invalidClient("client_assertion is missing or over %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(assertion, AssertionAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalidClient("client_assertion is not a signed JWT with one of the algorithms ES256, ES384, RS256, PS256, EdDSA")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidClient("client_assertion claims are not valid JSON")
	}
	if unverified.Issuer == "" || unverified.Issuer != unverified.Subject {
		return nil, invalidClient("client_assertion must have iss and sub both equal to the client_id")
	}
	if !validIdentifier(unverified.Subject, 128) {
		return nil, invalidClient("client_assertion sub is not a valid client_id")
	}
	if clientID != "" && clientID != unverified.Subject {
		return nil, invalidClient("client_assertion sub differs from client_id")
	}
	clientID = unverified.Subject
	const failed = "client authentication failed: unknown client or the assertion is not signed by a key registered for it"
	a, err := s.Agents.GetAgent(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidClient(failed)
	} else if err != nil {
		return nil, serverError()
	}
	keys, err := s.Agents.ListKeys(ctx, clientID)
	if err != nil {
		return nil, serverError()
	}
	h := tok.Headers[0]
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if h.KeyID != "" && k.KID != h.KeyID {
			continue
		}
		var jwk jose.JSONWebKey
		if json.Unmarshal(k.JWK, &jwk) != nil || (k.Alg != "" && k.Alg != h.Algorithm) {
			continue
		}
		if tok.Claims(jwk.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidClient(failed)
	}
	if !slices.ContainsFunc(claims.Audience, func(aud string) bool { return aud == s.Issuer.URL || aud == s.TokenEndpoint() }) {
		return nil, invalidClient("client_assertion aud must be the issuer %s or the token endpoint %s", s.Issuer.URL, s.TokenEndpoint())
	}
	now := s.Now()
	if claims.Expiry == nil {
		return nil, invalidClient("client_assertion has no exp")
	}
	exp := claims.Expiry.Time()
	if now.After(exp.Add(leeway)) {
		return nil, invalidClient("client_assertion has expired")
	}
	if exp.After(now.Add(s.MaxAssertionLifetime + leeway)) {
		return nil, invalidClient("client_assertion exp is more than %s in the future", s.MaxAssertionLifetime)
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(leeway)) {
		return nil, invalidClient("client_assertion is not valid yet (nbf)")
	}
	if claims.ID == "" || len(claims.ID) > 256 {
		return nil, invalidClient("client_assertion must carry a jti of at most 256 bytes")
	}
	if err := s.Replay.UseOnce(ctx, replayKey("client_assertion", clientID, claims.ID), exp.Add(leeway)); errors.Is(err, store.ErrConflict) {
		return nil, invalidClient("client_assertion jti was already used; make a new assertion for every request")
	} else if err != nil {
		return nil, serverError()
	}
	if !a.Active() {
		return nil, invalidClient("client %s is disabled", a.ID)
	}
	return &authenticatedClient{Agent: a, Method: AuthPrivateKeyJWT}, nil
}

const leeway = 30 * time.Second

// validIdentifier reports whether s can be an identifier we store (client id, issuer,
// subject): non-empty, at most max bytes, UTF-8 without control characters. Anything
// else cannot match a stored value, and some of it (NUL) PostgreSQL refuses outright.
func validIdentifier(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// replayKey names a one-time value for the replay store. The parts are hashed: a jti
// is attacker-chosen and may hold bytes PostgreSQL text refuses (NUL), and the hash
// keeps the key short and the parts unambiguous.
func replayKey(kind, clientID, jti string) string {
	h := sha256.New()
	for _, p := range []string{clientID, jti} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil))
}
