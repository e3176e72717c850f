package oauth

import (
	"github.com/agentguard/agentguard/internal/client"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentguard/agentguard/internal/audit"
)

// maxFormBytes bounds a token, introspection or revocation request body.
const maxFormBytes = 64 << 10

// tokenRequest is the token endpoint's form, parsed once.
type tokenRequest struct {
	form        url.Values
	GrantType   string
	Scope       string
	Resources   []string
	Audiences   []string
	httpRequest *http.Request
	// client is the authenticated caller, when the grant needs client authentication.
	client *authenticatedClient
	// userID and agentID name the user and agent a refusal concerns, for its event.
	userID, agentID string
	// events are recorded with the request's own token event, in one audit commit
	// (the inbound policy's decisions).
	events []audit.Event
}

// parseForm reads an application/x-www-form-urlencoded body of at most maxFormBytes.
// Parameters other than resource and audience must not repeat (RFC 6749 §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.URL.RawQuery != "" {
		return nil, invalidRequest("send parameters in the request body, not the URL query")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		if strings.Contains(err.Error(), "too large") {
			return nil, invalidRequest("the body is over the %d-byte limit", maxFormBytes)
		}
		return nil, invalidRequest("the body is not a valid form: %v", err)
	}
	return validateForm(r.PostForm)
}

func validateForm(form url.Values) (url.Values, *Error) {
	for k, v := range form {
		if len(v) > 1 && k != "resource" && k != "audience" {
			return nil, invalidRequest("parameter %s is repeated; send it once", k)
		}
		if len(v) > 16 {
			return nil, invalidRequest("parameter %s is repeated more than 16 times", k)
		}
	}
	return form, nil
}

// parseTokenRequest reads the grant-independent parameters.
func parseTokenRequest(r *http.Request, form url.Values) (*tokenRequest, *Error) {
	req := &tokenRequest{
		httpRequest: r,
		form:        form,
		GrantType:   form.Get("grant_type"),
		Scope:       form.Get("scope"),
		Resources:   form["resource"],
		Audiences:   form["audience"],
	}
	if req.GrantType == "" {
		return nil, invalidRequest("grant_type is missing; use client_credentials, %s, authorization_code, refresh_token or %s", GrantJWTBearer, GrantTokenExchange)
	}
	if len(req.Scope) > 4096 {
		return nil, invalidScope("scope is over 4096 bytes")
	}
	return req, nil
}

// app is the client (app) that authenticated, or nil.
func (req *tokenRequest) app() *client.Client {
	if req == nil || req.client == nil {
		return nil
	}
	return req.client.App
}
