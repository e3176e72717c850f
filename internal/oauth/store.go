package oauth

import (
	"context"
	"time"

	"github.com/agentguard/agentguard/internal/client"
)

// ReplayStore remembers one-time values (client assertion jti) until they expire, in
// storage every replica shares, so an assertion used on one replica is refused on all.
type ReplayStore interface {
	// UseOnce records key; it returns store.ErrConflict if key was already used.
	UseOnce(ctx context.Context, key string, expiresAt time.Time) error
}

// Clients is what the authorization server reads about clients (the apps users
// sign in through).
type Clients interface {
	GetClient(ctx context.Context, id string) (client.Client, error)
	ListClientSecrets(ctx context.Context, clientID string) ([]client.Secret, error)
	ClientExists(ctx context.Context, id string) (bool, error)
}

// Sessions tells whether a browser sign-in session is still alive; the sign-in
// package implements it.
type Sessions interface {
	// SessionAlive reports whether the session sid exists and has timed out neither
	// idle nor absolute, and counts the call as activity.
	SessionAlive(ctx context.Context, sid string) (bool, error)
}
