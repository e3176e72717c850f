package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/token"
)

// sealedColumn is one column of KMS-sealed values: the table, its text primary
// key, the sealed column, and the associated data each value was sealed with
// (derived from the key, as the domain package does when it seals).
type sealedColumn struct {
	table, key, sealed string
	aad                func(key string) []byte
}

// sealedColumns lists every sealed column in the schema. A table that stores a new
// kind of sealed credential adds one entry here; KMS rotation (RewrapSealed) and
// `agentguard kms status` (SealedKeyIDs) then cover it.
var sealedColumns = []sealedColumn{
	{table: "signing_keys", key: "kid", sealed: "private_sealed", aad: token.SigningKeyAAD},
	{table: "api_key_versions", key: "id", sealed: "value_sealed", aad: credential.APIKeyAAD},
	{table: "oauth_providers", key: "credential_id", sealed: "client_secret_sealed", aad: credential.ClientSecretAAD},
	{table: "oauth_tokens", key: "cache_key", sealed: "token_sealed", aad: credential.TokenAAD},
	{table: "identity_providers", key: "id", sealed: "secret_sealed", aad: idp.SecretAAD},
}

// rewrapBatch bounds how many rows one read holds in memory.
const rewrapBatch = 200

type sealedRow struct {
	key    string
	sealed []byte
}

// sealedBatch reads up to rewrapBatch rows of c with keys after cursor. The rows
// are read fully before any update, so SQLite's single write connection is free.
func (s *Store) sealedBatch(ctx context.Context, c sealedColumn, cursor string) ([]sealedRow, error) {
	rows, err := s.write.QueryContext(ctx, `SELECT `+c.key+`, `+c.sealed+` FROM `+c.table+` WHERE `+c.key+` > $1 ORDER BY `+c.key+` LIMIT $2`, cursor, rewrapBatch)
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", c.table, c.sealed, err)
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.key, &r.sealed); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", c.table, c.sealed, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// eachSealed calls fn for every sealed value, table by table, in key order.
func (s *Store) eachSealed(ctx context.Context, fn func(c sealedColumn, r sealedRow) error) error {
	for _, c := range sealedColumns {
		cursor := ""
		for {
			batch, err := s.sealedBatch(ctx, c, cursor)
			if err != nil {
				return err
			}
			for _, r := range batch {
				if err := fn(c, r); err != nil {
					return err
				}
			}
			if len(batch) < rewrapBatch {
				break
			}
			cursor = batch[len(batch)-1].key
		}
	}
	return nil
}

// RewrapSealed re-wraps the data key of every sealed value under env's current KMS
// key, without decrypting the values themselves, and reports how many rows it
// changed. Each row is updated only if it still holds the bytes that were read
// (a row changed meanwhile was sealed anew, so it already uses a current key).
// Values that do not open are left as they are and reported in the error, by
// table and key, after every other row has been re-wrapped.
func (s *Store) RewrapSealed(ctx context.Context, env *kms.Envelope) (int, error) {
	var changed int
	var failed []string
	err := s.eachSealed(ctx, func(c sealedColumn, r sealedRow) error {
		out, ok, err := env.Rewrap(ctx, r.sealed, c.aad(r.key))
		if errors.Is(err, kms.ErrOpen) {
			failed = append(failed, c.table+" "+c.key+"="+r.key)
			return nil
		}
		if err != nil {
			return fmt.Errorf("re-wrap %s %s=%s: %w", c.table, c.key, r.key, err)
		}
		if !ok {
			return nil
		}
		res, err := s.execResult(ctx, `UPDATE `+c.table+` SET `+c.sealed+` = $1 WHERE `+c.key+` = $2 AND `+c.sealed+` = $3`, out, r.key, r.sealed)
		if err != nil {
			return fmt.Errorf("re-wrap %s %s=%s: %w", c.table, c.key, r.key, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			changed++
		}
		return nil
	})
	if err != nil {
		return changed, err
	}
	if len(failed) > 0 {
		const show = 10
		total, more := len(failed), ""
		if total > show {
			failed, more = failed[:show], fmt.Sprintf(" and %d more", total-show)
		}
		return changed, fmt.Errorf("%d sealed values did not open and were left as they were (their KMS key is missing from the keyring, or the row was tampered with): %s%s",
			total, strings.Join(failed, ", "), more)
	}
	return changed, nil
}

// SealedKeyIDs counts the sealed values wrapped under each KMS key id; values whose
// header does not parse are counted under "".
func (s *Store) SealedKeyIDs(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	err := s.eachSealed(ctx, func(_ sealedColumn, r sealedRow) error {
		id, err := kms.KeyIDOf(r.sealed)
		if err != nil {
			id = ""
		}
		counts[id]++
		return nil
	})
	return counts, err
}
