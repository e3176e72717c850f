package sdk

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors a Client returns wrap one of these, so callers branch with errors.Is:
//
//	key, err := c.APIKey(ctx, "openai")
//	if errors.Is(err, sdk.ErrNotAuthorized) { … the agent's outbound rule lacks it … }
//
// errors.As with *Error gives the status, the OAuth error code and the server's
// problem detail.
var (
	// ErrInvalidClient: agentguard refused the agent's own credentials (401
	// invalid_client): unknown agent, wrong or expired secret, unregistered key,
	// disabled agent.
	ErrInvalidClient = errors.New("agentguard: the agent's credentials were refused")
	// ErrNotAuthorized: the agent is authenticated but not allowed what it asked:
	// a scope or audience it was not granted (invalid_scope, invalid_target,
	// unauthorized_client, access_denied), or a credential outside its outbound
	// rule (403). agentguard answers an unknown credential identifier the same way,
	// so an agent cannot probe which identifiers exist.
	ErrNotAuthorized = errors.New("agentguard: not authorized")
	// ErrInvalidGrant: a token presented to agentguard was refused (invalid_grant):
	// the user's token in ExchangeToken is expired, revoked, for another audience or
	// no longer admitted by the agent's inbound rules; or a workload token.
	ErrInvalidGrant = errors.New("agentguard: the presented token was refused")
	// ErrNotFound: 404.
	ErrNotFound = errors.New("agentguard: not found")
	// ErrInvalidRequest: agentguard found the request malformed (400
	// invalid_request, unsupported_grant_type, a validation problem).
	ErrInvalidRequest = errors.New("agentguard: invalid request")
	// ErrInvalidToken: an API refused the access token (401 invalid_token) even
	// after one fresh token was fetched.
	ErrInvalidToken = errors.New("agentguard: access token refused")
	// ErrRateLimited: 429; Error.RetryAfter says when to try again.
	ErrRateLimited = errors.New("agentguard: rate limited")
	// ErrUnavailable: agentguard (or, for OAuthToken, the provider behind it)
	// failed with a 5xx or could not be reached, after the retries.
	ErrUnavailable = errors.New("agentguard: unavailable")
	// ErrProtocol: the answer was not what the protocol promises (not JSON, a
	// missing field).
	ErrProtocol = errors.New("agentguard: unexpected answer")
)

// Error is a refusal or failure from agentguard, carrying what the server said:
// the OAuth error (RFC 6749 §5.2) or the problem details (RFC 9457). It never holds
// a secret: the SDK removes its own secrets from the server's text, and agentguard
// puts none there.
type Error struct {
	// Op is what the SDK was doing: "token", "token exchange", "api key",
	// "oauth token", "discovery".
	Op string
	// StatusCode is the HTTP status; 0 when no answer came (see Err).
	StatusCode int
	// Code and Description are the OAuth error and error_description.
	Code        string
	Description string
	// Type, Title, Detail and Fields are the RFC 9457 problem's.
	Type   string
	Title  string
	Detail string
	Fields []FieldError
	// ProviderError is, for OAuthToken, the error code the third-party provider
	// answered agentguard with (a 502 problem's provider_error).
	ProviderError string
	// RequestID is agentguard's X-Request-Id, to find the request in its log.
	RequestID string
	// RetryAfter is the server's Retry-After, if any.
	RetryAfter time.Duration
	// Attempts is how many requests were made.
	Attempts int
	// Err is the transport error when no answer came.
	Err error

	kind error
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("agentguard: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.StatusCode == 0 && e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(strconv.Itoa(e.StatusCode))
		switch {
		case e.Code != "":
			b.WriteString(" " + e.Code)
			if e.Description != "" {
				b.WriteString(": " + e.Description)
			}
		case e.Detail != "" || e.Title != "":
			b.WriteString(" " + orDefault(e.Title, http.StatusText(e.StatusCode)))
			if e.Detail != "" {
				b.WriteString(": " + e.Detail)
			}
			for _, f := range e.Fields {
				b.WriteString("; " + f.Field + ": " + f.Detail)
			}
		default:
			b.WriteString(" " + http.StatusText(e.StatusCode))
		}
	}
	if e.Attempts > 1 {
		b.WriteString(" (after " + strconv.Itoa(e.Attempts) + " attempts)")
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Is matches the sentinel this error is a case of.
func (e *Error) Is(target error) bool { return target == e.kind }

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// responseError builds the Error for a non-2xx answer. secrets are removed from the
// server's text (defence in depth: agentguard never echoes them).
func responseError(op string, resp *http.Response, body []byte, secrets []string) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	var p struct {
		Error       string       `json:"error"`
		Description string       `json:"error_description"`
		Type        string       `json:"type"`
		Title       string       `json:"title"`
		Detail      string       `json:"detail"`
		Errors      []FieldError `json:"errors"`
		Provider    string       `json:"provider_error"`
	}
	if json.Unmarshal(body, &p) == nil {
		e.Code, e.Description = clean(p.Error, secrets), clean(p.Description, secrets)
		e.Type, e.Title, e.Detail = clean(p.Type, secrets), clean(p.Title, secrets), clean(p.Detail, secrets)
		e.ProviderError = clean(p.Provider, secrets)
		for i, f := range p.Errors {
			if i == 20 {
				break
			}
			e.Fields = append(e.Fields, FieldError{Field: clean(f.Field, secrets), Detail: clean(f.Detail, secrets)})
		}
	}
	if e.Code == "" && resp.StatusCode == http.StatusUnauthorized {
		e.Code = bearerError(resp.Header.Get("WWW-Authenticate"))
	}
	e.kind = classify(resp.StatusCode, e.Code)
	return e
}

func classify(status int, code string) error {
	switch code {
	case "invalid_client":
		return ErrInvalidClient
	case "invalid_scope", "invalid_target", "unauthorized_client", "access_denied", "insufficient_scope":
		return ErrNotAuthorized
	case "invalid_grant":
		return ErrInvalidGrant
	case "invalid_token":
		return ErrInvalidToken
	case "invalid_request", "unsupported_grant_type", "unsupported_token_type":
		return ErrInvalidRequest
	}
	switch {
	case status == http.StatusUnauthorized:
		return ErrInvalidToken
	case status == http.StatusForbidden:
		return ErrNotAuthorized
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	case status >= 400:
		return ErrInvalidRequest
	}
	return ErrProtocol
}

// clean bounds a server string and removes the SDK's secrets from it.
func clean(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 8 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return truncate(s, 1000)
}

// bearerError extracts error="…" from a Bearer WWW-Authenticate challenge.
func bearerError(h string) string {
	i := strings.Index(h, `error="`)
	if i < 0 {
		return ""
	}
	rest := h[i+len(`error="`):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}
