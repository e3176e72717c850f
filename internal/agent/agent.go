// Package agent holds agent identities: each agent is an OAuth client whose id is
// its client_id, with the ways it can prove who it is (secrets, registered public
// keys, federated workload tokens).
package agent

import (
	"context"
	"time"

	"github.com/agentguard/agentguard/internal/grant"
)

// Types, access identities and statuses.
const (
	TypeAutonomous  = "autonomous"
	TypeInteractive = "interactive"

	IdentityMachine = "machine"
	IdentityHuman   = "human"

	StatusActive   = "active"
	StatusDisabled = "disabled"

	// StatusOrphaned is a list filter, not a status: agents whose Orphaned flag is set.
	StatusOrphaned = "orphaned"
)

// Agent is one agent identity.
type Agent struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Description    string `json:"description"`
	Owner          string `json:"owner"`
	Type           string `json:"type"`
	AccessIdentity string `json:"access_identity"`
	Audience       string `json:"audience"`
	Status         string `json:"status"`
	// Orphaned: the owner named a user who was deleted or deactivated (see
	// docs/directory.md). Cleared when the owner is changed to an active user.
	Orphaned  bool      `json:"orphaned"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Active reports whether the agent may authenticate.
func (a Agent) Active() bool { return a.Status == StatusActive }

// Secret is a client secret, stored only as its hash.
type Secret struct {
	ID        string
	AgentID   string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// Expired reports whether the secret is past its expiry at now.
func (s Secret) Expired(now time.Time) bool { return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) }

// Key is a registered public key for private_key_jwt; JWK is its public JSON form.
type Key struct {
	KID       string
	AgentID   string
	Alg       string
	JWK       []byte
	CreatedAt time.Time
}

// Federation trusts tokens from Issuer about Subject as proof of being AgentID.
type Federation struct {
	ID        string
	AgentID   string
	Issuer    string
	Subject   string
	JWKSURI   string // empty: discovered from the issuer
	Audience  string // the aud the external token must carry
	CreatedAt time.Time
}

// Filter narrows a list of agents.
type Filter struct {
	Owner, Status, Type, Query string
	Orphaned                   bool // only orphaned agents
}

// Store keeps agents and their authentication material.
type Store interface {
	// CreateAgent stores a and its initial grants in one transaction.
	CreateAgent(ctx context.Context, a Agent, grants ...grant.Grant) error
	GetAgent(ctx context.Context, id string) (Agent, error)
	GetAgentByAudience(ctx context.Context, audience string) (Agent, error)
	ListAgents(ctx context.Context, f Filter, limit int, cursor string) ([]Agent, string, error)
	UpdateAgent(ctx context.Context, id string, update func(*Agent) error) (Agent, error)
	// DeleteAgent removes the agent with its secrets, keys, federations and grants.
	DeleteAgent(ctx context.Context, id string) error

	CreateSecret(ctx context.Context, s Secret) error
	ListSecrets(ctx context.Context, agentID string) ([]Secret, error)
	DeleteSecret(ctx context.Context, agentID, id string) error

	CreateKey(ctx context.Context, k Key) error
	ListKeys(ctx context.Context, agentID string) ([]Key, error)
	DeleteKey(ctx context.Context, agentID, kid string) error

	CreateFederation(ctx context.Context, f Federation) error
	ListFederations(ctx context.Context, agentID string) ([]Federation, error)
	DeleteFederation(ctx context.Context, agentID, id string) error
	FindFederation(ctx context.Context, issuer, subject string) (Federation, error)
}
