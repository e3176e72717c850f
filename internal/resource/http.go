package resource

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Handler serves /api/v1/resource-servers.
type Handler struct {
	Store Store
	Audit audit.Recorder
	Now   func() time.Time
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, wrap(f)) }
	route("POST /api/v1/resource-servers", h.create)
	route("GET /api/v1/resource-servers", h.list)
	route("GET /api/v1/resource-servers/{id}", h.get)
	route("PATCH /api/v1/resource-servers/{id}", h.update)
	route("DELETE /api/v1/resource-servers/{id}", h.delete)
}

type view struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Audience      string    `json:"audience"`
	Scopes        []Scope   `json:"scopes"`
	TokenLifetime int64     `json:"token_lifetime"`
	BuiltIn       bool      `json:"built_in,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func toView(s Server) view {
	sc := s.Scopes
	if sc == nil {
		sc = []Scope{}
	}
	return view{ID: s.ID, Name: s.Name, Audience: s.Audience, Scopes: sc, TokenLifetime: int64(s.TokenLifetime / time.Second),
		BuiltIn: s.ID == BuiltinID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// Token lifetime bounds, in seconds.
const (
	MinLifetime = 60
	MaxLifetime = 24 * 3600
)

type body struct {
	Name          *string  `json:"name"`
	Audience      *string  `json:"audience"`
	Scopes        *[]Scope `json:"scopes"`
	TokenLifetime *int64   `json:"token_lifetime"`
}

func (b body) validate(v *api.Validator, create bool) {
	if create && b.Name == nil {
		v.Add("name", "is required")
	}
	if b.Name != nil {
		v.Required("name", *b.Name, 200)
	}
	if create && b.Audience == nil {
		v.Add("audience", "is required: the absolute URI tokens for this server carry in aud, e.g. https://api.example.com")
	}
	if b.Audience != nil {
		v.Audience("audience", *b.Audience)
	}
	if b.Scopes != nil {
		if len(*b.Scopes) > 200 {
			v.Add("scopes", "at most 200 scopes")
		}
		seen := map[string]bool{}
		for i, sc := range *b.Scopes {
			f := "scopes[" + itoa(i) + "]"
			v.Scope(f+".name", sc.Name)
			v.MaxLen(f+".description", sc.Description, 500)
			if len(sc.Groups) > 50 {
				v.Add(f+".groups", "at most 50 groups")
			}
			for j, g := range sc.Groups {
				v.Required(f+".groups["+itoa(j)+"]", g, 200)
			}
			if seen[sc.Name] {
				v.Add(f+".name", "%q is listed twice", sc.Name)
			}
			seen[sc.Name] = true
		}
	}
	if b.TokenLifetime != nil && (*b.TokenLifetime < MinLifetime || *b.TokenLifetime > MaxLifetime) {
		v.Add("token_lifetime", "must be seconds from %d to %d", MinLifetime, MaxLifetime)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var b body
	if err := api.Decode(w, r, &b); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	b.validate(&v, true)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Now().UTC()
	s := Server{ID: secret.NewID("rs"), Name: *b.Name, Audience: *b.Audience, TokenLifetime: DefaultTokenLifetime, CreatedAt: now, UpdatedAt: now}
	if b.Scopes != nil {
		s.Scopes = *b.Scopes
	}
	if b.TokenLifetime != nil {
		s.TokenLifetime = time.Duration(*b.TokenLifetime) * time.Second
	}
	if err := h.Store.CreateResourceServer(r.Context(), s); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("a resource server with the audience %q already exists", s.Audience)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "resource_server.create", "resource_server", s.Audience, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/resource-servers/"+s.ID)
	api.WriteJSON(w, http.StatusCreated, toView(s))
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Store.ListResourceServers(r.Context(), limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]view, 0, len(items))
	for _, s := range items {
		views = append(views, toView(s))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, next))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s, err := h.Store.GetResourceServer(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = api.NotFound("no resource server has the id %q", id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(s))
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var b body
	if err := api.Decode(w, r, &b); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	b.validate(&v, false)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if id == BuiltinID && (b.Audience != nil || b.Scopes != nil) {
		api.WriteError(w, r, api.Conflict("the built-in resource server's audience and scopes are fixed; only name and token_lifetime change"))
		return
	}
	s, err := h.Store.UpdateResourceServer(r.Context(), id, func(s *Server) error {
		if b.Name != nil {
			s.Name = *b.Name
		}
		if b.Audience != nil {
			s.Audience = *b.Audience
		}
		if b.Scopes != nil {
			s.Scopes = *b.Scopes
		}
		if b.TokenLifetime != nil {
			s.TokenLifetime = time.Duration(*b.TokenLifetime) * time.Second
		}
		s.UpdatedAt = h.Now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = api.NotFound("no resource server has the id %q", id)
	case errors.Is(err, store.ErrConflict):
		err = api.Conflict("another resource server already has that audience")
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "resource_server.update", "resource_server", s.Audience, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, toView(s))
}

// delete removes a resource server and every grant on it.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == BuiltinID {
		api.WriteError(w, r, api.Conflict("the built-in resource server cannot be deleted"))
		return
	}
	s, err := h.Store.GetResourceServer(r.Context(), id)
	if err == nil {
		err = h.Store.DeleteResourceServer(r.Context(), id)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = api.NotFound("no resource server has the id %q", id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "resource_server.delete", "resource_server", s.Audience, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
