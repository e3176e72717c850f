package admin

import (
	"context"
	"time"
)

// Token is a stored admin bearer token (its hash only).
type Token struct {
	ID        string
	Hash      string
	CreatedAt time.Time
}

// Store keeps admin tokens.
type Store interface {
	CreateAdminToken(ctx context.Context, t Token) error
	CountAdminTokens(ctx context.Context) (int, error)
	AdminTokenByHash(ctx context.Context, hash string) (Token, error)
}
