package storetest

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/client"
	"github.com/agentguard/agentguard/internal/session"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// The store serves clients, sessions, codes and refresh tokens.
var (
	_ client.Store         = (*sqlstore.Store)(nil)
	_ session.Store        = (*sqlstore.Store)(nil)
	_ session.CodeStore    = (*sqlstore.Store)(nil)
	_ session.RefreshStore = (*sqlstore.Store)(nil)
)

// signinTests are the conformance cases of clients and sign-in state.
var signinTests = []struct {
	name string
	run  func(t *testing.T, s *sqlstore.Store)
}{
	{"ClientCRUD", testClientCRUD},
	{"ClientSecrets", testClientSecrets},
	{"LoginRequests", testLoginRequests},
	{"SessionsReplaceAndTouch", testSessions},
	{"CodeRedeemOnceAndReplayRevokes", testCodeRedeem},
	{"RefreshRotationAndReuse", testRefreshRotation},
	{"RevokeSessionRefreshFamilies", testRevokeSessionFamilies},
	{"DeleteClientCascades", testDeleteClientCascades},
	{"GarbageCollectUserTokens", testGarbageCollectUserTokens},
	{"GetAgentWithSecrets", testGetAgentWithSecrets},
	{"ResourceServerAndGrant", testResourceServerAndGrant},
}

// The token endpoint's one-query reads return what the two separate reads do.
func testGetAgentWithSecrets(t *testing.T, s *sqlstore.Store) {
	a := createAgent(t, s, "ag_1")
	got, secrets, err := s.GetAgentWithSecrets(ctx, a.ID)
	mustOK(t, "GetAgentWithSecrets without secrets", err)
	wantEqual(t, "agent", got, a)
	wantEqual(t, "no secrets", len(secrets), 0)
	for _, sec := range []agent.Secret{
		{ID: "sec_1", AgentID: a.ID, Hash: "h1", CreatedAt: t0},
		{ID: "sec_2", AgentID: a.ID, Hash: "h2", CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)},
	} {
		mustOK(t, "CreateSecret", s.CreateSecret(ctx, sec))
	}
	createAgent(t, s, "ag_2")
	mustOK(t, "CreateSecret of another agent", s.CreateSecret(ctx, agent.Secret{ID: "sec_3", AgentID: "ag_2", Hash: "h3", CreatedAt: t0}))
	got, secrets, err = s.GetAgentWithSecrets(ctx, a.ID)
	mustOK(t, "GetAgentWithSecrets", err)
	want, _ := s.ListSecrets(ctx, a.ID)
	wantEqual(t, "agent", got, a)
	wantEqual(t, "secrets = ListSecrets", secrets, want)
	_, _, err = s.GetAgentWithSecrets(ctx, "ag_missing")
	wantErr(t, "GetAgentWithSecrets missing", err, store.ErrNotFound)
}

func testResourceServerAndGrant(t *testing.T, s *sqlstore.Store) {
	rs := createRS(t, s, "rs_1")
	createAgent(t, s, "ag_1")
	createAgent(t, s, "ag_2")
	g := newGrant("gr_1", "ag_1", rs, "read", "write")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	gotRS, gotGrant, err := s.ResourceServerAndGrant(ctx, rs.Audience, "ag_1")
	mustOK(t, "ResourceServerAndGrant", err)
	wantEqual(t, "resource server", gotRS, rs)
	want, _ := s.GrantFor(ctx, "ag_1", rs.Audience)
	if gotGrant == nil {
		t.Fatal("no grant")
	}
	wantEqual(t, "grant = GrantFor", *gotGrant, want)
	gotRS, gotGrant, err = s.ResourceServerAndGrant(ctx, rs.Audience, "ag_2")
	mustOK(t, "ResourceServerAndGrant of an agent without a grant", err)
	wantEqual(t, "resource server", gotRS, rs)
	if gotGrant != nil {
		t.Fatalf("grant %+v for an agent that has none", gotGrant)
	}
	_, _, err = s.ResourceServerAndGrant(ctx, "https://missing.example", "ag_1")
	wantErr(t, "unknown audience", err, store.ErrNotFound)
}

func newClient(id, typ string) client.Client {
	return client.Client{ID: id, Name: "App " + id, Type: typ, RedirectURIs: []string{"https://app.example/cb", "https://app.example/cb2"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"}, CreatedAt: t0, UpdatedAt: t0}
}

func testClientCRUD(t *testing.T, s *sqlstore.Store) {
	c := newClient("cli_1", client.TypeWeb)
	sec := client.Secret{ID: "csec_1", ClientID: c.ID, Hash: "h1", CreatedAt: t0}
	mustOK(t, "CreateClient", s.CreateClient(ctx, c, sec))
	got, err := s.GetClient(ctx, c.ID)
	mustOK(t, "GetClient", err)
	wantEqual(t, "GetClient", got, c)
	wantErr(t, "CreateClient duplicate", s.CreateClient(ctx, c), store.ErrConflict)

	// A public client with no post-logout URIs round-trips empty lists, not nil/garbage.
	spa := newClient("cli_2", client.TypeSPA)
	spa.PostLogoutRedirectURIs = nil
	mustOK(t, "CreateClient spa", s.CreateClient(ctx, spa))
	got, _ = s.GetClient(ctx, spa.ID)
	wantEqual(t, "post-logout URIs of a client registered without any", len(got.PostLogoutRedirectURIs), 0)

	updated, err := s.UpdateClient(ctx, c.ID, func(x *client.Client) error {
		x.Name, x.RedirectURIs, x.UpdatedAt, x.ID = "renamed", []string{"https://new.example/cb"}, at(time.Hour), "cli_other"
		return nil
	})
	mustOK(t, "UpdateClient", err)
	want := c
	want.Name, want.RedirectURIs, want.UpdatedAt = "renamed", []string{"https://new.example/cb"}, at(time.Hour)
	wantEqual(t, "UpdateClient result (id unchanged)", updated, want)
	errStop := errors.New("refused")
	_, err = s.UpdateClient(ctx, c.ID, func(x *client.Client) error { x.Name = "lost"; return errStop })
	wantErr(t, "UpdateClient aborted", err, errStop)
	got, _ = s.GetClient(ctx, c.ID)
	wantEqual(t, "after aborted update", got, want)
	_, err = s.UpdateClient(ctx, "cli_missing", func(*client.Client) error { return nil })
	wantErr(t, "UpdateClient missing", err, store.ErrNotFound)

	// Paging walks every client once in id order.
	mustOK(t, "CreateClient 3", s.CreateClient(ctx, newClient("cli_3", client.TypeNative)))
	page1, next, err := s.ListClients(ctx, 2, "")
	mustOK(t, "ListClients", err)
	page2, last, err := s.ListClients(ctx, 2, next)
	mustOK(t, "ListClients page 2", err)
	ids := []string{}
	for _, x := range append(page1, page2...) {
		ids = append(ids, x.ID)
	}
	wantEqual(t, "client pages", ids, []string{"cli_1", "cli_2", "cli_3"})
	wantEqual(t, "last cursor", last, "")

	if ok, err := s.ClientExists(ctx, c.ID); err != nil || !ok {
		t.Fatalf("ClientExists = %v, %v before delete", ok, err)
	}
	mustOK(t, "DeleteClient", s.DeleteClient(ctx, c.ID))
	if ok, err := s.ClientExists(ctx, c.ID); err != nil || ok {
		t.Fatalf("ClientExists = %v, %v after delete", ok, err)
	}
	_, err = s.GetClient(ctx, c.ID)
	wantErr(t, "GetClient after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteClient twice", s.DeleteClient(ctx, c.ID), store.ErrNotFound)
	secrets, err := s.ListClientSecrets(ctx, c.ID)
	mustOK(t, "ListClientSecrets after delete", err)
	wantEqual(t, "secrets of a deleted client", len(secrets), 0)
}

func testClientSecrets(t *testing.T, s *sqlstore.Store) {
	c := newClient("cli_1", client.TypeWeb)
	mustOK(t, "CreateClient", s.CreateClient(ctx, c))
	a := client.Secret{ID: "csec_a", ClientID: c.ID, Hash: "ha", CreatedAt: t0}
	b := client.Secret{ID: "csec_b", ClientID: c.ID, Hash: "hb", CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)}
	mustOK(t, "CreateClientSecret a", s.CreateClientSecret(ctx, a))
	mustOK(t, "CreateClientSecret b", s.CreateClientSecret(ctx, b))
	wantErr(t, "secret for a missing client", s.CreateClientSecret(ctx, client.Secret{ID: "csec_x", ClientID: "cli_missing", Hash: "h", CreatedAt: t0}), store.ErrNotFound)
	got, err := s.ListClientSecrets(ctx, c.ID)
	mustOK(t, "ListClientSecrets", err)
	wantEqual(t, "secrets", got, []client.Secret{a, b})
	mustOK(t, "DeleteClientSecret", s.DeleteClientSecret(ctx, c.ID, a.ID))
	wantErr(t, "DeleteClientSecret of another client", s.DeleteClientSecret(ctx, "cli_other", b.ID), store.ErrNotFound)
	got, _ = s.ListClientSecrets(ctx, c.ID)
	wantEqual(t, "secrets after delete", got, []client.Secret{b})
}

func testLoginRequests(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeSPA)))
	l := session.LoginRequest{ID: "lgn_1", ClientID: "cli_1", Request: []byte(`{"scope":"openid"}`), CSRFHash: "c", BrowserHash: "b", CreatedAt: t0, ExpiresAt: at(10 * time.Minute)}
	mustOK(t, "CreateLoginRequest", s.CreateLoginRequest(ctx, l))
	got, err := s.GetLoginRequest(ctx, l.ID)
	mustOK(t, "GetLoginRequest", err)
	wantEqual(t, "GetLoginRequest", got, l)
	// Deleting is how a sign-in uses it up: the second delete says it was gone.
	mustOK(t, "DeleteLoginRequest", s.DeleteLoginRequest(ctx, l.ID))
	wantErr(t, "DeleteLoginRequest twice", s.DeleteLoginRequest(ctx, l.ID), store.ErrNotFound)
	_, err = s.GetLoginRequest(ctx, l.ID)
	wantErr(t, "GetLoginRequest after delete", err, store.ErrNotFound)
	wantErr(t, "login request for a missing client", s.CreateLoginRequest(ctx, session.LoginRequest{ID: "lgn_2", ClientID: "cli_missing", Request: []byte("{}"), CreatedAt: t0, ExpiresAt: t0}), store.ErrNotFound)
}

func newSession(hash, sid, userID string) session.Session {
	return session.Session{IDHash: hash, SID: sid, UserID: userID, AuthTime: t0, CreatedAt: t0, LastSeen: t0, ExpiresAt: at(12 * time.Hour)}
}

func testSessions(t *testing.T, s *sqlstore.Store) {
	a := newSession("hash-a", "ses_a", "usr_1")
	mustOK(t, "CreateSession", s.CreateSession(ctx, a, ""))
	got, err := s.GetSession(ctx, a.IDHash)
	mustOK(t, "GetSession", err)
	wantEqual(t, "GetSession", got, a)
	got, err = s.GetSessionBySID(ctx, a.SID)
	mustOK(t, "GetSessionBySID", err)
	wantEqual(t, "GetSessionBySID", got, a)

	// Touch moves last_seen forward only.
	mustOK(t, "TouchSession", s.TouchSession(ctx, a.SID, at(time.Minute)))
	mustOK(t, "TouchSession earlier", s.TouchSession(ctx, a.SID, at(time.Second)))
	got, _ = s.GetSession(ctx, a.IDHash)
	wantEqual(t, "last_seen after touches", got.LastSeen, at(time.Minute))

	// A new sign-in replaces the browser's old session in one step.
	b := newSession("hash-b", "ses_b", "usr_1")
	mustOK(t, "CreateSession replacing", s.CreateSession(ctx, b, a.IDHash))
	_, err = s.GetSession(ctx, a.IDHash)
	wantErr(t, "replaced session", err, store.ErrNotFound)
	wantErr(t, "CreateSession duplicate sid", s.CreateSession(ctx, newSession("hash-c", "ses_b", "usr_2"), ""), store.ErrConflict)

	mustOK(t, "DeleteSession", s.DeleteSession(ctx, b.SID))
	wantErr(t, "DeleteSession twice", s.DeleteSession(ctx, b.SID), store.ErrNotFound)
	_, err = s.GetSessionBySID(ctx, b.SID)
	wantErr(t, "GetSessionBySID after delete", err, store.ErrNotFound)
}

func newCode(hash, clientID string) session.Code {
	return session.Code{Hash: hash, ClientID: clientID, UserID: "usr_1", SID: "ses_1", RedirectURI: "https://app.example/cb",
		CodeChallenge: "challenge", Scope: "openid profile", Audience: "urn:agentguard:agent:agt_1", Nonce: "n-1",
		AuthTime: t0, CreatedAt: t0, ExpiresAt: at(time.Minute)}
}

func newFamily(id, clientID, sid string) (session.RefreshFamily, session.RefreshToken) {
	f := session.RefreshFamily{ID: id, ClientID: clientID, UserID: "usr_1", SID: sid, Scope: "openid", Audience: "",
		AuthTime: t0, CreatedAt: t0, ExpiresAt: at(30 * 24 * time.Hour)}
	return f, session.RefreshToken{Hash: id + "-rt1", FamilyID: id, CreatedAt: t0, ExpiresAt: at(7 * 24 * time.Hour),
		AccessJTI: id + "-at1", AccessExpiresAt: at(15 * time.Minute)}
}

func revoked(t *testing.T, s *sqlstore.Store, jti string) bool {
	t.Helper()
	r, err := s.IsRevoked(ctx, jti)
	mustOK(t, "IsRevoked", err)
	return r
}

func testCodeRedeem(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeSPA)))
	c := newCode("code-1", "cli_1")
	mustOK(t, "CreateCode", s.CreateCode(ctx, c))
	got, err := s.GetCode(ctx, c.Hash)
	mustOK(t, "GetCode", err)
	wantEqual(t, "GetCode", got, c)
	_, err = s.GetCode(ctx, "missing")
	wantErr(t, "GetCode missing", err, store.ErrNotFound)

	fam, first := newFamily("rtf_1", "cli_1", "ses_1")
	mustOK(t, "RedeemCode", s.RedeemCode(ctx, c.Hash, at(time.Second), "at-1", at(15*time.Minute), &fam, &first))
	got, _ = s.GetCode(ctx, c.Hash)
	wantEqual(t, "used_at", got.UsedAt, at(time.Second))
	wantEqual(t, "access jti recorded", got.AccessJTI, "at-1")
	wantEqual(t, "family recorded", got.FamilyID, fam.ID)
	rt, gotFam, err := s.GetRefreshToken(ctx, first.Hash)
	mustOK(t, "GetRefreshToken of the first token", err)
	wantEqual(t, "first token", rt, first)
	wantEqual(t, "family", gotFam, fam)
	if revoked(t, s, "at-1") {
		t.Fatal("the access token is revoked before any replay")
	}

	// The second redemption fails and revokes the access token and the family.
	fam2, first2 := newFamily("rtf_2", "cli_1", "ses_1")
	err = s.RedeemCode(ctx, c.Hash, at(2*time.Second), "at-2", at(15*time.Minute), &fam2, &first2)
	wantErr(t, "RedeemCode twice", err, session.ErrReused)
	if !revoked(t, s, "at-1") || !revoked(t, s, first.AccessJTI) {
		t.Fatal("a replayed code did not revoke the tokens issued from it")
	}
	_, gotFam, _ = s.GetRefreshToken(ctx, first.Hash)
	if gotFam.RevokedAt.IsZero() || gotFam.RevokedReason == "" {
		t.Fatalf("family after code replay: %+v, want revoked with a reason", gotFam)
	}
	_, _, err = s.GetRefreshToken(ctx, first2.Hash)
	wantErr(t, "the replay's family was not stored", err, store.ErrNotFound)
	got, _ = s.GetCode(ctx, c.Hash)
	wantEqual(t, "the replay does not overwrite what the first use recorded", got.AccessJTI, "at-1")
}

func testRefreshRotation(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeSPA)))
	mustOK(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "cli_1")))
	fam, rt1 := newFamily("rtf_1", "cli_1", "ses_1")
	mustOK(t, "RedeemCode", s.RedeemCode(ctx, "code-1", t0, rt1.AccessJTI, rt1.AccessExpiresAt, &fam, &rt1))

	rt2 := session.RefreshToken{Hash: "rtf_1-rt2", FamilyID: fam.ID, CreatedAt: at(time.Hour), ExpiresAt: at(8 * 24 * time.Hour), AccessJTI: "at-2", AccessExpiresAt: at(3 * time.Hour)}
	mustOK(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, rt1.Hash, at(time.Hour), rt2))
	got, _, err := s.GetRefreshToken(ctx, rt1.Hash)
	mustOK(t, "GetRefreshToken old", err)
	wantEqual(t, "old token used_at", got.UsedAt, at(time.Hour))
	got, _, err = s.GetRefreshToken(ctx, rt2.Hash)
	mustOK(t, "GetRefreshToken new", err)
	wantEqual(t, "new token", got, rt2)

	// The spent token again: reuse. The family and every access token from it go.
	rt3 := session.RefreshToken{Hash: "rtf_1-rt3", FamilyID: fam.ID, CreatedAt: at(2 * time.Hour), ExpiresAt: at(9 * 24 * time.Hour), AccessJTI: "at-3", AccessExpiresAt: at(2*time.Hour + 15*time.Minute)}
	err = s.RotateRefreshToken(ctx, rt1.Hash, at(2*time.Hour), rt3)
	wantErr(t, "rotating a spent token", err, session.ErrReused)
	_, f, _ := s.GetRefreshToken(ctx, rt2.Hash)
	if f.RevokedAt.IsZero() {
		t.Fatal("reuse did not revoke the family")
	}
	if !revoked(t, s, "at-2") {
		t.Fatal("reuse did not revoke the access token issued with the live refresh token")
	}
	if revoked(t, s, rt1.AccessJTI) {
		// rt1's access token expired at t0+15m, before the reuse at t0+2h: nothing to revoke.
		t.Fatal("an already expired access token was put on the revocation list")
	}
	_, _, err = s.GetRefreshToken(ctx, rt3.Hash)
	wantErr(t, "no token stored by the refused rotation", err, store.ErrNotFound)
	// The live token of a revoked family does not rotate either.
	err = s.RotateRefreshToken(ctx, rt2.Hash, at(3*time.Hour), rt3)
	wantErr(t, "rotating in a revoked family", err, session.ErrRevoked)

	wantErr(t, "RevokeRefreshFamily missing", s.RevokeRefreshFamily(ctx, "rtf_missing", "x", t0), store.ErrNotFound)
}

func testRevokeSessionFamilies(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeSPA)))
	for i, sid := range []string{"ses_1", "ses_1", "ses_2", ""} {
		code := newCode("code-"+strconv.Itoa(i), "cli_1")
		mustOK(t, "CreateCode", s.CreateCode(ctx, code))
		fam, rt := newFamily("rtf_"+strconv.Itoa(i), "cli_1", sid)
		mustOK(t, "RedeemCode", s.RedeemCode(ctx, code.Hash, t0, rt.AccessJTI, rt.AccessExpiresAt, &fam, &rt))
	}
	n, err := s.RevokeSessionRefreshFamilies(ctx, "ses_1", "logout", at(time.Minute))
	mustOK(t, "RevokeSessionRefreshFamilies", err)
	wantEqual(t, "families revoked", n, 2)
	for i, want := range []bool{true, true, false, false} {
		_, f, _ := s.GetRefreshToken(ctx, "rtf_"+strconv.Itoa(i)+"-rt1")
		if got := !f.RevokedAt.IsZero(); got != want {
			t.Fatalf("family %d revoked = %v, want %v (only ses_1's families; offline ones are kept)", i, got, want)
		}
		wantEqual(t, "access token of family "+strconv.Itoa(i)+" revoked", revoked(t, s, "rtf_"+strconv.Itoa(i)+"-at1"), want)
	}
	n, _ = s.RevokeSessionRefreshFamilies(ctx, "ses_1", "logout", at(time.Minute))
	wantEqual(t, "revoking again", n, 0)
}

func testDeleteClientCascades(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeWeb), client.Secret{ID: "csec_1", ClientID: "cli_1", Hash: "h", CreatedAt: t0}))
	mustOK(t, "CreateLoginRequest", s.CreateLoginRequest(ctx, session.LoginRequest{ID: "lgn_1", ClientID: "cli_1", Request: []byte("{}"), CreatedAt: t0, ExpiresAt: at(time.Hour)}))
	mustOK(t, "CreateCode", s.CreateCode(ctx, newCode("code-1", "cli_1")))
	fam, rt := newFamily("rtf_1", "cli_1", "ses_1")
	mustOK(t, "RedeemCode", s.RedeemCode(ctx, "code-1", t0, rt.AccessJTI, rt.AccessExpiresAt, &fam, &rt))
	mustOK(t, "DeleteClient", s.DeleteClient(ctx, "cli_1"))
	_, err := s.GetLoginRequest(ctx, "lgn_1")
	wantErr(t, "login request of a deleted client", err, store.ErrNotFound)
	_, err = s.GetCode(ctx, "code-1")
	wantErr(t, "code of a deleted client", err, store.ErrNotFound)
	_, _, err = s.GetRefreshToken(ctx, rt.Hash)
	wantErr(t, "refresh token of a deleted client", err, store.ErrNotFound)
}

func testGarbageCollectUserTokens(t *testing.T, s *sqlstore.Store) {
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("cli_1", client.TypeSPA)))
	// Code 1: expired and its access token expired: deleted. Code 2: expired, but the
	// access token issued from it lives on, so a replay must still revoke it: kept.
	c1, c2 := newCode("code-1", "cli_1"), newCode("code-2", "cli_1")
	c2.ExpiresAt = at(time.Minute)
	mustOK(t, "CreateCode 1", s.CreateCode(ctx, c1))
	mustOK(t, "CreateCode 2", s.CreateCode(ctx, c2))
	mustOK(t, "RedeemCode 2", s.RedeemCode(ctx, c2.Hash, t0, "at-2", at(time.Hour), nil, nil))
	old, oldRT := newFamily("rtf_old", "cli_1", "")
	old.ExpiresAt = at(time.Hour)
	live, liveRT := newFamily("rtf_live", "cli_1", "")
	c3, c4 := newCode("code-3", "cli_1"), newCode("code-4", "cli_1")
	mustOK(t, "CreateCode 3", s.CreateCode(ctx, c3))
	mustOK(t, "CreateCode 4", s.CreateCode(ctx, c4))
	mustOK(t, "RedeemCode 3", s.RedeemCode(ctx, c3.Hash, t0, "x", t0, &old, &oldRT))
	mustOK(t, "RedeemCode 4", s.RedeemCode(ctx, c4.Hash, t0, "y", t0, &live, &liveRT))
	mustOK(t, "CreateLoginRequest", s.CreateLoginRequest(ctx, session.LoginRequest{ID: "lgn_old", ClientID: "cli_1", Request: []byte("{}"), CreatedAt: t0, ExpiresAt: at(10 * time.Minute)}))
	mustOK(t, "CreateSession", s.CreateSession(ctx, newSession("h-old", "ses_old", "usr_1"), ""))

	_, err := s.GarbageCollectUserTokens(ctx, at(30*time.Minute))
	mustOK(t, "GarbageCollectUserTokens at 30m", err)
	_, err = s.GetCode(ctx, c1.Hash)
	wantErr(t, "expired code", err, store.ErrNotFound)
	_, err = s.GetCode(ctx, c2.Hash)
	mustOK(t, "expired code whose access token still lives", err)

	n, err := s.GarbageCollectUserTokens(ctx, at(13*time.Hour))
	mustOK(t, "GarbageCollectUserTokens at 13h", err)
	// The code, the old family, the session (the login request went at 30m).
	wantEqual(t, "rows collected at 13h", n, int64(3))
	_, _, err = s.GetRefreshToken(ctx, oldRT.Hash)
	wantErr(t, "expired family's token", err, store.ErrNotFound)
	_, _, err = s.GetRefreshToken(ctx, liveRT.Hash)
	mustOK(t, "live family's token kept", err)
	_, err = s.GetLoginRequest(ctx, "lgn_old")
	wantErr(t, "expired login request", err, store.ErrNotFound)
	_, err = s.GetSessionBySID(ctx, "ses_old")
	wantErr(t, "expired session", err, store.ErrNotFound)
	_, err = s.GetCode(ctx, c2.Hash)
	wantErr(t, "code 2 once its access token expired too", err, store.ErrNotFound)
}
