package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/grant"
	"github.com/agentguard/agentguard/internal/resource"
	"github.com/agentguard/agentguard/internal/store"
)

// The token endpoint's hot reads, each one query instead of two: every token request
// authenticates a client and resolves a target, and on SQLite each query is a
// noticeable part of a request's CPU.

// prefixed qualifies a column list with a table alias: "id, name" → "a.id, a.name".
func prefixed(alias, columns string) string {
	return alias + "." + strings.ReplaceAll(columns, ", ", ", "+alias+".")
}

// The queries, built once: the read pool keys its prepared statements by text.
var (
	agentWithSecretsQuery = `SELECT ` + prefixed("a", agentColumns) + `, COALESCE(s.id, ''), COALESCE(s.hash, ''), COALESCE(s.created_at, 0), COALESCE(s.expires_at, 0)
		FROM agents a LEFT JOIN agent_secrets s ON s.agent_id = a.id WHERE a.id = $1 ORDER BY s.id`
	resourceAndGrantQuery = `SELECT ` + prefixed("r", resourceColumns) + `, g.id, g.scopes, g.created_at
		FROM resource_servers r LEFT JOIN grants g ON g.resource_server_id = r.id AND g.agent_id = $2 WHERE r.audience = $1`
)

// withExtra scans a row's leading columns with scan and the trailing ones into extra.
type withExtra struct {
	r     interface{ Scan(...any) error }
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.r.Scan(append(dest, w.extra...)...) }

// GetAgentWithSecrets reads an agent and its client secrets (store.ErrNotFound if
// there is no such agent).
func (s *Store) GetAgentWithSecrets(ctx context.Context, id string) (agent.Agent, []agent.Secret, error) {
	v, err := cached(ctx, s.cache, &s.cache.agents, id, agentWithSecrets.clone, func() (agentWithSecrets, error) {
		a, secrets, err := s.getAgentWithSecrets(ctx, id)
		return agentWithSecrets{a, secrets}, err
	})
	return v.agent, v.secrets, err
}

func (s *Store) getAgentWithSecrets(ctx context.Context, id string) (agent.Agent, []agent.Secret, error) {
	rows, err := s.read.QueryContext(ctx, agentWithSecretsQuery, id)
	if err != nil {
		return agent.Agent{}, nil, err
	}
	defer rows.Close()
	var a agent.Agent
	var secrets []agent.Secret
	found := false
	for rows.Next() {
		var sec agent.Secret
		var created, expires int64
		if a, err = scanAgent(withExtra{rows, []any{&sec.ID, &sec.Hash, &created, &expires}}); err != nil {
			return agent.Agent{}, nil, err
		}
		found = true
		if sec.ID != "" {
			sec.AgentID, sec.CreatedAt, sec.ExpiresAt = a.ID, fromMicros(created), fromMicros(expires)
			secrets = append(secrets, sec)
		}
	}
	if err := rows.Err(); err != nil {
		return agent.Agent{}, nil, err
	}
	if !found {
		return agent.Agent{}, nil, store.ErrNotFound
	}
	return a, secrets, nil
}

// ResourceServerAndGrant reads the resource server with the audience and the agent's
// grant on it: store.ErrNotFound if no resource server has the audience; a nil grant
// if the agent has none there.
func (s *Store) ResourceServerAndGrant(ctx context.Context, audience, agentID string) (resource.Server, *grant.Grant, error) {
	v, err := cached(ctx, s.cache, &s.cache.targets, [2]string{audience, agentID}, resourceAndGrant.clone, func() (resourceAndGrant, error) {
		rs, g, err := s.resourceServerAndGrant(ctx, audience, agentID)
		return resourceAndGrant{rs, g}, err
	})
	return v.server, v.grant, err
}

func (s *Store) resourceServerAndGrant(ctx context.Context, audience, agentID string) (resource.Server, *grant.Grant, error) {
	var gid, scopes sql.NullString
	var gcreated sql.NullInt64
	rs, err := scanResource(withExtra{s.read.QueryRowContext(ctx, resourceAndGrantQuery, audience, agentID), []any{&gid, &scopes, &gcreated}})
	if err != nil || !gid.Valid {
		return rs, nil, err
	}
	g := &grant.Grant{ID: gid.String, AgentID: agentID, ResourceServerID: rs.ID, Audience: rs.Audience,
		Scopes: grant.SplitScopes(scopes.String), CreatedAt: fromMicros(gcreated.Int64)}
	if g.Scopes == nil {
		g.Scopes = []string{}
	}
	return rs, g, nil
}
