package signin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

func getUserinfo(t *testing.T, base, bearer string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/oauth2/userinfo", nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

// Who may call userinfo: a live user's access token with openid, and nothing else;
// the claims follow the token's scopes.
func TestUserinfoWhoMayCall(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	alice := f.addUser(t, "alice", "alice-pass-phrase", "hr")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	agentID, audience, agentSecret := f.agent(t, "bot", "human")
	f.allowGroup(t, agentID, spa, "hr")
	b := signintest.NewBrowser(t, f.URL)
	tokenFor := func(extra url.Values) string {
		fl := newFlow(spa, extra)
		status, tok := f.redeem(t, spa, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
		if status != 200 {
			t.Fatalf("HTTP %d %v", status, tok)
		}
		return tok["access_token"].(string)
	}
	profileOnly := tokenFor(url.Values{"scope": {"openid profile"}})
	withEmail := tokenFor(url.Values{"scope": {"openid email groups"}})
	noOpenID := tokenFor(url.Values{"resource": {audience}, "scope": {"agent.access"}})
	_, agentTok := postForm(t, f.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, agentID, agentSecret)

	status, _, out := getUserinfo(t, f.URL, profileOnly)
	if status != 200 || out["sub"] != alice.ID || out["preferred_username"] != "alice" || out["email"] != nil {
		t.Fatalf("profile scope: HTTP %d %v (no email without the email scope)", status, out)
	}
	status, _, out = getUserinfo(t, f.URL, withEmail)
	if status != 200 || out["email"] != "alice@example.com" || out["name"] != nil || len(out["groups"].([]any)) != 1 {
		t.Fatalf("email groups scopes: HTTP %d %v", status, out)
	}

	tests := []struct {
		name   string
		bearer string
		status int
		code   string
	}{
		{"no token", "", 401, ""},
		{"garbage", "not.a.token", 401, "invalid_token"},
		{"an agent's own token", agentTok["access_token"].(string), 401, "invalid_token"},
		{"a user token without openid", noOpenID, 403, "insufficient_scope"},
		{"an ID token", "", 401, "invalid_token"},
	}
	fl := newFlow(spa, nil)
	_, tok := f.redeem(t, spa, "", f.code(t, b, fl, "", ""), nil, fl.verifier)
	tests[4].bearer = tok["id_token"].(string)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, out := getUserinfo(t, f.URL, tt.bearer)
			if status != tt.status || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("HTTP %d WWW-Authenticate %q", status, h.Get("WWW-Authenticate"))
			}
			if tt.code != "" && (errCode(out) != tt.code || !strings.Contains(h.Get("WWW-Authenticate"), `error="`+tt.code+`"`)) {
				t.Fatalf("error %v header %q, want %s", out, h.Get("WWW-Authenticate"), tt.code)
			}
		})
	}
	t.Run("revoked", func(t *testing.T) {
		postForm(t, f.URL+"/oauth2/revoke", url.Values{"token": {profileOnly}, "client_id": {spa}}, "", "")
		if status, _, _ := getUserinfo(t, f.URL, profileOnly); status != 401 {
			t.Fatalf("HTTP %d", status)
		}
	})
	t.Run("deactivated user", func(t *testing.T) {
		f.setActive(t, alice.ID, false)
		defer f.setActive(t, alice.ID, true)
		if status, _, _ := getUserinfo(t, f.URL, withEmail); status != 401 {
			t.Fatalf("HTTP %d", status)
		}
	})
}

// Who may call the token, introspection and revocation endpoints now that clients
// exist: each grant for its kind of caller, introspection for authenticated callers
// only, revocation of one's own tokens only.
func TestClientsAtTheOAuthEndpoints(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	spa, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	other, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	web, webSecret := signintest.Client(t, f.Server, "web", []string{appCallback}, nil)
	agentID, _, agentSecret := f.agent(t, "bot", "machine")
	b := signintest.NewBrowser(t, f.URL)
	fl := newFlow(spa, nil)
	_, tok := f.redeem(t, spa, "", f.code(t, b, fl, "alice", "alice-pass-phrase"), nil, fl.verifier)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)

	tests := []struct {
		name    string
		path    string
		form    url.Values
		id, sec string
		status  int
		code    string
	}{
		{"a client cannot use client_credentials", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, web, webSecret, 400, "unauthorized_client"},
		{"a public client cannot use client_credentials", "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {spa}}, "", "", 400, "unauthorized_client"},
		{"an agent cannot redeem codes", "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {"agac_x"}}, agentID, agentSecret, 400, "unauthorized_client"},
		{"an agent has no refresh tokens", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, agentID, agentSecret, 400, "unauthorized_client"},
		{"a confidential client without its secret", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {web}}, "", "", 401, "invalid_client"},
		{"a public client with a made-up secret", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, spa, "made-up", 401, "invalid_client"},
		{"an unknown client", "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cli_nobody"}}, "", "", 401, "invalid_client"},
		{"a public client cannot introspect", "/oauth2/introspect", url.Values{"token": {at}, "client_id": {spa}}, "", "", 401, "invalid_client"},
		{"a client cannot revoke another client's token", "/oauth2/revoke", url.Values{"token": {at}, "client_id": {other}}, "", "", 400, "unauthorized_client"},
		{"a client cannot revoke another client's refresh token", "/oauth2/revoke", url.Values{"token": {rt}}, web, webSecret, 400, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := postForm(t, f.URL+tt.path, tt.form, tt.id, tt.sec)
			if status != tt.status || errCode(out) != tt.code {
				t.Fatalf("HTTP %d %v, want %d %s", status, out, tt.status, tt.code)
			}
		})
	}

	// A confidential client may introspect.
	status, out := postForm(t, f.URL+"/oauth2/introspect", url.Values{"token": {at}}, web, webSecret)
	if status != 200 || out["active"] != true || out["client_id"] != spa {
		t.Fatalf("introspection by a confidential client: HTTP %d %v", status, out)
	}
	// A public client revokes its own refresh token: the family and its access token go.
	if status, _ := postForm(t, f.URL+"/oauth2/revoke", url.Values{"token": {rt}, "client_id": {spa}, "token_type_hint": {"refresh_token"}}, "", ""); status != 200 {
		t.Fatalf("revoke own refresh token: HTTP %d", status)
	}
	if f.active(t, at) {
		t.Fatal("access token still active after its refresh token family was revoked")
	}
	if status, _ := f.refresh(t, spa, "", rt); status != 400 {
		t.Fatal("revoked refresh token still works")
	}
}

// Discovery lists the sign-in endpoints and capabilities; go-oidc reads it in the
// flow test, this checks the values.
func TestDiscoveryListsSignIn(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	resp, err := http.Get(f.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	for k, want := range map[string]string{
		"authorization_endpoint": f.URL + "/oauth2/authorize", "userinfo_endpoint": f.URL + "/oauth2/userinfo",
		"end_session_endpoint": f.URL + "/oauth2/logout",
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %s", k, m[k], want)
		}
	}
	list := func(k string) []string {
		var out []string
		for _, v := range m[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	for k, want := range map[string][]string{
		"response_types_supported":         {"code"},
		"code_challenge_methods_supported": {"S256"},
		"grant_types_supported":            {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"},
	} {
		if !slices.Equal(list(k), want) {
			t.Errorf("%s = %v, want %v", k, list(k), want)
		}
	}
	for _, sc := range []string{"openid", "profile", "email", "groups", "offline_access", "agent.access"} {
		if !slices.Contains(list("scopes_supported"), sc) {
			t.Errorf("scopes_supported lacks %s", sc)
		}
	}
	if m["authorization_response_iss_parameter_supported"] != true || !slices.Contains(list("token_endpoint_auth_methods_supported"), "none") {
		t.Errorf("metadata %v", m)
	}
}
