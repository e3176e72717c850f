package sqlstore

import (
	"context"
	"database/sql"

	"github.com/agentguard/agentguard/internal/grant"
)

const grantSelect = `SELECT g.id, g.agent_id, g.resource_server_id, r.audience, g.scopes, g.created_at
	FROM grants g JOIN resource_servers r ON r.id = g.resource_server_id`

func scanGrant(r interface{ Scan(...any) error }) (grant.Grant, error) {
	var g grant.Grant
	var scopes string
	var created int64
	err := r.Scan(&g.ID, &g.AgentID, &g.ResourceServerID, &g.Audience, &scopes, &created)
	g.Scopes, g.CreatedAt = grant.SplitScopes(scopes), fromMicros(created)
	if g.Scopes == nil {
		g.Scopes = []string{}
	}
	return g, mapErr(err)
}

func insertGrant(ctx context.Context, tx *sql.Tx, g grant.Grant) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO grants (id, agent_id, resource_server_id, scopes, created_at) VALUES ($1,$2,$3,$4,$5)`,
		g.ID, g.AgentID, g.ResourceServerID, grant.JoinScopes(g.Scopes), micros(g.CreatedAt))
	return err
}

func (s *Store) CreateGrant(ctx context.Context, g grant.Grant) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error { return insertGrant(ctx, tx, g) }))
}

func (s *Store) ListGrants(ctx context.Context, agentID string) ([]grant.Grant, error) {
	rows, err := s.read.QueryContext(ctx, grantSelect+` WHERE g.agent_id = $1 ORDER BY g.id`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (grant.Grant, error) { return scanGrant(r) })
}

func (s *Store) UpdateGrantScopes(ctx context.Context, agentID, id string, scopes []string) (grant.Grant, error) {
	if err := s.exec(ctx, true, `UPDATE grants SET scopes = $3 WHERE agent_id = $1 AND id = $2`, agentID, id, grant.JoinScopes(scopes)); err != nil {
		return grant.Grant{}, err
	}
	return scanGrant(s.write.QueryRowContext(ctx, grantSelect+` WHERE g.agent_id = $1 AND g.id = $2`, agentID, id))
}

func (s *Store) DeleteGrant(ctx context.Context, agentID, id string) error {
	return s.exec(ctx, true, `DELETE FROM grants WHERE agent_id = $1 AND id = $2`, agentID, id)
}

func (s *Store) GrantFor(ctx context.Context, agentID, audience string) (grant.Grant, error) {
	return scanGrant(s.read.QueryRowContext(ctx, grantSelect+` WHERE g.agent_id = $1 AND r.audience = $2`, agentID, audience))
}
