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

// MaxSecrets bounds the secrets one agent holds at once (enough for overlap during
// rotation, few enough that verification stays a handful of hashes).
const MaxSecrets = 5

// SecretPrefix starts every client secret, so leaked ones are easy to scan for.
const SecretPrefix = "agcs"

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

// createSecret makes a 256-bit client secret and returns it once.
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
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	existing, err := h.Store.ListSecrets(r.Context(), a.ID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if len(existing) >= MaxSecrets {
		api.WriteError(w, r, api.Conflict("agent %s already has %d secrets; delete one before adding another", a.ID, len(existing)))
		return
	}
	now := h.Now().UTC()
	plain := secret.New(SecretPrefix)
	s := Secret{ID: secret.NewID("sec"), AgentID: a.ID, Hash: secret.Hash(plain), CreatedAt: now}
	if req.ExpiresIn != nil {
		s.ExpiresAt = now.Add(time.Duration(*req.ExpiresIn) * time.Second)
	}
	if err := h.Store.CreateSecret(r.Context(), s); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.secret.create", "agent_secret", s.ID, a.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	v := viewSecret(s, now)
	v.ClientSecret = plain
	api.WriteJSON(w, http.StatusCreated, v)
}

func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request) {
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	secrets, err := h.Store.ListSecrets(r.Context(), a.ID)
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
	if err := h.Store.DeleteSecret(r.Context(), id, sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("agent %q has no secret %q", id, sid)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.secret.delete", "agent_secret", sid, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
