package client

import (
	"errors"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// MaxSecrets bounds the secrets one confidential client holds at once (overlap
// during rotation).
const MaxSecrets = 5

// Handler serves /api/v1/clients and the clients' secrets.
type Handler struct {
	Store Store
	Audit audit.Recorder
	Now   func() time.Time
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, wrap(f)) }
	route("POST /api/v1/clients", h.create)
	route("GET /api/v1/clients", h.list)
	route("GET /api/v1/clients/{id}", h.get)
	route("PATCH /api/v1/clients/{id}", h.update)
	route("DELETE /api/v1/clients/{id}", h.delete)
	route("POST /api/v1/clients/{id}/secrets", h.createSecret)
	route("GET /api/v1/clients/{id}/secrets", h.listSecrets)
	route("DELETE /api/v1/clients/{id}/secrets/{secret_id}", h.deleteSecret)
}

// view is a client as the API shows it.
type view struct {
	ID                      string    `json:"id"`
	Name                    string    `json:"name"`
	Type                    string    `json:"type"`
	Public                  bool      `json:"public"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	RedirectURIs            []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string  `json:"post_logout_redirect_uris"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	CreatedAt               time.Time `json:"created_at"`
	UpdatedAt               time.Time `json:"updated_at"`
}

func toView(c Client) view {
	v := view{ID: c.ID, Name: c.Name, Type: c.Type, Public: c.Public(), TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Public() {
		v.TokenEndpointAuthMethod = "none"
	}
	if v.RedirectURIs == nil {
		v.RedirectURIs = []string{}
	}
	if v.PostLogoutRedirectURIs == nil {
		v.PostLogoutRedirectURIs = []string{}
	}
	return v
}

type body struct {
	Name                   *string   `json:"name"`
	Type                   *string   `json:"type"`
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// create registers a client. A web (confidential) client gets a client secret, in
// this response only.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var b body
	if err := api.Decode(w, r, &b); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if b.Name == nil {
		v.Add("name", "is required")
	} else {
		v.Required("name", *b.Name, 200)
	}
	typ := deref(b.Type)
	if b.Type == nil {
		v.Add("type", "is required: spa (browser app), web (server-side app with a secret) or native (desktop/mobile app)")
	} else {
		v.OneOf("type", typ, TypeSPA, TypeWeb, TypeNative)
	}
	checkURIs(&v, "redirect_uris", typ, deref(b.RedirectURIs), true)
	checkURIs(&v, "post_logout_redirect_uris", typ, deref(b.PostLogoutRedirectURIs), false)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Now().UTC()
	c := Client{ID: secret.NewID(IDPrefix), Name: *b.Name, Type: typ, RedirectURIs: *b.RedirectURIs,
		PostLogoutRedirectURIs: deref(b.PostLogoutRedirectURIs), CreatedAt: now, UpdatedAt: now}
	var secrets []Secret
	var plain string
	if !c.Public() {
		plain = secret.New(SecretPrefix)
		secrets = append(secrets, Secret{ID: secret.NewID("csec"), ClientID: c.ID, Hash: secret.Hash(plain), CreatedAt: now})
	}
	if err := h.Store.CreateClient(r.Context(), c, secrets...); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "client.create", "client", c.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := toView(c)
	out.ClientSecret = plain
	w.Header().Set("Location", "/api/v1/clients/"+c.ID)
	api.WriteJSON(w, http.StatusCreated, out)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Store.ListClients(r.Context(), limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]view, 0, len(items))
	for _, c := range items {
		views = append(views, toView(c))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, next))
}

func (h *Handler) client(r *http.Request) (Client, error) {
	id := r.PathValue("id")
	c, err := h.Store.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return c, api.NotFound("no client has the id %q", id)
	}
	return c, err
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.client(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(c))
}

// update changes name and redirect URI lists. The type cannot change: turning a
// public client confidential (or back) changes how it authenticates, so it is a new
// client.
func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var b body
	if err := api.Decode(w, r, &b); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	c, err := h.Store.UpdateClient(r.Context(), id, func(c *Client) error {
		var v api.Validator
		if b.Name != nil {
			v.Required("name", *b.Name, 200)
		}
		if b.Type != nil && *b.Type != c.Type {
			v.Add("type", "cannot change (from %s to %q): a public client and a confidential one authenticate differently; register a new client", c.Type, *b.Type)
		}
		if b.RedirectURIs != nil {
			checkURIs(&v, "redirect_uris", c.Type, *b.RedirectURIs, true)
		}
		if b.PostLogoutRedirectURIs != nil {
			checkURIs(&v, "post_logout_redirect_uris", c.Type, *b.PostLogoutRedirectURIs, false)
		}
		if err := v.Err(); err != nil {
			return err
		}
		if b.Name != nil {
			c.Name = *b.Name
		}
		if b.RedirectURIs != nil {
			c.RedirectURIs = *b.RedirectURIs
		}
		if b.PostLogoutRedirectURIs != nil {
			c.PostLogoutRedirectURIs = *b.PostLogoutRedirectURIs
		}
		c.UpdatedAt = h.Now().UTC()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = api.NotFound("no client has the id %q", id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "client.update", "client", c.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(c))
}

// delete removes the client. Its pending sign-ins, codes and refresh tokens go with
// it; its access tokens stop introspecting as active and cannot be exchanged.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Store.DeleteClient(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no client has the id %q", id)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "client.delete", "client", id, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type secretView struct {
	ID           string     `json:"id"`
	ClientSecret string     `json:"client_secret,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	Expired      bool       `json:"expired"`
}

func viewSecret(s Secret, now time.Time) secretView {
	v := secretView{ID: s.ID, CreatedAt: s.CreatedAt, Expired: s.Expired(now)}
	if !s.ExpiresAt.IsZero() {
		v.ExpiresAt = &s.ExpiresAt
	}
	return v
}

// createSecret adds a secret to a confidential client (rotation: add the new one,
// deploy it, delete the old one). It is returned once.
func (h *Handler) createSecret(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ExpiresIn *int64 `json:"expires_in"`
	}
	if r.ContentLength != 0 {
		if err := api.Decode(w, r, &req); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	const maxExpiry = 10 * 365 * 24 * 3600
	if req.ExpiresIn != nil && (*req.ExpiresIn < 60 || *req.ExpiresIn > maxExpiry) {
		api.WriteError(w, r, api.Invalid(api.FieldError{Field: "expires_in", Detail: "must be seconds from 60 to 315360000 (10 years); leave it out for a secret that does not expire"}))
		return
	}
	c, err := h.client(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if c.Public() {
		api.WriteError(w, r, api.Conflict("client %s is a public %s client: it has no secret and authenticates with PKCE", c.ID, c.Type))
		return
	}
	existing, err := h.Store.ListClientSecrets(r.Context(), c.ID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if len(existing) >= MaxSecrets {
		api.WriteError(w, r, api.Conflict("client %s already has %d secrets; delete one before adding another", c.ID, len(existing)))
		return
	}
	now := h.Now().UTC()
	plain := secret.New(SecretPrefix)
	s := Secret{ID: secret.NewID("csec"), ClientID: c.ID, Hash: secret.Hash(plain), CreatedAt: now}
	if req.ExpiresIn != nil {
		s.ExpiresAt = now.Add(time.Duration(*req.ExpiresIn) * time.Second)
	}
	if err := h.Store.CreateClientSecret(r.Context(), s); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "client.secret.create", "client_secret", s.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	v := viewSecret(s, now)
	v.ClientSecret = plain
	api.WriteJSON(w, http.StatusCreated, v)
}

func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request) {
	c, err := h.client(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	secrets, err := h.Store.ListClientSecrets(r.Context(), c.ID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Now()
	views := make([]secretView, 0, len(secrets))
	for _, s := range secrets {
		views = append(views, viewSecret(s, now))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, ""))
}

func (h *Handler) deleteSecret(w http.ResponseWriter, r *http.Request) {
	id, sid := r.PathValue("id"), r.PathValue("secret_id")
	if err := h.Store.DeleteClientSecret(r.Context(), id, sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("client %q has no secret %q", id, sid)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "client.secret.delete", "client_secret", sid, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
