package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/agentguard/agentguard/internal/session"
)

// Browser sign-in sessions and pending sign-ins (session.Store).

func (s *Store) CreateLoginRequest(ctx context.Context, l session.LoginRequest) error {
	return s.exec(ctx, false, `INSERT INTO login_requests (id, client_id, request, csrf_hash, browser_hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		l.ID, l.ClientID, string(l.Request), l.CSRFHash, l.BrowserHash, micros(l.CreatedAt), micros(l.ExpiresAt))
}

func (s *Store) GetLoginRequest(ctx context.Context, id string) (session.LoginRequest, error) {
	var l session.LoginRequest
	var req string
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT id, client_id, request, csrf_hash, browser_hash, created_at, expires_at FROM login_requests WHERE id = $1`, id).
		Scan(&l.ID, &l.ClientID, &req, &l.CSRFHash, &l.BrowserHash, &created, &expires)
	l.Request, l.CreatedAt, l.ExpiresAt = []byte(req), fromMicros(created), fromMicros(expires)
	return l, mapErr(err)
}

func (s *Store) DeleteLoginRequest(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM login_requests WHERE id = $1`, id)
}

const sessionColumns = `id_hash, sid, user_id, auth_time, created_at, last_seen, expires_at`

func scanSession(r interface{ Scan(...any) error }) (session.Session, error) {
	var ss session.Session
	var auth, created, seen, expires int64
	err := r.Scan(&ss.IDHash, &ss.SID, &ss.UserID, &auth, &created, &seen, &expires)
	ss.AuthTime, ss.CreatedAt, ss.LastSeen, ss.ExpiresAt = fromMicros(auth), fromMicros(created), fromMicros(seen), fromMicros(expires)
	return ss, mapErr(err)
}

func (s *Store) CreateSession(ctx context.Context, ss session.Session, replaces string) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if replaces != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, replaces); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			ss.IDHash, ss.SID, ss.UserID, micros(ss.AuthTime), micros(ss.CreatedAt), micros(ss.LastSeen), micros(ss.ExpiresAt))
		return err
	}))
}

func (s *Store) GetSession(ctx context.Context, idHash string) (session.Session, error) {
	return scanSession(s.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, idHash))
}

func (s *Store) GetSessionBySID(ctx context.Context, sid string) (session.Session, error) {
	return scanSession(s.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE sid = $1`, sid))
}

func (s *Store) TouchSession(ctx context.Context, sid string, now time.Time) error {
	return s.exec(ctx, false, `UPDATE sessions SET last_seen = $2 WHERE sid = $1 AND last_seen < $2`, sid, micros(now))
}

func (s *Store) DeleteSession(ctx context.Context, sid string) error {
	return s.exec(ctx, true, `DELETE FROM sessions WHERE sid = $1`, sid)
}
