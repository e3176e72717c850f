package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

// Handler serves /api/v1/identity-providers (admins).
type Handler struct {
	Svc *Service
}

// Register adds the routes; wrap wraps each in the admin check.
func (h *Handler) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/identity-providers", wrap(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/v1/identity-providers", wrap(http.HandlerFunc(h.list)))
	mux.Handle("GET /api/v1/identity-providers/{id}", wrap(http.HandlerFunc(h.get)))
	mux.Handle("PATCH /api/v1/identity-providers/{id}", wrap(http.HandlerFunc(h.update)))
	mux.Handle("DELETE /api/v1/identity-providers/{id}", wrap(http.HandlerFunc(h.delete)))
}

// oidcRequest and ldapRequest are the settings a caller sends: the config plus
// its write-only secret.
type oidcRequest struct {
	OIDCConfig
	ClientSecret *string `json:"client_secret"`
}

type ldapRequest struct {
	LDAPConfig
	BindPassword *string `json:"bind_password"`
}

type request struct {
	Name    *string      `json:"name"`
	Type    string       `json:"type"`
	Enabled *bool        `json:"enabled"`
	OIDC    *oidcRequest `json:"oidc"`
	LDAP    *ldapRequest `json:"ldap"`
}

// MaxSecretBytes bounds a client secret or bind password.
const MaxSecretBytes = 4096

func validateOIDC(v *api.Validator, c *OIDCConfig) {
	v.HTTPSURL("oidc.issuer", c.Issuer)
	v.Required("oidc.client_id", c.ClientID, 512)
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email"}
	}
	if !slices.Contains(c.Scopes, "openid") {
		v.Add("oidc.scopes", "must include openid")
	}
	if len(c.Scopes) > 50 {
		v.Add("oidc.scopes", "at most 50")
	}
	for _, s := range c.Scopes {
		v.Scope("oidc.scopes", s)
	}
	claim := func(field, path string) {
		if path == "" {
			return
		}
		if _, err := ParseClaimPath(path); err != nil {
			v.Add(field, "%q %v", path, err)
		}
	}
	claim("oidc.claims.username", c.Claims.Username)
	claim("oidc.claims.email", c.Claims.Email)
	claim("oidc.claims.display_name", c.Claims.DisplayName)
	claim("oidc.claims.groups", c.Claims.Groups)
	checkAttrMap(v, "oidc.claims.attributes", c.Claims.Attributes, func(field, path string) { claim(field, path) })
}

// checkAttrMap checks attribute names as the directory does, and each source.
func checkAttrMap(v *api.Validator, field string, m map[string]string, source func(field, src string)) {
	names := map[string]string{}
	for k := range m {
		names[k] = "x"
	}
	var av api.Validator
	user.CheckAttributes(&av, names)
	if err := av.Err(); err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			for _, fe := range ae.Errors {
				v.Add(field, "%s", fe.Detail)
			}
		}
	}
	for k, src := range m {
		if src == "" {
			v.Add(field+"."+k, "name the source")
			continue
		}
		source(field+"."+k, src)
	}
}

var ldapAttrRe = func(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == ';' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return false
		}
	}
	return true
}

func validateLDAP(v *api.Validator, c *LDAPConfig) {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" || u.Path != "" && u.Path != "/":
		v.Add("ldap.url", "%q must be ldaps://host[:636] or ldap://host[:389]", c.URL)
	case u.Scheme == "ldap" && !c.StartTLS && !api.IsLoopback(u.Hostname()):
		v.Add("ldap.url", "ldap:// to %s would send passwords in clear text: use ldaps://, or set start_tls (plain ldap:// is allowed only on loopback)", u.Hostname())
	case u.Scheme == "ldaps" && c.StartTLS:
		v.Add("ldap.start_tls", "is for ldap:// URLs; ldaps:// is TLS already")
	}
	if c.CACert != "" {
		if _, err := c.tlsConfig("x"); err != nil {
			v.Add("ldap.ca_cert", "%v", err)
		}
	}
	v.MaxLen("ldap.bind_dn", c.BindDN, 1024)
	if c.BindDN != "" {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			v.Add("ldap.bind_dn", "%q is not a DN such as cn=agentguard,ou=services,dc=example,dc=com", c.BindDN)
		}
	}
	dn := func(field, s string, required bool) {
		if s == "" {
			if required {
				v.Add(field, "is required, e.g. ou=people,dc=example,dc=com")
			}
			return
		}
		if _, err := ldap.ParseDN(s); err != nil || len(s) > 1024 {
			v.Add(field, "%q is not a DN such as ou=people,dc=example,dc=com", s)
		}
	}
	dn("ldap.user_base_dn", c.UserBaseDN, true)
	dn("ldap.group_base_dn", c.GroupBaseDN, false)
	d := c.withDefaults()
	filter := func(field, f, placeholder string, others ...string) {
		if !strings.Contains(f, placeholder) {
			v.Add(field, "%q must contain %s", f, placeholder)
			return
		}
		sample := strings.ReplaceAll(f, placeholder, "x")
		for _, o := range others {
			sample = strings.ReplaceAll(sample, o, "x")
		}
		if len(f) > 1024 {
			v.Add(field, "must be at most 1024 bytes")
		} else if _, err := ldap.CompileFilter(sample); err != nil {
			v.Add(field, "%q is not an LDAP filter (RFC 4515): %v", f, err)
		}
	}
	filter("ldap.user_filter", d.UserFilter, "{username}")
	if c.GroupBaseDN != "" {
		if strings.Contains(d.GroupFilter, "{dn}") {
			filter("ldap.group_filter", d.GroupFilter, "{dn}", "{username}")
		} else {
			filter("ldap.group_filter", d.GroupFilter, "{username}")
		}
	}
	for field, a := range map[string]string{"ldap.group_attribute": d.GroupAttribute, "ldap.attributes.username": d.Attributes.Username,
		"ldap.attributes.email": d.Attributes.Email, "ldap.attributes.display_name": d.Attributes.DisplayName} {
		if !ldapAttrRe(a) {
			v.Add(field, "%q is not an LDAP attribute name", a)
		}
	}
	checkAttrMap(v, "ldap.attributes.attributes", c.Attributes.Attributes, func(field, a string) {
		if !ldapAttrRe(a) {
			v.Add(field, "%q is not an LDAP attribute name", a)
		}
	})
	if c.Timeout < 0 || c.Timeout > 60 {
		v.Add("ldap.timeout", "must be 1 to 60 seconds (0: the default, 10)")
	}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req request
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	name := ""
	if req.Name != nil {
		name = *req.Name
	}
	v.Required("name", name, 100)
	v.OneOf("type", req.Type, TypeOIDC, TypeLDAP)
	p := Provider{Name: name, Type: req.Type, Enabled: req.Enabled == nil || *req.Enabled}
	var sec string
	switch req.Type {
	case TypeOIDC:
		if req.OIDC == nil || req.LDAP != nil {
			v.Add("oidc", "an oidc provider needs the oidc object (issuer, client_id, client_secret, scopes, claims) and no ldap")
			break
		}
		cfg := req.OIDC.OIDCConfig
		validateOIDC(&v, &cfg)
		if req.OIDC.ClientSecret == nil || *req.OIDC.ClientSecret == "" {
			v.Add("oidc.client_secret", "is required: agentguard signs users in as a confidential client (with PKCE too)")
		} else {
			sec = *req.OIDC.ClientSecret
		}
		p.OIDC = &cfg
	case TypeLDAP:
		if req.LDAP == nil || req.OIDC != nil {
			v.Add("ldap", "an ldap provider needs the ldap object (url, bind_dn, bind_password, user_base_dn, …) and no oidc")
			break
		}
		cfg := req.LDAP.LDAPConfig
		validateLDAP(&v, &cfg)
		if req.LDAP.BindPassword != nil {
			sec = *req.LDAP.BindPassword
		}
		if cfg.BindDN != "" && sec == "" {
			v.Add("ldap.bind_password", "is required with bind_dn")
		}
		p.LDAP = &cfg
	}
	if len(sec) > MaxSecretBytes {
		v.Add(secretField(req.Type), "must be at most %d bytes", MaxSecretBytes)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	if ps, err := h.Svc.Store.ListIdentityProviders(ctx); err != nil {
		api.WriteError(w, r, err)
		return
	} else if len(ps) >= MaxProviders {
		api.WriteError(w, r, api.Conflict("there are already %d identity providers, the most allowed", len(ps)))
		return
	}
	now := h.Svc.Now().UTC()
	p.ID = secret.NewID(strings.TrimSuffix(IDPrefix, "_"))
	p.CreatedAt, p.UpdatedAt, p.SecretSet = now, now, sec != ""
	sealed, err := h.Svc.Envelope.Seal(ctx, []byte(sec), SecretAAD(p.ID))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if err := h.Svc.Store.CreateIdentityProvider(ctx, p, sealed); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Conflict("an identity provider named %q already exists", p.Name)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(ctx, h.Svc.Audit, "identity_provider.create", "identity_provider", p.ID, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/identity-providers/"+p.ID)
	api.WriteJSON(w, http.StatusCreated, h.view(p))
}

func secretField(typ string) string {
	if typ == TypeLDAP {
		return "ldap.bind_password"
	}
	return "oidc.client_secret"
}

// providerView adds what a caller needs to set the provider up on its side.
type providerView struct {
	Provider
	RedirectURI string `json:"redirect_uri,omitempty"` // register this at the OIDC provider
}

func (h *Handler) view(p Provider) providerView {
	v := providerView{Provider: p}
	if p.Type == TypeOIDC {
		v.RedirectURI = h.Svc.Issuer + CallbackPath
	}
	return v
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	ps, err := h.Svc.Store.ListIdentityProviders(r.Context())
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	out := make([]providerView, 0, len(ps))
	for _, p := range ps {
		if t := r.URL.Query().Get("type"); t != "" && p.Type != t {
			continue
		}
		out = append(out, h.view(p))
	}
	api.WriteJSON(w, http.StatusOK, api.NewList(out, ""))
}

func (h *Handler) load(ctx context.Context, id string) (Provider, error) {
	p, _, err := h.Svc.Store.GetIdentityProvider(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return p, api.NotFound("no identity provider has the id %q", id)
	}
	return p, err
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.load(r.Context(), r.PathValue("id"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, h.view(p))
}

// update changes name, enabled, and the settings of the provider's type: a
// settings object replaces the settings whole; its secret is kept when left out.
func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	var req request
	if err := api.Decode(w, r, &req); err != nil {
		api.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	cur, err := h.load(ctx, id)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var v api.Validator
	if req.Name != nil {
		v.Required("name", *req.Name, 100)
	}
	if req.Type != "" && req.Type != cur.Type {
		v.Add("type", "cannot change (%s); create a new provider instead", cur.Type)
	}
	var newSecret *string
	var oidcCfg *OIDCConfig
	var ldapCfg *LDAPConfig
	switch {
	case req.OIDC != nil && cur.Type != TypeOIDC, req.LDAP != nil && cur.Type != TypeLDAP:
		v.Add(cur.Type, "this is an %s provider; send its settings as %q", cur.Type, cur.Type)
	case req.OIDC != nil:
		cfg := req.OIDC.OIDCConfig
		validateOIDC(&v, &cfg)
		oidcCfg, newSecret = &cfg, req.OIDC.ClientSecret
		if newSecret != nil && *newSecret == "" {
			v.Add("oidc.client_secret", "cannot be empty; leave it out to keep the current one")
		}
	case req.LDAP != nil:
		cfg := req.LDAP.LDAPConfig
		validateLDAP(&v, &cfg)
		ldapCfg, newSecret = &cfg, req.LDAP.BindPassword
		if cfg.BindDN != "" && !cur.SecretSet && (newSecret == nil || *newSecret == "") {
			v.Add("ldap.bind_password", "is required with bind_dn")
		}
	}
	if newSecret != nil && len(*newSecret) > MaxSecretBytes {
		v.Add(secretField(cur.Type), "must be at most %d bytes", MaxSecretBytes)
	}
	if err := v.Err(); err != nil {
		api.WriteError(w, r, err)
		return
	}
	var sealedNew []byte
	if newSecret != nil {
		if sealedNew, err = h.Svc.Envelope.Seal(ctx, []byte(*newSecret), SecretAAD(id)); err != nil {
			api.WriteError(w, r, err)
			return
		}
	}
	p, err := h.Svc.Store.UpdateIdentityProvider(ctx, id, func(p *Provider, sealed *[]byte) error {
		if req.Name != nil {
			p.Name = *req.Name
		}
		if req.Enabled != nil {
			p.Enabled = *req.Enabled
		}
		if oidcCfg != nil {
			p.OIDC = oidcCfg
		}
		if ldapCfg != nil {
			p.LDAP = ldapCfg
		}
		if sealedNew != nil {
			*sealed, p.SecretSet = sealedNew, *newSecret != ""
		}
		p.UpdatedAt = h.Svc.Now().UTC()
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = api.NotFound("no identity provider has the id %q", id)
	case errors.Is(err, store.ErrConflict):
		err = api.Conflict("another identity provider has that name")
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	reason := ""
	if newSecret != nil {
		reason = "the secret was replaced"
	}
	if err := adminEvent(ctx, h.Svc.Audit, "identity_provider.update", p.ID, reason); err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, h.view(p))
}

func adminEvent(ctx context.Context, rec audit.Recorder, action, id, reason string) error {
	e := audit.Event{Category: audit.CategoryAdmin, Action: action, Decision: audit.Allow, Reason: reason,
		User: audit.RequestFrom(ctx).Actor, ResourceType: "identity_provider", Resource: id}
	audit.Fill(ctx, &e)
	return rec.Record(ctx, e)
}

// delete removes the provider. Users it provisioned stay (with their source), but
// can no longer sign in through it.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Svc.Store.DeleteIdentityProvider(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.NotFound("no identity provider has the id %q", id)
		}
		api.WriteError(w, r, err)
		return
	}
	if err := audit.Admin(r.Context(), h.Svc.Audit, "identity_provider.delete", "identity_provider", id, ""); err != nil {
		api.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
