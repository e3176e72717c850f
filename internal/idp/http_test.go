package idp_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

type problem struct {
	Status int `json:"status"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

func (p problem) fields() []string {
	out := []string{}
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	slices.Sort(out)
	return out
}

func oidcBody(mut func(o map[string]any)) map[string]any {
	o := map[string]any{"issuer": "https://login.example.com/tenant/v2.0", "client_id": "agentguard", "client_secret": "s3cret-client-secret-value"}
	if mut != nil {
		mut(o)
	}
	return map[string]any{"name": "Entra", "type": "oidc", "oidc": o}
}

func ldapBody(mut func(l map[string]any)) map[string]any {
	l := map[string]any{"url": "ldaps://ldap.example.com", "bind_dn": "cn=svc,dc=example,dc=com", "bind_password": "s3cret-bind-password",
		"user_base_dn": "ou=people,dc=example,dc=com"}
	if mut != nil {
		mut(l)
	}
	return map[string]any{"name": "LDAP", "type": "ldap", "ldap": l}
}

// Settings are checked field by field, with what would be right.
func TestIdentityProviderValidation(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"no type", map[string]any{"name": "x"}, []string{"type"}},
		{"oidc without settings", map[string]any{"name": "x", "type": "oidc"}, []string{"oidc"}},
		{"oidc issuer over plain http", oidcBody(func(o map[string]any) { o["issuer"] = "http://login.example.com" }), []string{"oidc.issuer"}},
		{"oidc without a secret", oidcBody(func(o map[string]any) { delete(o, "client_secret") }), []string{"oidc.client_secret"}},
		{"oidc scopes without openid", oidcBody(func(o map[string]any) { o["scopes"] = []string{"profile"} }), []string{"oidc.scopes"}},
		{"oidc claim with a space", oidcBody(func(o map[string]any) { o["claims"] = map[string]any{"groups": "my groups"} }), []string{"oidc.claims.groups"}},
		{"oidc attribute name", oidcBody(func(o map[string]any) {
			o["claims"] = map[string]any{"attributes": map[string]string{"Dept": "department", "email": "x"}}
		}), []string{"oidc.claims.attributes", "oidc.claims.attributes"}},
		{"ldap in clear text to a remote host", ldapBody(func(l map[string]any) { l["url"] = "ldap://ldap.example.com" }), []string{"ldap.url"}},
		{"ldap url scheme", ldapBody(func(l map[string]any) { l["url"] = "https://ldap.example.com" }), []string{"ldap.url"}},
		{"ldap bind DN", ldapBody(func(l map[string]any) { l["bind_dn"] = "not a dn" }), []string{"ldap.bind_dn"}},
		{"ldap bind DN without password", ldapBody(func(l map[string]any) { delete(l, "bind_password") }), []string{"ldap.bind_password"}},
		{"ldap user filter without {username}", ldapBody(func(l map[string]any) { l["user_filter"] = "(uid=alice)" }), []string{"ldap.user_filter"}},
		{"ldap user filter that does not parse", ldapBody(func(l map[string]any) { l["user_filter"] = "(uid={username}" }), []string{"ldap.user_filter"}},
		{"ldap group filter", ldapBody(func(l map[string]any) {
			l["group_base_dn"] = "ou=groups,dc=example,dc=com"
			l["group_filter"] = "(member=x)"
		}), []string{"ldap.group_filter"}},
		{"ldap CA that is not PEM", ldapBody(func(l map[string]any) { l["ca_cert"] = "hello" }), []string{"ldap.ca_cert"}},
		{"ldap StartTLS on ldaps", ldapBody(func(l map[string]any) { l["start_tls"] = true }), []string{"ldap.start_tls"}},
		{"ldap attribute", ldapBody(func(l map[string]any) { l["attributes"] = map[string]any{"email": "mail address"} }), []string{"ldap.attributes.email"}},
		{"both settings", map[string]any{"name": "x", "type": "ldap", "ldap": ldapBody(nil)["ldap"], "oidc": oidcBody(nil)["oidc"]}, []string{"ldap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problem
			if code := s.Do(t, "POST", "/api/v1/identity-providers", tt.body, &p); code != 400 || !slices.Equal(p.fields(), tt.fields) {
				t.Fatalf("HTTP %d fields %v (%+v), want 400 naming %v", code, p.fields(), p, tt.fields)
			}
		})
	}
	// Plain ldap:// is fine on loopback, and with StartTLS elsewhere.
	for _, b := range []map[string]any{
		ldapBody(func(l map[string]any) { l["url"] = "ldap://127.0.0.1:389" }),
		ldapBody(func(l map[string]any) { l["url"] = "ldap://ldap.example.com"; l["start_tls"] = true }),
	} {
		b["name"] = b["ldap"].(map[string]any)["url"]
		if code := s.Do(t, "POST", "/api/v1/identity-providers", b, nil); code != 201 {
			t.Fatalf("%v: HTTP %d", b, code)
		}
	}
}

// Secrets are write-only: never in an answer, the audit log or the database in
// the clear; PATCH without a secret keeps it, with one replaces it.
func TestIdentityProviderSecrets(t *testing.T) {
	dir := t.TempDir()
	s := servertest.Start(t, servertest.Options{DataDir: dir})
	var answers bytes.Buffer
	var p idp.Provider
	var raw json.RawMessage
	s.Do(t, "POST", "/api/v1/identity-providers", oidcBody(nil), &raw)
	answers.Write(raw)
	json.Unmarshal(raw, &p)
	if !p.SecretSet || p.ID == "" || !p.Enabled || !strings.Contains(string(raw), `"redirect_uri":"`+s.URL+idp.CallbackPath+`"`) {
		t.Fatalf("create: %s", raw)
	}
	s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, map[string]any{"name": "Entra ID", "enabled": false}, &raw)
	answers.Write(raw)
	_, sealed, _ := s.Store.GetIdentityProvider(ctx, p.ID)
	if plain, err := s.Envelope.Open(ctx, sealed, idp.SecretAAD(p.ID)); err != nil || string(plain) != "s3cret-client-secret-value" {
		t.Fatalf("secret after a PATCH without one: %v", err)
	}
	s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, oidcBody(func(o map[string]any) { o["client_secret"] = "n3w-client-secret-value" }), &raw)
	answers.Write(raw)
	_, sealed, _ = s.Store.GetIdentityProvider(ctx, p.ID)
	if plain, _ := s.Envelope.Open(ctx, sealed, idp.SecretAAD(p.ID)); string(plain) != "n3w-client-secret-value" {
		t.Fatal("the secret was not replaced")
	}
	var pr problem
	if code := s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, map[string]any{"type": "ldap"}, &pr); code != 400 {
		t.Fatalf("changing the type: HTTP %d", code)
	}
	if code := s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, ldapBody(nil), &pr); code != 400 {
		t.Fatalf("LDAP settings on an OIDC provider: HTTP %d", code)
	}
	s.Do(t, "GET", "/api/v1/identity-providers", nil, &raw)
	answers.Write(raw)
	s.Do(t, "GET", "/api/v1/identity-providers/"+p.ID, nil, &raw)
	answers.Write(raw)
	s.Do(t, "GET", "/api/v1/audit/events?resource_type=identity_provider", nil, &raw)
	answers.Write(raw)
	if !strings.Contains(string(raw), "identity_provider.update") {
		t.Fatalf("no update events: %s", raw)
	}
	answers.Write(storetest.SQLiteBytes(t, dir))
	for _, sec := range []string{"s3cret-client-secret-value", "n3w-client-secret-value"} {
		if bytes.Contains(answers.Bytes(), []byte(sec)) {
			t.Fatalf("the secret %q shows in an answer, an event or the database", sec)
		}
	}
	if code := s.Do(t, "DELETE", "/api/v1/identity-providers/"+p.ID, nil, nil); code != 204 {
		t.Fatalf("delete: HTTP %d", code)
	}
	if code := s.Do(t, "GET", "/api/v1/identity-providers/"+p.ID, nil, nil); code != 404 {
		t.Fatalf("get deleted: HTTP %d", code)
	}
}

func TestClaimPaths(t *testing.T) {
	claims := map[string]any{
		"email": "a@b.c", "realm_access": map[string]any{"roles": []any{"admin", "user"}},
		"https://corp.example/claims.roles": []any{"x"}, "n": 42.0, "deep": map[string]any{"a": map[string]any{"b": "c"}},
	}
	for path, want := range map[string]any{
		"email": "a@b.c", "realm_access.roles": []any{"admin", "user"}, "https://corp.example/claims.roles": []any{"x"},
		"n": 42.0, "deep.a.b": "c",
	} {
		p, err := idp.ParseClaimPath(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, ok := p.Lookup(claims)
		if !ok {
			t.Fatalf("%s: not found", path)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("%s: %s, want %s", path, gb, wb)
		}
	}
	for _, missing := range []string{"realm_access.groups", "email.x", "deep.a.b.c", "nope"} {
		p, _ := idp.ParseClaimPath(missing)
		if _, ok := p.Lookup(claims); ok {
			t.Fatalf("%s found", missing)
		}
	}
	for _, bad := range []string{"", "a b", "tab\tx", strings.Repeat("a", 257), "a.b.c.d.e.f.g.h.i"} {
		if _, err := idp.ParseClaimPath(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// Any claim path and any claims: parsing and lookup never panic.
func FuzzClaimPath(f *testing.F) {
	for _, s := range []string{"email", "realm_access.roles", "https://corp.example/claims.roles", "a..b", ".", "a.b.c.d.e.f.g.h"} {
		f.Add(s, `{"email":"x","realm_access":{"roles":["a"]},"a":{"b":[1,{"c":2}]}}`)
	}
	f.Fuzz(func(t *testing.T, path, claimsJSON string) {
		p, err := idp.ParseClaimPath(path)
		if err != nil {
			return
		}
		var claims map[string]any
		if json.Unmarshal([]byte(claimsJSON), &claims) != nil {
			return
		}
		p.Lookup(claims)
	})
}
