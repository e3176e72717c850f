package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/registration"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

var _ registration.Store = (*sqlstore.Store)(nil)

// registrationTests are the conformance cases of dynamic client registrations.
var registrationTests = []struct {
	name string
	run  func(t *testing.T, s *sqlstore.Store)
}{
	{"RegistrationRoundTrip", testRegistrationRoundTrip},
	{"RegistrationListCountAndDecide", testRegistrationListDecide},
	{"RegistrationGarbageCollect", testRegistrationGC},
}

func newRegistration(id, status string) registration.Registration {
	return registration.Registration{
		ID: id, Status: status, ClientName: "MCP Inspector " + id, ClientType: "native", AuthMethod: "none",
		RedirectURIs: []string{"http://127.0.0.1:6274/oauth/callback", "https://inspector.example/cb"},
		Metadata: registration.Metadata{GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			ApplicationType: "native", Scope: "openid", ClientURI: "https://inspector.example", Contacts: []string{"ops@example.com"},
			SoftwareID: "inspector", SoftwareVersion: "1.2.3"},
		SourceIP: "192.0.2.7", CreatedAt: t0,
	}
}

func testRegistrationRoundTrip(t *testing.T, s *sqlstore.Store) {
	g := newRegistration("cli_r1", registration.StatusPending)
	g.SecretHash = "hash-of-secret"
	mustOK(t, "CreateRegistration", s.CreateRegistration(ctx, g))
	got, err := s.GetRegistration(ctx, g.ID)
	mustOK(t, "GetRegistration", err)
	wantEqual(t, "GetRegistration", got, g)
	wantErr(t, "CreateRegistration duplicate", s.CreateRegistration(ctx, g), store.ErrConflict)
	_, err = s.GetRegistration(ctx, "cli_nope")
	wantErr(t, "GetRegistration unknown", err, store.ErrNotFound)

	// Empty lists and metadata survive as empty, not nil garbage.
	bare := registration.Registration{ID: "cli_r2", Status: registration.StatusPending, ClientName: "x", ClientType: "spa", AuthMethod: "none",
		RedirectURIs: []string{"https://a.example/cb"}, CreatedAt: t0}
	mustOK(t, "CreateRegistration bare", s.CreateRegistration(ctx, bare))
	got, _ = s.GetRegistration(ctx, bare.ID)
	wantEqual(t, "bare registration", got, bare)
	mustOK(t, "DeleteRegistration", s.DeleteRegistration(ctx, bare.ID))
	wantErr(t, "DeleteRegistration again", s.DeleteRegistration(ctx, bare.ID), store.ErrNotFound)
}

func testRegistrationListDecide(t *testing.T, s *sqlstore.Store) {
	for i := range 5 {
		mustOK(t, "create", s.CreateRegistration(ctx, newRegistration(fmt.Sprintf("cli_r%d", i), registration.StatusPending)))
	}
	n, err := s.CountRegistrations(ctx, registration.StatusPending)
	mustOK(t, "CountRegistrations", err)
	wantEqual(t, "pending count", n, 5)

	// Approve one, reject one (the secret hash goes), in transactions.
	approved, err := s.UpdateRegistration(ctx, "cli_r1", func(g *registration.Registration) error {
		g.Status, g.DecidedAt, g.DecidedBy = registration.StatusApproved, at(time.Second), "admin-token:adm_1"
		return nil
	})
	mustOK(t, "approve", err)
	wantEqual(t, "approved status", approved.Status, registration.StatusApproved)
	mustOK(t, "reject", func() error {
		_, err := s.UpdateRegistration(ctx, "cli_r2", func(g *registration.Registration) error {
			g.Status, g.DecidedAt, g.Reason, g.SecretHash = registration.StatusRejected, at(2*time.Second), "unknown vendor", ""
			return nil
		})
		return err
	}())
	got, _ := s.GetRegistration(ctx, "cli_r2")
	wantEqual(t, "rejected", [3]string{got.Status, got.Reason, got.SecretHash}, [3]string{registration.StatusRejected, "unknown vendor", ""})
	wantEqual(t, "decided_at", got.DecidedAt, at(2*time.Second))

	// A refused update changes nothing.
	boom := errors.New("refused")
	_, err = s.UpdateRegistration(ctx, "cli_r3", func(g *registration.Registration) error { g.Status = "x"; return boom })
	wantErr(t, "refused update", err, boom)
	got, _ = s.GetRegistration(ctx, "cli_r3")
	wantEqual(t, "after refused update", got.Status, registration.StatusPending)
	_, err = s.UpdateRegistration(ctx, "cli_nope", func(*registration.Registration) error { return nil })
	wantErr(t, "update unknown", err, store.ErrNotFound)

	// Lists by status, in id order, paged.
	page1, next, err := s.ListRegistrations(ctx, registration.StatusPending, 2, "")
	mustOK(t, "list", err)
	wantEqual(t, "page 1", ids(page1), []string{"cli_r0", "cli_r3"})
	page2, next, err := s.ListRegistrations(ctx, registration.StatusPending, 2, next)
	mustOK(t, "list 2", err)
	wantEqual(t, "page 2", ids(page2), []string{"cli_r4"})
	wantEqual(t, "last cursor", next, "")
	all, _, _ := s.ListRegistrations(ctx, "", 10, "")
	wantEqual(t, "all", len(all), 5)
	n, _ = s.CountRegistrations(ctx, "")
	wantEqual(t, "count all", n, 5)
}

func ids(gs []registration.Registration) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func testRegistrationGC(t *testing.T, s *sqlstore.Store) {
	old := newRegistration("cli_old", registration.StatusPending)
	young := newRegistration("cli_young", registration.StatusPending)
	young.CreatedAt = at(48 * time.Hour)
	kept := newRegistration("cli_kept", registration.StatusApproved)
	for _, g := range []registration.Registration{old, young, kept} {
		mustOK(t, "create", s.CreateRegistration(ctx, g))
	}
	n, err := s.DeleteRegistrationsBefore(ctx, registration.StatusPending, at(time.Hour))
	mustOK(t, "DeleteRegistrationsBefore", err)
	wantEqual(t, "deleted", n, int64(1))
	all, _, _ := s.ListRegistrations(ctx, "", 10, "")
	wantEqual(t, "left", ids(all), []string{"cli_kept", "cli_young"})
}
