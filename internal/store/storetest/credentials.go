package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/agent"
	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

var _ credential.Store = (*sqlstore.Store)(nil)

// credentialCases are the conformance cases of internal/credential's store.
var credentialCases = []struct {
	name string
	run  func(t *testing.T, s *sqlstore.Store)
}{
	{"APIKeyCRUD", testAPIKeyCRUD},
	{"APIKeyRotationAndRollback", testAPIKeyRotation},
	{"APIKeyKeepsAtMostMaxKeptVersions", testAPIKeyPrune},
	{"OAuthProviderCRUD", testOAuthProviderCRUD},
	{"OAuthProviderGenerationDropsCachedTokens", testOAuthGeneration},
	{"OutboundNodes", testOutboundNodes},
	{"OutboundAccess", testOutboundAccess},
	{"DeleteCredentialInUse", testDeleteCredentialInUse},
	{"DeleteAgentRemovesItsNodes", testDeleteAgentRemovesNodes},
	{"OAuthTokenCache", testOAuthTokenCache},
	{"IdentifiersAreSharedAcrossTypes", testIdentifierNamespace},
}

func newAPIKey(id, identifier string) (credential.APIKey, credential.KeyVersion) {
	return credential.APIKey{ID: id, Identifier: identifier, Name: "Key " + identifier, Description: "d", Version: 1, LastVersion: 1, CreatedAt: t0, UpdatedAt: t0},
		credential.KeyVersion{Version: 1, Sealed: []byte("sealed-1-" + id), CreatedAt: t0}
}

func createAPIKey(t *testing.T, s *sqlstore.Store, id, identifier string) credential.APIKey {
	t.Helper()
	k, v := newAPIKey(id, identifier)
	mustOK(t, "CreateAPIKey "+identifier, s.CreateAPIKey(ctx, k, v))
	return k
}

func newProvider(id, identifier string) credential.OAuthProvider {
	return credential.OAuthProvider{
		ID: id, Identifier: identifier, Name: "Provider " + identifier, Description: "d", ClientID: "client-" + id,
		ClientSecretSealed: []byte("sealed-secret-" + id), TokenEndpoint: "https://idp.example.com/token",
		DefaultScopes: []string{"a", "b"}, AuthMethod: credential.AuthBasic,
		TokenParams: map[string]string{"audience": "https://api.example.com"}, Preset: "okta",
		PresetParams: map[string]string{"domain": "x.okta.com"}, Generation: 1, CreatedAt: t0, UpdatedAt: t0,
	}
}

func createProvider(t *testing.T, s *sqlstore.Store, id, identifier string) credential.OAuthProvider {
	t.Helper()
	p := newProvider(id, identifier)
	mustOK(t, "CreateOAuthProvider "+identifier, s.CreateOAuthProvider(ctx, p))
	return p
}

func sealer(tag string) func(string, int64) ([]byte, error) {
	return func(vid string, v int64) ([]byte, error) { return []byte(fmt.Sprintf("%s|%s|%d", tag, vid, v)), nil }
}

func testAPIKeyCRUD(t *testing.T, s *sqlstore.Store) {
	k := createAPIKey(t, s, "ak_1", "openai")
	got, err := s.GetAPIKey(ctx, "openai", t0)
	mustOK(t, "GetAPIKey", err)
	want := k
	want.Versions = []credential.KeyVersion{{Version: 1, Sealed: []byte("sealed-1-ak_1"), CreatedAt: t0}}
	wantEqual(t, "GetAPIKey", got, want)
	_, err = s.GetAPIKey(ctx, "nope", t0)
	wantErr(t, "GetAPIKey unknown", err, store.ErrNotFound)

	k2, v2 := newAPIKey("ak_2", "openai")
	wantErr(t, "duplicate identifier", s.CreateAPIKey(ctx, k2, v2), store.ErrConflict)

	for i := range 3 {
		createAPIKey(t, s, fmt.Sprintf("ak_p%d", i), fmt.Sprintf("p-%d", i))
	}
	page1, next, err := s.ListAPIKeys(ctx, 2, "")
	mustOK(t, "ListAPIKeys", err)
	if len(page1) != 2 || page1[0].Identifier != "openai" || page1[1].Identifier != "p-0" || next != "p-0" {
		t.Fatalf("page 1: %+v next %q", page1, next)
	}
	page2, next, err := s.ListAPIKeys(ctx, 2, next)
	mustOK(t, "ListAPIKeys 2", err)
	if len(page2) != 2 || page2[0].Identifier != "p-1" || page2[1].Identifier != "p-2" || next != "" {
		t.Fatalf("page 2: %+v next %q", page2, next)
	}

	up, err := s.UpdateAPIKey(ctx, "openai", func(k *credential.APIKey) error {
		k.Name, k.Description, k.UpdatedAt = "New", "new d", at(time.Hour)
		k.ID, k.Version = "hijack", 99 // not the update's to change
		return nil
	})
	mustOK(t, "UpdateAPIKey", err)
	got, _ = s.GetAPIKey(ctx, "openai", t0)
	if got.Name != "New" || got.Description != "new d" || !got.UpdatedAt.Equal(at(time.Hour)) || got.ID != "ak_1" || got.Version != 1 || up.Name != "New" {
		t.Fatalf("after update: %+v", got)
	}
	failed := errors.New("refused")
	_, err = s.UpdateAPIKey(ctx, "openai", func(k *credential.APIKey) error { k.Name = "no"; return failed })
	wantErr(t, "UpdateAPIKey refused", err, failed)
	if got, _ = s.GetAPIKey(ctx, "openai", t0); got.Name != "New" {
		t.Fatal("a refused update was stored")
	}
	_, err = s.UpdateAPIKey(ctx, "nope", func(*credential.APIKey) error { return nil })
	wantErr(t, "UpdateAPIKey unknown", err, store.ErrNotFound)
}

func testAPIKeyRotation(t *testing.T, s *sqlstore.Store) {
	createAPIKey(t, s, "ak_1", "svc")
	// v2 without keeping v1.
	k, err := s.RotateAPIKey(ctx, "svc", at(time.Minute), time.Time{}, sealer("x"))
	mustOK(t, "RotateAPIKey", err)
	if k.Version != 2 || k.LastVersion != 2 || len(k.Versions) != 1 || string(k.Versions[0].Sealed) != "x|ak_1/v2|2" || !k.UpdatedAt.Equal(at(time.Minute)) {
		t.Fatalf("after rotation: %+v", k)
	}
	_, err = s.RollbackAPIKey(ctx, "svc", 0, at(time.Minute))
	wantErr(t, "rollback with nothing kept", err, credential.ErrNoPrevious)

	// v3 keeping v2 for an hour, v4 keeping v3 for a minute.
	_, err = s.RotateAPIKey(ctx, "svc", at(2*time.Minute), at(time.Hour), sealer("y"))
	mustOK(t, "RotateAPIKey keep", err)
	k, err = s.RotateAPIKey(ctx, "svc", at(3*time.Minute), at(4*time.Minute), sealer("z"))
	mustOK(t, "RotateAPIKey keep 2", err)
	if k.Version != 4 || len(k.Versions) != 3 || k.Versions[0].Version != 4 || !k.Versions[0].ExpiresAt.IsZero() ||
		k.Versions[1].Version != 3 || !k.Versions[1].ExpiresAt.Equal(at(4*time.Minute)) || k.Versions[2].Version != 2 {
		t.Fatalf("with kept versions: %+v", k.Versions)
	}
	// Past v3's grace, only v2 is offered.
	k, _ = s.GetAPIKey(ctx, "svc", at(5*time.Minute))
	if len(k.Versions) != 2 || k.Versions[1].Version != 2 {
		t.Fatalf("versions past v3's grace: %+v", k.Versions)
	}
	_, err = s.RollbackAPIKey(ctx, "svc", 3, at(5*time.Minute))
	wantErr(t, "rollback to an expired version", err, credential.ErrNoPrevious)
	_, err = s.RollbackAPIKey(ctx, "svc", 7, at(5*time.Minute))
	wantErr(t, "rollback to an unknown version", err, credential.ErrNoPrevious)

	k, err = s.RollbackAPIKey(ctx, "svc", 0, at(5*time.Minute))
	mustOK(t, "RollbackAPIKey", err)
	if k.Version != 2 || k.LastVersion != 4 || k.Versions[0].Version != 2 || !k.Versions[0].ExpiresAt.IsZero() {
		t.Fatalf("after rollback: %+v", k)
	}
	// The expired v3 is garbage collected; the restored v2 is current, so it stays.
	n, err := s.DeleteExpiredCredentialData(ctx, at(6*time.Minute))
	mustOK(t, "DeleteExpiredCredentialData", err)
	if n != 1 {
		t.Fatalf("garbage collected %d rows, want v3 only", n)
	}
	// v4 was deleted by the rollback; the next rotation is v5.
	k, err = s.RotateAPIKey(ctx, "svc", at(6*time.Minute), time.Time{}, sealer("w"))
	mustOK(t, "RotateAPIKey after rollback", err)
	if k.Version != 5 {
		t.Fatalf("rotation after rollback: version %d, want 5", k.Version)
	}
	_, err = s.RotateAPIKey(ctx, "nope", t0, time.Time{}, sealer("x"))
	wantErr(t, "RotateAPIKey unknown", err, store.ErrNotFound)
	// A failing seal changes nothing.
	boom := errors.New("kms down")
	_, err = s.RotateAPIKey(ctx, "svc", at(7*time.Minute), time.Time{}, func(string, int64) ([]byte, error) { return nil, boom })
	wantErr(t, "RotateAPIKey seal failure", err, boom)
	if k, _ := s.GetAPIKey(ctx, "svc", at(7*time.Minute)); k.Version != 5 {
		t.Fatalf("a failed rotation changed the version to %d", k.Version)
	}
}

func testAPIKeyPrune(t *testing.T, s *sqlstore.Store) {
	createAPIKey(t, s, "ak_1", "svc")
	for i := range credential.MaxKeptVersions + 3 {
		_, err := s.RotateAPIKey(ctx, "svc", at(time.Duration(i)*time.Second), at(time.Hour), sealer("v"))
		mustOK(t, "RotateAPIKey", err)
	}
	k, _ := s.GetAPIKey(ctx, "svc", t0)
	if len(k.Versions) != credential.MaxKeptVersions+1 || k.Versions[len(k.Versions)-1].Version != k.Version-int64(credential.MaxKeptVersions) {
		t.Fatalf("%d versions kept (oldest %d), want the current and %d previous", len(k.Versions), k.Versions[len(k.Versions)-1].Version, credential.MaxKeptVersions)
	}
}

func testOAuthProviderCRUD(t *testing.T, s *sqlstore.Store) {
	p := createProvider(t, s, "op_1", "crm")
	got, err := s.GetOAuthProvider(ctx, "crm")
	mustOK(t, "GetOAuthProvider", err)
	wantEqual(t, "GetOAuthProvider", got, p)
	_, err = s.GetOAuthProvider(ctx, "nope")
	wantErr(t, "GetOAuthProvider unknown", err, store.ErrNotFound)
	wantErr(t, "duplicate", s.CreateOAuthProvider(ctx, newProvider("op_2", "crm")), store.ErrConflict)

	// Empty maps and scopes round-trip as empty, not nil.
	bare := newProvider("op_3", "bare")
	bare.DefaultScopes, bare.TokenParams, bare.PresetParams, bare.Preset = []string{}, map[string]string{}, map[string]string{}, ""
	mustOK(t, "create bare", s.CreateOAuthProvider(ctx, bare))
	got, _ = s.GetOAuthProvider(ctx, "bare")
	wantEqual(t, "bare provider", got, bare)

	list, next, err := s.ListOAuthProviders(ctx, 1, "")
	mustOK(t, "ListOAuthProviders", err)
	if len(list) != 1 || list[0].Identifier != "bare" || next != "bare" {
		t.Fatalf("page 1 %+v %q", list, next)
	}
	list, next, _ = s.ListOAuthProviders(ctx, 1, next)
	if len(list) != 1 || list[0].Identifier != "crm" || next != "" {
		t.Fatalf("page 2 %+v %q", list, next)
	}

	up, err := s.UpdateOAuthProvider(ctx, "crm", func(p *credential.OAuthProvider) error {
		p.Name, p.ClientID, p.DefaultScopes = "CRM", "client-2", []string{"x"}
		p.TokenParams = map[string]string{"resource": "r"}
		p.ClientSecretSealed, p.Generation, p.UpdatedAt = []byte("new-sealed"), 2, at(time.Hour)
		p.ID, p.Identifier = "hijack", "hijack"
		return nil
	})
	mustOK(t, "UpdateOAuthProvider", err)
	got, _ = s.GetOAuthProvider(ctx, "crm")
	wantEqual(t, "after update", got, up)
	if got.ID != "op_1" || got.Generation != 2 || string(got.ClientSecretSealed) != "new-sealed" || got.TokenParams["resource"] != "r" || got.DefaultScopes[0] != "x" {
		t.Fatalf("after update: %+v", got)
	}

	// A failure is recorded for its generation only, and cleared by "".
	mustOK(t, "SetOAuthProviderError", s.SetOAuthProviderError(ctx, "op_1", 2, "invalid_client", at(2*time.Hour)))
	got, _ = s.GetOAuthProvider(ctx, "crm")
	if got.LastError != "invalid_client" || !got.LastErrorAt.Equal(at(2*time.Hour)) {
		t.Fatalf("after SetOAuthProviderError: %q %v", got.LastError, got.LastErrorAt)
	}
	mustOK(t, "stale SetOAuthProviderError", s.SetOAuthProviderError(ctx, "op_1", 1, "timeout", at(3*time.Hour)))
	if got, _ = s.GetOAuthProvider(ctx, "crm"); got.LastError != "invalid_client" {
		t.Fatalf("an older generation's outcome overwrote the error: %q", got.LastError)
	}
	mustOK(t, "clear", s.SetOAuthProviderError(ctx, "op_1", 2, "", at(4*time.Hour)))
	if got, _ = s.GetOAuthProvider(ctx, "crm"); got.LastError != "" {
		t.Fatalf("not cleared: %q", got.LastError)
	}
}

func testOAuthGeneration(t *testing.T, s *sqlstore.Store) {
	createProvider(t, s, "op_1", "crm")
	tok := credential.CachedToken{Key: "op_1/g1/abc", CredentialID: "op_1", Sealed: []byte("t"), ExpiresAt: at(time.Hour), CreatedAt: t0}
	mustOK(t, "PutOAuthToken", s.PutOAuthToken(ctx, tok))
	mustOK(t, "SetOAuthProviderError", s.SetOAuthProviderError(ctx, "op_1", 1, "timeout", t0))
	// Same generation: the cache stays.
	_, err := s.UpdateOAuthProvider(ctx, "crm", func(p *credential.OAuthProvider) error { p.Name = "x"; return nil })
	mustOK(t, "rename", err)
	_, err = s.GetOAuthToken(ctx, tok.Key)
	mustOK(t, "token after a rename", err)
	// A new generation: cached tokens and the last error go.
	p, err := s.UpdateOAuthProvider(ctx, "crm", func(p *credential.OAuthProvider) error { p.Generation++; return nil })
	mustOK(t, "new generation", err)
	_, err = s.GetOAuthToken(ctx, tok.Key)
	wantErr(t, "token after a new generation", err, store.ErrNotFound)
	if p.LastError != "" {
		t.Fatalf("last error %q survived a new generation", p.LastError)
	}
}

func testOutboundNodes(t *testing.T, s *sqlstore.Store) {
	createAgent(t, s, "agt_1")
	createAPIKey(t, s, "ak_1", "openai")
	createProvider(t, s, "op_1", "crm")
	node := func(id, typ, identifier string) credential.Node {
		return credential.Node{ID: id, AgentID: "agt_1", NodeType: credential.NodeLLM, CredentialType: typ, Identifier: identifier,
			UpstreamURL: "https://api.example.com/v1", HeaderTemplate: "Authorization: Bearer {{key}}", CreatedAt: t0, UpdatedAt: t0}
	}
	n, err := s.AddOutboundNode(ctx, node("obn_1", credential.TypeAPIKey, "openai"))
	mustOK(t, "AddOutboundNode", err)
	want := node("obn_1", credential.TypeAPIKey, "openai")
	want.CredentialID, want.CredentialName = "ak_1", "Key openai"
	wantEqual(t, "added node", n, want)

	_, err = s.AddOutboundNode(ctx, node("obn_2", credential.TypeAPIKey, "openai"))
	wantErr(t, "second node for one credential", err, store.ErrConflict)
	_, err = s.AddOutboundNode(ctx, node("obn_3", credential.TypeAPIKey, "crm"))
	wantErr(t, "node naming the wrong type", err, store.ErrNotFound)
	_, err = s.AddOutboundNode(ctx, node("obn_4", credential.TypeAPIKey, "nope"))
	wantErr(t, "node naming no credential", err, store.ErrNotFound)
	other := node("obn_5", credential.TypeAPIKey, "openai")
	other.AgentID = "agt_missing"
	_, err = s.AddOutboundNode(ctx, other)
	wantErr(t, "node of no agent", err, store.ErrNotFound)
	_, err = s.AddOutboundNode(ctx, node("obn_6", credential.TypeOAuthProvider, "crm"))
	mustOK(t, "oauth node", err)

	list, err := s.ListOutboundNodes(ctx, "agt_1")
	mustOK(t, "ListOutboundNodes", err)
	if len(list) != 2 || list[0].Identifier != "crm" || list[1].Identifier != "openai" {
		t.Fatalf("nodes %+v", list)
	}
	up, err := s.UpdateOutboundNode(ctx, "agt_1", "openai", func(n *credential.Node) error {
		n.NodeType, n.UpstreamURL, n.UpdatedAt = credential.NodeExternalService, "", at(time.Hour)
		n.ID = "hijack"
		return nil
	})
	mustOK(t, "UpdateOutboundNode", err)
	list, _ = s.ListOutboundNodes(ctx, "agt_1")
	wantEqual(t, "updated node", list[1], up)
	if up.ID != "obn_1" || up.NodeType != credential.NodeExternalService || up.UpstreamURL != "" {
		t.Fatalf("updated %+v", up)
	}
	_, err = s.UpdateOutboundNode(ctx, "agt_1", "nope", func(*credential.Node) error { return nil })
	wantErr(t, "update unknown node", err, store.ErrNotFound)

	mustOK(t, "DeleteOutboundNode", s.DeleteOutboundNode(ctx, "agt_1", "openai"))
	wantErr(t, "delete again", s.DeleteOutboundNode(ctx, "agt_1", "openai"), store.ErrNotFound)
	if _, err := s.GetAPIKey(ctx, "openai", t0); err != nil {
		t.Fatalf("the credential went with its node: %v", err)
	}
	if list, _ = s.ListOutboundNodes(ctx, "agt_1"); len(list) != 1 {
		t.Fatalf("nodes after delete %+v", list)
	}
}

func testOutboundAccess(t *testing.T, s *sqlstore.Store) {
	createAgent(t, s, "agt_1")
	createAgent(t, s, "agt_2")
	createAPIKey(t, s, "ak_1", "openai")
	p := createProvider(t, s, "op_1", "crm")
	for i, n := range []credential.Node{
		{ID: "obn_1", AgentID: "agt_1", NodeType: credential.NodeLLM, CredentialType: credential.TypeAPIKey, Identifier: "openai"},
		{ID: "obn_2", AgentID: "agt_1", NodeType: credential.NodeExternalService, CredentialType: credential.TypeOAuthProvider, Identifier: "crm"},
	} {
		n.CreatedAt, n.UpdatedAt = at(time.Duration(i)), at(time.Duration(i))
		_, err := s.AddOutboundNode(ctx, n)
		mustOK(t, "AddOutboundNode", err)
	}
	a, err := s.OutboundAccess(ctx, "agt_1", "openai")
	mustOK(t, "OutboundAccess api key", err)
	if a.Node.ID != "obn_1" || !a.AgentActive || a.Provider != nil || a.APIKey == nil || a.APIKey.Version != 1 || string(a.APIKey.Sealed) != "sealed-1-ak_1" {
		t.Fatalf("access %+v %+v", a, a.APIKey)
	}
	// After a rotation, the new current version.
	_, err = s.RotateAPIKey(ctx, "openai", at(time.Minute), at(time.Hour), sealer("r"))
	mustOK(t, "rotate", err)
	a, _ = s.OutboundAccess(ctx, "agt_1", "openai")
	if a.APIKey.Version != 2 || string(a.APIKey.Sealed) != "r|ak_1/v2|2" {
		t.Fatalf("access after rotation %+v", a.APIKey)
	}

	a, err = s.OutboundAccess(ctx, "agt_1", "crm")
	mustOK(t, "OutboundAccess provider", err)
	if a.APIKey != nil || a.Provider == nil {
		t.Fatalf("access %+v", a)
	}
	got := *a.Provider
	if got.ID != p.ID || got.ClientID != p.ClientID || string(got.ClientSecretSealed) != string(p.ClientSecretSealed) ||
		got.TokenEndpoint != p.TokenEndpoint || got.AuthMethod != p.AuthMethod || got.Generation != 1 ||
		len(got.DefaultScopes) != 2 || got.TokenParams["audience"] != p.TokenParams["audience"] {
		t.Fatalf("provider in access %+v", got)
	}

	_, err = s.OutboundAccess(ctx, "agt_2", "openai")
	wantErr(t, "another agent's node", err, store.ErrNotFound)
	// The agent's status comes with the node.
	_, err = s.UpdateAgent(ctx, "agt_1", func(a *agent.Agent) error { a.Status = agent.StatusDisabled; return nil })
	mustOK(t, "disable agent", err)
	if a, err = s.OutboundAccess(ctx, "agt_1", "crm"); err != nil || a.AgentActive {
		t.Fatalf("access of a disabled agent: active=%v, %v", a.AgentActive, err)
	}
	_, err = s.OutboundAccess(ctx, "agt_1", "nope")
	wantErr(t, "unknown identifier", err, store.ErrNotFound)
	mustOK(t, "delete node", s.DeleteOutboundNode(ctx, "agt_1", "openai"))
	_, err = s.OutboundAccess(ctx, "agt_1", "openai")
	wantErr(t, "removed node", err, store.ErrNotFound)
}

func testDeleteCredentialInUse(t *testing.T, s *sqlstore.Store) {
	createAgent(t, s, "agt_1")
	createAgent(t, s, "agt_2")
	createAPIKey(t, s, "ak_1", "shared")
	for _, a := range []string{"agt_2", "agt_1"} {
		_, err := s.AddOutboundNode(ctx, credential.Node{ID: "obn_" + a, AgentID: a, NodeType: credential.NodeLLM, CredentialType: credential.TypeAPIKey, Identifier: "shared"})
		mustOK(t, "AddOutboundNode", err)
	}
	users, err := s.CredentialUsers(ctx, "ak_1")
	mustOK(t, "CredentialUsers", err)
	wantEqual(t, "users", users, []string{"agt_1", "agt_2"})

	err = s.DeleteCredential(ctx, credential.TypeAPIKey, "shared", false)
	var inUse *credential.InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, credential.ErrInUse) {
		t.Fatalf("delete in use: %v", err)
	}
	wantEqual(t, "in use by", inUse.Agents, []string{"agt_1", "agt_2"})
	wantErr(t, "delete as the wrong type", s.DeleteCredential(ctx, credential.TypeOAuthProvider, "shared", true), store.ErrNotFound)
	mustOK(t, "forced delete", s.DeleteCredential(ctx, credential.TypeAPIKey, "shared", true))
	if list, _ := s.ListOutboundNodes(ctx, "agt_1"); len(list) != 0 {
		t.Fatalf("nodes after a forced delete %+v", list)
	}
	_, err = s.GetAPIKey(ctx, "shared", t0)
	wantErr(t, "deleted key", err, store.ErrNotFound)
	wantErr(t, "delete again", s.DeleteCredential(ctx, credential.TypeAPIKey, "shared", false), store.ErrNotFound)

	// An unused credential goes without force, with its cached tokens.
	createProvider(t, s, "op_1", "crm")
	mustOK(t, "PutOAuthToken", s.PutOAuthToken(ctx, credential.CachedToken{Key: "k", CredentialID: "op_1", Sealed: []byte("t"), ExpiresAt: at(time.Hour), CreatedAt: t0}))
	mustOK(t, "delete unused", s.DeleteCredential(ctx, credential.TypeOAuthProvider, "crm", false))
	_, err = s.GetOAuthToken(ctx, "k")
	wantErr(t, "cached token of a deleted provider", err, store.ErrNotFound)
}

func testDeleteAgentRemovesNodes(t *testing.T, s *sqlstore.Store) {
	createAgent(t, s, "agt_1")
	createAPIKey(t, s, "ak_1", "k")
	_, err := s.AddOutboundNode(ctx, credential.Node{ID: "obn_1", AgentID: "agt_1", NodeType: credential.NodeLLM, CredentialType: credential.TypeAPIKey, Identifier: "k"})
	mustOK(t, "AddOutboundNode", err)
	mustOK(t, "DeleteAgent", s.DeleteAgent(ctx, "agt_1"))
	users, _ := s.CredentialUsers(ctx, "ak_1")
	if len(users) != 0 {
		t.Fatalf("a deleted agent still uses the key: %v", users)
	}
	mustOK(t, "delete the key without force", s.DeleteCredential(ctx, credential.TypeAPIKey, "k", false))
}

func testOAuthTokenCache(t *testing.T, s *sqlstore.Store) {
	createProvider(t, s, "op_1", "crm")
	tok := credential.CachedToken{Key: "op_1/g1/s", CredentialID: "op_1", Sealed: []byte("one"), ExpiresAt: at(time.Hour), CreatedAt: t0}
	mustOK(t, "PutOAuthToken", s.PutOAuthToken(ctx, tok))
	got, err := s.GetOAuthToken(ctx, tok.Key)
	mustOK(t, "GetOAuthToken", err)
	wantEqual(t, "cached", got, tok)
	tok.Sealed, tok.ExpiresAt, tok.CreatedAt = []byte("two"), at(2*time.Hour), at(time.Minute)
	mustOK(t, "replace", s.PutOAuthToken(ctx, tok))
	got, _ = s.GetOAuthToken(ctx, tok.Key)
	wantEqual(t, "replaced", got, tok)
	// A token for a provider deleted meanwhile is not stored, without error.
	mustOK(t, "put for a gone provider", s.PutOAuthToken(ctx, credential.CachedToken{Key: "op_gone/g1/s", CredentialID: "op_gone", Sealed: []byte("x"), ExpiresAt: at(time.Hour), CreatedAt: t0}))
	_, err = s.GetOAuthToken(ctx, "op_gone/g1/s")
	wantErr(t, "token of a gone provider", err, store.ErrNotFound)

	// Deleting a token obtained at another time (a replica's newer one) keeps it;
	// deleting the one obtained at its time removes it, and then nothing is left.
	mustOK(t, "DeleteOAuthToken of an older token", s.DeleteOAuthToken(ctx, tok.Key, t0))
	if _, err := s.GetOAuthToken(ctx, tok.Key); err != nil {
		t.Fatalf("a newer token went with an older one: %v", err)
	}
	mustOK(t, "DeleteOAuthToken", s.DeleteOAuthToken(ctx, tok.Key, tok.CreatedAt))
	_, err = s.GetOAuthToken(ctx, tok.Key)
	wantErr(t, "deleted token", err, store.ErrNotFound)
	mustOK(t, "put it back", s.PutOAuthToken(ctx, tok))

	n, err := s.DeleteExpiredCredentialData(ctx, at(90*time.Minute))
	mustOK(t, "DeleteExpiredCredentialData", err)
	if n != 0 {
		t.Fatalf("deleted %d unexpired tokens", n)
	}
	n, _ = s.DeleteExpiredCredentialData(ctx, at(2*time.Hour))
	if n != 1 {
		t.Fatalf("deleted %d expired tokens, want 1", n)
	}
}

func testIdentifierNamespace(t *testing.T, s *sqlstore.Store) {
	createAPIKey(t, s, "ak_1", "same")
	wantErr(t, "provider with an API key's identifier", s.CreateOAuthProvider(ctx, newProvider("op_1", "same")), store.ErrConflict)
	createProvider(t, s, "op_2", "other")
	k, v := newAPIKey("ak_2", "other")
	wantErr(t, "API key with a provider's identifier", s.CreateAPIKey(ctx, k, v), store.ErrConflict)
	// Each type's reads see only their own kind.
	_, err := s.GetAPIKey(ctx, "other", t0)
	wantErr(t, "GetAPIKey of a provider", err, store.ErrNotFound)
	_, err = s.GetOAuthProvider(ctx, "same")
	wantErr(t, "GetOAuthProvider of an API key", err, store.ErrNotFound)
	keys, _, _ := s.ListAPIKeys(ctx, 10, "")
	ps, _, _ := s.ListOAuthProviders(ctx, 10, "")
	if len(keys) != 1 || len(ps) != 1 {
		t.Fatalf("lists mix the types: %d keys, %d providers", len(keys), len(ps))
	}
}
