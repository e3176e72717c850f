package agent

import (
	"errors"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

type federationView struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	JWKSURI   string    `json:"jwks_uri,omitempty"`
	Audience  string    `json:"audience,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func viewFederation(f Federation) federationView {
	return federationView{ID: f.ID, Issuer: f.Issuer, Subject: f.Subject, JWKSURI: f.JWKSURI, Audience: f.Audience, CreatedAt: f.CreatedAt}
}

// createFederation trusts an external issuer's tokens about one subject as this agent.
func (h *Handler) createFederation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Issuer   string `json:"issuer"`
		Subject  string `json:"subject"`
		JWKSURI  string `json:"jwks_uri"`
		Audience string `json:"audience"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	v.HTTPSURL("issuer", req.Issuer)
	v.Required("subject", req.Subject, 512)
	if req.JWKSURI != "" {
		v.HTTPSURL("jwks_uri", req.JWKSURI)
	}
	if req.Audience != "" {
		v.MaxLen("audience", req.Audience, 512)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	f := Federation{ID: secret.NewID("fed"), AgentID: a.ID, Issuer: req.Issuer, Subject: req.Subject,
		JWKSURI: req.JWKSURI, Audience: req.Audience, CreatedAt: h.Now().UTC()}
	if err := h.Store.CreateFederation(r.Context(), f); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("issuer %q subject %q is already mapped to an agent", f.Issuer, f.Subject)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.federation.create", "agent_federation", f.ID, a.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, viewFederation(f))
}

func (h *Handler) listFederations(w http.ResponseWriter, r *http.Request) {
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	feds, err := h.Store.ListFederations(r.Context(), a.ID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]federationView, 0, len(feds))
	for _, f := range feds {
		views = append(views, viewFederation(f))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, ""))
}

func (h *Handler) deleteFederation(w http.ResponseWriter, r *http.Request) {
	id, fid := r.PathValue("id"), r.PathValue("fed_id")
	if err := h.Store.DeleteFederation(r.Context(), id, fid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("agent %q has no federation %q", id, fid)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.federation.delete", "agent_federation", fid, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
