package idp_test

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/idp"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/user"
)

func ldapProvider(t *testing.T, s *servertest.Server, d *slapd) idp.Provider {
	t.Helper()
	var p idp.Provider
	code := s.Do(t, "POST", "/api/v1/identity-providers", map[string]any{"name": "Corp LDAP", "type": "ldap", "ldap": map[string]any{
		"url": d.URL, "bind_dn": "cn=agentguard,ou=services," + baseDN, "bind_password": "service-account-password",
		"user_base_dn": "ou=people," + baseDN, "user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
		"group_base_dn": "ou=groups," + baseDN, "group_filter": "(&(objectClass=groupOfNames)(member={dn}))",
		"attributes": map[string]any{"attributes": map[string]string{"department": "departmentNumber"}},
	}}, &p)
	if code != 201 {
		t.Fatalf("create LDAP provider: HTTP %d", code)
	}
	return p
}

func ldapEvents(t *testing.T, s *servertest.Server, decision string) []audit.Event {
	t.Helper()
	var es struct{ Items []audit.Event }
	s.Do(t, "GET", "/api/v1/audit/events?action=ldap.login&decision="+decision, nil, &es)
	return es.Items
}

// The directory checks an LDAP user's password against a real slapd: bind as the
// service account, search, bind as the user, read the groups, provision the user.
func TestLDAPAuthenticate(t *testing.T) {
	d := startSlapd(t)
	d.load(t, corpTree()...)
	s := servertest.Start(t, servertest.Options{})
	p := ldapProvider(t, s, d)

	u, err := s.Directory.Authenticate(ctx, "hana", "hana-ldap-password-1")
	if err != nil {
		t.Fatalf("hana: %v", err)
	}
	if u.Source != p.Source() || u.Username != "hana" || u.Email != "hana@example.com" || u.DisplayName != "Hana Hara" ||
		u.ExternalID != "uid=hana,ou=people,"+baseDN || u.Attributes["department"] != "HR" || !slices.Equal(u.Groups, []string{"hr", "staff"}) || !u.Active {
		t.Fatalf("provisioned %+v", u)
	}
	// The next sign-in is the same user, checked again against LDAP.
	again, err := s.Directory.Authenticate(ctx, "HANA", "hana-ldap-password-1")
	if err != nil || again.ID != u.ID {
		t.Fatalf("second sign-in: %+v %v", again, err)
	}
	if es := ldapEvents(t, s, "allow"); len(es) != 2 || es[0].User != u.ID || es[0].Resource != p.ID || es[0].Category != "inbound" {
		t.Fatalf("allow events %+v", es)
	}

	refused := []struct {
		name, username, password string
		event                    string // "": no LDAP deny event
	}{
		{"wrong password", "hana", "hana-ldap-password-X", "refused the password"},
		{"another user's password", "sam", "hana-ldap-password-1", "refused the password"},
		{"unknown user", "nobody", "whatever-password", ""},
		{"filter injection", "*", "hana-ldap-password-1", ""},
		{"filter injection with parentheses", "hana)(uid=*", "hana-ldap-password-1", ""},
		{"empty password", "hana", "", ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ldapEvents(t, s, "deny"))
			_, err := s.Directory.Authenticate(ctx, tt.username, tt.password)
			if !errors.Is(err, user.ErrBadCredentials) || err.Error() != user.ErrBadCredentials.Error() {
				t.Fatalf("err %v, want the one ErrBadCredentials", err)
			}
			es := ldapEvents(t, s, "deny")
			if tt.event == "" {
				if len(es) != before {
					t.Fatalf("unexpected deny events %+v", es[:len(es)-before])
				}
				return
			}
			if len(es) != before+1 || !strings.Contains(es[0].Reason, tt.event) {
				t.Fatalf("deny events %+v, want one with %q", es, tt.event)
			}
		})
	}

	// A local user of the same name is checked locally; LDAP is not asked.
	s.Do(t, "POST", "/api/v1/users", map[string]any{"username": "ivy", "password": "the local password of ivy"}, nil)
	if _, err := s.Directory.Authenticate(ctx, "ivy", "ivy-ldap-password-3"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("LDAP password for a local user: %v", err)
	}
	if lu, err := s.Directory.Authenticate(ctx, "ivy", "the local password of ivy"); err != nil || lu.Source != "local" {
		t.Fatalf("local ivy: %+v %v", lu, err)
	}
	// A deactivated LDAP user stays out though LDAP accepts the password.
	s.Do(t, "PATCH", "/api/v1/users/"+u.ID, map[string]any{"active": false}, nil)
	if _, err := s.Directory.Authenticate(ctx, "hana", "hana-ldap-password-1"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("deactivated LDAP user: %v", err)
	}
}

// A wrong service password, a directory that is down, and a disabled provider all
// fail closed, with the reason in the audit log (never the password).
func TestLDAPFailures(t *testing.T) {
	logs := captureLogs(t)
	d := startSlapd(t)
	d.load(t, corpTree()...)
	s := servertest.Start(t, servertest.Options{})
	p := ldapProvider(t, s, d)

	if code := s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, map[string]any{"ldap": map[string]any{
		"url": d.URL, "bind_dn": "cn=agentguard,ou=services," + baseDN, "bind_password": "wrong-service-password",
		"user_base_dn": "ou=people," + baseDN}}, nil); code != 200 {
		t.Fatalf("patch: HTTP %d", code)
	}
	if _, err := s.Directory.Authenticate(ctx, "sam", "sam-ldap-password-2"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("wrong service password: %v", err)
	}
	es := ldapEvents(t, s, "deny")
	if len(es) != 1 || !strings.Contains(es[0].Reason, "bind as the service account") || strings.Contains(es[0].Reason, "wrong-service-password") {
		t.Fatalf("events %+v", es)
	}

	d.Stop()
	if _, err := s.Directory.Authenticate(ctx, "sam", "sam-ldap-password-2"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("directory down: %v", err)
	}
	if es := ldapEvents(t, s, "deny"); len(es) != 2 || !strings.Contains(es[0].Reason, "connect") {
		t.Fatalf("events %+v", es)
	}
	s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, map[string]any{"enabled": false}, nil)
	if _, err := s.Directory.Authenticate(ctx, "sam", "sam-ldap-password-2"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("disabled provider: %v", err)
	}
	if es := ldapEvents(t, s, "deny"); len(es) != 2 {
		t.Fatalf("a disabled provider was asked: %+v", es)
	}
	for _, secret := range []string{"wrong-service-password", "service-account-password", "sam-ldap-password-2"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a password is in the logs: %s", logs.String())
		}
	}
}

// An LDAP user signs in through the login page like a local one, and the HR-only
// agent's policy reads the department LDAP gave them.
func TestLDAPSignInThroughTheLoginPage(t *testing.T) {
	d := startSlapd(t)
	d.load(t, corpTree()...)
	s := servertest.Start(t, servertest.Options{})
	ldapProvider(t, s, d)
	clientID, _ := signintest.Client(t, s, "web", []string{redirectURI}, nil)
	_, challenge := signintest.PKCE()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	b := signintest.NewBrowser(t, s.URL)
	page := b.Get(t, s.URL+"/oauth2/authorize?"+q.Encode())
	done := b.Submit(t, page, map[string]string{"username": "hana", "password": "hana-ldap-password-1"})
	if done.Location == nil || done.Location.Query().Get("code") == "" {
		t.Fatalf("LDAP sign-in through the form: HTTP %d %s", done.Status, done.Body)
	}
	u, err := s.Directory.Store.GetUserByUsername(ctx, "hana")
	if err != nil {
		t.Fatal(err)
	}
	var a struct{ ID string }
	s.Do(t, "POST", "/api/v1/agents", map[string]any{"name": "hr-bot", "type": "interactive", "access_identity": "human"}, &a)
	s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/inbound", map[string]any{"client_id": clientID,
		"policy": `permit(principal, action, resource) when { principal.department == "HR" && principal in Group::"hr" };`}, nil)
	var ev struct{ Allow bool }
	s.Do(t, "POST", "/api/v1/agents/"+a.ID+"/inbound/evaluate", map[string]any{"client_id": clientID, "user": u.ID}, &ev)
	if !ev.Allow {
		t.Fatal("the HR-only agent refuses the LDAP HR user")
	}
}

// LDAP over TLS against slapd with a certificate from the test's own CA: ldaps://
// and StartTLS work when ca_cert names that CA, and every way the server's
// identity fails to verify (no ca_cert, another CA, a name the certificate is not
// for) refuses the sign-in, with the reason in the audit event.
func TestLDAPOverTLS(t *testing.T) {
	d := startSlapdTLS(t)
	d.load(t, corpTree()...)
	s := servertest.Start(t, servertest.Options{})
	p := ldapProvider(t, s, d)
	otherCA, _, _ := testCA(t, "another CA", net.IPv4(127, 0, 0, 1))
	localhost := strings.Replace(d.LDAPSURL, "127.0.0.1", "localhost", 1)

	tests := []struct {
		name     string
		url      string
		startTLS bool
		caCert   string
		reason   string // of the deny event; "" means the sign-in works
	}{
		{"ldaps with the CA", d.LDAPSURL, false, d.CACert, ""},
		{"StartTLS with the CA", d.URL, true, d.CACert, ""},
		{"ldaps without ca_cert (system roots)", d.LDAPSURL, false, "", "certificate"},
		{"StartTLS with another CA", d.URL, true, otherCA, "certificate"},
		{"ldaps with another CA", d.LDAPSURL, false, otherCA, "certificate"},
		{"ldaps to a name the certificate is not for", localhost, false, d.CACert, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := map[string]any{
				"url": tt.url, "start_tls": tt.startTLS, "ca_cert": tt.caCert,
				"bind_dn": "cn=agentguard,ou=services," + baseDN, "bind_password": "service-account-password",
				"user_base_dn": "ou=people," + baseDN, "group_base_dn": "ou=groups," + baseDN,
			}
			if code := s.Do(t, "PATCH", "/api/v1/identity-providers/"+p.ID, map[string]any{"ldap": cfg}, nil); code != 200 {
				t.Fatalf("patch: HTTP %d", code)
			}
			denied := len(ldapEvents(t, s, "deny"))
			u, err := s.Directory.Authenticate(ctx, "hana", "hana-ldap-password-1")
			if tt.reason == "" {
				if err != nil || u.Username != "hana" || !slices.Equal(u.Groups, []string{"hr", "staff"}) {
					t.Fatalf("sign-in: %+v %v", u, err)
				}
				return
			}
			if !errors.Is(err, user.ErrBadCredentials) {
				t.Fatalf("sign-in over an unverified connection: %+v %v", u, err)
			}
			es := ldapEvents(t, s, "deny")
			if len(es) != denied+1 || !strings.Contains(es[0].Reason, tt.reason) {
				t.Fatalf("deny events %+v, want one more naming %q", es, tt.reason)
			}
		})
	}
}
