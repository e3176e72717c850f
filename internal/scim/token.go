package scim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// TokenPrefix starts every SCIM token, so a leaked one is easy to scan for.
const TokenPrefix = "agscim"

// Token is a bearer credential an enterprise IdP uses for SCIM. It is good for the
// SCIM endpoints only (not the management API), and stored as its SHA-256.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hash      string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Expired reports whether the token is past its expiry at now.
func (t Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// TokenStore keeps SCIM tokens.
type TokenStore interface {
	CreateSCIMToken(ctx context.Context, t Token) error
	ListSCIMTokens(ctx context.Context) ([]Token, error)
	DeleteSCIMToken(ctx context.Context, id string) error
	SCIMTokenByHash(ctx context.Context, hash string) (Token, error)
}

// MaxTokens bounds the SCIM tokens one server holds (one per IdP, plus rotation).
const MaxTokens = 20

// TokenHandler serves /api/v1/scim/tokens (admins).
type TokenHandler struct {
	Store TokenStore
	Audit audit.Recorder
	Now   func() time.Time
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *TokenHandler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/scim/tokens", wrap(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/v1/scim/tokens", wrap(http.HandlerFunc(h.list)))
	mux.Handle("DELETE /api/v1/scim/tokens/{token_id}", wrap(http.HandlerFunc(h.delete)))
}

func (h *TokenHandler) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string `json:"name"`
		ExpiresIn *int64 `json:"expires_in"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	v.Required("name", req.Name, 200)
	if req.ExpiresIn != nil && (*req.ExpiresIn < 3600 || *req.ExpiresIn > 5*365*24*3600) {
		v.Add("expires_in", "must be from 3600 (an hour) to 157680000 (five years) seconds; leave it out for no expiry")
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	existing, err := h.Store.ListSCIMTokens(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if len(existing) >= MaxTokens {
		api.WriteError(w, r, api.Conflict("there are already %d SCIM tokens, the most allowed; delete unused ones first", len(existing)))
		return
	}
	now := h.Now().UTC()
	plain := secret.New(TokenPrefix)
	t := Token{ID: secret.NewID("scimtok"), Name: req.Name, Hash: secret.Hash(plain), CreatedAt: now}
	if req.ExpiresIn != nil {
		exp := now.Add(time.Duration(*req.ExpiresIn) * time.Second)
		t.ExpiresAt = &exp
	}
	if err := h.Store.CreateSCIMToken(r.Context(), t); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "scim_token.create", "scim_token", t.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, struct {
		Token
		Value string `json:"token"`
	}{t, plain})
}

func (h *TokenHandler) list(w http.ResponseWriter, r *http.Request) {
	ts, err := h.Store.ListSCIMTokens(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(ts, ""))
}

func (h *TokenHandler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("token_id")
	if err := h.Store.DeleteSCIMToken(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no SCIM token has the id %q", id)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "scim_token.delete", "scim_token", id, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// authenticate checks the request's SCIM bearer token and returns it.
func authenticate(ctx context.Context, st TokenStore, r *http.Request, now time.Time) (Token, *Error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return Token{}, &Error{Status: 401, Detail: "send a SCIM token as Authorization: Bearer <token> (create one with POST /api/v1/scim/tokens)"}
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 1024 {
		return Token{}, &Error{Status: 401, Detail: "the Authorization header must be Bearer <SCIM token>"}
	}
	t, err := st.SCIMTokenByHash(ctx, secret.Hash(tok))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Token{}, &Error{Status: 401, Detail: "the SCIM token is not valid (admin and agent tokens are not accepted here)"}
	case err != nil:
		return Token{}, &Error{Status: 500, Detail: "internal error; the server log has the details"}
	case t.Expired(now):
		return Token{}, &Error{Status: 401, Detail: "the SCIM token has expired; create a new one with POST /api/v1/scim/tokens"}
	}
	return t, nil
}
