package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// KMS rotation re-wraps identity providers' sealed secrets too, and they still open
// under the provider's AAD.
func TestRewrapCoversIdentityProviderSecrets(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			local, err := kms.OpenLocal(filepath.Join(t.TempDir(), kms.LocalKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			env := kms.NewEnvelope(local)
			sealed, err := env.Seal(ctx, []byte("bind-password"), idp.SecretAAD("idp_1"))
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			p := idp.Provider{ID: "idp_1", Name: "ldap", Type: idp.TypeLDAP, Enabled: true, LDAP: &idp.LDAPConfig{URL: "ldaps://ldap.example"}, CreatedAt: now, UpdatedAt: now}
			if err := s.CreateIdentityProvider(ctx, p, sealed); err != nil {
				t.Fatal(err)
			}
			newID, err := local.Rotate()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := s.RewrapSealed(ctx, env); n != 1 || err != nil {
				t.Fatalf("RewrapSealed = %d, %v; want the one provider secret", n, err)
			}
			_, got, err := s.GetIdentityProvider(ctx, "idp_1")
			if err != nil {
				t.Fatal(err)
			}
			if id, _ := kms.KeyIDOf(got); id != newID {
				t.Fatalf("secret wrapped under %s, want %s", id, newID)
			}
			if plain, err := env.Open(ctx, got, idp.SecretAAD("idp_1")); err != nil || string(plain) != "bind-password" {
				t.Fatalf("open after rewrap: %q %v", plain, err)
			}
		})
	}
}
