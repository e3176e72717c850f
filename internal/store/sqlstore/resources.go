package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/agentguard/agentguard/internal/resource"
)

const resourceColumns = `id, name, audience, scopes, token_lifetime_seconds, created_at, updated_at`

func scanResource(r interface{ Scan(...any) error }) (resource.Server, error) {
	var rs resource.Server
	var scopes string
	var lifetime, created, updated int64
	if err := r.Scan(&rs.ID, &rs.Name, &rs.Audience, &scopes, &lifetime, &created, &updated); err != nil {
		return rs, mapErr(err)
	}
	rs.TokenLifetime = time.Duration(lifetime) * time.Second
	rs.CreatedAt, rs.UpdatedAt = fromMicros(created), fromMicros(updated)
	return rs, json.Unmarshal([]byte(scopes), &rs.Scopes)
}

func scopesJSON(sc []resource.Scope) string {
	if sc == nil {
		sc = []resource.Scope{}
	}
	b, _ := json.Marshal(sc)
	return string(b)
}

func (s *Store) CreateResourceServer(ctx context.Context, rs resource.Server) error {
	return s.exec(ctx, false, `INSERT INTO resource_servers (`+resourceColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		rs.ID, rs.Name, rs.Audience, scopesJSON(rs.Scopes), int64(rs.TokenLifetime/time.Second), micros(rs.CreatedAt), micros(rs.UpdatedAt))
}

func (s *Store) EnsureResourceServer(ctx context.Context, rs resource.Server) error {
	return s.exec(ctx, false, `INSERT INTO resource_servers (`+resourceColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, audience = excluded.audience, scopes = excluded.scopes, updated_at = excluded.updated_at`,
		rs.ID, rs.Name, rs.Audience, scopesJSON(rs.Scopes), int64(rs.TokenLifetime/time.Second), micros(rs.CreatedAt), micros(rs.UpdatedAt))
}

func (s *Store) GetResourceServer(ctx context.Context, id string) (resource.Server, error) {
	return scanResource(s.read.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resource_servers WHERE id = $1`, id))
}

func (s *Store) GetResourceServerByAudience(ctx context.Context, audience string) (resource.Server, error) {
	return scanResource(s.read.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resource_servers WHERE audience = $1`, audience))
}

func (s *Store) ListResourceServers(ctx context.Context, limit int, cursor string) ([]resource.Server, string, error) {
	limit = page(limit)
	rows, err := s.read.QueryContext(ctx, `SELECT `+resourceColumns+` FROM resource_servers WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	items, err := collect(rows, func(r *sql.Rows) (resource.Server, error) { return scanResource(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(items, limit, func(r resource.Server) string { return r.ID })
}

func (s *Store) UpdateResourceServer(ctx context.Context, id string, update func(*resource.Server) error) (resource.Server, error) {
	var rs resource.Server
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if rs, err = scanResource(tx.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resource_servers WHERE id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		if err := update(&rs); err != nil {
			return err
		}
		rs.ID = id // the key is not the update's to change; the row stays where it is
		_, err = tx.ExecContext(ctx, `UPDATE resource_servers SET name=$2, audience=$3, scopes=$4, token_lifetime_seconds=$5, updated_at=$6 WHERE id=$1`,
			rs.ID, rs.Name, rs.Audience, scopesJSON(rs.Scopes), int64(rs.TokenLifetime/time.Second), micros(rs.UpdatedAt))
		return err
	})
	return rs, mapErr(err)
}

func (s *Store) DeleteResourceServer(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM resource_servers WHERE id = $1`, id)
}
