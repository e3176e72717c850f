package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Sealer is the KMS envelope (kms.Envelope) that protects the checkpoint key.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, sealed, aad []byte) ([]byte, error)
}

var keyAAD = []byte("agentguard:audit-checkpoint-key")

// DefaultTrimBatch is how many events one retention transaction deletes.
const DefaultTrimBatch = 5000

// Retention deletes events older than MaxAge in batches. Before each batch is
// deleted it stores a checkpoint (seq and hash of the last deleted event) signed
// with HMAC-SHA256 under a random key sealed by the KMS envelope, so verify can
// start after the deleted prefix and a forged checkpoint needs the KMS.
type Retention struct {
	Store    Store
	Envelope Sealer
	MaxAge   time.Duration
	Batch    int
	Now      func() time.Time

	mu  sync.Mutex
	key []byte
}

// Key returns the checkpoint key, creating and storing a sealed one on first use.
func (r *Retention) Key(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.key != nil {
		return r.key, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	sealed, err := r.Envelope.Seal(ctx, fresh, keyAAD)
	if err != nil {
		return nil, fmt.Errorf("seal the audit checkpoint key: %w", err)
	}
	stored, err := r.Store.AuditKey(ctx, sealed, r.now())
	if err != nil {
		return nil, fmt.Errorf("store the audit checkpoint key: %w", err)
	}
	key, err := r.Envelope.Open(ctx, stored, keyAAD)
	if err != nil {
		return nil, fmt.Errorf("open the audit checkpoint key: %w", err)
	}
	r.key = key
	return key, nil
}

func (r *Retention) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Trim deletes every event older than MaxAge (none when MaxAge is 0), batch by
// batch, and returns how many it deleted.
func (r *Retention) Trim(ctx context.Context) (int, error) {
	if r.MaxAge <= 0 {
		return 0, nil
	}
	key, err := r.Key(ctx)
	if err != nil {
		return 0, err
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultTrimBatch
	}
	now := r.now()
	cutoff := now.Add(-r.MaxAge)
	sign := func(c Checkpoint) Checkpoint {
		c.CreatedAt = now.UTC().Truncate(time.Microsecond)
		c.Signature = SignCheckpoint(key, c)
		return c
	}
	total := 0
	for {
		n, err := r.Store.TrimAuditEvents(ctx, cutoff, batch, sign)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete old audit events: %w", err)
		}
		if n == 0 {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Run trims every interval until ctx is done.
func (r *Retention) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := r.Trim(ctx); err != nil {
			slog.Warn("audit retention failed", "err", err)
		} else if n > 0 {
			slog.Info("deleted audit events past retention", "events", n, "retention", r.MaxAge.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
