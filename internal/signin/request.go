package signin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/oauth"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1, OIDC Core
// §3.1.2.1, RFC 7636, RFC 8707). It is kept, as JSON, while the user signs in.
type authRequest struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scope         string   `json:"scope"`
	Resources     []string `json:"resource,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	// Prompt is "", "none" or "login" (select_account counts as login, consent is
	// implied: clients are registered by an administrator).
	Prompt    string `json:"prompt,omitempty"`
	MaxAge    int64  `json:"max_age"` // -1: none
	LoginHint string `json:"login_hint,omitempty"`
}

// authError is an error the client learns through a redirect (RFC 6749 §4.1.2.1).
type authError struct {
	Code        string
	Description string
}

func redirectErr(code, format string, args ...any) *authError {
	return &authError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Limits on what a request may carry.
const (
	maxStateBytes     = 2048
	maxNonceBytes     = 512
	maxLoginHintBytes = 256
	maxClientIDBytes  = 128
	maxScopeBytes     = 4096
	maxParamBytes     = 8192
	maxParams         = 64
	maxResources      = 16
)

// clientParams reads what decides whether errors can be redirected at all: client_id
// and redirect_uri. Anything wrong here is shown on an error page, never redirected
// (RFC 6749 §4.1.2.1): a redirect to an unverified URI is an open redirector.
func clientParams(q url.Values) (clientID, redirectURI, problem string) {
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return "", "", k + " is repeated; send it once"
		}
	}
	clientID, redirectURI = q.Get("client_id"), q.Get("redirect_uri")
	switch {
	case clientID == "":
		return "", "", "client_id is missing"
	case len(clientID) > maxClientIDBytes || !utf8.ValidString(clientID) || !client.IsClientID(clientID):
		return "", "", "client_id is not a client of this server (client ids start with cli_)"
	case redirectURI == "":
		return "", "", "redirect_uri is missing: send the redirect URI registered for the client"
	case len(redirectURI) > 2048:
		return "", "", "redirect_uri is over 2048 bytes"
	}
	return clientID, redirectURI, ""
}

// parseRequest validates the rest of the request for client c, whose redirect_uri
// has been checked. Its errors are redirected to the client, in the order RFC 6749
// §4.1.2.1 and OIDC list them.
func parseRequest(q url.Values, c client.Client, redirectURI string) (authRequest, *authError) {
	req := authRequest{ClientID: c.ID, RedirectURI: redirectURI, MaxAge: -1}
	// state is echoed with every error from here on, if it can be.
	if st := q["state"]; len(st) == 1 && len(st[0]) <= maxStateBytes {
		req.State = st[0]
	}
	if len(q) > maxParams {
		return req, redirectErr("invalid_request", "the request has more than %d parameters", maxParams)
	}
	for k, v := range q {
		if len(v) > 1 && k != "resource" {
			return req, redirectErr("invalid_request", "parameter %s is repeated; send it once", truncate(k, 64))
		}
		for _, s := range v {
			if len(s) > maxParamBytes {
				return req, redirectErr("invalid_request", "parameter %s is over %d bytes", truncate(k, 64), maxParamBytes)
			}
		}
	}
	if len(q.Get("state")) > maxStateBytes {
		return req, redirectErr("invalid_request", "state is over %d bytes", maxStateBytes)
	}
	switch {
	case q.Has("request"):
		return req, redirectErr("request_not_supported", "request objects are not supported; send the parameters in the query")
	case q.Has("request_uri"):
		return req, redirectErr("request_uri_not_supported", "request_uri is not supported; send the parameters in the query")
	case q.Get("response_type") == "":
		return req, redirectErr("invalid_request", "response_type is missing; use code")
	case q.Get("response_type") != "code":
		return req, redirectErr("unsupported_response_type", "response_type %q is not supported; use code (authorization code with PKCE)", truncate(q.Get("response_type"), 64))
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		return req, redirectErr("invalid_request", "response_mode %q is not supported; use query", truncate(q.Get("response_mode"), 64))
	}

	req.Scope = q.Get("scope")
	if len(req.Scope) > maxScopeBytes {
		return req, redirectErr("invalid_scope", "scope is over %d bytes", maxScopeBytes)
	}
	req.Resources = q["resource"]
	if len(req.Resources) > maxResources {
		return req, redirectErr("invalid_target", "at most %d resource parameters", maxResources)
	}

	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return req, redirectErr("invalid_request", "code_challenge_method is set but code_challenge is missing")
	case challenge == "" && c.Public():
		return req, redirectErr("invalid_request", "PKCE is required for public clients: send code_challenge and code_challenge_method=S256 (RFC 7636)")
	case challenge != "" && method == "":
		return req, redirectErr("invalid_request", "code_challenge_method is missing; it must be S256 (the default, plain, is not accepted)")
	case challenge != "" && method != "S256":
		return req, redirectErr("invalid_request", "code_challenge_method %q is not supported; use S256", truncate(method, 32))
	case challenge != "" && !oauth.ValidS256Challenge(challenge):
		return req, redirectErr("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier: 43 characters")
	}
	req.CodeChallenge = challenge

	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > maxNonceBytes {
		return req, redirectErr("invalid_request", "nonce is over %d bytes", maxNonceBytes)
	}
	prompt, e := parsePrompt(q.Get("prompt"))
	if e != nil {
		return req, e
	}
	req.Prompt = prompt
	if s := q.Get("max_age"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return req, redirectErr("invalid_request", "max_age must be a whole number of seconds")
		}
		req.MaxAge = n
	}
	req.LoginHint = q.Get("login_hint")
	if len(req.LoginHint) > maxLoginHintBytes || !utf8.ValidString(req.LoginHint) {
		return req, redirectErr("invalid_request", "login_hint is over %d bytes or not UTF-8", maxLoginHintBytes)
	}
	return req, nil
}

// parsePrompt reads OIDC prompt: none alone, or any of login, consent,
// select_account (both of which show the login form).
func parsePrompt(p string) (string, *authError) {
	out := ""
	vals := strings.Fields(p)
	for _, v := range vals {
		switch v {
		case "none":
			if len(vals) > 1 {
				return "", redirectErr("invalid_request", "prompt=none cannot be combined with other values")
			}
			out = "none"
		case "login", "select_account":
			out = "login"
		case "consent":
		default:
			return "", redirectErr("invalid_request", "prompt %q is not supported; use none, login, consent or select_account", truncate(v, 32))
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// redirectURL adds params to a registered redirect URI, keeping its own query.
func redirectURL(base string, params url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // cannot happen: registered URIs parse
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String()
}
