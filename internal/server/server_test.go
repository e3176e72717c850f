package server_test

import (
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

// The whole slice on each backend: register, get a secret, get a token.
func TestServerStartsAndIssuesOnEachBackend(t *testing.T) {
	for _, d := range storetest.Backends() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.Start(t, servertest.Options{Dialect: d})
			id, sec := s.Agent(t, "smoke")
			if id == "" || sec == "" {
				t.Fatal("no agent id or secret")
			}
		})
	}
}
