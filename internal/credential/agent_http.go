package credential

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
)

// The Credential API: an agent, with its own access token, fetches the API keys
// and OAuth tokens its outbound rule allows. Every call, allowed or not, writes
// one audit event; an allowed one is answered only after its event is durable.

type apiKeyValueJSON struct {
	Identifier string `json:"identifier"`
	Value      string `json:"value"`
	Version    int64  `json:"version"`
}

type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// refuse records the denial and answers with e.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, ev audit.Event, reason string, e error) {
	ev.Decision, ev.Reason = audit.Deny, reason
	h.Metrics.Observe(ev.Action, ev.Decision)
	if err := h.Audit.Record(r.Context(), ev); err != nil {
		slog.ErrorContext(r.Context(), "recording a credential denial failed", "action", ev.Action, "err", err)
	}
	WriteProblem(w, r, e)
}

// fail records an internal failure as a denial and answers 500 (or 503).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, ev audit.Event, err error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		h.refuse(w, r, ev, ae.Detail, ae)
		return
	}
	h.refuse(w, r, ev, "internal error", err)
}

// allow records the grant; the caller answers only if it returns nil.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, ev audit.Event, reason string) bool {
	ev.Decision, ev.Reason = audit.Allow, reason
	h.Metrics.Observe(ev.Action, ev.Decision)
	if err := h.Audit.Record(r.Context(), ev); err != nil {
		// No credential leaves without its audit event.
		api.WriteError(w, r, fmt.Errorf("record the audit event: %w", err))
		return false
	}
	return true
}

func (h *Handler) retrieveAPIKey(w http.ResponseWriter, r *http.Request) {
	identifier := r.PathValue("identifier")
	c, aerr := h.Auth.Authenticate(r)
	ev := Event(r.Context(), "api_key.retrieve", TypeAPIKey, identifier, c)
	if aerr != nil {
		h.refuse(w, r, ev, aerr.Detail, aerr)
		return
	}
	acc, err := h.Auth.Access(r.Context(), c, identifier)
	switch {
	case errors.Is(err, ErrNotAllowed):
		h.refuse(w, r, ev, err.Error(), Denied(c, "API key"))
		return
	case err != nil:
		h.fail(w, r, ev, err)
		return
	case acc.APIKey == nil:
		h.refuse(w, r, ev, fmt.Sprintf("the node's credential %q is an %s, not an API key", identifier, acc.Node.CredentialType), Denied(c, "API key"))
		return
	}
	value, err := h.Envelope.Open(r.Context(), acc.APIKey.Sealed, APIKeyAAD(VersionID(acc.Node.CredentialID, acc.APIKey.Version)))
	if err != nil {
		h.fail(w, r, ev, fmt.Errorf("open API key %s version %d: %w", identifier, acc.APIKey.Version, err))
		return
	}
	defer clear(value)
	if !h.allow(w, r, ev, fmt.Sprintf("outbound node %s (%s), version %d", acc.Node.ID, acc.Node.NodeType, acc.APIKey.Version)) {
		return
	}
	api.WriteJSON(w, http.StatusOK, apiKeyValueJSON{Identifier: identifier, Value: string(value), Version: acc.APIKey.Version})
}

func (h *Handler) retrieveToken(w http.ResponseWriter, r *http.Request) {
	identifier := r.PathValue("identifier")
	c, aerr := h.Auth.Authenticate(r)
	ev := Event(r.Context(), "oauth_token.retrieve", TypeOAuthProvider, identifier, c)
	if aerr != nil {
		h.refuse(w, r, ev, aerr.Detail, aerr)
		return
	}
	requested, err := ParseTokenRequest(w, r)
	if err != nil {
		h.fail(w, r, ev, err)
		return
	}
	acc, err := h.Auth.Access(r.Context(), c, identifier)
	switch {
	case errors.Is(err, ErrNotAllowed):
		h.refuse(w, r, ev, err.Error(), Denied(c, "OAuth provider"))
		return
	case err != nil:
		h.fail(w, r, ev, err)
		return
	case acc.Provider == nil:
		h.refuse(w, r, ev, fmt.Sprintf("the node's credential %q is an %s, not an OAuth provider", identifier, acc.Node.CredentialType), Denied(c, "OAuth provider"))
		return
	}
	scopes, err := ResolveScopes(acc.Provider, requested)
	if err != nil {
		h.fail(w, r, ev, api.Invalid(api.FieldError{Field: "scopes", Detail: err.Error()}))
		return
	}
	tok, err := h.Tokens.Get(r.Context(), acc.Provider, scopes)
	var ue *UpstreamError
	if errors.As(err, &ue) {
		h.refuse(w, r, ev, "provider failed: "+ue.Reason, ue)
		return
	}
	if err != nil {
		h.fail(w, r, ev, err)
		return
	}
	if !h.allow(w, r, ev, fmt.Sprintf("outbound node %s (%s), scope %q", acc.Node.ID, acc.Node.NodeType, strings.Join(scopes, " "))) {
		return
	}
	api.WriteJSON(w, http.StatusOK, tokenJSON{AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		ExpiresIn: int64(tok.ExpiresAt.Sub(h.Now()).Round(time.Second) / time.Second), Scope: tok.Scope})
}

// ParseTokenRequest reads the optional body of an OAuth token retrieval: nothing,
// or a JSON object {"scopes": [...]} (application/json, at most api.MaxBody, no
// other fields). Each scope must be a non-empty RFC 6749 scope token.
func ParseTokenRequest(w http.ResponseWriter, r *http.Request) ([]string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, api.Problem(http.StatusRequestEntityTooLarge, "the body is over the %d-byte limit", api.MaxBody)
		}
		return nil, api.Problem(http.StatusBadRequest, "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, api.Problem(http.StatusUnsupportedMediaType, "send the body as application/json, or no body for the provider's default scopes")
	}
	var req struct {
		Scopes []string `json:"scopes"`
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	if err := api.Decode(w, r2, &req); err != nil {
		return nil, err
	}
	var v api.Validator
	if len(req.Scopes) > maxScopes {
		v.Add("scopes", "at most %d scopes", maxScopes)
	}
	for _, s := range req.Scopes {
		v.Scope("scopes", s)
	}
	return req.Scopes, v.Err()
}

type upstreamProblem struct {
	api.Error
	Provider      string `json:"provider"`
	ProviderError string `json:"provider_error,omitempty"`
	Failure       string `json:"failure,omitempty"`
}

// WriteProblem writes e; an *UpstreamError is a 502 naming the provider and its
// error code (never its secret or its answer's body).
func WriteProblem(w http.ResponseWriter, r *http.Request, e error) {
	var ue *UpstreamError
	if !errors.As(e, &ue) {
		api.WriteError(w, r, e)
		return
	}
	p := upstreamProblem{
		Error:    *api.Problem(http.StatusBadGateway, "%s", ue.Reason),
		Provider: ue.Provider, ProviderError: ue.Code, Failure: ue.Kind,
	}
	p.Type = "https://agentguard.dev/problems/upstream"
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadGateway)
	json.NewEncoder(w).Encode(p)
}
