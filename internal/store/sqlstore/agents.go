package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/grant"
)

const agentColumns = `id, name, description, owner, type, access_identity, audience, status, orphaned, created_at, updated_at`

// ownerKey is how owners are matched against users (lowercase, trimmed).
func ownerKey(owner string) string { return strings.ToLower(strings.TrimSpace(owner)) }

func scanAgent(row interface{ Scan(...any) error }) (agent.Agent, error) {
	var a agent.Agent
	var created, updated int64
	var orphaned int
	err := row.Scan(&a.ID, &a.Name, &a.Description, &a.Owner, &a.Type, &a.AccessIdentity, &a.Audience, &a.Status, &orphaned, &created, &updated)
	a.CreatedAt, a.UpdatedAt, a.Orphaned = fromMicros(created), fromMicros(updated), orphaned != 0
	return a, mapErr(err)
}

func (s *Store) CreateAgent(ctx context.Context, a agent.Agent, grants ...grant.Grant) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (`+agentColumns+`, owner_key) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
			a.ID, a.Name, a.Description, a.Owner, a.Type, a.AccessIdentity, a.Audience, a.Status, boolInt(a.Orphaned), micros(a.CreatedAt), micros(a.UpdatedAt), ownerKey(a.Owner)); err != nil {
			return err
		}
		for _, g := range grants {
			if err := insertGrant(ctx, tx, g); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) GetAgent(ctx context.Context, id string) (agent.Agent, error) {
	return scanAgent(s.read.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM agents WHERE id = $1`, id))
}

func (s *Store) GetAgentByAudience(ctx context.Context, audience string) (agent.Agent, error) {
	return scanAgent(s.read.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM agents WHERE audience = $1`, audience))
}

func (s *Store) ListAgents(ctx context.Context, f agent.Filter, limit int, cursor string) ([]agent.Agent, string, error) {
	limit = page(limit)
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+itoa(len(args))))
	}
	if cursor != "" {
		add("id > ?", cursor)
	}
	if f.Owner != "" {
		add("owner = ?", f.Owner)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Orphaned {
		add("orphaned = ?", 1)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if f.Query != "" {
		add(`(LOWER(name) LIKE ? ESCAPE '\' OR LOWER(description) LIKE ? ESCAPE '\' OR id LIKE ? ESCAPE '\')`, "%"+likeEscape(strings.ToLower(f.Query))+"%")
	}
	q := `SELECT ` + agentColumns + ` FROM agents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	q += ` ORDER BY id LIMIT $` + itoa(len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []agent.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	return nextPage(out, limit, func(a agent.Agent) string { return a.ID })
}

func (s *Store) UpdateAgent(ctx context.Context, id string, update func(*agent.Agent) error) (agent.Agent, error) {
	var a agent.Agent
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = scanAgent(tx.QueryRowContext(ctx, `SELECT `+agentColumns+` FROM agents WHERE id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		if err := update(&a); err != nil {
			return err
		}
		a.ID = id // the key is not the update's to change; the row stays where it is
		_, err = tx.ExecContext(ctx, `UPDATE agents SET name=$2, description=$3, owner=$4, type=$5, access_identity=$6, audience=$7, status=$8, updated_at=$9, orphaned=$10, owner_key=$11 WHERE id=$1`,
			a.ID, a.Name, a.Description, a.Owner, a.Type, a.AccessIdentity, a.Audience, a.Status, micros(a.UpdatedAt), boolInt(a.Orphaned), ownerKey(a.Owner))
		return err
	})
	return a, mapErr(err)
}

func (s *Store) DeleteAgent(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM agents WHERE id = $1`, id)
}

func (s *Store) CreateSecret(ctx context.Context, sec agent.Secret) error {
	return s.exec(ctx, false, `INSERT INTO agent_secrets (id, agent_id, hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		sec.ID, sec.AgentID, sec.Hash, micros(sec.CreatedAt), micros(sec.ExpiresAt))
}

func (s *Store) ListSecrets(ctx context.Context, agentID string) ([]agent.Secret, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, agent_id, hash, created_at, expires_at FROM agent_secrets WHERE agent_id = $1 ORDER BY id`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (agent.Secret, error) {
		var sec agent.Secret
		var created, expires int64
		err := r.Scan(&sec.ID, &sec.AgentID, &sec.Hash, &created, &expires)
		sec.CreatedAt, sec.ExpiresAt = fromMicros(created), fromMicros(expires)
		return sec, err
	})
}

func (s *Store) DeleteSecret(ctx context.Context, agentID, id string) error {
	return s.exec(ctx, true, `DELETE FROM agent_secrets WHERE agent_id = $1 AND id = $2`, agentID, id)
}

func (s *Store) CreateKey(ctx context.Context, k agent.Key) error {
	return s.exec(ctx, false, `INSERT INTO agent_keys (agent_id, kid, alg, jwk, created_at) VALUES ($1,$2,$3,$4,$5)`,
		k.AgentID, k.KID, k.Alg, string(k.JWK), micros(k.CreatedAt))
}

func (s *Store) ListKeys(ctx context.Context, agentID string) ([]agent.Key, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT agent_id, kid, alg, jwk, created_at FROM agent_keys WHERE agent_id = $1 ORDER BY created_at, kid`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (agent.Key, error) {
		var k agent.Key
		var jwk string
		var created int64
		err := r.Scan(&k.AgentID, &k.KID, &k.Alg, &jwk, &created)
		k.JWK, k.CreatedAt = []byte(jwk), fromMicros(created)
		return k, err
	})
}

func (s *Store) DeleteKey(ctx context.Context, agentID, kid string) error {
	return s.exec(ctx, true, `DELETE FROM agent_keys WHERE agent_id = $1 AND kid = $2`, agentID, kid)
}

const federationColumns = `id, agent_id, issuer, subject, jwks_uri, audience, created_at`

func scanFederation(r interface{ Scan(...any) error }) (agent.Federation, error) {
	var f agent.Federation
	var created int64
	err := r.Scan(&f.ID, &f.AgentID, &f.Issuer, &f.Subject, &f.JWKSURI, &f.Audience, &created)
	f.CreatedAt = fromMicros(created)
	return f, mapErr(err)
}

func (s *Store) CreateFederation(ctx context.Context, f agent.Federation) error {
	return s.exec(ctx, false, `INSERT INTO agent_federations (`+federationColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		f.ID, f.AgentID, f.Issuer, f.Subject, f.JWKSURI, f.Audience, micros(f.CreatedAt))
}

func (s *Store) ListFederations(ctx context.Context, agentID string) ([]agent.Federation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+federationColumns+` FROM agent_federations WHERE agent_id = $1 ORDER BY id`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (agent.Federation, error) { return scanFederation(r) })
}

func (s *Store) DeleteFederation(ctx context.Context, agentID, id string) error {
	return s.exec(ctx, true, `DELETE FROM agent_federations WHERE agent_id = $1 AND id = $2`, agentID, id)
}

func (s *Store) FindFederation(ctx context.Context, issuer, subject string) (agent.Federation, error) {
	return scanFederation(s.read.QueryRowContext(ctx, `SELECT `+federationColumns+` FROM agent_federations WHERE issuer = $1 AND subject = $2`, issuer, subject))
}

// forUpdate locks the selected row in PostgreSQL; SQLite's write transaction
// (BEGIN IMMEDIATE) already holds the database lock.
func (s *Store) forUpdate() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// nextPage trims the extra row fetched to detect another page and returns its cursor.
func nextPage[T any](items []T, limit int, key func(T) string) ([]T, string, error) {
	if len(items) > limit {
		items = items[:limit]
		return items, key(items[limit-1]), nil
	}
	return items, "", nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func itoa(i int) string { return strconv.Itoa(i) }
