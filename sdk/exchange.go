package sdk

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"slices"
	"strings"
)

const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// ExchangeToken trades a signed-in user's access token (whose audience is this
// agent) for a token for the resource server audience with the given scopes, on the
// user's behalf (RFC 8693 token exchange): the result's sub is the user and its act
// claim names this agent. agentguard grants only scopes both the agent's grant and
// the user's permissions allow, and asks the agent's inbound rules again. An empty
// audience means agentguard itself (scope agentguard:credentials), for calling the
// credential API on the user's behalf.
//
// Results are cached per user token, audience and scopes until shortly before they
// expire (never past the user's token). The user's token is not kept: the cache is
// keyed by its SHA-256. The agent must authenticate with a secret or a private key;
// refusals of the user's token are ErrInvalidGrant.
func (c *Client) ExchangeToken(ctx context.Context, userToken, audience string, scopes ...string) (Token, error) {
	if userToken == "" {
		return Token{}, &Error{Op: "token exchange", Err: errors.New("the user's token is empty"), kind: ErrInvalidRequest}
	}
	if c.cfg.AuthMethod == FederatedToken {
		return Token{}, &Error{Op: "token exchange", Err: errors.New(errExchangeNeedsID), kind: ErrInvalidClient}
	}
	if audience == "" {
		audience = c.issuer
		if len(scopes) == 0 {
			scopes = []string{scopeCredentials}
		}
	}
	key := cacheKey{audience: audience, subject: sha256.Sum256([]byte(userToken))}
	if e := c.exchanged.get(key, scopes); e != nil && c.now().Before(e.refreshAt) {
		return e.tok, nil
	}
	audience, scopes = strings.Clone(audience), slices.Clone(scopes)
	flightKey := "xt\x00" + string(key.subject[:]) + "\x00" + audience + "\x00" + strings.Join(scopes, " ")
	return c.shared(ctx, "token exchange", flightKey, func(ctx context.Context) (Token, error) {
		tok, err := c.requestToken(ctx, "token exchange", audience, scopes, url.Values{
			"grant_type":           {grantTokenExchange},
			"subject_token":        {userToken},
			"subject_token_type":   {tokenTypeAccessToken},
			"requested_token_type": {tokenTypeAccessToken},
		})
		if err != nil {
			return tok, err
		}
		c.exchanged.put(key, scopes, tok, c.refreshAt(tok), c.now())
		return tok, nil
	})
}

// dropExchanged forgets an exchanged token an API refused.
func (c *Client) dropExchanged(userToken, audience string, scopes []string, accessToken string) {
	c.exchanged.drop(cacheKey{audience: audience, subject: sha256.Sum256([]byte(userToken))}, scopes, accessToken)
}
