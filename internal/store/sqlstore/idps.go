package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/agentguard/agentguard/internal/idp"
)

// idpConfig is what the config column holds: the settings without secrets.
type idpConfig struct {
	OIDC      *idp.OIDCConfig `json:"oidc,omitempty"`
	LDAP      *idp.LDAPConfig `json:"ldap,omitempty"`
	SecretSet bool            `json:"secret_set"`
}

const idpColumns = `id, name, type, enabled, config, secret_sealed, created_at, updated_at`

func scanIDP(r interface{ Scan(...any) error }) (idp.Provider, []byte, error) {
	var p idp.Provider
	var enabled int
	var config string
	var sealed []byte
	var created, updated int64
	if err := r.Scan(&p.ID, &p.Name, &p.Type, &enabled, &config, &sealed, &created, &updated); err != nil {
		return p, nil, mapErr(err)
	}
	var c idpConfig
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return p, nil, err
	}
	p.Enabled, p.OIDC, p.LDAP, p.SecretSet = enabled != 0, c.OIDC, c.LDAP, c.SecretSet
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, sealed, nil
}

func idpConfigJSON(p idp.Provider) string {
	b, _ := json.Marshal(idpConfig{OIDC: p.OIDC, LDAP: p.LDAP, SecretSet: p.SecretSet})
	return string(b)
}

func (s *Store) CreateIdentityProvider(ctx context.Context, p idp.Provider, sealed []byte) error {
	return s.exec(ctx, false, `INSERT INTO identity_providers (`+idpColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
		p.ID, p.Name, p.Type, boolInt(p.Enabled), idpConfigJSON(p), sealed, micros(p.CreatedAt), micros(p.UpdatedAt))
}

func (s *Store) GetIdentityProvider(ctx context.Context, id string) (idp.Provider, []byte, error) {
	return scanIDP(s.read.QueryRowContext(ctx, `SELECT `+idpColumns+` FROM identity_providers WHERE id = $1`, id))
}

func (s *Store) ListIdentityProviders(ctx context.Context) ([]idp.Provider, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+idpColumns+` FROM identity_providers ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (idp.Provider, error) {
		p, _, err := scanIDP(r)
		return p, err
	})
}

func (s *Store) UpdateIdentityProvider(ctx context.Context, id string, update func(*idp.Provider, *[]byte) error) (idp.Provider, error) {
	var p idp.Provider
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		var err error
		if p, sealed, err = scanIDP(tx.QueryRowContext(ctx, `SELECT `+idpColumns+` FROM identity_providers WHERE id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		before := p
		if err := update(&p, &sealed); err != nil {
			return err
		}
		p.ID, p.Type, p.CreatedAt = before.ID, before.Type, before.CreatedAt
		_, err = tx.ExecContext(ctx, `UPDATE identity_providers SET name=$2, enabled=$3, config=$4, secret_sealed=$5, updated_at=$6 WHERE id=$1`,
			p.ID, p.Name, boolInt(p.Enabled), idpConfigJSON(p), sealed, micros(p.UpdatedAt))
		return err
	})
	return p, mapErr(err)
}

func (s *Store) DeleteIdentityProvider(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM identity_providers WHERE id = $1`, id)
}
