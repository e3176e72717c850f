package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/agentguard/agentguard/internal/session"
)

// Authorization codes and refresh token families (session.CodeStore, session.RefreshStore).

const codeColumns = `hash, client_id, user_id, sid, redirect_uri, code_challenge, scope, audience, nonce, auth_time,
	created_at, expires_at, used_at, access_jti, access_expires_at, family_id`

func scanCode(r interface{ Scan(...any) error }) (session.Code, error) {
	var c session.Code
	var authTime, created, expires, used, accessExp int64
	err := r.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.SID, &c.RedirectURI, &c.CodeChallenge, &c.Scope, &c.Audience, &c.Nonce, &authTime,
		&created, &expires, &used, &c.AccessJTI, &accessExp, &c.FamilyID)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt, c.AccessExpiresAt = fromMicros(authTime), fromMicros(created), fromMicros(expires), fromMicros(used), fromMicros(accessExp)
	return c, mapErr(err)
}

func (s *Store) CreateCode(ctx context.Context, c session.Code) error {
	return s.exec(ctx, false, `INSERT INTO authorization_codes (`+codeColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
		c.Hash, c.ClientID, c.UserID, c.SID, c.RedirectURI, c.CodeChallenge, c.Scope, c.Audience, c.Nonce, micros(c.AuthTime),
		micros(c.CreatedAt), micros(c.ExpiresAt), micros(c.UsedAt), c.AccessJTI, micros(c.AccessExpiresAt), c.FamilyID)
}

func (s *Store) GetCode(ctx context.Context, hash string) (session.Code, error) {
	return scanCode(s.read.QueryRowContext(ctx, `SELECT `+codeColumns+` FROM authorization_codes WHERE hash = $1`, hash))
}

func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time, accessJTI string, accessExpiresAt time.Time, family *session.RefreshFamily, first *session.RefreshToken) error {
	reused := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		familyID := ""
		if family != nil {
			familyID = family.ID
		}
		res, err := tx.ExecContext(ctx, `UPDATE authorization_codes SET used_at = $2, access_jti = $3, access_expires_at = $4, family_id = $5
			WHERE hash = $1 AND used_at = 0`, hash, micros(now), accessJTI, micros(accessExpiresAt), familyID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if family == nil {
				return nil
			}
			if err := insertFamily(ctx, tx, *family); err != nil {
				return err
			}
			return insertRefreshToken(ctx, tx, *first)
		}
		c, err := scanCode(tx.QueryRowContext(ctx, `SELECT `+codeColumns+` FROM authorization_codes WHERE hash = $1`, hash))
		if err != nil {
			return err
		}
		// Presented again: revoke what the first redemption got (RFC 6749 §4.1.2).
		reused = true
		if c.AccessJTI != "" {
			if err := revokeJTI(ctx, tx, c.AccessJTI, c.AccessExpiresAt); err != nil {
				return err
			}
		}
		if c.FamilyID != "" {
			return revokeFamily(ctx, tx, c.FamilyID, "its authorization code was presented again", now)
		}
		return nil
	})
	if err == nil && reused {
		return session.ErrReused
	}
	return mapErr(err)
}

func revokeJTI(ctx context.Context, tx *sql.Tx, jti string, until time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, micros(until))
	return err
}

// revokeFamily marks a family revoked (keeping the first reason) and revokes every
// access token issued from it that may still be valid.
func revokeFamily(ctx context.Context, tx *sql.Tx, familyID, reason string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at = 0`,
		familyID, micros(now), reason); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at)
		SELECT access_jti, access_expires_at FROM refresh_tokens WHERE family_id = $1 AND access_jti <> '' AND access_expires_at > $2
		ON CONFLICT (jti) DO NOTHING`, familyID, micros(now))
	return err
}

const familyColumns = `id, client_id, user_id, sid, scope, audience, auth_time, created_at, expires_at, revoked_at, revoked_reason`

func insertFamily(ctx context.Context, tx *sql.Tx, f session.RefreshFamily) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (`+familyColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		f.ID, f.ClientID, f.UserID, f.SID, f.Scope, f.Audience, micros(f.AuthTime), micros(f.CreatedAt), micros(f.ExpiresAt), micros(f.RevokedAt), f.RevokedReason)
	return err
}

const refreshColumns = `hash, family_id, created_at, expires_at, used_at, access_jti, access_expires_at`

func insertRefreshToken(ctx context.Context, tx *sql.Tx, t session.RefreshToken) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		t.Hash, t.FamilyID, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.UsedAt), t.AccessJTI, micros(t.AccessExpiresAt))
	return err
}

func (s *Store) GetRefreshToken(ctx context.Context, hash string) (session.RefreshToken, session.RefreshFamily, error) {
	var t session.RefreshToken
	var f session.RefreshFamily
	var tc, te, tu, tae, fa, fc, fe, fr int64
	err := s.read.QueryRowContext(ctx, `SELECT t.hash, t.family_id, t.created_at, t.expires_at, t.used_at, t.access_jti, t.access_expires_at,
			f.id, f.client_id, f.user_id, f.sid, f.scope, f.audience, f.auth_time, f.created_at, f.expires_at, f.revoked_at, f.revoked_reason
		FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = $1`, hash).Scan(
		&t.Hash, &t.FamilyID, &tc, &te, &tu, &t.AccessJTI, &tae,
		&f.ID, &f.ClientID, &f.UserID, &f.SID, &f.Scope, &f.Audience, &fa, &fc, &fe, &fr, &f.RevokedReason)
	if err != nil {
		return t, f, mapErr(err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt, t.AccessExpiresAt = fromMicros(tc), fromMicros(te), fromMicros(tu), fromMicros(tae)
	f.AuthTime, f.CreatedAt, f.ExpiresAt, f.RevokedAt = fromMicros(fa), fromMicros(fc), fromMicros(fe), fromMicros(fr)
	return t, f, nil
}

func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, next session.RefreshToken) error {
	var outcome error
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at = 0
			AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id AND f.revoked_at = 0)`, oldHash, micros(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return insertRefreshToken(ctx, tx, next)
		}
		var familyID string
		var used, revoked int64
		err = tx.QueryRowContext(ctx, `SELECT t.family_id, t.used_at, f.revoked_at FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
			WHERE t.hash = $1`, oldHash).Scan(&familyID, &used, &revoked)
		if err != nil {
			return err
		}
		if revoked != 0 {
			outcome = session.ErrRevoked
			return nil
		}
		// Rotated by someone else in the meantime: two holders of one token.
		outcome = session.ErrReused
		return revokeFamily(ctx, tx, familyID, "a spent refresh token was presented again", now)
	})
	if err != nil {
		return mapErr(err)
	}
	return outcome
}

func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID, reason string, now time.Time) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM refresh_families WHERE id = $1`, familyID).Scan(&one); err != nil {
			return err
		}
		return revokeFamily(ctx, tx, familyID, reason, now)
	}))
}

func (s *Store) RevokeSessionRefreshFamilies(ctx context.Context, sid, reason string, now time.Time) (int, error) {
	if sid == "" {
		return 0, errors.New("sqlstore: RevokeSessionRefreshFamilies needs a session id")
	}
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM refresh_families WHERE sid = $1 AND revoked_at = 0`, sid)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := revokeFamily(ctx, tx, id, reason, now); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, mapErr(err)
}

// GarbageCollectUserTokens deletes codes whose tokens have expired, refresh token
// families past their absolute expiry (with their tokens), and expired pending
// sign-ins and sessions. Spent codes and refresh tokens are kept until then: a
// replay must still be recognised, to revoke what was issued.
func (s *Store) GarbageCollectUserTokens(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM authorization_codes WHERE expires_at < $1 AND access_expires_at < $1`,
		`DELETE FROM refresh_families WHERE expires_at < $1`,
		`DELETE FROM login_requests WHERE expires_at < $1`,
		`DELETE FROM sessions WHERE expires_at < $1`,
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
