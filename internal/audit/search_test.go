package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// A time range is searched as a seq range (binary search on seq, no time index),
// which is only right if times never go down along the chain. This writes events
// whose clock jumps back, checks the stored times were clamped to stay in order
// and the chain still verifies, and compares every time-range search with a
// brute-force filter of all events, at and around every boundary.
func TestTimeRangeSearchMatchesBruteForce(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			st := storetest.Open(t, d)
			ctx := context.Background()
			var in []audit.Event
			for i := range 40 {
				e := event(i)
				e.ID = fmt.Sprintf("evt_%d", i)
				if i%10 == 5 {
					e.Time = t0.Add(-time.Hour) // a clock that went back
				}
				in = append(in, e)
			}
			for start := 0; start < len(in); start += 7 {
				if err := st.AppendAuditEvents(ctx, in[start:min(start+7, len(in))]); err != nil {
					t.Fatal(err)
				}
			}
			all, err := st.AuditEventsAfter(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(all); i++ {
				if all[i].Time.Before(all[i-1].Time) {
					t.Fatalf("seq %d time %s is before seq %d time %s", all[i].Seq, all[i].Time, all[i-1].Seq, all[i-1].Time)
				}
			}
			if r := verify(t, st); !r.OK {
				t.Fatalf("verify after clamping = %+v", r)
			}
			sec := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
			for _, c := range []struct {
				name     string
				from, to time.Time
			}{
				{"from only, inside", sec(20), time.Time{}},
				{"from only, before everything", sec(-7200), time.Time{}},
				{"from only, after everything", sec(100), time.Time{}},
				{"to only, inside", time.Time{}, sec(13)},
				{"to only, before everything", time.Time{}, sec(-7200)},
				{"to only, after everything", time.Time{}, sec(100)},
				{"both, on clamped times", sec(4), sec(6)},
				{"both, one second", sec(30), sec(31)},
				{"both, empty inside", sec(30).Add(time.Millisecond), sec(31)},
				{"both, whole log", sec(-7200), sec(100)},
			} {
				t.Run(c.name, func(t *testing.T) {
					var want []int64
					for _, e := range slices.Backward(all) {
						if (c.from.IsZero() || !e.Time.Before(c.from)) && (c.to.IsZero() || e.Time.Before(c.to)) {
							want = append(want, e.Seq)
						}
					}
					got, err := st.SearchAuditEvents(ctx, audit.Filter{From: c.from, To: c.to, Limit: 500})
					if err != nil {
						t.Fatal(err)
					}
					var seqs []int64
					for _, e := range got {
						seqs = append(seqs, e.Seq)
					}
					if !slices.Equal(seqs, want) {
						t.Errorf("seqs = %v, want %v", seqs, want)
					}
				})
			}
		})
	}
}
