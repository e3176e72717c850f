package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/agentguard/agentguard/internal/client"
)

const clientColumns = `id, name, type, redirect_uris, post_logout_redirect_uris, created_at, updated_at`

func scanClient(r interface{ Scan(...any) error }) (client.Client, error) {
	var c client.Client
	var redirects, logouts string
	var created, updated int64
	if err := r.Scan(&c.ID, &c.Name, &c.Type, &redirects, &logouts, &created, &updated); err != nil {
		return c, mapErr(err)
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(redirects), &c.RedirectURIs); err != nil {
		return c, err
	}
	return c, json.Unmarshal([]byte(logouts), &c.PostLogoutRedirectURIs)
}

func stringsJSON(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Store) CreateClient(ctx context.Context, c client.Client, secrets ...client.Secret) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			c.ID, c.Name, c.Type, stringsJSON(c.RedirectURIs), stringsJSON(c.PostLogoutRedirectURIs), micros(c.CreatedAt), micros(c.UpdatedAt)); err != nil {
			return err
		}
		for _, sec := range secrets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
				sec.ID, sec.ClientID, sec.Hash, micros(sec.CreatedAt), micros(sec.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) GetClient(ctx context.Context, id string) (client.Client, error) {
	return scanClient(s.read.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
}

// ClientExists reports whether a client has the id (token exchange checks that the
// user's client is still registered, on every exchange).
func (s *Store) ClientExists(ctx context.Context, id string) (bool, error) {
	return cached(ctx, s.cache, &s.cache.clients, id, same, func() (bool, error) { return s.clientExists(ctx, id) })
}

func (s *Store) clientExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM clients WHERE id = $1`, id).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) ListClients(ctx context.Context, limit int, cursor string) ([]client.Client, string, error) {
	limit = page(limit)
	rows, err := s.read.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id > $1 ORDER BY id LIMIT $2`, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	items, err := collect(rows, func(r *sql.Rows) (client.Client, error) { return scanClient(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(items, limit, func(c client.Client) string { return c.ID })
}

func (s *Store) UpdateClient(ctx context.Context, id string, update func(*client.Client) error) (client.Client, error) {
	var c client.Client
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if c, err = scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		if err := update(&c); err != nil {
			return err
		}
		c.ID = id
		_, err = tx.ExecContext(ctx, `UPDATE clients SET name=$2, type=$3, redirect_uris=$4, post_logout_redirect_uris=$5, updated_at=$6 WHERE id=$1`,
			c.ID, c.Name, c.Type, stringsJSON(c.RedirectURIs), stringsJSON(c.PostLogoutRedirectURIs), micros(c.UpdatedAt))
		return err
	})
	return c, mapErr(err)
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM clients WHERE id = $1`, id)
}

func (s *Store) CreateClientSecret(ctx context.Context, sec client.Secret) error {
	return s.exec(ctx, false, `INSERT INTO client_secrets (id, client_id, hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		sec.ID, sec.ClientID, sec.Hash, micros(sec.CreatedAt), micros(sec.ExpiresAt))
}

func (s *Store) ListClientSecrets(ctx context.Context, clientID string) ([]client.Secret, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, client_id, hash, created_at, expires_at FROM client_secrets WHERE client_id = $1 ORDER BY id`, clientID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (client.Secret, error) {
		var sec client.Secret
		var created, expires int64
		err := r.Scan(&sec.ID, &sec.ClientID, &sec.Hash, &created, &expires)
		sec.CreatedAt, sec.ExpiresAt = fromMicros(created), fromMicros(expires)
		return sec, err
	})
}

func (s *Store) DeleteClientSecret(ctx context.Context, clientID, id string) error {
	return s.exec(ctx, true, `DELETE FROM client_secrets WHERE client_id = $1 AND id = $2`, clientID, id)
}
