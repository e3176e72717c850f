package grant

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Resources finds the resource server a grant names.
type Resources interface {
	GetResourceServerByAudience(ctx context.Context, audience string) (resource.Server, error)
}

// AgentExists reports whether an agent exists (ErrNotFound if not).
type AgentExists func(ctx context.Context, id string) error

// Handler serves /api/v1/agents/{id}/grants.
type Handler struct {
	Store     Store
	Resources Resources
	Agent     AgentExists
	Audit     audit.Recorder
	Now       func() time.Time
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/agents/{id}/grants", wrap(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/v1/agents/{id}/grants", wrap(http.HandlerFunc(h.list)))
	mux.Handle("PATCH /api/v1/agents/{id}/grants/{grant_id}", wrap(http.HandlerFunc(h.update)))
	mux.Handle("DELETE /api/v1/agents/{id}/grants/{grant_id}", wrap(http.HandlerFunc(h.delete)))
}

func (h *Handler) agent(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := h.Agent(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		return id, api.NotFound("no agent has the id %q", id)
	} else if err != nil {
		return id, err
	}
	return id, nil
}

func validScopes(v *api.Validator, scopes []string) {
	if len(scopes) == 0 {
		v.Add("scopes", "name at least one scope the resource server defines")
	}
	for _, s := range scopes {
		v.Scope("scopes", s)
	}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Audience string   `json:"audience"`
		Scopes   []string `json:"scopes"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	v.Audience("audience", req.Audience)
	validScopes(&v, req.Scopes)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	rs, err := h.Resources.GetResourceServerByAudience(r.Context(), req.Audience)
	if errors.Is(err, store.ErrNotFound) {
		err = api.Invalid(api.FieldError{Field: "audience", Detail: "no resource server has the audience " + req.Audience + "; create it first with POST /api/v1/resource-servers"})
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := definedScopes(rs, req.Scopes); err != nil {
		api.WriteError(w, r, err)
		return
	}
	slices.Sort(req.Scopes)
	g := Grant{ID: secret.NewID("grt"), AgentID: agentID, ResourceServerID: rs.ID, Audience: rs.Audience,
		Scopes: slices.Compact(req.Scopes), CreatedAt: h.Now().UTC()}
	if err := h.Store.CreateGrant(r.Context(), g); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("agent %s already has a grant on %s; change its scopes with PATCH /api/v1/agents/%s/grants/{grant_id}", agentID, rs.Audience, agentID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "grant.create", "resource_server", rs.Audience, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, g)
}

// definedScopes checks that the resource server defines every scope.
func definedScopes(rs resource.Server, scopes []string) error {
	var v api.Validator
	for _, s := range scopes {
		if !rs.HasScope(s) {
			v.Add("scopes", "%q is not a scope of the resource server %s", s, rs.Audience)
		}
	}
	return v.Err()
}

// update replaces a grant's scopes (e.g. to add agentguard:admin to the functional
// grant every agent holds on the issuer).
func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scopes []string `json:"scopes"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	validScopes(&v, req.Scopes)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	gid := r.PathValue("grant_id")
	var current *Grant
	gs, err := h.Store.ListGrants(r.Context(), agentID)
	for i := range gs {
		if gs[i].ID == gid {
			current = &gs[i]
		}
	}
	if err == nil && current == nil {
		err = api.NotFound("agent %q has no grant %q", agentID, gid)
	}
	var rs resource.Server
	if err == nil {
		rs, err = h.Resources.GetResourceServerByAudience(r.Context(), current.Audience)
	}
	if err == nil {
		err = definedScopes(rs, req.Scopes)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	slices.Sort(req.Scopes)
	g, err := h.Store.UpdateGrantScopes(r.Context(), agentID, gid, slices.Compact(req.Scopes))
	if errors.Is(err, store.ErrNotFound) {
		err = api.NotFound("agent %q has no grant %q", agentID, gid)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "grant.update", "resource_server", g.Audience, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, g)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	agentID, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	gs, err := h.Store.ListGrants(r.Context(), agentID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(gs, ""))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	agentID, gid := r.PathValue("id"), r.PathValue("grant_id")
	if err := h.Store.DeleteGrant(r.Context(), agentID, gid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("agent %q has no grant %q", agentID, gid)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "grant.delete", "grant", gid, agentID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
