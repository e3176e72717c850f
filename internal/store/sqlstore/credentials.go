package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/store"
)

// querier is what both the read pool and a transaction offer.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const credentialColumns = `c.id, c.identifier, c.name, c.description, c.version, c.last_version, c.created_at, c.updated_at`

// ---- API keys ----

func scanAPIKey(r interface{ Scan(...any) error }) (credential.APIKey, error) {
	var k credential.APIKey
	var created, updated int64
	err := r.Scan(&k.ID, &k.Identifier, &k.Name, &k.Description, &k.Version, &k.LastVersion, &created, &updated)
	k.CreatedAt, k.UpdatedAt = fromMicros(created), fromMicros(updated)
	return k, mapErr(err)
}

func (s *Store) CreateAPIKey(ctx context.Context, k credential.APIKey, first credential.KeyVersion) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, identifier, type, name, description, version, last_version, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$6,$7,$8)`,
			k.ID, k.Identifier, credential.TypeAPIKey, k.Name, k.Description, first.Version, micros(k.CreatedAt), micros(k.UpdatedAt)); err != nil {
			return err
		}
		return insertKeyVersion(ctx, tx, k.ID, first)
	}))
}

func insertKeyVersion(ctx context.Context, tx *sql.Tx, credentialID string, v credential.KeyVersion) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_key_versions (id, credential_id, version, value_sealed, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6)`,
		credential.VersionID(credentialID, v.Version), credentialID, v.Version, v.Sealed, micros(v.CreatedAt), micros(v.ExpiresAt))
	return err
}

func (s *Store) GetAPIKey(ctx context.Context, identifier string, now time.Time) (credential.APIKey, error) {
	return s.getAPIKey(ctx, s.read, identifier, now, "")
}

// getAPIKey reads a key and its live versions through q (the pool or a transaction).
func (s *Store) getAPIKey(ctx context.Context, q querier, identifier string, now time.Time, lock string) (credential.APIKey, error) {
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials c WHERE c.identifier = $1 AND c.type = 'api_key'`+lock, identifier))
	if err != nil {
		return k, err
	}
	rows, err := q.QueryContext(ctx, `SELECT version, value_sealed, created_at, expires_at FROM api_key_versions WHERE credential_id = $1 AND (expires_at = 0 OR expires_at > $2) ORDER BY version DESC`, k.ID, micros(now))
	if err != nil {
		return k, err
	}
	k.Versions, err = collect(rows, func(r *sql.Rows) (credential.KeyVersion, error) {
		var v credential.KeyVersion
		var created, expires int64
		err := r.Scan(&v.Version, &v.Sealed, &created, &expires)
		v.CreatedAt, v.ExpiresAt = fromMicros(created), fromMicros(expires)
		return v, err
	})
	// The current version first, then the kept ones newest first.
	slices.SortStableFunc(k.Versions, func(a, b credential.KeyVersion) int {
		switch {
		case a.Version == k.Version:
			return -1
		case b.Version == k.Version:
			return 1
		}
		return 0
	})
	return k, err
}

func (s *Store) ListAPIKeys(ctx context.Context, limit int, cursor string) ([]credential.APIKey, string, error) {
	limit = page(limit)
	rows, err := s.read.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials c WHERE c.type = 'api_key' AND c.identifier > $1 ORDER BY c.identifier LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := collect(rows, func(r *sql.Rows) (credential.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(out, limit, func(k credential.APIKey) string { return k.Identifier })
}

func (s *Store) UpdateAPIKey(ctx context.Context, identifier string, update func(*credential.APIKey) error) (credential.APIKey, error) {
	var k credential.APIKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if k, err = s.getAPIKey(ctx, tx, identifier, time.Time{}, s.forUpdate()); err != nil {
			return err
		}
		id := k.ID
		if err := update(&k); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE credentials SET name = $2, description = $3, updated_at = $4 WHERE id = $1`, id, k.Name, k.Description, micros(k.UpdatedAt))
		return err
	})
	return k, mapErr(err)
}

func (s *Store) RotateAPIKey(ctx context.Context, identifier string, now, keepPreviousUntil time.Time, seal func(versionID string, version int64) ([]byte, error)) (credential.APIKey, error) {
	var k credential.APIKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := scanAPIKey(tx.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials c WHERE c.identifier = $1 AND c.type = 'api_key'`+s.forUpdate(), identifier))
		if err != nil {
			return err
		}
		next := cur.LastVersion + 1
		sealed, err := seal(credential.VersionID(cur.ID, next), next)
		if err != nil {
			return err
		}
		if keepPreviousUntil.IsZero() {
			_, err = tx.ExecContext(ctx, `DELETE FROM api_key_versions WHERE credential_id = $1 AND version = $2`, cur.ID, cur.Version)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE api_key_versions SET expires_at = $3 WHERE credential_id = $1 AND version = $2`, cur.ID, cur.Version, micros(keepPreviousUntil))
		}
		if err != nil {
			return err
		}
		if err := insertKeyVersion(ctx, tx, cur.ID, credential.KeyVersion{Version: next, Sealed: sealed, CreatedAt: now}); err != nil {
			return err
		}
		// Expired previous versions go now; of the others, the newest MaxKeptVersions stay.
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_key_versions WHERE credential_id = $1 AND expires_at <> 0 AND (expires_at <= $2 OR version NOT IN (
				SELECT version FROM api_key_versions WHERE credential_id = $1 AND expires_at <> 0 ORDER BY version DESC LIMIT $3))`,
			cur.ID, micros(now), credential.MaxKeptVersions); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET version = $2, last_version = $2, updated_at = $3 WHERE id = $1`, cur.ID, next, micros(now)); err != nil {
			return err
		}
		k, err = s.getAPIKey(ctx, tx, identifier, now, "")
		return err
	})
	return k, mapErr(err)
}

func (s *Store) RollbackAPIKey(ctx context.Context, identifier string, version int64, now time.Time) (credential.APIKey, error) {
	var k credential.APIKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := scanAPIKey(tx.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials c WHERE c.identifier = $1 AND c.type = 'api_key'`+s.forUpdate(), identifier))
		if err != nil {
			return err
		}
		var target int64
		q := `SELECT version FROM api_key_versions WHERE credential_id = $1 AND expires_at > $2 ORDER BY version DESC LIMIT 1`
		args := []any{cur.ID, micros(now)}
		if version > 0 {
			q = `SELECT version FROM api_key_versions WHERE credential_id = $1 AND expires_at > $2 AND version = $3`
			args = append(args, version)
		}
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&target); errors.Is(err, sql.ErrNoRows) {
			return credential.ErrNoPrevious
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_key_versions WHERE credential_id = $1 AND version = $2`, cur.ID, cur.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_key_versions SET expires_at = 0 WHERE credential_id = $1 AND version = $2`, cur.ID, target); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET version = $2, updated_at = $3 WHERE id = $1`, cur.ID, target, micros(now)); err != nil {
			return err
		}
		k, err = s.getAPIKey(ctx, tx, identifier, now, "")
		return err
	})
	return k, mapErr(err)
}

// ---- OAuth providers ----

const providerColumns = credentialColumns + `, p.client_id, p.client_secret_sealed, p.token_endpoint, p.default_scopes, p.auth_method, p.token_params, p.preset, p.preset_params, p.last_error, p.last_error_at`

const providerFrom = ` FROM credentials c JOIN oauth_providers p ON p.credential_id = c.id`

func scanProvider(r interface{ Scan(...any) error }) (credential.OAuthProvider, error) {
	var p credential.OAuthProvider
	var created, updated, errAt, last int64
	var scopes, params, presetParams string
	err := r.Scan(&p.ID, &p.Identifier, &p.Name, &p.Description, &p.Generation, &last, &created, &updated,
		&p.ClientID, &p.ClientSecretSealed, &p.TokenEndpoint, &scopes, &p.AuthMethod, &params, &p.Preset, &presetParams, &p.LastError, &errAt)
	if err != nil {
		return p, mapErr(err)
	}
	p.CreatedAt, p.UpdatedAt, p.LastErrorAt = fromMicros(created), fromMicros(updated), fromMicros(errAt)
	p.DefaultScopes = splitList(scopes)
	if p.TokenParams, err = decodeParams(params); err == nil {
		p.PresetParams, err = decodeParams(presetParams)
	}
	return p, err
}

func splitList(s string) []string {
	if out := strings.Fields(s); out != nil {
		return out
	}
	return []string{}
}

func decodeParams(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored parameters are not a JSON object: %w", err)
	}
	return m, nil
}

func encodeParams(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always encodes
	return string(b)
}

func (s *Store) CreateOAuthProvider(ctx context.Context, p credential.OAuthProvider) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, identifier, type, name, description, version, last_version, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$6,$7,$8)`,
			p.ID, p.Identifier, credential.TypeOAuthProvider, p.Name, p.Description, p.Generation, micros(p.CreatedAt), micros(p.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_providers (credential_id, client_id, client_secret_sealed, token_endpoint, default_scopes, auth_method, token_params, preset, preset_params) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
			p.ID, p.ClientID, p.ClientSecretSealed, p.TokenEndpoint, strings.Join(p.DefaultScopes, " "), p.AuthMethod, encodeParams(p.TokenParams), p.Preset, encodeParams(p.PresetParams))
		return err
	}))
}

func (s *Store) GetOAuthProvider(ctx context.Context, identifier string) (credential.OAuthProvider, error) {
	return scanProvider(s.read.QueryRowContext(ctx, `SELECT `+providerColumns+providerFrom+` WHERE c.identifier = $1`, identifier))
}

func (s *Store) ListOAuthProviders(ctx context.Context, limit int, cursor string) ([]credential.OAuthProvider, string, error) {
	limit = page(limit)
	rows, err := s.read.QueryContext(ctx, `SELECT `+providerColumns+providerFrom+` WHERE c.identifier > $1 ORDER BY c.identifier LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := collect(rows, func(r *sql.Rows) (credential.OAuthProvider, error) { return scanProvider(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(out, limit, func(p credential.OAuthProvider) string { return p.Identifier })
}

func (s *Store) UpdateOAuthProvider(ctx context.Context, identifier string, update func(*credential.OAuthProvider) error) (credential.OAuthProvider, error) {
	var p credential.OAuthProvider
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if p, err = scanProvider(tx.QueryRowContext(ctx, `SELECT `+providerColumns+providerFrom+` WHERE c.identifier = $1`+s.forUpdate(), identifier)); err != nil {
			return err
		}
		id, gen := p.ID, p.Generation
		if err := update(&p); err != nil {
			return err
		}
		p.ID, p.Identifier = id, identifier
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET name = $2, description = $3, version = $4, last_version = $4, updated_at = $5 WHERE id = $1`,
			id, p.Name, p.Description, p.Generation, micros(p.UpdatedAt)); err != nil {
			return err
		}
		if p.Generation != gen {
			// Tokens got with the old secret or endpoint are never handed out again.
			if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE credential_id = $1`, id); err != nil {
				return err
			}
			p.LastError, p.LastErrorAt = "", time.Time{}
		}
		_, err = tx.ExecContext(ctx, `UPDATE oauth_providers SET client_id = $2, client_secret_sealed = $3, token_endpoint = $4, default_scopes = $5, auth_method = $6, token_params = $7, preset = $8, preset_params = $9, last_error = $10, last_error_at = $11 WHERE credential_id = $1`,
			id, p.ClientID, p.ClientSecretSealed, p.TokenEndpoint, strings.Join(p.DefaultScopes, " "), p.AuthMethod, encodeParams(p.TokenParams), p.Preset, encodeParams(p.PresetParams), p.LastError, micros(p.LastErrorAt))
		return err
	})
	return p, mapErr(err)
}

func (s *Store) SetOAuthProviderError(ctx context.Context, id string, generation int64, code string, at time.Time) error {
	return s.exec(ctx, false, `UPDATE oauth_providers SET last_error = $3, last_error_at = $4
		WHERE credential_id = $1 AND EXISTS (SELECT 1 FROM credentials c WHERE c.id = $1 AND c.version = $2)`, id, generation, code, micros(at))
}

// ---- both kinds ----

func (s *Store) DeleteCredential(ctx context.Context, typ, identifier string, force bool) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM credentials WHERE identifier = $1 AND type = $2`+s.forUpdate(), identifier, typ).Scan(&id); err != nil {
			return err
		}
		if !force {
			users, err := credentialUsers(ctx, tx, id)
			if err != nil {
				return err
			}
			if len(users) > 0 {
				return &credential.InUseError{Agents: users}
			}
		}
		// Versions, the provider row, cached tokens and (with force) nodes cascade.
		_, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE id = $1`, id)
		return err
	}))
}

func (s *Store) CredentialUsers(ctx context.Context, credentialID string) ([]string, error) {
	return credentialUsers(ctx, s.read, credentialID)
}

func credentialUsers(ctx context.Context, q querier, credentialID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT agent_id FROM outbound_nodes WHERE credential_id = $1 ORDER BY agent_id`, credentialID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}

// ---- outbound nodes ----

const (
	nodeColumns = `n.id, n.agent_id, n.node_type, n.credential_id, c.type, c.identifier, c.name, n.upstream_url, n.header_template, n.created_at, n.updated_at`
	nodeFrom    = ` FROM outbound_nodes n JOIN credentials c ON c.id = n.credential_id`
	nodeSelect  = `SELECT ` + nodeColumns + nodeFrom
)

func scanNode(r interface{ Scan(...any) error }, extra ...any) (credential.Node, error) {
	var n credential.Node
	var created, updated int64
	err := r.Scan(append([]any{&n.ID, &n.AgentID, &n.NodeType, &n.CredentialID, &n.CredentialType, &n.Identifier, &n.CredentialName,
		&n.UpstreamURL, &n.HeaderTemplate, &created, &updated}, extra...)...)
	n.CreatedAt, n.UpdatedAt = fromMicros(created), fromMicros(updated)
	return n, mapErr(err)
}

func (s *Store) AddOutboundNode(ctx context.Context, n credential.Node) (credential.Node, error) {
	var out credential.Node
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var credID string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM credentials WHERE identifier = $1 AND type = $2`, n.Identifier, n.CredentialType).Scan(&credID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbound_nodes (id, agent_id, credential_id, node_type, upstream_url, header_template, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			n.ID, n.AgentID, credID, n.NodeType, n.UpstreamURL, n.HeaderTemplate, micros(n.CreatedAt), micros(n.UpdatedAt)); err != nil {
			return err
		}
		var err error
		out, err = scanNode(tx.QueryRowContext(ctx, nodeSelect+` WHERE n.id = $1`, n.ID))
		return err
	})
	return out, mapErr(err)
}

func (s *Store) ListOutboundNodes(ctx context.Context, agentID string) ([]credential.Node, error) {
	rows, err := s.read.QueryContext(ctx, nodeSelect+` WHERE n.agent_id = $1 ORDER BY c.identifier`, agentID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (credential.Node, error) { return scanNode(r) })
}

func (s *Store) UpdateOutboundNode(ctx context.Context, agentID, identifier string, update func(*credential.Node) error) (credential.Node, error) {
	var n credential.Node
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if n, err = scanNode(tx.QueryRowContext(ctx, nodeSelect+` WHERE n.agent_id = $1 AND c.identifier = $2`+s.forUpdate(), agentID, identifier)); err != nil {
			return err
		}
		id := n.ID
		if err := update(&n); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbound_nodes SET node_type = $2, upstream_url = $3, header_template = $4, updated_at = $5 WHERE id = $1`,
			id, n.NodeType, n.UpstreamURL, n.HeaderTemplate, micros(n.UpdatedAt))
		n.ID = id
		return err
	})
	return n, mapErr(err)
}

func (s *Store) DeleteOutboundNode(ctx context.Context, agentID, identifier string) error {
	return s.exec(ctx, true, `DELETE FROM outbound_nodes WHERE agent_id = $1 AND credential_id IN (SELECT id FROM credentials WHERE identifier = $2)`, agentID, identifier)
}

// accessSelect reads a node with everything needed to use its credential, in one
// query: the current API key version, or the OAuth provider.
const accessSelect = `SELECT ` + nodeColumns + `, a.status, c.version, v.value_sealed, v.created_at,
		p.client_id, p.client_secret_sealed, p.token_endpoint, p.default_scopes, p.auth_method, p.token_params, p.last_error, p.last_error_at` + nodeFrom + `
	JOIN agents a ON a.id = n.agent_id
	LEFT JOIN api_key_versions v ON c.type = 'api_key' AND v.credential_id = c.id AND v.version = c.version
	LEFT JOIN oauth_providers p ON p.credential_id = c.id
	WHERE n.agent_id = $1 AND c.identifier = $2`

func (s *Store) OutboundAccess(ctx context.Context, agentID, identifier string) (credential.Access, error) {
	var (
		a                                                credential.Access
		agentStatus                                      string
		version                                          int64
		valueSealed, secretSealed                        []byte
		valueCreated, errAt                              sql.NullInt64
		clientID, endpoint, scopes, method, params, lerr sql.NullString
	)
	n, err := scanNode(s.read.QueryRowContext(ctx, accessSelect, agentID, identifier), &agentStatus, &version, &valueSealed, &valueCreated,
		&clientID, &secretSealed, &endpoint, &scopes, &method, &params, &lerr, &errAt)
	if err != nil {
		return a, err
	}
	a.Node, a.AgentActive = n, agentStatus == agent.StatusActive
	switch n.CredentialType {
	case credential.TypeAPIKey:
		if valueSealed == nil {
			return a, fmt.Errorf("api key %s has no stored version %d", n.Identifier, version)
		}
		a.APIKey = &credential.KeyVersion{Version: version, Sealed: valueSealed, CreatedAt: fromMicros(valueCreated.Int64)}
	case credential.TypeOAuthProvider:
		if !clientID.Valid {
			return a, fmt.Errorf("oauth provider %s has no provider row", n.Identifier)
		}
		p := &credential.OAuthProvider{
			ID: n.CredentialID, Identifier: n.Identifier, Name: n.CredentialName, ClientID: clientID.String,
			ClientSecretSealed: secretSealed, TokenEndpoint: endpoint.String, DefaultScopes: splitList(scopes.String),
			AuthMethod: method.String, Generation: version, LastError: lerr.String, LastErrorAt: fromMicros(errAt.Int64),
		}
		if p.TokenParams, err = decodeParams(params.String); err != nil {
			return a, err
		}
		a.Provider = p
	default:
		return a, fmt.Errorf("credential %s has the unknown type %q", n.Identifier, n.CredentialType)
	}
	return a, nil
}

// ---- upstream token cache ----

func (s *Store) GetOAuthToken(ctx context.Context, key string) (credential.CachedToken, error) {
	var t credential.CachedToken
	var expires, created int64
	err := s.read.QueryRowContext(ctx, `SELECT cache_key, credential_id, token_sealed, expires_at, created_at FROM oauth_tokens WHERE cache_key = $1`, key).
		Scan(&t.Key, &t.CredentialID, &t.Sealed, &expires, &created)
	t.ExpiresAt, t.CreatedAt = fromMicros(expires), fromMicros(created)
	return t, mapErr(err)
}

func (s *Store) PutOAuthToken(ctx context.Context, t credential.CachedToken) error {
	err := s.exec(ctx, false, `INSERT INTO oauth_tokens (cache_key, credential_id, token_sealed, expires_at, created_at) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (cache_key) DO UPDATE SET token_sealed = excluded.token_sealed, expires_at = excluded.expires_at, created_at = excluded.created_at`,
		t.Key, t.CredentialID, t.Sealed, micros(t.ExpiresAt), micros(t.CreatedAt))
	if errors.Is(err, store.ErrNotFound) {
		return nil // the provider was deleted meanwhile: nothing to cache
	}
	return err
}

func (s *Store) DeleteOAuthToken(ctx context.Context, key string, createdAt time.Time) error {
	return s.exec(ctx, false, `DELETE FROM oauth_tokens WHERE cache_key = $1 AND created_at = $2`, key, micros(createdAt))
}

func (s *Store) DeleteExpiredCredentialData(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM oauth_tokens WHERE expires_at <= $1`,
		`DELETE FROM api_key_versions WHERE expires_at <> 0 AND expires_at <= $1`,
	} {
		res, err := s.execResult(ctx, q, micros(now))
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
