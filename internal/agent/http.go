package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Owners reports whether an owner string names an active user of the directory.
type Owners interface {
	ActiveOwner(ctx context.Context, owner string) (bool, error)
}

// Handler serves /api/v1/agents and the agent's secrets, keys and federations.
type Handler struct {
	Store Store
	Audit audit.Recorder
	Now   func() time.Time
	// Owners clears an agent's orphaned flag when its owner is changed to an active
	// user; nil leaves the flag as it is.
	Owners Owners
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	route := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, wrap(f)) }
	route("POST /api/v1/agents", h.create)
	route("GET /api/v1/agents", h.list)
	route("GET /api/v1/agents/{id}", h.get)
	route("PATCH /api/v1/agents/{id}", h.update)
	route("DELETE /api/v1/agents/{id}", h.delete)
	route("POST /api/v1/agents/{id}/secrets", h.createSecret)
	route("GET /api/v1/agents/{id}/secrets", h.listSecrets)
	route("DELETE /api/v1/agents/{id}/secrets/{secret_id}", h.deleteSecret)
	route("POST /api/v1/agents/{id}/keys", h.createKey)
	route("GET /api/v1/agents/{id}/keys", h.listKeys)
	route("DELETE /api/v1/agents/{id}/keys/{kid}", h.deleteKey)
	route("POST /api/v1/agents/{id}/federation", h.createFederation)
	route("GET /api/v1/agents/{id}/federation", h.listFederations)
	route("DELETE /api/v1/agents/{id}/federation/{fed_id}", h.deleteFederation)
}

type createRequest struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	Owner          string `json:"owner"`
	Type           string `json:"type"`
	AccessIdentity string `json:"access_identity"`
	Audience       string `json:"audience"`
}

// DefaultAudience is the audience users' tokens for an agent carry.
func DefaultAudience(id string) string { return "urn:agentguard:agent:" + id }

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if req.Type == "" {
		req.Type = TypeAutonomous
	}
	if req.AccessIdentity == "" {
		req.AccessIdentity = IdentityMachine
	}
	var v api.Validator
	v.Required("name", req.Name, 200)
	v.MaxLen("description", req.Description, 2000)
	v.MaxLen("owner", req.Owner, 200)
	v.OneOf("type", req.Type, TypeAutonomous, TypeInteractive)
	v.OneOf("access_identity", req.AccessIdentity, IdentityMachine, IdentityHuman)
	if req.Audience != "" {
		v.Audience("audience", req.Audience)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.Now().UTC()
	a := Agent{
		ID: secret.NewID("agt"), Name: req.Name, Description: req.Description, Owner: req.Owner,
		Type: req.Type, AccessIdentity: req.AccessIdentity, Audience: req.Audience, Status: StatusActive,
		CreatedAt: now, UpdatedAt: now,
	}
	if a.Audience == "" {
		a.Audience = DefaultAudience(a.ID)
	}
	// Functional authorization: every agent may call the credential API.
	functional := grant.Grant{ID: secret.NewID("grt"), AgentID: a.ID, ResourceServerID: resource.BuiltinID,
		Scopes: []string{grant.ScopeCredentials}, CreatedAt: now}
	if err := h.Store.CreateAgent(r.Context(), a, functional); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("another agent already has the audience %q", a.Audience)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.create", "agent", a.ID, a.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/agents/"+a.ID)
	api.WriteJSON(w, http.StatusCreated, a)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := Filter{Owner: q.Get("owner"), Status: q.Get("status"), Type: q.Get("type"), Query: q.Get("q")}
	var v api.Validator
	if f.Status != "" {
		v.OneOf("status", f.Status, StatusActive, StatusDisabled, StatusOrphaned)
	}
	if f.Status == StatusOrphaned {
		f.Status, f.Orphaned = "", true
	}
	if f.Type != "" {
		v.OneOf("type", f.Type, TypeAutonomous, TypeInteractive)
	}
	v.MaxLen("q", f.Query, 200)
	v.MaxLen("owner", f.Owner, 200)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, next, err := h.Store.ListAgents(r.Context(), f, limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(items, next))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, a)
}

// agent loads the {id} of the path, as a 404 naming it if absent.
func (h *Handler) agent(r *http.Request) (Agent, error) {
	id := r.PathValue("id")
	a, err := h.Store.GetAgent(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return a, api.NotFound("no agent has the id %q", id)
	}
	return a, err
}

type updateRequest struct {
	Name           *string `json:"name"`
	Description    *string `json:"description"`
	Owner          *string `json:"owner"`
	Type           *string `json:"type"`
	AccessIdentity *string `json:"access_identity"`
	Audience       *string `json:"audience"`
	Status         *string `json:"status"`
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var req updateRequest
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if req.Name != nil {
		v.Required("name", *req.Name, 200)
	}
	if req.Description != nil {
		v.MaxLen("description", *req.Description, 2000)
	}
	if req.Owner != nil {
		v.MaxLen("owner", *req.Owner, 200)
	}
	if req.Type != nil {
		v.OneOf("type", *req.Type, TypeAutonomous, TypeInteractive)
	}
	if req.AccessIdentity != nil {
		v.OneOf("access_identity", *req.AccessIdentity, IdentityMachine, IdentityHuman)
	}
	if req.Audience != nil {
		v.Audience("audience", *req.Audience)
	}
	if req.Status != nil {
		v.OneOf("status", *req.Status, StatusActive, StatusDisabled)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("id")
	ownerLive := false
	if req.Owner != nil && h.Owners != nil {
		var err error
		if ownerLive, err = h.Owners.ActiveOwner(r.Context(), *req.Owner); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	a, err := h.Store.UpdateAgent(r.Context(), id, func(a *Agent) error {
		if ownerLive {
			a.Orphaned = false // an active user owns it now
		}
		set(&a.Name, req.Name)
		set(&a.Description, req.Description)
		set(&a.Owner, req.Owner)
		set(&a.Type, req.Type)
		set(&a.AccessIdentity, req.AccessIdentity)
		set(&a.Audience, req.Audience)
		set(&a.Status, req.Status)
		a.UpdatedAt = h.Now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = api.NotFound("no agent has the id %q", id)
	case errors.Is(err, store.ErrConflict):
		err = api.Conflict("another agent already has that audience")
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	action := "agent.update"
	if req.Status != nil {
		action = "agent." + map[string]string{StatusActive: "enable", StatusDisabled: "disable"}[*req.Status]
	}
	if err := audit.Admin(r.Context(), h.Audit, action, "agent", a.ID, a.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, a)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// delete removes the agent. Its secrets, keys, federations and grants go with it,
// and its tokens stop introspecting as active because their agent is gone.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Store.DeleteAgent(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no agent has the id %q", id)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.delete", "agent", id, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
