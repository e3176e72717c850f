package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/agentguard/agentguard/internal/policy"
)

const inboundColumns = `id, agent_id, client_id, description, users, group_names, policy, created_at`

func scanInbound(r interface{ Scan(...any) error }) (policy.Rule, error) {
	var x policy.Rule
	var users, groups string
	var created int64
	if err := r.Scan(&x.ID, &x.AgentID, &x.ClientID, &x.Description, &users, &groups, &x.Policy, &created); err != nil {
		return x, mapErr(err)
	}
	x.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(users), &x.Users); err != nil {
		return x, err
	}
	if err := json.Unmarshal([]byte(groups), &x.Groups); err != nil {
		return x, err
	}
	if x.Users == nil {
		x.Users = []string{}
	}
	if x.Groups == nil {
		x.Groups = []string{}
	}
	return x, nil
}

func jsonList(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// bumpInbound moves the agent's rule version on, in the transaction of the change.
func bumpInbound(ctx context.Context, tx *sql.Tx, agentID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO inbound_versions (agent_id, version) VALUES ($1, 1)
		ON CONFLICT (agent_id) DO UPDATE SET version = inbound_versions.version + 1`, agentID)
	return err
}

func (s *Store) CreateInboundRule(ctx context.Context, r policy.Rule) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbound_rules (`+inboundColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			r.ID, r.AgentID, r.ClientID, r.Description, jsonList(r.Users), jsonList(r.Groups), r.Policy, micros(r.CreatedAt)); err != nil {
			return err
		}
		return bumpInbound(ctx, tx, r.AgentID)
	}))
}

func (s *Store) ListInboundRules(ctx context.Context, agentID string) ([]policy.Rule, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+inboundColumns+` FROM inbound_rules WHERE agent_id = $1 ORDER BY id`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (policy.Rule, error) { return scanInbound(r) })
}

func (s *Store) CountInboundRules(ctx context.Context, agentID string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM inbound_rules WHERE agent_id = $1`, agentID).Scan(&n)
	return n, err
}

func (s *Store) DeleteInboundRule(ctx context.Context, agentID, id string) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM inbound_rules WHERE agent_id = $1 AND id = $2`, agentID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		return bumpInbound(ctx, tx, agentID)
	}))
}

func (s *Store) InboundVersion(ctx context.Context, agentID string) (int64, error) {
	return cached(ctx, s.cache, &s.cache.inbound, agentID, same, func() (int64, error) { return s.inboundVersion(ctx, agentID) })
}

func (s *Store) inboundVersion(ctx context.Context, agentID string) (int64, error) {
	var v int64
	err := s.read.QueryRowContext(ctx, `SELECT version FROM inbound_versions WHERE agent_id = $1`, agentID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}
