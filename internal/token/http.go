package token

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
)

// KeysHandler serves /api/v1/keys: the signing keys' public parts and rotation.
type KeysHandler struct {
	Keyring *Keyring
	Audit   audit.Recorder
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *KeysHandler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/keys", wrap(http.HandlerFunc(h.list)))
	mux.Handle("POST /api/v1/keys/rotate", wrap(http.HandlerFunc(h.rotate)))
}

type keyView struct {
	KID       string          `json:"kid"`
	Alg       string          `json:"alg"`
	Current   bool            `json:"current"`
	JWK       json.RawMessage `json:"jwk"`
	CreatedAt time.Time       `json:"created_at"`
	RetiredAt *time.Time      `json:"retired_at,omitempty"`
	DropAfter *time.Time      `json:"published_until,omitempty"`
}

func (h *KeysHandler) list(w http.ResponseWriter, r *http.Request) {
	keys, err := h.Keyring.PublicKeys(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]keyView, 0, len(keys))
	for _, k := range keys {
		v := keyView{KID: k.KID, Alg: k.Alg, Current: k.RetiredAt.IsZero(), JWK: k.PublicJWK, CreatedAt: k.CreatedAt}
		if !k.RetiredAt.IsZero() {
			v.RetiredAt, v.DropAfter = &k.RetiredAt, &k.DropAfter
		}
		views = append(views, v)
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, ""))
}

func (h *KeysHandler) rotate(w http.ResponseWriter, r *http.Request) {
	kid, err := h.Keyring.Rotate(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "signing_key.rotate", "signing_key", kid, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, map[string]string{"kid": kid})
}
