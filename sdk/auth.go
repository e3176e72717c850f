package sdk

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	grantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	assertionTypeJWT   = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	assertionLifetime  = 60 * time.Second
	errExchangeNeedsID = "token exchange needs the agent to authenticate with a client secret or a private key; a workload token (FEDERATED_TOKEN) cannot authenticate a token exchange"
)

// authenticate adds the agent's authentication to form and returns the
// Authorization header value for client_secret_basic ("" otherwise). exchange is
// true for grants other than the agent's own token (token exchange), where a
// workload token cannot stand in for client authentication.
func (c *Client) authenticate(form url.Values, endpoint string, exchange bool) (string, error) {
	switch c.cfg.AuthMethod {
	case ClientSecretBasic:
		// RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
		cred := url.QueryEscape(c.cfg.ClientID) + ":" + url.QueryEscape(c.cfg.ClientSecret)
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)), nil
	case ClientSecretPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	case PrivateKeyJWT:
		a, err := c.clientAssertion(endpoint)
		if err != nil {
			return "", err
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", assertionTypeJWT)
		form.Set("client_assertion", a)
	case FederatedToken:
		if exchange {
			return "", &Error{Op: "token exchange", Err: errors.New(errExchangeNeedsID), kind: ErrInvalidClient}
		}
		b, err := readSmallFile(c.cfg.TokenFile, maxTokenFile)
		if err != nil {
			return "", &Error{Op: "token", Err: errors.New("cannot read the workload token file " + c.cfg.TokenFile + ": " + err.Error()), kind: ErrInvalidClient}
		}
		tok := string(bytes.TrimSpace(b))
		if tok == "" {
			return "", &Error{Op: "token", Err: errors.New("the workload token file " + c.cfg.TokenFile + " is empty"), kind: ErrInvalidClient}
		}
		form.Set("grant_type", grantJWTBearer)
		form.Set("assertion", tok)
	}
	return "", nil
}

// clientAssertion signs an RFC 7523 client assertion: iss = sub = the agent, aud =
// the token endpoint, a one-minute lifetime and a fresh jti (agentguard refuses a
// replayed one).
func (c *Client) clientAssertion(endpoint string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: c.signAlg, Key: jose.JSONWebKey{Key: c.cfg.PrivateKey, KeyID: c.keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", &Error{Op: "token", Err: errors.New("cannot sign the client assertion with the configured key"), kind: ErrInvalidClient}
	}
	var jti [16]byte
	rand.Read(jti[:])
	now := c.now()
	claims, _ := json.Marshal(map[string]any{
		"iss": c.cfg.ClientID, "sub": c.cfg.ClientID, "aud": endpoint,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(assertionLifetime).Unix(), "jti": b64(jti[:]),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", &Error{Op: "token", Err: errors.New("cannot sign the client assertion with the configured key"), kind: ErrInvalidClient}
	}
	return jws.CompactSerialize()
}
