package audit

import (
	"context"
	"time"
)

// Filter selects events for search. Empty fields match everything. BeforeSeq (the
// cursor) returns only events older than that seq.
type Filter struct {
	AgentID      string
	User         string
	ClientID     string
	Category     string
	Action       string
	ResourceType string
	Resource     string
	Decision     string
	From, To     time.Time // From inclusive, To exclusive; zero = open
	BeforeSeq    int64
	Limit        int
}

// Store is the audit log's storage (sqlstore implements it).
type Store interface {
	// AppendAuditEvents chains events after the current head (see Chain) and
	// makes them durable, serialized with every other writer of the same
	// database; the reads below see them once it has returned. It fills Seq,
	// PrevHash and Hash.
	AppendAuditEvents(ctx context.Context, events []Event) error
	// SearchAuditEvents returns up to f.Limit events matching f, newest first.
	SearchAuditEvents(ctx context.Context, f Filter) ([]Event, error)
	// AuditEventsAfter returns up to limit events with seq > after, in seq order.
	AuditEventsAfter(ctx context.Context, after int64, limit int) ([]Event, error)
	// AuditHead returns the last event's seq and hash (0, "" for an empty log).
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	// LatestAuditCheckpoint returns the newest checkpoint, or store.ErrNotFound.
	LatestAuditCheckpoint(ctx context.Context) (Checkpoint, error)
	// TrimAuditEvents deletes up to batch of the oldest events, all older than
	// cutoff, and in the same transaction stores the checkpoint that sign makes
	// for the last one deleted. It returns how many it deleted (0: done).
	TrimAuditEvents(ctx context.Context, cutoff time.Time, batch int, sign func(Checkpoint) Checkpoint) (int, error)
	// AuditKey returns the sealed checkpoint key, storing newSealed first if no
	// key exists yet (so concurrent processes agree on one key).
	AuditKey(ctx context.Context, newSealed []byte, now time.Time) ([]byte, error)
}
