package credential

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Limits of API key fields.
const (
	maxValue = 16 << 10
	// MaxKeepPrevious bounds keep_previous_for (90 days).
	MaxKeepPrevious = 90 * 24 * 3600
)

type versionJSON struct {
	Version   int64      `json:"version"`
	Current   bool       `json:"current"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

type apiKeyJSON struct {
	ID          string        `json:"id"`
	Identifier  string        `json:"identifier"`
	Type        string        `json:"type"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Version     int64         `json:"version"`
	Versions    []versionJSON `json:"versions,omitempty"`
	UsedBy      []string      `json:"used_by,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

func apiKeyView(k APIKey) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, Identifier: k.Identifier, Type: TypeAPIKey, Name: k.Name, Description: k.Description,
		Version: k.Version, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
	for _, v := range k.Versions {
		vj := versionJSON{Version: v.Version, Current: v.Version == k.Version, CreatedAt: v.CreatedAt}
		if !v.ExpiresAt.IsZero() {
			e := v.ExpiresAt
			vj.ExpiresAt = &e
		}
		out.Versions = append(out.Versions, vj)
	}
	return out
}

// checkValue validates a secret value without ever echoing it.
func checkValue(v *api.Validator, field, val string) {
	switch {
	case val == "":
		v.Add(field, "is required")
	case len(val) > maxValue:
		v.Add(field, "must be at most %d bytes (got %d)", maxValue, len(val))
	case !utf8.ValidString(val) || strings.ContainsRune(val, 0):
		v.Add(field, "must be UTF-8 text without NUL bytes")
	case strings.TrimSpace(val) != val:
		v.Add(field, "has leading or trailing whitespace (a copy-paste slip?); send the value without it")
	}
}

func checkIdentifier(v *api.Validator, s string) {
	if !ValidIdentifier(s) {
		v.Add("identifier", "%s (got %q)", identifierRule, clip(s))
	}
}

func (h *Handler) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Identifier  string `json:"identifier"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Value       string `json:"value"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	defer func() { req.Value = "" }()
	if req.Name == "" {
		req.Name = req.Identifier
	}
	var v api.Validator
	checkIdentifier(&v, req.Identifier)
	v.Required("name", req.Name, 200)
	v.MaxLen("description", req.Description, 2000)
	checkValue(&v, "value", req.Value)
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.now()
	k := APIKey{ID: secret.NewID("ak"), Identifier: req.Identifier, Name: req.Name, Description: req.Description,
		Version: 1, LastVersion: 1, CreatedAt: now, UpdatedAt: now}
	sealed, err := h.Envelope.Seal(r.Context(), []byte(req.Value), APIKeyAAD(VersionID(k.ID, 1)))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	first := KeyVersion{Version: 1, Sealed: sealed, CreatedAt: now}
	if err := h.Store.CreateAPIKey(r.Context(), k, first); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("a credential with the identifier %q already exists (API key and OAuth provider identifiers share one namespace)", k.Identifier)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "api_key.create", TypeAPIKey, k.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	k.Versions = []KeyVersion{first}
	w.Header().Set("Location", "/api/v1/credentials/api-keys/"+k.Identifier)
	api.WriteJSON(w, http.StatusCreated, apiKeyView(k))
}

func (h *Handler) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	keys, next, err := h.Store.ListAPIKeys(r.Context(), limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]apiKeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, apiKeyView(k))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(out, next))
}

func notFoundKey(identifier string) error {
	return api.NotFound("no API key has the identifier %q", clip(identifier))
}

func (h *Handler) getAPIKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("identifier")
	k, err := h.Store.GetAPIKey(r.Context(), id, h.Now())
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundKey(id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	view := apiKeyView(k)
	if view.UsedBy, err = h.Store.CredentialUsers(r.Context(), k.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, view)
}

func (h *Handler) updateAPIKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		// Value is refused with a pointer to the rotation endpoint.
		Value *string `json:"value"`
	}
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
	if req.Value != nil {
		v.Add("value", "is changed by rotation: PUT /api/v1/credentials/api-keys/%s/value", clip(r.PathValue("identifier")))
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("identifier")
	k, err := h.Store.UpdateAPIKey(r.Context(), id, func(k *APIKey) error {
		set(&k.Name, req.Name)
		set(&k.Description, req.Description)
		k.UpdatedAt = h.now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundKey(id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "api_key.update", TypeAPIKey, k.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, apiKeyView(k))
}

// rotateAPIKey stores a new value as the next version; the next retrieval by any
// agent gets it.
func (h *Handler) rotateAPIKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Value           string `json:"value"`
		KeepPreviousFor *int64 `json:"keep_previous_for"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	defer func() { req.Value = "" }()
	var v api.Validator
	checkValue(&v, "value", req.Value)
	keep := int64(0)
	if req.KeepPreviousFor != nil {
		keep = *req.KeepPreviousFor
		if keep < 0 || keep > MaxKeepPrevious {
			v.Add("keep_previous_for", "must be seconds from 0 (delete the previous value now) to %d (90 days)", MaxKeepPrevious)
		}
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("identifier")
	now := h.now()
	var keepUntil time.Time
	if keep > 0 {
		keepUntil = now.Add(time.Duration(keep) * time.Second)
	}
	k, err := h.Store.RotateAPIKey(r.Context(), id, now, keepUntil, func(versionID string, _ int64) ([]byte, error) {
		return h.Envelope.Seal(r.Context(), []byte(req.Value), APIKeyAAD(versionID))
	})
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundKey(id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "api_key.rotate", TypeAPIKey, k.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, apiKeyView(k))
}

// rollbackAPIKey makes a kept previous version current again; the version it
// replaces is deleted.
func (h *Handler) rollbackAPIKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Version int64 `json:"version"`
	}
	if r.ContentLength != 0 {
		if err := api.Decode(w, r, &req); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	if req.Version < 0 {
		api.WriteError(w, r, api.Invalid(api.FieldError{Field: "version", Detail: "must be a kept previous version (see versions in GET), or absent for the newest"}))
		return
	}
	id := r.PathValue("identifier")
	k, err := h.Store.RollbackAPIKey(r.Context(), id, req.Version, h.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = notFoundKey(id)
	case errors.Is(err, ErrNoPrevious) && req.Version > 0:
		err = api.Conflict("API key %q keeps no previous version %d (only versions rotated away with keep_previous_for, and not expired, can be restored)", clip(id), req.Version)
	case errors.Is(err, ErrNoPrevious):
		err = api.Conflict("API key %q keeps no previous version to roll back to: rotate with keep_previous_for to keep one", clip(id))
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "api_key.rollback", TypeAPIKey, k.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, apiKeyView(k))
}

func (h *Handler) deleteAPIKey(w http.ResponseWriter, r *http.Request) {
	h.deleteCredential(w, r, TypeAPIKey)
}

// deleteCredential deletes a credential, refusing (409, naming the agents) while
// outbound nodes use it unless ?force=true.
func (h *Handler) deleteCredential(w http.ResponseWriter, r *http.Request, typ string) {
	id := r.PathValue("identifier")
	force := false
	switch f := r.URL.Query().Get("force"); f {
	case "", "false":
	case "true":
		force = true
	default:
		api.WriteError(w, r, api.Invalid(api.FieldError{Field: "force", Detail: fmt.Sprintf("must be true or false (got %q)", clip(f))}))
		return
	}
	err := h.Store.DeleteCredential(r.Context(), typ, id, force)
	var inUse *InUseError
	switch {
	case errors.As(err, &inUse):
		err = api.Conflict("the outbound nodes of %d agent(s) use %q: %s; remove those nodes first, or delete with ?force=true to remove them too",
			len(inUse.Agents), clip(id), strings.Join(inUse.Agents, ", "))
	case errors.Is(err, store.ErrNotFound):
		err = api.NotFound("no %s has the identifier %q", strings.ReplaceAll(typ, "_", " "), clip(id))
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	action := typ + ".delete"
	if force {
		action += ".force"
	}
	if err := audit.Admin(r.Context(), h.Audit, action, typ, id, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
