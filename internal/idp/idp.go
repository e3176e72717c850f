// Package idp holds the upstream identity providers users sign in through: generic
// OpenID Connect providers (Entra ID, Okta, Google, Keycloak, DingTalk/Lark OIDC),
// offered as buttons on the login page, and LDAP directories, tried with the
// username and password typed on it. Either way the user is provisioned
// just in time into the directory (source "oidc:<id>" or "ldap:<id>") with the
// claims or attributes mapped to username, email, display name, attributes and
// groups.
package idp

import (
	"context"
	"time"
)

// Types of provider.
const (
	TypeOIDC = "oidc"
	TypeLDAP = "ldap"
)

// IDPrefix starts every provider id.
const IDPrefix = "idp_"

// Provider is one upstream identity provider. Its secret (the OIDC client secret
// or the LDAP bind password) is kept apart, sealed by the KMS envelope, and never
// returned.
type Provider struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Type      string      `json:"type"`
	Enabled   bool        `json:"enabled"`
	OIDC      *OIDCConfig `json:"oidc,omitempty"`
	LDAP      *LDAPConfig `json:"ldap,omitempty"`
	SecretSet bool        `json:"secret_set"` // a client secret / bind password is stored
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Source is the user source of users this provider provisions.
func (p Provider) Source() string { return p.Type + ":" + p.ID }

// OIDCConfig is a generic OpenID Connect provider (authorization code + PKCE).
type OIDCConfig struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	// Userinfo also reads the userinfo endpoint (some providers put groups or
	// profile claims only there); ID token claims win on conflicts.
	Userinfo bool         `json:"userinfo"`
	Claims   ClaimMapping `json:"claims"`
}

// ClaimMapping says which claims become the user's fields. Each value is a claim
// name or a dotted path into nested claims (realm_access.roles).
type ClaimMapping struct {
	Username    string            `json:"username"`     // default preferred_username
	Email       string            `json:"email"`        // default email
	DisplayName string            `json:"display_name"` // default name
	Groups      string            `json:"groups"`       // empty: groups are not synced
	Attributes  map[string]string `json:"attributes"`   // attribute name -> claim
}

// LDAPConfig is an LDAP directory checked with bind: search the user as the
// service account, bind as the user with the typed password, read the groups.
type LDAPConfig struct {
	URL      string `json:"url"`       // ldaps://host:636 or ldap://host:389
	StartTLS bool   `json:"start_tls"` // upgrade ldap:// with StartTLS
	// CACert is a PEM bundle to trust instead of the system roots.
	CACert string `json:"ca_cert,omitempty"`
	BindDN string `json:"bind_dn"` // empty: anonymous search
	// UserBaseDN and UserFilter find the user; {username} is replaced by the
	// typed username, escaped (RFC 4515).
	UserBaseDN string `json:"user_base_dn"`
	UserFilter string `json:"user_filter"` // default (uid={username})
	// GroupBaseDN and GroupFilter find the user's groups ({dn}: the user's DN,
	// {username}: the username); GroupAttribute is the group's name.
	GroupBaseDN    string           `json:"group_base_dn,omitempty"` // empty: groups are not synced
	GroupFilter    string           `json:"group_filter,omitempty"`  // default (member={dn})
	GroupAttribute string           `json:"group_attribute,omitempty"`
	Attributes     AttributeMapping `json:"attributes"`
	Timeout        int              `json:"timeout"` // seconds, default 10
}

// AttributeMapping says which LDAP attributes become the user's fields.
type AttributeMapping struct {
	Username    string            `json:"username"`     // default uid
	Email       string            `json:"email"`        // default mail
	DisplayName string            `json:"display_name"` // default cn
	Attributes  map[string]string `json:"attributes"`   // attribute name -> LDAP attribute
}

// SecretAAD is the associated data a provider's secret is sealed with.
func SecretAAD(id string) []byte { return []byte("identity_provider/" + id) }

// Store keeps providers; sealed is the KMS-sealed secret (never empty: a provider
// without a secret seals the empty string, so every row re-wraps alike).
type Store interface {
	CreateIdentityProvider(ctx context.Context, p Provider, sealed []byte) error
	GetIdentityProvider(ctx context.Context, id string) (Provider, []byte, error)
	ListIdentityProviders(ctx context.Context) ([]Provider, error)
	// UpdateIdentityProvider runs update on the stored provider and sealed secret
	// in a transaction.
	UpdateIdentityProvider(ctx context.Context, id string, update func(p *Provider, sealed *[]byte) error) (Provider, error)
	DeleteIdentityProvider(ctx context.Context, id string) error
}

// MaxProviders bounds the providers one server holds (each enabled LDAP provider
// is tried in turn on a sign-in with an unknown username).
const MaxProviders = 50
