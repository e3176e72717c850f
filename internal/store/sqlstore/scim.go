package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/agentguard/agentguard/internal/scim"
)

func scanSCIMToken(r interface{ Scan(...any) error }) (scim.Token, error) {
	var t scim.Token
	var created, expires int64
	if err := r.Scan(&t.ID, &t.Name, &t.Hash, &created, &expires); err != nil {
		return t, mapErr(err)
	}
	t.CreatedAt = fromMicros(created)
	if expires != 0 {
		e := fromMicros(expires)
		t.ExpiresAt = &e
	}
	return t, nil
}

func (s *Store) CreateSCIMToken(ctx context.Context, t scim.Token) error {
	var exp time.Time
	if t.ExpiresAt != nil {
		exp = *t.ExpiresAt
	}
	return s.exec(ctx, false, `INSERT INTO scim_tokens (id, name, hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		t.ID, t.Name, t.Hash, micros(t.CreatedAt), micros(exp))
}

func (s *Store) ListSCIMTokens(ctx context.Context) ([]scim.Token, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, name, hash, created_at, expires_at FROM scim_tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (scim.Token, error) { return scanSCIMToken(r) })
}

func (s *Store) DeleteSCIMToken(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM scim_tokens WHERE id = $1`, id)
}

func (s *Store) SCIMTokenByHash(ctx context.Context, hash string) (scim.Token, error) {
	return scanSCIMToken(s.read.QueryRowContext(ctx, `SELECT id, name, hash, created_at, expires_at FROM scim_tokens WHERE hash = $1`, hash))
}
