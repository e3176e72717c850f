// Package credential is the vault of third-party credentials agents need and the
// rules that say which agent may use which:
//
//   - API keys (versioned values, rotated and rolled back) and OAuth credential
//     providers (client id and secret of a third-party authorization server);
//     values and client secrets are sealed by the KMS envelope and never returned
//     by the management API (apikey_http.go, oauthprovider_http.go, presets.go);
//   - each agent's outbound rule, its data authorization: one node per credential,
//     created empty at registration, read from storage on every request so that
//     removing a node takes effect at once on every replica (outbound_http.go);
//   - the Credential API agents call with their own access token (agent_http.go,
//     authorization in access.go), and the upstream OAuth token fetcher and cache
//     (tokens.go).
//
// The egress proxy (internal/egress) and the topology graph (internal/topology)
// build on the same rule.
package credential

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Credential types.
const (
	TypeAPIKey        = "api_key"
	TypeOAuthProvider = "oauth_provider"
)

// Outbound node types.
const (
	NodeLLM             = "llm"
	NodeExternalService = "external_service"
)

// OAuth client authentication methods at a provider's token endpoint.
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// APIKey is an API key's metadata; its value is only in Store versions, sealed.
type APIKey struct {
	ID          string
	Identifier  string
	Name        string
	Description string
	Version     int64 // the version handed out
	LastVersion int64 // the highest version ever assigned; versions are never reused
	Versions    []KeyVersion
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// KeyVersion is one stored value of an API key. ExpiresAt is zero for the current
// version; a previous version kept for rollback has the time it will be dropped.
type KeyVersion struct {
	Version   int64
	Sealed    []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// VersionID is the storage id of a version, the base of its sealing AAD.
func VersionID(credentialID string, version int64) string {
	return credentialID + "/v" + strconv.FormatInt(version, 10)
}

// APIKeyAAD binds a sealed API key value to its credential and version.
func APIKeyAAD(versionID string) []byte { return []byte("api_key/" + versionID) }

// OAuthProvider is a third-party authorization server agentguard gets tokens from
// with the client credentials grant.
type OAuthProvider struct {
	ID                 string
	Identifier         string
	Name               string
	Description        string
	ClientID           string
	ClientSecretSealed []byte
	TokenEndpoint      string
	DefaultScopes      []string
	AuthMethod         string
	TokenParams        map[string]string // extra token request parameters (audience, resource, …)
	Preset             string
	PresetParams       map[string]string
	// Generation changes whenever the client id or secret, the token endpoint, the
	// auth method or the token parameters change; cached tokens of older
	// generations are never handed out again.
	Generation  int64
	LastError   string // the provider's error code at the last failed token request; "" after a success
	LastErrorAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ClientSecretAAD binds a sealed client secret to its provider.
func ClientSecretAAD(providerID string) []byte {
	return []byte("oauth_provider/" + providerID + "/client_secret")
}

// TokenAAD binds a sealed upstream token to its cache key.
func TokenAAD(cacheKey string) []byte { return []byte("oauth_token/" + cacheKey) }

// Node is one node of an agent's outbound rule: the agent may use one credential,
// as an LLM or an external service, and optionally reach it through the egress
// proxy at UpstreamURL with the credential injected by HeaderTemplate.
type Node struct {
	ID             string
	AgentID        string
	NodeType       string
	CredentialID   string
	CredentialType string
	Identifier     string // the credential's identifier; names the node in the API
	CredentialName string
	UpstreamURL    string
	HeaderTemplate string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Access is what an agent's rule allows for one identifier: the node and its
// credential, read in one query. Exactly one of APIKey / Provider is set.
type Access struct {
	Node        Node
	AgentActive bool        // the node's agent is active (read in the same query)
	APIKey      *KeyVersion // the current version, sealed
	Provider    *OAuthProvider
}

// CachedToken is an upstream access token as stored: sealed, with its expiry.
type CachedToken struct {
	Key          string
	CredentialID string
	Sealed       []byte
	ExpiresAt    time.Time
	CreatedAt    time.Time
}

// ErrInUse is returned (wrapped in an *InUseError) when a credential that outbound
// nodes still name is deleted without force.
var ErrInUse = errors.New("credential is in use")

// ErrNoPrevious: a rollback found no previous version kept (or not the one asked for).
var ErrNoPrevious = errors.New("no previous version of the API key is kept")

// InUseError names the agents whose nodes use the credential.
type InUseError struct{ Agents []string }

func (e *InUseError) Error() string {
	return "credential is used by the outbound nodes of " + strings.Join(e.Agents, ", ")
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// Store keeps credentials, outbound nodes and cached upstream tokens. Identifiers
// are unique across both credential types (store.ErrConflict).
type Store interface {
	// CreateAPIKey stores k with its first version.
	CreateAPIKey(ctx context.Context, k APIKey, first KeyVersion) error
	// GetAPIKey returns the key with its stored versions (values sealed), the
	// current one first, excluding previous versions expired at now.
	GetAPIKey(ctx context.Context, identifier string, now time.Time) (APIKey, error)
	ListAPIKeys(ctx context.Context, limit int, cursor string) ([]APIKey, string, error)
	// UpdateAPIKey changes the metadata (name, description) of a key.
	UpdateAPIKey(ctx context.Context, identifier string, update func(*APIKey) error) (APIKey, error)
	// RotateAPIKey makes a new version current: version LastVersion+1, sealed by
	// seal(versionID, version) inside the transaction. The previous current version
	// is kept until keepPreviousUntil (zero: deleted now); at most MaxKeptVersions
	// previous versions are kept, the oldest dropped first.
	RotateAPIKey(ctx context.Context, identifier string, now, keepPreviousUntil time.Time, seal func(versionID string, version int64) ([]byte, error)) (APIKey, error)
	// RollbackAPIKey makes the newest previous version not expired at now current
	// again (or the given one if version > 0) and deletes the version it replaces.
	// ErrNotFound (wrapped) when no such previous version is kept.
	RollbackAPIKey(ctx context.Context, identifier string, version int64, now time.Time) (APIKey, error)

	CreateOAuthProvider(ctx context.Context, p OAuthProvider) error
	GetOAuthProvider(ctx context.Context, identifier string) (OAuthProvider, error)
	ListOAuthProviders(ctx context.Context, limit int, cursor string) ([]OAuthProvider, string, error)
	// UpdateOAuthProvider applies update in a transaction; when it changes the
	// generation, the provider's cached tokens are deleted in the same transaction.
	UpdateOAuthProvider(ctx context.Context, identifier string, update func(*OAuthProvider) error) (OAuthProvider, error)
	// SetOAuthProviderError records the outcome of a token request for generation
	// (code "" clears it); a newer generation's row is left alone.
	SetOAuthProviderError(ctx context.Context, id string, generation int64, code string, at time.Time) error

	// DeleteCredential deletes the credential of that type and identifier. While
	// outbound nodes use it, it returns an *InUseError unless force is set; with
	// force the nodes go with it.
	DeleteCredential(ctx context.Context, typ, identifier string, force bool) error
	// CredentialUsers lists the agents whose nodes use the credential id.
	CredentialUsers(ctx context.Context, credentialID string) ([]string, error)

	// AddOutboundNode adds n to its agent's rule; n names its credential by
	// CredentialType and Identifier. ErrNotFound when no such credential exists,
	// ErrConflict when the agent's rule already holds it.
	AddOutboundNode(ctx context.Context, n Node) (Node, error)
	ListOutboundNodes(ctx context.Context, agentID string) ([]Node, error)
	UpdateOutboundNode(ctx context.Context, agentID, identifier string, update func(*Node) error) (Node, error)
	DeleteOutboundNode(ctx context.Context, agentID, identifier string) error
	// OutboundAccess returns the agent's node for identifier with its credential
	// (ErrNotFound if the rule has none), straight from storage: no replica keeps
	// a copy of a rule, so a removed node stops working everywhere at once.
	OutboundAccess(ctx context.Context, agentID, identifier string) (Access, error)

	// GetOAuthToken returns the cached token under key (ErrNotFound if none).
	GetOAuthToken(ctx context.Context, key string) (CachedToken, error)
	// PutOAuthToken stores or replaces the cached token under t.Key. It stores
	// nothing (and returns nil) if the credential is gone.
	PutOAuthToken(ctx context.Context, t CachedToken) error
	// DeleteOAuthToken deletes the cached token under key if it is still the one
	// obtained at createdAt (a newer one another replica stored stays).
	DeleteOAuthToken(ctx context.Context, key string, createdAt time.Time) error
	// DeleteExpiredCredentialData deletes cached tokens and previous API key
	// versions expired at now, and returns how many rows went.
	DeleteExpiredCredentialData(ctx context.Context, now time.Time) (int64, error)
}

// MaxKeptVersions bounds the previous versions of an API key kept for rollback.
const MaxKeptVersions = 10

var identifierRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidIdentifier reports whether s can be a credential identifier: 1-128
// characters of letters, digits, '.', '_' and '-', starting with a letter or
// digit, so it is safe in a URL path, a log line and a header.
func ValidIdentifier(s string) bool { return identifierRe.MatchString(s) }

// identifierRule is the message for an invalid identifier.
const identifierRule = "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
