package sqlstore_test

import (
	"testing"

	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// Every backend runs the one conformance suite; PostgreSQL skips with a reason when
// AGENTGUARD_TEST_DATABASE_URL is unset.
func TestConformance(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			storetest.RunConformance(t, func(t *testing.T) *sqlstore.Store { return storetest.Open(t, d) })
		})
	}
}
