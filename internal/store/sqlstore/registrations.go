package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/agentguard/agentguard/internal/registration"
)

const registrationColumns = `id, status, client_name, client_type, auth_method, redirect_uris, metadata, secret_hash, source_ip, created_at, decided_at, decided_by, reason`

func scanRegistration(r interface{ Scan(...any) error }) (registration.Registration, error) {
	var g registration.Registration
	var redirects, metadata string
	var created, decided int64
	if err := r.Scan(&g.ID, &g.Status, &g.ClientName, &g.ClientType, &g.AuthMethod, &redirects, &metadata, &g.SecretHash,
		&g.SourceIP, &created, &decided, &g.DecidedBy, &g.Reason); err != nil {
		return g, mapErr(err)
	}
	g.CreatedAt, g.DecidedAt = fromMicros(created), fromMicros(decided)
	if err := json.Unmarshal([]byte(redirects), &g.RedirectURIs); err != nil {
		return g, err
	}
	return g, json.Unmarshal([]byte(metadata), &g.Metadata)
}

func registrationArgs(g registration.Registration) []any {
	md, _ := json.Marshal(g.Metadata)
	return []any{g.ID, g.Status, g.ClientName, g.ClientType, g.AuthMethod, stringsJSON(g.RedirectURIs), string(md), g.SecretHash,
		g.SourceIP, micros(g.CreatedAt), micros(g.DecidedAt), g.DecidedBy, g.Reason}
}

func (s *Store) CreateRegistration(ctx context.Context, g registration.Registration) error {
	return s.exec(ctx, false, `INSERT INTO client_registrations (`+registrationColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
		registrationArgs(g)...)
}

func (s *Store) GetRegistration(ctx context.Context, id string) (registration.Registration, error) {
	return scanRegistration(s.read.QueryRowContext(ctx, `SELECT `+registrationColumns+` FROM client_registrations WHERE id = $1`, id))
}

func (s *Store) ListRegistrations(ctx context.Context, status string, limit int, cursor string) ([]registration.Registration, string, error) {
	limit = page(limit)
	rows, err := s.read.QueryContext(ctx, `SELECT `+registrationColumns+` FROM client_registrations
		WHERE ($1 = '' OR status = $1) AND id > $2 ORDER BY id LIMIT $3`, status, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	items, err := collect(rows, func(r *sql.Rows) (registration.Registration, error) { return scanRegistration(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(items, limit, func(g registration.Registration) string { return g.ID })
}

func (s *Store) UpdateRegistration(ctx context.Context, id string, update func(*registration.Registration) error) (registration.Registration, error) {
	var g registration.Registration
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if g, err = scanRegistration(tx.QueryRowContext(ctx, `SELECT `+registrationColumns+` FROM client_registrations WHERE id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		if err := update(&g); err != nil {
			return err
		}
		g.ID = id
		args := registrationArgs(g)
		_, err = tx.ExecContext(ctx, `UPDATE client_registrations SET status=$2, client_name=$3, client_type=$4, auth_method=$5,
			redirect_uris=$6, metadata=$7, secret_hash=$8, source_ip=$9, created_at=$10, decided_at=$11, decided_by=$12, reason=$13 WHERE id=$1`, args...)
		return err
	})
	return g, mapErr(err)
}

func (s *Store) CountRegistrations(ctx context.Context, status string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM client_registrations WHERE $1 = '' OR status = $1`, status).Scan(&n)
	return n, mapErr(err)
}

func (s *Store) DeleteRegistrationsBefore(ctx context.Context, status string, t time.Time) (int64, error) {
	res, err := s.execResult(ctx, `DELETE FROM client_registrations WHERE status = $1 AND created_at < $2`, status, micros(t))
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

func (s *Store) DeleteRegistration(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM client_registrations WHERE id = $1`, id)
}
