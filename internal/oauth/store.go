package oauth

import (
	"context"
	"time"
)

// ReplayStore remembers one-time values (client assertion jti) until they expire, in
// storage every replica shares, so an assertion used on one replica is refused on all.
type ReplayStore interface {
	// UseOnce records key; it returns store.ErrConflict if key was already used.
	UseOnce(ctx context.Context, key string, expiresAt time.Time) error
}
