package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/agentguard/agentguard/internal/token"
)

func (s *Store) CreateSigningKey(ctx context.Context, k token.SigningKey) error {
	return s.exec(ctx, false, `INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at, drop_after) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		k.KID, k.Alg, string(k.PublicJWK), k.PrivateSealed, micros(k.CreatedAt), micros(k.RetiredAt), micros(k.DropAfter))
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]token.SigningKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT kid, alg, public_jwk, private_sealed, created_at, retired_at, drop_after FROM signing_keys ORDER BY created_at DESC, kid DESC`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (token.SigningKey, error) {
		var k token.SigningKey
		var pub string
		var created, retired, drop int64
		err := r.Scan(&k.KID, &k.Alg, &pub, &k.PrivateSealed, &created, &retired, &drop)
		k.PublicJWK = []byte(pub)
		k.CreatedAt, k.RetiredAt, k.DropAfter = fromMicros(created), fromMicros(retired), fromMicros(drop)
		return k, err
	})
}

func (s *Store) RetireSigningKeys(ctx context.Context, keepKID string, at, dropAfter time.Time) error {
	return s.exec(ctx, false, `UPDATE signing_keys SET retired_at = $2, drop_after = $3 WHERE kid <> $1 AND retired_at = 0`,
		keepKID, micros(at), micros(dropAfter))
}

func (s *Store) DeleteDroppedSigningKeys(ctx context.Context, now time.Time) (int, error) {
	res, err := s.execResult(ctx, `DELETE FROM signing_keys WHERE drop_after <> 0 AND drop_after < $1`, micros(now))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// UpdateSigningKeySealed replaces a key's sealed private part (KMS rotation).
func (s *Store) UpdateSigningKeySealed(ctx context.Context, kid string, sealed []byte) error {
	return s.exec(ctx, true, `UPDATE signing_keys SET private_sealed = $2 WHERE kid = $1`, kid, sealed)
}

func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.exec(ctx, false, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, micros(expiresAt))
}

func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return cached(ctx, s.cache, &s.cache.revoked, jti, same, func() (bool, error) { return s.isRevoked(ctx, jti) })
}

func (s *Store) isRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM revoked_tokens WHERE jti = $1`, jti).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	return err == nil, err
}

// UseOnce records a one-time key (client assertion jti) until expiresAt.
func (s *Store) UseOnce(ctx context.Context, key string, expiresAt time.Time) error {
	return s.exec(ctx, false, `INSERT INTO used_once (key, expires_at) VALUES ($1, $2)`, key, micros(expiresAt))
}

// GarbageCollect deletes expired revocations and one-time keys.
func (s *Store) GarbageCollect(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM revoked_tokens WHERE expires_at < $1`,
		`DELETE FROM used_once WHERE expires_at < $1`,
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
