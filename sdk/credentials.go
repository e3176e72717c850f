package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// APIKey is a third-party API key handed out by agentguard's credential API.
// Printing it (fmt, slog) shows its identifier and version, never its value.
type APIKey struct {
	Identifier string
	// Value is the key to send to the third party.
	Value string
	// Version goes up by one at every rotation.
	Version int64
}

// String describes the key without revealing it.
func (k APIKey) String() string {
	return "APIKey{identifier=" + strconv.Quote(k.Identifier) + " version=" + strconv.FormatInt(k.Version, 10) + " value=[redacted]}"
}

// GoString is String, so %#v does not reveal the key either.
func (k APIKey) GoString() string { return k.String() }

// LogValue keeps the key out of slog output.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("identifier", k.Identifier), slog.Int64("version", k.Version))
}

// APIKey fetches the API key stored under identifier, if the agent's outbound rule
// includes it (ErrNotAuthorized otherwise, and for an unknown identifier alike).
// Every call reaches agentguard, which audits it: values are not cached, so a
// rotation or a removed outbound node takes effect at once.
func (c *Client) APIKey(ctx context.Context, identifier string) (APIKey, error) {
	return c.apiKey(ctx, "", identifier)
}

// APIKeyFor is APIKey on behalf of a signed-in user: the agent first exchanges the
// user's token (ExchangeToken) for a credential API token, so agentguard's audit
// event names both the agent and the user.
func (c *Client) APIKeyFor(ctx context.Context, userToken, identifier string) (APIKey, error) {
	if userToken == "" {
		return APIKey{}, &Error{Op: "api key", Err: errors.New("the user's token is empty"), kind: ErrInvalidRequest}
	}
	return c.apiKey(ctx, userToken, identifier)
}

func (c *Client) apiKey(ctx context.Context, userToken, identifier string) (APIKey, error) {
	if err := checkIdentifier("api key", identifier); err != nil {
		return APIKey{}, err
	}
	body, err := c.credentialCall(ctx, "api key", userToken, http.MethodGet, "/api/v1/agent/api-keys/"+url.PathEscape(identifier), nil)
	if err != nil {
		return APIKey{}, err
	}
	var out struct {
		Identifier string `json:"identifier"`
		Value      string `json:"value"`
		Version    int64  `json:"version"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
		return APIKey{}, &Error{Op: "api key", Err: errors.New("the answer has no value"), kind: ErrProtocol}
	}
	return APIKey{Identifier: out.Identifier, Value: out.Value, Version: out.Version}, nil
}

// OAuthToken fetches a token of the third-party OAuth provider stored under
// identifier (agentguard gets it with the provider's client credentials, caches and
// refreshes it), if the agent's outbound rule includes it. scopes, if given, must
// be among the provider's default scopes. A provider failure is ErrUnavailable,
// with the provider's error code in the *Error's detail.
func (c *Client) OAuthToken(ctx context.Context, identifier string, scopes ...string) (Token, error) {
	return c.oauthToken(ctx, "", identifier, scopes)
}

// OAuthTokenFor is OAuthToken on behalf of a signed-in user (see APIKeyFor).
func (c *Client) OAuthTokenFor(ctx context.Context, userToken, identifier string, scopes ...string) (Token, error) {
	if userToken == "" {
		return Token{}, &Error{Op: "oauth token", Err: errors.New("the user's token is empty"), kind: ErrInvalidRequest}
	}
	return c.oauthToken(ctx, userToken, identifier, scopes)
}

func (c *Client) oauthToken(ctx context.Context, userToken, identifier string, scopes []string) (Token, error) {
	if err := checkIdentifier("oauth token", identifier); err != nil {
		return Token{}, err
	}
	var reqBody []byte
	if len(scopes) > 0 {
		reqBody, _ = json.Marshal(map[string][]string{"scopes": scopes})
	}
	body, err := c.credentialCall(ctx, "oauth token", userToken, http.MethodPost, "/api/v1/agent/oauth-tokens/"+url.PathEscape(identifier), reqBody)
	if err != nil {
		return Token{}, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return Token{}, &Error{Op: "oauth token", Err: errors.New("the answer has no access_token"), kind: ErrProtocol}
	}
	t := Token{AccessToken: tr.AccessToken, TokenType: orDefault(tr.TokenType, "Bearer"), Audience: identifier, Scope: tr.Scope}
	if tr.ExpiresIn > 0 {
		t.ExpiresAt = c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return t, nil
}

// credentialCall calls the credential API with the agent's credential API token (or
// the user's exchanged one). If the token is refused as invalid (it was revoked, or
// the signing key rotated), a fresh one is fetched and the call made once more.
func (c *Client) credentialCall(ctx context.Context, op, userToken, method, path string, reqBody []byte) ([]byte, error) {
	for try := 0; ; try++ {
		var tok Token
		var err error
		if userToken != "" {
			tok, err = c.ExchangeToken(ctx, userToken, "", scopeCredentials)
		} else {
			tok, err = c.AccessToken(ctx, c.issuer, scopeCredentials)
		}
		if err != nil {
			return nil, err
		}
		body, _, err := c.do(ctx, call{op: op, secrets: c.secrets(tok.AccessToken, userToken), build: func(ctx context.Context) (*http.Request, error) {
			var rd io.Reader
			if reqBody != nil {
				rd = bytes.NewReader(reqBody)
			}
			req, err := http.NewRequestWithContext(ctx, method, c.issuer+path, rd)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Accept", "application/json")
			if reqBody != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, nil
		}})
		if err != nil && errors.Is(err, ErrInvalidToken) && try == 0 {
			if userToken != "" {
				c.dropExchanged(userToken, c.issuer, []string{scopeCredentials}, tok.AccessToken)
			} else {
				c.tokens.drop(cacheKey{audience: c.issuer}, []string{scopeCredentials}, tok.AccessToken)
			}
			continue
		}
		return body, err
	}
}

// checkIdentifier refuses what cannot be a credential identifier before any call.
func checkIdentifier(op, id string) error {
	if id == "" || len(id) > 200 {
		return &Error{Op: op, Err: errors.New("the credential identifier must be 1 to 200 bytes"), kind: ErrInvalidRequest}
	}
	return nil
}
