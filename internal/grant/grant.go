// Package grant holds what an agent may ask a token for: scopes on one resource
// server's audience (the enterprise-service node). Every agent is granted
// agentguard:credentials on the issuer at registration (functional authorization).
package grant

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Built-in scopes on the issuer's own audience.
const (
	ScopeCredentials = "agentguard:credentials"
	ScopeAdmin       = "agentguard:admin"
)

// Grant lets AgentID ask for Scopes on the resource server whose audience is Audience.
type Grant struct {
	ID               string    `json:"id"`
	AgentID          string    `json:"agent_id"`
	ResourceServerID string    `json:"resource_server_id"`
	Audience         string    `json:"audience"`
	Scopes           []string  `json:"scopes"`
	CreatedAt        time.Time `json:"created_at"`
}

// Allows reports whether every scope in want is granted.
func (g Grant) Allows(want []string) bool {
	for _, s := range want {
		if !slices.Contains(g.Scopes, s) {
			return false
		}
	}
	return true
}

// Store keeps grants. GrantFor finds the agent's grant on an audience (ErrNotFound if none).
type Store interface {
	CreateGrant(ctx context.Context, g Grant) error
	ListGrants(ctx context.Context, agentID string) ([]Grant, error)
	// UpdateGrantScopes replaces the scopes of the agent's grant id.
	UpdateGrantScopes(ctx context.Context, agentID, id string, scopes []string) (Grant, error)
	DeleteGrant(ctx context.Context, agentID, id string) error
	GrantFor(ctx context.Context, agentID, audience string) (Grant, error)
}

// JoinScopes and SplitScopes convert between the OAuth space-separated form and a list.
func JoinScopes(s []string) string { return strings.Join(s, " ") }

func SplitScopes(s string) []string { return strings.Fields(s) }
