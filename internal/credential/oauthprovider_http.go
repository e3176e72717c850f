package credential

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
)

// Limits of OAuth provider fields.
const (
	maxClientID    = 512
	maxSecret      = 4096
	maxScopes      = 50
	maxTokenParams = 10
)

var paramNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// reservedParams are token request parameters agentguard sets itself (or that
// have no place in a client credentials request).
var reservedParams = map[string]bool{
	"grant_type": true, "scope": true, "client_id": true, "client_secret": true, "client_assertion": true,
	"client_assertion_type": true, "refresh_token": true, "code": true, "username": true, "password": true,
}

type providerJSON struct {
	ID            string            `json:"id"`
	Identifier    string            `json:"identifier"`
	Type          string            `json:"type"`
	Name          string            `json:"name"`
	Description   string            `json:"description"`
	ClientID      string            `json:"client_id"`
	TokenEndpoint string            `json:"token_endpoint"`
	DefaultScopes []string          `json:"default_scopes"`
	AuthMethod    string            `json:"auth_method"`
	TokenParams   map[string]string `json:"token_params,omitempty"`
	Preset        string            `json:"preset,omitempty"`
	PresetParams  map[string]string `json:"preset_params,omitempty"`
	Generation    int64             `json:"generation"`
	Status        string            `json:"status"`
	LastError     string            `json:"last_error,omitempty"`
	LastErrorAt   *time.Time        `json:"last_error_at,omitempty"`
	UsedBy        []string          `json:"used_by,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// ProviderStatus is "failing" while the provider's last token request failed,
// else "ok".
func ProviderStatus(p OAuthProvider) string {
	if p.LastError != "" {
		return "failing"
	}
	return "ok"
}

func providerView(p OAuthProvider) providerJSON {
	out := providerJSON{ID: p.ID, Identifier: p.Identifier, Type: TypeOAuthProvider, Name: p.Name, Description: p.Description,
		ClientID: p.ClientID, TokenEndpoint: p.TokenEndpoint, DefaultScopes: p.DefaultScopes, AuthMethod: p.AuthMethod,
		TokenParams: p.TokenParams, Preset: p.Preset, PresetParams: p.PresetParams, Generation: p.Generation,
		Status: ProviderStatus(p), LastError: p.LastError, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if out.DefaultScopes == nil {
		out.DefaultScopes = []string{}
	}
	if len(out.TokenParams) == 0 {
		out.TokenParams = nil
	}
	if len(out.PresetParams) == 0 {
		out.PresetParams = nil
	}
	if !p.LastErrorAt.IsZero() && p.LastError != "" {
		t := p.LastErrorAt
		out.LastErrorAt = &t
	}
	return out
}

// providerChange is the body of POST and PATCH: absent fields stay as they are.
type providerChange struct {
	Identifier    *string            `json:"identifier"`
	Name          *string            `json:"name"`
	Description   *string            `json:"description"`
	ClientID      *string            `json:"client_id"`
	ClientSecret  *string            `json:"client_secret"`
	TokenEndpoint *string            `json:"token_endpoint"`
	DefaultScopes *[]string          `json:"default_scopes"`
	AuthMethod    *string            `json:"auth_method"`
	TokenParams   *map[string]string `json:"token_params"`
	Preset        *string            `json:"preset"`
	PresetParams  *map[string]string `json:"preset_params"`
}

// apply validates c and applies it to p; it seals a new client secret, and bumps
// the generation when anything the token request depends on changes.
// Problems are added to v, which may already hold some.
func (h *Handler) apply(ctx context.Context, p *OAuthProvider, c providerChange, creating bool, v *api.Validator) error {
	before := *p
	set(&p.Name, c.Name)
	set(&p.Description, c.Description)
	set(&p.ClientID, c.ClientID)
	set(&p.AuthMethod, c.AuthMethod)
	if c.DefaultScopes != nil {
		p.DefaultScopes = slices.Compact(slices.Sorted(slices.Values(*c.DefaultScopes)))
	}
	if c.Identifier != nil && !creating {
		v.Add("identifier", "cannot change: agents and outbound nodes name the credential by it; create a new provider instead")
	}
	if creating && p.Name == "" {
		p.Name = p.Identifier
	}
	v.Required("name", p.Name, 200)
	v.MaxLen("description", p.Description, 2000)
	if strings.TrimSpace(p.ClientID) == "" {
		v.Add("client_id", "is required")
	} else if len(p.ClientID) > maxClientID || !printable(p.ClientID) {
		v.Add("client_id", "must be at most %d bytes of printable ASCII", maxClientID)
	}
	if c.ClientSecret != nil || creating {
		s := ""
		if c.ClientSecret != nil {
			s = *c.ClientSecret
		}
		switch {
		case s == "":
			v.Add("client_secret", "is required")
		case len(s) > maxSecret || !printable(s):
			v.Add("client_secret", "must be at most %d bytes of printable ASCII", maxSecret)
		case strings.TrimSpace(s) != s:
			v.Add("client_secret", "has leading or trailing whitespace (a copy-paste slip?); send it without")
		}
	}
	if len(p.DefaultScopes) > maxScopes {
		v.Add("default_scopes", "at most %d scopes", maxScopes)
	}
	for _, s := range p.DefaultScopes {
		v.Scope("default_scopes", s)
	}
	if c.TokenParams != nil {
		p.TokenParams = maps.Clone(*c.TokenParams)
	}

	// The endpoint: a preset fills it (and the auth method and token parameters it
	// implies) from a few parameters; an explicit token_endpoint replaces a preset.
	switch {
	case c.TokenEndpoint != nil && c.Preset != nil && *c.Preset != "":
		v.Add("token_endpoint", "give either token_endpoint or preset, not both")
	case c.TokenEndpoint != nil:
		p.TokenEndpoint, p.Preset, p.PresetParams = *c.TokenEndpoint, "", nil
	case c.Preset != nil || (c.PresetParams != nil && p.Preset != ""):
		set(&p.Preset, c.Preset)
		if c.PresetParams != nil {
			p.PresetParams = maps.Clone(*c.PresetParams)
		}
		if p.Preset == "" {
			v.Add("preset", "is empty: give a preset name, or a token_endpoint instead")
			break
		}
		res, probs := ApplyPreset(p.Preset, p.PresetParams, h.AllowInsecureTokenEndpoints)
		for _, pr := range probs {
			v.Add(pr.Field, "%s", pr.Detail)
		}
		if len(probs) == 0 {
			p.TokenEndpoint = res.TokenEndpoint
			if c.AuthMethod == nil {
				p.AuthMethod = res.AuthMethod
			}
			if len(res.TokenParams) > 0 {
				merged := maps.Clone(res.TokenParams)
				maps.Copy(merged, p.TokenParams) // explicit token_params win
				p.TokenParams = merged
			}
		}
	case c.PresetParams != nil:
		v.Add("preset_params", "needs a preset")
	}
	if p.AuthMethod == "" {
		p.AuthMethod = AuthBasic
	}
	v.OneOf("auth_method", p.AuthMethod, AuthBasic, AuthPost)
	if p.TokenEndpoint == "" && c.Preset == nil {
		v.Add("token_endpoint", "is required (or give a preset: %s)", strings.Join(presetNames(), ", "))
	} else if p.TokenEndpoint != "" {
		if msg := CheckSecretURL(p.TokenEndpoint, h.AllowInsecureTokenEndpoints, true); msg != "" {
			v.Add("token_endpoint", "%s", msg)
		}
	}
	if len(p.TokenParams) > maxTokenParams {
		v.Add("token_params", "at most %d parameters", maxTokenParams)
	}
	for _, k := range slices.Sorted(maps.Keys(p.TokenParams)) {
		val := p.TokenParams[k]
		switch {
		case !paramNameRe.MatchString(k):
			v.Add("token_params."+clip(k), "is not a parameter name (1-64 letters, digits, '_', '.', '-')")
		case reservedParams[k]:
			v.Add("token_params."+k, "is set by agentguard itself (grant_type, scope and client authentication)")
		case val == "" || len(val) > 1024 || !printable(val):
			v.Add("token_params."+k, "must be 1-1024 bytes of printable ASCII")
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if c.ClientSecret != nil {
		sealed, err := h.Envelope.Seal(ctx, []byte(*c.ClientSecret), ClientSecretAAD(p.ID))
		if err != nil {
			return err
		}
		p.ClientSecretSealed = sealed
	}
	if !creating && (c.ClientSecret != nil || p.ClientID != before.ClientID || p.TokenEndpoint != before.TokenEndpoint ||
		p.AuthMethod != before.AuthMethod || !maps.Equal(p.TokenParams, before.TokenParams)) {
		p.Generation++
	}
	return nil
}

func presetNames() []string { return slices.Sorted(maps.Keys(Presets)) }

func (h *Handler) createProvider(w http.ResponseWriter, r *http.Request) {
	var c providerChange
	if err := api.Decode(w, r, &c); err != nil {
		api.WriteError(w, r, err)
		return
	}
	now := h.now()
	p := OAuthProvider{ID: secret.NewID("op"), Generation: 1, CreatedAt: now, UpdatedAt: now}
	if c.Identifier != nil {
		p.Identifier = *c.Identifier
	}
	var v api.Validator
	checkIdentifier(&v, p.Identifier)
	if err := h.apply(r.Context(), &p, c, true, &v); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.Store.CreateOAuthProvider(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("a credential with the identifier %q already exists (API key and OAuth provider identifiers share one namespace)", p.Identifier)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "oauth_provider.create", TypeOAuthProvider, p.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/credentials/oauth-providers/"+p.Identifier)
	api.WriteJSON(w, http.StatusCreated, providerView(p))
}

func (h *Handler) listProviders(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := api.PageParams(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	ps, next, err := h.Store.ListOAuthProviders(r.Context(), limit, cursor)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]providerJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, providerView(p))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(out, next))
}

func notFoundProvider(identifier string) error {
	return api.NotFound("no OAuth provider has the identifier %q", clip(identifier))
}

func (h *Handler) getProvider(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("identifier")
	p, err := h.Store.GetOAuthProvider(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundProvider(id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	view := providerView(p)
	if view.UsedBy, err = h.Store.CredentialUsers(r.Context(), p.ID); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, view)
}

func (h *Handler) updateProvider(w http.ResponseWriter, r *http.Request) {
	var c providerChange
	if err := api.Decode(w, r, &c); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id := r.PathValue("identifier")
	p, err := h.Store.UpdateOAuthProvider(r.Context(), id, func(p *OAuthProvider) error {
		if err := h.apply(r.Context(), p, c, false, &api.Validator{}); err != nil {
			return err
		}
		p.UpdatedAt = h.now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		err = notFoundProvider(id)
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Audit, "oauth_provider.update", TypeOAuthProvider, p.Identifier, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, providerView(p))
}

func (h *Handler) deleteProvider(w http.ResponseWriter, r *http.Request) {
	h.deleteCredential(w, r, TypeOAuthProvider)
}

func (h *Handler) listPresets(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, api.NewList(PresetList(), ""))
}
