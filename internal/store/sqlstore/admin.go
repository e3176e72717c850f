package sqlstore

import (
	"context"

	"github.com/agentguard/agentguard/internal/admin"
)

func (s *Store) CreateAdminToken(ctx context.Context, t admin.Token) error {
	return s.exec(ctx, false, `INSERT INTO admin_tokens (id, hash, created_at) VALUES ($1,$2,$3)`, t.ID, t.Hash, micros(t.CreatedAt))
}

func (s *Store) CountAdminTokens(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM admin_tokens`).Scan(&n)
	return n, err
}

func (s *Store) AdminTokenByHash(ctx context.Context, hash string) (admin.Token, error) {
	var t admin.Token
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT id, hash, created_at FROM admin_tokens WHERE hash = $1`, hash).Scan(&t.ID, &t.Hash, &created)
	t.CreatedAt = fromMicros(created)
	return t, mapErr(err)
}
