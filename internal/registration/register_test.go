package registration_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
)

// register posts client metadata to /oauth2/register and decodes the answer.
func register(t *testing.T, s *servertest.Server, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	resp, err := http.Post(s.URL+"/oauth2/register", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

// mcpClient is what an MCP client sends (the Go MCP SDK's shape): a public native
// app with a loopback redirect.
func mcpClient() map[string]any {
	return map[string]any{
		"client_name": "MCP Inspector", "redirect_uris": []string{"http://127.0.0.1:6274/oauth/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "application_type": "native", "software_id": "inspector", "software_version": "0.9",
		"some_future_member": map[string]any{"ignored": true},
	}
}

// authorizeStatus loads the authorization endpoint for clientID, as a browser.
func authorizeStatus(t *testing.T, s *servertest.Server, clientID, redirect string) signintest.Page {
	t.Helper()
	_, challenge := signintest.PKCE()
	b := signintest.NewBrowser(t, s.URL)
	return b.Get(t, s.URL+"/oauth2/authorize?"+url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode())
}

type event struct {
	Category, Action, Decision, Reason, Resource, User string
	ClientID                                           string `json:"client_id"`
}

func events(t *testing.T, s *servertest.Server, action string) []event {
	t.Helper()
	var out struct{ Items []event }
	s.Do(t, "GET", "/api/v1/audit/events?limit=500&action="+action, nil, &out)
	return out.Items
}

// In approval mode (the default) a registration is pending: its client id works
// nowhere until an administrator approves it; then the client exists with what was
// registered. Discovery advertises the endpoint.
func TestRegisterPendingUntilApproved(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	var md map[string]any
	resp, _ := http.Get(s.URL + "/.well-known/oauth-authorization-server")
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["registration_endpoint"] != s.URL+"/oauth2/register" {
		t.Fatalf("discovery: registration_endpoint = %v", md["registration_endpoint"])
	}

	code, out, h := register(t, s, mcpClient())
	if code != 201 || out["registration_status"] != "pending" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("register: HTTP %d %v", code, out)
	}
	id, _ := out["client_id"].(string)
	if !strings.HasPrefix(id, "cli_") || out["client_secret"] != nil || out["token_endpoint_auth_method"] != "none" ||
		out["application_type"] != "native" || out["client_id_issued_at"] == nil {
		t.Fatalf("registration response %v", out)
	}
	const redirect = "http://127.0.0.1:6274/oauth/callback"
	if p := authorizeStatus(t, s, id, redirect); p.Status == 200 && strings.Contains(p.Body, "password") {
		t.Fatal("a pending client got the login page")
	}
	if code := s.Do(t, "GET", "/api/v1/clients/"+id, nil, nil); code != 404 {
		t.Fatalf("pending client exists in the registry: HTTP %d", code)
	}

	var list struct {
		Items []struct {
			ID, Status, SourceIP string
			ClientType           string `json:"client_type"`
			SoftwareID           string `json:"software_id"`
		}
	}
	if code := s.Do(t, "GET", "/api/v1/client-registrations?status=pending", nil, &list); code != 200 || len(list.Items) != 1 ||
		list.Items[0].ID != id || list.Items[0].ClientType != "native" || list.Items[0].SoftwareID != "inspector" {
		t.Fatalf("pending list: HTTP %d %+v", code, list)
	}
	var approved struct {
		Status    string
		DecidedBy string `json:"decided_by"`
	}
	if code := s.Do(t, "POST", "/api/v1/client-registrations/"+id+"/approve", nil, &approved); code != 200 || approved.Status != "approved" || approved.DecidedBy == "" {
		t.Fatalf("approve: HTTP %d %+v", code, approved)
	}
	var cl struct{ Name, Type string }
	if code := s.Do(t, "GET", "/api/v1/clients/"+id, nil, &cl); code != 200 || cl.Name != "MCP Inspector" || cl.Type != "native" {
		t.Fatalf("client after approval: HTTP %d %+v", code, cl)
	}
	if p := authorizeStatus(t, s, id, redirect); p.Status != 200 || len(p.Forms(t)) == 0 {
		t.Fatalf("approved client: authorize HTTP %d", p.Status)
	}
	if code := s.Do(t, "POST", "/api/v1/client-registrations/"+id+"/approve", nil, nil); code != 409 {
		t.Fatalf("second approval: HTTP %d", code)
	}
	if ev := events(t, s, "client.register"); len(ev) != 1 || ev[0].Decision != "allow" || ev[0].ClientID != id {
		t.Fatalf("register events %+v", ev)
	}
	if ev := events(t, s, "client_registration.approve"); len(ev) != 1 || ev[0].Resource != id {
		t.Fatalf("approve events %+v", ev)
	}
}

// A confidential registration gets its secret once; it authenticates only after
// approval; a rejected registration never becomes a client.
func TestRegisterConfidentialAndReject(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	body := map[string]any{"client_name": "Server-side MCP host", "redirect_uris": []string{"https://host.example.com/cb"},
		"token_endpoint_auth_method": "client_secret_basic"}
	_, out, _ := register(t, s, body)
	id, sec := out["client_id"].(string), out["client_secret"].(string)
	if !strings.HasPrefix(sec, "agcs_") || out["client_secret_expires_at"] != float64(0) {
		t.Fatalf("confidential registration %v", out)
	}
	// Client authentication at the token endpoint: refused while pending
	// (invalid_client), accepted after approval (the bogus code is then the error).
	tokenError := func() string {
		req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
			"code": {"agac_bogus"}, "redirect_uri": {"https://host.example.com/cb"}, "code_verifier": {strings.Repeat("v", 43)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return e.Error
	}
	if e := tokenError(); e != "invalid_client" {
		t.Fatalf("pending client authenticated: %s", e)
	}
	s.Do(t, "POST", "/api/v1/client-registrations/"+id+"/approve", nil, nil)
	if e := tokenError(); e != "invalid_grant" {
		t.Fatalf("approved client: %s, want invalid_grant (authenticated, bad code)", e)
	}

	_, out, _ = register(t, s, body)
	rejected := out["client_id"].(string)
	var view struct{ Status, Reason string }
	if code := s.Do(t, "POST", "/api/v1/client-registrations/"+rejected+"/reject", map[string]any{"reason": "unknown vendor"}, &view); code != 200 ||
		view.Status != "rejected" || view.Reason != "unknown vendor" {
		t.Fatalf("reject: HTTP %d %+v", code, view)
	}
	if code := s.Do(t, "POST", "/api/v1/client-registrations/"+rejected+"/approve", nil, nil); code != 409 {
		t.Fatalf("approving a rejected registration: HTTP %d", code)
	}
	if code := s.Do(t, "GET", "/api/v1/clients/"+rejected, nil, nil); code != 404 {
		t.Fatalf("a rejected registration became a client: HTTP %d", code)
	}
	if code := s.Do(t, "POST", "/api/v1/client-registrations/cli_nope/reject", nil, nil); code != 404 {
		t.Fatalf("unknown registration: HTTP %d", code)
	}
	// The secret appears in no audit event and no registration view.
	var all struct{ Items []json.RawMessage }
	s.Do(t, "GET", "/api/v1/audit/events?limit=500", nil, &all)
	var regs json.RawMessage
	s.Do(t, "GET", "/api/v1/client-registrations", nil, &regs)
	raw, _ := json.Marshal(all)
	if bytes.Contains(raw, []byte(sec)) || bytes.Contains(regs, []byte(sec)) {
		t.Fatal("the client secret is in the audit log or the registrations API")
	}
}

// Open mode creates the client at once, its name marked unverified; off mode has no
// endpoint and advertises none.
func TestRegisterModes(t *testing.T) {
	open := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.ClientRegistration = "open" }})
	code, out, _ := register(t, open, mcpClient())
	if code != 201 || out["registration_status"] != "approved" || out["client_name"] != "MCP Inspector (unverified)" {
		t.Fatalf("open: HTTP %d %v", code, out)
	}
	if code := open.Do(t, "GET", "/api/v1/clients/"+out["client_id"].(string), nil, nil); code != 200 {
		t.Fatalf("open mode: client not created: HTTP %d", code)
	}

	off := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.ClientRegistration = "off" }})
	if code, _, _ := register(t, off, mcpClient()); code == 201 {
		t.Fatal("off mode registered a client")
	}
	var md map[string]any
	resp, _ := http.Get(off.URL + "/.well-known/openid-configuration")
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if _, ok := md["registration_endpoint"]; ok {
		t.Fatal("off mode advertises a registration endpoint")
	}
}

// Every kind of bad metadata is refused with the RFC 7591 error code and a reason,
// and audited as a denial.
func TestRegisterRefusals(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.ClientRegistrationsPerIP = 1000 }})
	with := func(k string, v any) map[string]any {
		m := mcpClient()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		body any
		code int
		err  string
		says string
	}{
		{"no redirect_uris", with("redirect_uris", nil), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"http on a remote host", with("redirect_uris", []string{"http://evil.example.com/cb"}), 400, "invalid_redirect_uri", "not loopback"},
		{"private-use scheme", with("redirect_uris", []string{"com.example.app:/cb"}), 400, "invalid_redirect_uri", "https"},
		{"javascript: URI", with("redirect_uris", []string{"javascript:alert(1)"}), 400, "invalid_redirect_uri", "https"},
		{"fragment", with("redirect_uris", []string{"https://a.example.com/cb#x"}), 400, "invalid_redirect_uri", "fragment"},
		{"wildcard", with("redirect_uris", []string{"https://*.example.com/cb"}), 400, "invalid_redirect_uri", "wildcard"},
		{"user info", with("redirect_uris", []string{"https://u:p@a.example.com/cb"}), 400, "invalid_redirect_uri", "user info"},
		{"listed twice", with("redirect_uris", []string{"https://a.example.com/cb", "https://a.example.com/cb"}), 400, "invalid_redirect_uri", "twice"},
		{"eleven redirect URIs", with("redirect_uris", strings.Split(strings.Repeat("https://a.example.com/cb,", 11), ",")[:11]), 400, "invalid_redirect_uri", "at most 10"},
		{"private_key_jwt", with("token_endpoint_auth_method", "private_key_jwt"), 400, "invalid_client_metadata", "not supported"},
		{"client_credentials grant", with("grant_types", []string{"client_credentials"}), 400, "invalid_client_metadata", "agents are registered by an administrator"},
		{"implicit response type", with("response_types", []string{"token"}), 400, "invalid_client_metadata", "response_types"},
		{"unknown application_type", with("application_type", "browser"), 400, "invalid_client_metadata", "application_type"},
		{"software statement", with("software_statement", "eyJ..."), 400, "invalid_software_statement", "not supported"},
		{"logo over http", with("logo_uri", "http://cdn.example.com/logo.png"), 400, "invalid_client_metadata", "logo_uri"},
		{"contact not an email", with("contacts", []string{"call me"}), 400, "invalid_client_metadata", "contacts[0]"},
		{"control characters in the name", with("client_name", "Evil\u0000App"), 400, "invalid_client_metadata", "client_name"},
		{"name too long", with("client_name", strings.Repeat("n", 300)), 400, "invalid_client_metadata", "client_name"},
		{"redirect_uris not a list", with("redirect_uris", "https://a.example.com/cb"), 400, "invalid_client_metadata", "redirect_uris"},
		{"not JSON", "client_name=x", 400, "invalid_client_metadata", "JSON"},
		{"two objects", `{"redirect_uris":["https://a.example.com/cb"]} {}`, 400, "invalid_client_metadata", "after the JSON object"},
		{"over 16 KiB", `{"client_name":"` + strings.Repeat("x", 17<<10) + `"}`, 413, "invalid_client_metadata", "over"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := register(t, s, tc.body)
			if code != tc.code || out["error"] != tc.err || !strings.Contains(out["error_description"].(string), tc.says) {
				t.Fatalf("HTTP %d %v, want %d %s mentioning %q", code, out, tc.code, tc.err, tc.says)
			}
		})
	}
	// A body that is not application/json.
	resp, _ := http.Post(s.URL+"/oauth2/register", "application/x-www-form-urlencoded", strings.NewReader("client_name=x"))
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Fatalf("form body: HTTP %d", resp.StatusCode)
	}
	if ev := events(t, s, "client.register"); len(ev) < len(cases) || ev[0].Decision != "deny" {
		t.Fatalf("refusals not audited: %d events", len(ev))
	}
}

// Abuse limits: registrations per source address, and pending registrations at
// once, answer 429 with Retry-After; neither is audited per request (a flood must
// not flood the audit log) but both are counted in the metrics.
func TestRegisterRateLimits(t *testing.T) {
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) { c.ClientRegistrationsPerIP = 2 }})
	for i := range 2 {
		if code, out, _ := register(t, s, mcpClient()); code != 201 {
			t.Fatalf("registration %d: HTTP %d %v", i, code, out)
		}
	}
	code, out, h := register(t, s, mcpClient())
	if code != 429 || h.Get("Retry-After") == "" || out["error"] != "temporarily_unavailable" {
		t.Fatalf("third registration: HTTP %d %v", code, out)
	}

	capped := servertest.Start(t, servertest.Options{})
	capped.Registrar.MaxPending = 1
	register(t, capped, mcpClient())
	if code, out, _ := register(t, capped, mcpClient()); code != 429 || !strings.Contains(out["error_description"].(string), "waiting for an administrator") {
		t.Fatalf("over the pending cap: HTTP %d %v", code, out)
	}
	resp, _ := http.Get(capped.URL + "/metrics")
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `agentguard_client_registrations_total{result="rate_limited"} 1`) ||
		!strings.Contains(string(metrics), `agentguard_client_registrations_total{result="pending"} 1`) {
		t.Fatalf("metrics:\n%s", metrics)
	}
}

// Who may call the administrators' API: only admins.
func TestRegistrationsAPIAdminOnly(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	_, out, _ := register(t, s, mcpClient())
	id := out["client_id"].(string)
	agentID, secret := s.Agent(t, "not-an-admin")
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", s.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(agentID, secret)
	resp, _ := http.DefaultClient.Do(req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	for _, c := range []struct {
		method, path string
	}{
		{"GET", "/api/v1/client-registrations"},
		{"GET", "/api/v1/client-registrations/" + id},
		{"POST", "/api/v1/client-registrations/" + id + "/approve"},
		{"POST", "/api/v1/client-registrations/" + id + "/reject"},
	} {
		if code := s.DoAs(t, "", c.method, c.path, nil, nil); code != 401 {
			t.Errorf("%s %s without a token: HTTP %d", c.method, c.path, code)
		}
		if code := s.DoAs(t, tok.AccessToken, c.method, c.path, nil, nil); code != 403 {
			t.Errorf("%s %s as an agent: HTTP %d", c.method, c.path, code)
		}
	}
	if code := s.Do(t, "GET", "/api/v1/client-registrations?status=weird", nil, nil); code != 400 {
		t.Errorf("bad status filter: HTTP %d", code)
	}
}
