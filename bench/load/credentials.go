package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// The credential scenarios: an agent fetching an API key and a (cached) OAuth
// token through the Credential API, and calling a third-party API directly with
// the key (direct) or through agentguard's gateway, which injects it (proxy).
// The third party's token endpoint and API run in this process on loopback.

const (
	benchKeyID      = "bench-key"
	benchProviderID = "bench-oauth"
	benchKeyValue   = "sk-bench-0123456789abcdef"
)

// upstreams are the local third-party servers.
type upstreams struct {
	api, idp    *http.Server
	apiURL      string
	idpURL      string
	tokenCalls  atomic.Int64
	apiRequests atomic.Int64
}

func startUpstreams() (*upstreams, error) {
	u := &upstreams{}
	serve := func(h http.Handler) (*http.Server, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		return srv, "http://" + ln.Addr().String(), nil
	}
	body := []byte(`{"id":"cmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"ok"}}]}`)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.apiRequests.Add(1)
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Api-Key") != benchKeyValue {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	idp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.tokenCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"bench-upstream-token-%d","token_type":"Bearer","expires_in":3600}`, n)
	})
	var err error
	if u.api, u.apiURL, err = serve(api); err != nil {
		return nil, err
	}
	if u.idp, u.idpURL, err = serve(idp); err != nil {
		u.api.Close()
		return nil, err
	}
	return u, nil
}

func (u *upstreams) close() {
	u.api.Close()
	u.idp.Close()
}

// setupCredentials registers an API key and an OAuth provider, adds both to the
// agent's outbound rule (the key with the gateway upstream), and gets the agent's
// Credential API token.
func setupCredentials(c *http.Client, base, adminToken string, fx *fixture) error {
	up, err := startUpstreams()
	if err != nil {
		return err
	}
	fx.upstreams = up
	admin := func(method, path string, body any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, out)
		}
		return nil
	}
	steps := []struct {
		path string
		body any
	}{
		{"/api/v1/credentials/api-keys", map[string]any{"identifier": benchKeyID, "value": benchKeyValue}},
		{"/api/v1/credentials/oauth-providers", map[string]any{"identifier": benchProviderID, "client_id": "bench", "client_secret": "bench-secret",
			"token_endpoint": up.idpURL + "/token", "default_scopes": []string{"read"}}},
		{"/api/v1/agents/" + fx.clientID + "/outbound", map[string]any{"node_type": "llm", "credential_type": "api_key", "credential": benchKeyID,
			"upstream_url": up.apiURL + "/v1", "header": "X-API-Key: {{key}}"}},
		{"/api/v1/agents/" + fx.clientID + "/outbound", map[string]any{"node_type": "external_service", "credential_type": "oauth_provider", "credential": benchProviderID}},
	}
	for _, s := range steps {
		if err := admin("POST", s.path, s.body); err != nil {
			return err
		}
	}
	// The agent's own token for the Credential API: no resource, so the issuer's
	// audience with agentguard:credentials.
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(fx.clientID), url.QueryEscape(fx.clientSecret))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return fmt.Errorf("credential API token: HTTP %d %v", resp.StatusCode, err)
	}
	fx.credToken = tr.AccessToken
	return nil
}

// credentialScenario builds the credential scenarios' requests.
func (fx *fixture) credentialScenario(name, base string) (scenario, bool) {
	bearer := "Bearer " + fx.credToken
	get := func(u string, header, value string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set(header, value)
			return req
		}
	}
	switch name {
	case "apikey":
		return scenario{name, get(base+"/api/v1/agent/api-keys/"+benchKeyID, "Authorization", bearer)}, true
	case "oauthtoken":
		u := base + "/api/v1/agent/oauth-tokens/" + benchProviderID
		return scenario{name, func() *http.Request {
			req, _ := http.NewRequest("POST", u, nil)
			req.Header.Set("Authorization", bearer)
			return req
		}}, true
	case "direct":
		return scenario{name, get(fx.upstreams.apiURL+"/v1/chat/completions", "X-Api-Key", benchKeyValue)}, true
	case "proxy":
		return scenario{name, get(base+"/gateway/"+benchKeyID+"/chat/completions", "Authorization", bearer)}, true
	}
	return scenario{}, false
}

// isCredentialScenario reports whether name needs setupCredentials.
func isCredentialScenario(name string) bool {
	switch name {
	case "apikey", "oauthtoken", "direct", "proxy":
		return true
	}
	return false
}
