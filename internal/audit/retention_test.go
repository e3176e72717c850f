package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Retention deletes only events past the cutoff, in batches, and leaves a signed
// checkpoint from which the rest of the chain still verifies; forging the
// checkpoint or deleting past it is caught.
func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			f := open(t, d)
			l := newLog(t, f.store, audit.Options{})
			record(t, l, 25) // times t0 … t0+24s
			w, err := kms.OpenLocal(filepath.Join(f.dir, kms.LocalKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			now := t0.Add(time.Hour + 10*time.Second)
			ret := &audit.Retention{Store: f.store, Envelope: kms.NewEnvelope(w), MaxAge: time.Hour, Batch: 4, Now: func() time.Time { return now }}
			n, err := ret.Trim(context.Background())
			if err != nil || n != 10 {
				t.Fatalf("Trim = %d, %v; want the 10 events older than an hour", n, err)
			}
			v := &audit.Verifier{Store: f.store, Key: ret.Key}
			r, err := v.Verify(context.Background())
			if err != nil || !r.OK || r.Events != 15 || r.Checkpoint != 10 {
				t.Fatalf("verify after trim = %+v, %v", r, err)
			}
			if n, _ := ret.Trim(context.Background()); n != 0 {
				t.Fatalf("second Trim deleted %d", n)
			}

			// Deleting more events without a new checkpoint is a gap.
			if _, err := f.raw.Exec(`DELETE FROM audit_events WHERE seq = 11`); err != nil {
				t.Fatal(err)
			}
			if r, _ := v.Verify(context.Background()); r.OK || r.BrokenAt != 11 {
				t.Fatalf("verify after deleting past the checkpoint = %+v", r)
			}
			// A checkpoint moved forward without the key fails its signature.
			if _, err := f.raw.Exec(`UPDATE audit_checkpoints SET seq = 11, hash = (SELECT prev_hash FROM audit_events WHERE seq = 12) WHERE seq = 10`); err != nil {
				t.Fatal(err)
			}
			if r, _ := v.Verify(context.Background()); r.OK || !strings.Contains(r.Reason, "signature") {
				t.Fatalf("verify with a forged checkpoint = %+v", r)
			}
		})
	}
}
