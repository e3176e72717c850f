package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store/storetest"
	"github.com/agentguard/agentguard/internal/token"
)

// KMS rotation re-wraps every sealed value, across batch boundaries, so each opens
// under its own AAD with the new key; a value that does not open is reported by
// key and left alone, without stopping the others.
func TestRewrapSealed(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			local, err := kms.OpenLocal(filepath.Join(t.TempDir(), kms.LocalKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			env := kms.NewEnvelope(local)
			old := local.CurrentKeyID()

			const n = 2*200 + 7 // more than two batches
			plain := map[string]string{}
			for i := range n {
				kid := fmt.Sprintf("sig_%04d", i)
				plain[kid] = "private key " + kid
				sealed, err := env.Seal(ctx, []byte(plain[kid]), token.SigningKeyAAD(kid))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.CreateSigningKey(ctx, token.SigningKey{KID: kid, Alg: "ES256", PublicJWK: []byte("{}"), PrivateSealed: sealed, CreatedAt: time.Unix(int64(i+1), 0)}); err != nil {
					t.Fatal(err)
				}
			}
			// One row whose value was moved from another row: its AAD does not match.
			moved, _ := env.Seal(ctx, []byte("x"), token.SigningKeyAAD("sig_elsewhere"))
			if err := s.CreateSigningKey(ctx, token.SigningKey{KID: "sig_moved", Alg: "ES256", PublicJWK: []byte("{}"), PrivateSealed: moved, CreatedAt: time.Unix(1, 0)}); err != nil {
				t.Fatal(err)
			}

			// Nothing to do (nothing is even unwrapped) while every value uses the current key.
			if got, err := s.RewrapSealed(ctx, env); got != 0 || err != nil {
				t.Fatalf("RewrapSealed before rotation = %d, %v; want 0, nil", got, err)
			}
			counts, err := s.SealedKeyIDs(ctx)
			if err != nil || counts[old] != n+1 {
				t.Fatalf("SealedKeyIDs before rotation = %v, %v; want %d under %s", counts, err, n+1, old)
			}

			newID, err := local.Rotate()
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.RewrapSealed(ctx, env)
			if got != n {
				t.Fatalf("RewrapSealed changed %d rows, want %d", got, n)
			}
			if err == nil || !strings.Contains(err.Error(), "1 sealed values did not open") || !strings.Contains(err.Error(), "signing_keys kid=sig_moved") {
				t.Fatalf("RewrapSealed error = %v, want it to name the one value that does not open", err)
			}
			keys, err := s.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				id, _ := kms.KeyIDOf(k.PrivateSealed)
				if k.KID == "sig_moved" {
					if id != old || !bytes.Equal(k.PrivateSealed, moved) {
						t.Fatal("a value that does not open was changed")
					}
					continue
				}
				if id != newID {
					t.Fatalf("%s still wrapped by %s, want %s", k.KID, id, newID)
				}
				pt, err := env.Open(ctx, k.PrivateSealed, token.SigningKeyAAD(k.KID))
				if err != nil || string(pt) != plain[k.KID] {
					t.Fatalf("%s after re-wrap: %q, %v", k.KID, pt, err)
				}
				if _, err := env.Open(ctx, k.PrivateSealed, token.SigningKeyAAD("sig_other")); !errors.Is(err, kms.ErrOpen) {
					t.Fatalf("%s opens under another key's AAD after re-wrap", k.KID)
				}
			}
			counts, err = s.SealedKeyIDs(ctx)
			if err != nil || counts[newID] != n || counts[old] != 1 || len(counts) != 2 {
				t.Fatalf("SealedKeyIDs after rotation = %v, %v; want %d under %s and 1 under %s", counts, err, n, newID, old)
			}
			// Idempotent: a second run changes nothing.
			if got, _ := s.RewrapSealed(ctx, env); got != 0 {
				t.Fatalf("second RewrapSealed changed %d rows, want 0", got)
			}
		})
	}
}
