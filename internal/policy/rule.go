package policy

import (
	"context"
	"time"
)

// Rule is one inbound rule of an agent: through the client ClientID, the users it
// lists, the members of the groups it names, and the users its Cedar policy permits
// may call the agent. A user is admitted if any one of the three admits them.
type Rule struct {
	ID          string    `json:"id"`
	AgentID     string    `json:"agent_id"`
	ClientID    string    `json:"client_id"`
	Description string    `json:"description,omitempty"`
	Users       []string  `json:"users"`  // user ids
	Groups      []string  `json:"groups"` // group names
	Policy      string    `json:"policy,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// RuleIDPrefix starts every rule id.
const RuleIDPrefix = "inr_"

// Limits on rules, so compiling an agent's rules stays bounded.
const (
	MaxRulesPerAgent   = 10000
	MaxUsersPerRule    = 1000
	MaxGroupsPerRule   = 1000
	MaxPolicyBytes     = 64 << 10
	MaxDescriptionSize = 1000
)

// Store keeps inbound rules. Every change bumps the agent's rule version in the
// same transaction; a replica compares the version with its compiled copy on every
// decision, so a deleted rule stops admitting anyone at once on all replicas.
type Store interface {
	// CreateInboundRule stores r (store.ErrNotFound if the agent does not exist).
	CreateInboundRule(ctx context.Context, r Rule) error
	ListInboundRules(ctx context.Context, agentID string) ([]Rule, error)
	CountInboundRules(ctx context.Context, agentID string) (int, error)
	DeleteInboundRule(ctx context.Context, agentID, id string) error
	// InboundVersion is the agent's rule version (0 if it never had a rule).
	InboundVersion(ctx context.Context, agentID string) (int64, error)
}
