package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentguard/agentguard/internal/store"
)

// VerifyBatch is how many events verify reads at a time.
const VerifyBatch = 1000

// Report is the result of Verify (contract: /api/v1/audit/verify).
type Report struct {
	OK bool `json:"ok"`
	// Events is how many events were checked (all of them when OK).
	Events int64 `json:"events"`
	// BrokenAt is the seq of the first event that does not check out.
	BrokenAt int64  `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Checkpoint is the seq of the signed retention checkpoint verify started
	// after, when old events have been deleted.
	Checkpoint int64 `json:"checkpoint,omitempty"`
	Head       int64 `json:"head"`
}

// Verifier walks the chain. Key opens the checkpoint key; it may be nil when
// retention never ran (a checkpoint then fails verification).
type Verifier struct {
	Store Store
	Key   func(ctx context.Context) ([]byte, error)
}

// Verify walks the chain in seq order from the latest checkpoint (or seq 1) to
// the head read at the start, recomputing each hash and checking each link. It
// reports the first event that breaks the chain. Events appended while it runs
// are not checked. If retention deleted events while it ran (a newer checkpoint
// appeared), it starts again, at most three times.
func (v *Verifier) Verify(ctx context.Context) (Report, error) {
	for attempt := 0; ; attempt++ {
		r, err := v.verify(ctx)
		if err != nil || r.OK || attempt == 2 {
			return r, err
		}
		cp, err := v.Store.LatestAuditCheckpoint(ctx)
		if err != nil || cp.Seq == r.Checkpoint {
			return r, nil
		}
	}
}

func (v *Verifier) verify(ctx context.Context) (Report, error) {
	headSeq, headHash, err := v.Store.AuditHead(ctx)
	if err != nil {
		return Report{}, err
	}
	r := Report{Head: headSeq}
	prevSeq, prevHash := int64(0), ""
	cp, err := v.Store.LatestAuditCheckpoint(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return Report{}, err
	default:
		r.Checkpoint = cp.Seq
		if v.Key == nil {
			return r.broken(cp.Seq, "checkpoint signature cannot be checked: no checkpoint key"), nil
		}
		key, err := v.Key(ctx)
		if err != nil {
			return Report{}, fmt.Errorf("open the audit checkpoint key: %w", err)
		}
		if !checkSignature(key, cp) {
			return r.broken(cp.Seq, "checkpoint signature mismatch"), nil
		}
		prevSeq, prevHash = cp.Seq, cp.Hash
	}
	for prevSeq < headSeq {
		events, err := v.Store.AuditEventsAfter(ctx, prevSeq, VerifyBatch)
		if err != nil {
			return Report{}, err
		}
		if len(events) == 0 {
			return r.broken(prevSeq+1, fmt.Sprintf("missing seq %d to %d (the head is %d)", prevSeq+1, headSeq, headSeq)), nil
		}
		for _, e := range events {
			if e.Seq != prevSeq+1 {
				return r.broken(prevSeq+1, fmt.Sprintf("missing seq %d", prevSeq+1)), nil
			}
			if e.Seq > headSeq {
				break
			}
			if e.PrevHash != prevHash {
				return r.broken(e.Seq, "prev_hash mismatch"), nil
			}
			if HashEvent(e) != e.Hash {
				return r.broken(e.Seq, "hash mismatch"), nil
			}
			prevSeq, prevHash = e.Seq, e.Hash
			r.Events++
		}
	}
	if prevSeq != headSeq || prevHash != headHash {
		return r.broken(headSeq, "head mismatch: the last event is not the recorded chain head"), nil
	}
	r.OK = true
	return r, nil
}

func (r Report) broken(seq int64, reason string) Report {
	r.OK, r.BrokenAt, r.Reason = false, seq, reason
	return r
}
