package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store"
)

type keyView struct {
	KID       string          `json:"kid"`
	Alg       string          `json:"alg"`
	JWK       json.RawMessage `json:"jwk"`
	CreatedAt time.Time       `json:"created_at"`
}

// createKey registers a public key for private_key_jwt, given as a JWK or PEM.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JWK json.RawMessage `json:"jwk"`
		PEM string          `json:"pem"`
		Alg string          `json:"alg"`
		KID string          `json:"kid"`
	}
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	k, err := ParsePublicKey(req.JWK, req.PEM, req.Alg, req.KID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	k.AgentID, k.CreatedAt = a.ID, h.Now().UTC()
	if err := h.Store.CreateKey(r.Context(), k); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("agent %s already has a key with kid %q", a.ID, k.KID)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.key.create", "agent_key", k.KID, a.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, keyView{KID: k.KID, Alg: k.Alg, JWK: k.JWK, CreatedAt: k.CreatedAt})
}

// ParsePublicKey validates a public key given as a JWK or PEM (public key or
// certificate) and returns it with its kid (the RFC 7638 thumbprint unless given)
// and algorithm (inferred from the key type unless given).
func ParsePublicKey(rawJWK json.RawMessage, pemText, alg, kid string) (Key, error) {
	field := func(f, format string, args ...any) error {
		return api.Invalid(api.FieldError{Field: f, Detail: fmt.Sprintf(format, args...)})
	}
	var pub any
	src := "jwk" // the field the key came in, named in errors about the key itself
	if len(rawJWK) == 0 && pemText != "" {
		src = "pem"
	}
	switch {
	case len(rawJWK) > 0 && pemText != "":
		return Key{}, field("jwk", "send either jwk or pem, not both")
	case len(rawJWK) > 0:
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(rawJWK, &jwk); err != nil {
			return Key{}, field("jwk", "is not a valid JWK: %v", err)
		}
		if !jwk.IsPublic() {
			return Key{}, field("jwk", "contains private key material; register only the public key")
		}
		pub = jwk.Key
		if kid == "" {
			kid = jwk.KeyID
		}
		if alg == "" {
			alg = jwk.Algorithm
		}
	case pemText != "":
		block, _ := pem.Decode([]byte(pemText))
		if block == nil {
			return Key{}, field("pem", "is not PEM text")
		}
		switch block.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return Key{}, field("pem", "is not a valid public key: %v", err)
			}
			pub = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return Key{}, field("pem", "is not a valid certificate: %v", err)
			}
			pub = c.PublicKey
		default:
			return Key{}, field("pem", "must be a PUBLIC KEY or CERTIFICATE block, not %s", block.Type)
		}
	default:
		return Key{}, field("jwk", "is required (or pem)")
	}
	inferred, err := algorithmFor(pub)
	if err != nil {
		return Key{}, field(src, "%v", err)
	}
	if alg == "" {
		alg = inferred
	} else if !compatible(pub, alg) {
		return Key{}, field("alg", "%q does not fit a %T key (use %s)", alg, pub, inferred)
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
	if kid == "" {
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return Key{}, field(src, "cannot compute its thumbprint: %v", err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	if len(kid) > 128 {
		return Key{}, field("kid", "must be at most 128 bytes")
	}
	jwk.KeyID = kid
	b, err := json.Marshal(jwk)
	if err != nil {
		return Key{}, err
	}
	return Key{KID: kid, Alg: alg, JWK: b}, nil
}

func algorithmFor(pub any) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		}
		return "", fmt.Errorf("EC keys must be on P-256 or P-384")
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA keys must have at least 2048 bits (got %d)", k.N.BitLen())
		}
		return "RS256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("key type %T is not supported; use EC P-256/P-384, RSA ≥ 2048 or Ed25519", pub)
}

func compatible(pub any, alg string) bool {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		want, _ := algorithmFor(pub)
		return alg == want
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "PS256"
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	a, err := h.agent(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	keys, err := h.Store.ListKeys(r.Context(), a.ID)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	views := make([]keyView, 0, len(keys))
	for _, k := range keys {
		views = append(views, keyView{KID: k.KID, Alg: k.Alg, JWK: k.JWK, CreatedAt: k.CreatedAt})
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(views, ""))
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request) {
	id, kid := r.PathValue("id"), r.PathValue("kid")
	if err := h.Store.DeleteKey(r.Context(), id, kid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("agent %q has no key %q", id, kid)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "agent.key.delete", "agent_key", kid, id); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
