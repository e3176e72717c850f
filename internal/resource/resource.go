// Package resource holds resource servers: the enterprise services and APIs that
// accept agentguard tokens, each known by its audience and the scopes it defines.
package resource

import (
	"context"
	"slices"
	"time"
)

// BuiltinID is agentguard's own resource server: its audience is the issuer, and its
// scopes are the functional authorization and the admin API.
const BuiltinID = "rs_agentguard"

// DefaultTokenLifetime applies when a resource server does not set one.
const DefaultTokenLifetime = 15 * time.Minute

// Server is a resource server.
type Server struct {
	ID            string
	Name          string
	Audience      string
	Scopes        []Scope
	TokenLifetime time.Duration
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Scope is one permission a resource server defines.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Groups restricts the scope in tokens an agent gets on behalf of a user (token
	// exchange) to users in at least one of these groups. Empty: every user. Tokens
	// an agent gets as itself are not affected.
	Groups []string `json:"groups,omitempty"`
}

// AllowsUser reports whether a user in groups may hold the scope.
func (sc Scope) AllowsUser(groups []string) bool {
	if len(sc.Groups) == 0 {
		return true
	}
	for _, g := range sc.Groups {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// HasScope reports whether the server defines the scope name.
func (s Server) HasScope(name string) bool {
	_, ok := s.Scope(name)
	return ok
}

// Scope returns the definition of the scope name.
func (s Server) Scope(name string) (Scope, bool) {
	for _, sc := range s.Scopes {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scope{}, false
}

// Store keeps resource servers. Audiences are unique (ErrConflict).
type Store interface {
	CreateResourceServer(ctx context.Context, s Server) error
	GetResourceServer(ctx context.Context, id string) (Server, error)
	GetResourceServerByAudience(ctx context.Context, audience string) (Server, error)
	ListResourceServers(ctx context.Context, limit int, cursor string) ([]Server, string, error)
	UpdateResourceServer(ctx context.Context, id string, update func(*Server) error) (Server, error)
	DeleteResourceServer(ctx context.Context, id string) error
	// EnsureResourceServer creates s or, if its ID exists, resets its audience and scopes.
	EnsureResourceServer(ctx context.Context, s Server) error
}
