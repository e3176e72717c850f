package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Every sealed credential column (API key versions, OAuth client secrets, cached
// upstream tokens) is covered by `kms status` and `kms rewrap`: after a KMS key
// rotation each is re-wrapped under the new key and still opens with its AAD.
func TestRewrapCoversCredentials(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			local, err := kms.OpenLocal(filepath.Join(t.TempDir(), kms.LocalKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			env := kms.NewEnvelope(local)
			now := time.Now().UTC().Truncate(time.Microsecond)
			seal := func(plain string, aad []byte) []byte {
				b, err := env.Seal(ctx, []byte(plain), aad)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}

			if err := s.CreateAPIKey(ctx, credential.APIKey{ID: "ak_1", Identifier: "k", Name: "k", CreatedAt: now, UpdatedAt: now},
				credential.KeyVersion{Version: 1, Sealed: seal("key-v1", credential.APIKeyAAD("ak_1/v1")), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RotateAPIKey(ctx, "k", now, now.Add(time.Hour), func(vid string, _ int64) ([]byte, error) {
				return env.Seal(ctx, []byte("key-v2"), credential.APIKeyAAD(vid))
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateOAuthProvider(ctx, credential.OAuthProvider{ID: "op_1", Identifier: "p", Name: "p", ClientID: "c",
				ClientSecretSealed: seal("client-secret", credential.ClientSecretAAD("op_1")), TokenEndpoint: "https://x.example.com/t",
				AuthMethod: credential.AuthBasic, Generation: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			key := credential.CacheKey("op_1", 1, nil)
			if err := s.PutOAuthToken(ctx, credential.CachedToken{Key: key, CredentialID: "op_1", Sealed: seal("upstream-token", credential.TokenAAD(key)),
				ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}

			old := local.CurrentKeyID()
			counts, err := s.SealedKeyIDs(ctx)
			if err != nil || counts[old] != 4 {
				t.Fatalf("SealedKeyIDs = %v, %v; want 4 values (2 key versions, 1 client secret, 1 token) under %s", counts, err, old)
			}
			newID, err := local.Rotate()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := s.RewrapSealed(ctx, env); n != 4 || err != nil {
				t.Fatalf("RewrapSealed = %d, %v; want 4", n, err)
			}
			if counts, _ := s.SealedKeyIDs(ctx); counts[newID] != 4 {
				t.Fatalf("after rewrap: %v", counts)
			}

			open := func(what string, sealed, aad []byte, want string) {
				t.Helper()
				if id, _ := kms.KeyIDOf(sealed); id != newID {
					t.Fatalf("%s is wrapped under %s, want %s", what, id, newID)
				}
				got, err := env.Open(ctx, sealed, aad)
				if err != nil || string(got) != want {
					t.Fatalf("%s opens to %q, %v", what, got, err)
				}
			}
			k, _ := s.GetAPIKey(ctx, "k", now)
			open("API key v2", k.Versions[0].Sealed, credential.APIKeyAAD("ak_1/v2"), "key-v2")
			open("API key v1", k.Versions[1].Sealed, credential.APIKeyAAD("ak_1/v1"), "key-v1")
			p, _ := s.GetOAuthProvider(ctx, "p")
			open("client secret", p.ClientSecretSealed, credential.ClientSecretAAD("op_1"), "client-secret")
			tok, _ := s.GetOAuthToken(ctx, key)
			open("upstream token", tok.Sealed, credential.TokenAAD(key), "upstream-token")
		})
	}
}
