package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// exchangeFixture is what the token exchange scenario needs: an agent acting for
// users (access_identity human) granted read on the bench audience, a user admitted
// by an inbound rule through a client, and that user's access token for the agent,
// obtained by signing in through the real login page (authorization code + PKCE).
type exchangeFixture struct {
	agentID, agentSecret string
	subject              string
}

const benchRedirect = "https://bench.agentguard.test/callback"

// setupExchange registers the fixture through the management API and signs the
// user in as a browser would.
func setupExchange(c *http.Client, base, adminToken, audience string) (*exchangeFixture, error) {
	admin := func(method, path string, body, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
		}
		if out != nil && resp.StatusCode/100 == 2 {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	suffix := randHex(4)
	fx := &exchangeFixture{}
	// The user's token must outlive the measured run: users' tokens take the
	// built-in resource server's lifetime.
	if err := admin("PATCH", "/api/v1/resource-servers/rs_agentguard", map[string]any{"token_lifetime": 3600}, nil); err != nil {
		return nil, err
	}
	var a struct{ ID, Audience string }
	if err := admin("POST", "/api/v1/agents", map[string]any{"name": "bench-exchange-" + suffix, "owner": "bench", "type": "interactive", "access_identity": "human"}, &a); err != nil {
		return nil, err
	}
	fx.agentID = a.ID
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := admin("POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &sec); err != nil {
		return nil, err
	}
	fx.agentSecret = sec.ClientSecret
	if err := admin("POST", "/api/v1/agents/"+a.ID+"/grants", map[string]any{"audience": audience, "scopes": []string{"read"}}, nil); err != nil {
		return nil, err
	}
	if err := admin("POST", "/api/v1/groups", map[string]any{"name": "bench-users"}, nil); err != nil {
		return nil, err
	}
	username, password := "bench-"+suffix, "bench-pass-"+randHex(12)
	if err := admin("POST", "/api/v1/users", map[string]any{"username": username, "password": password, "groups": []string{"bench-users"}}, nil); err != nil {
		return nil, err
	}
	var cl struct{ ID string }
	if err := admin("POST", "/api/v1/clients", map[string]any{"name": "bench app", "type": "spa", "redirect_uris": []string{benchRedirect}}, &cl); err != nil {
		return nil, err
	}
	if err := admin("POST", "/api/v1/agents/"+a.ID+"/inbound", map[string]any{"client_id": cl.ID, "groups": []string{"bench-users"}}, nil); err != nil {
		return nil, err
	}
	var err error
	fx.subject, err = signInForToken(base, cl.ID, a.Audience, username, password)
	return fx, err
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// signInForToken is the browser side of authorization code + PKCE: the login page,
// its form (hidden fields from the HTML), the redirect with the code, the token.
func signInForToken(base, clientID, resource, username, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := randHex(32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {benchRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"resource": {resource}, "state": {"bench"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	resp, err := browser.Get(base + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	form := url.Values{"username": {username}, "password": {password}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("login_id") == "" {
		return "", fmt.Errorf("authorize: HTTP %d, no login form", resp.StatusCode)
	}
	resp, err = browser.PostForm(base+"/login", form)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("login: HTTP %d, no code (%v)", resp.StatusCode, loc)
	}
	tok := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {loc.Query().Get("code")},
		"redirect_uri": {benchRedirect}, "code_verifier": {verifier}}
	resp, err = http.PostForm(base+"/oauth2/token", tok)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("code redemption: HTTP %d %s %v", resp.StatusCode, out.Error, err)
	}
	return out.AccessToken, nil
}

// exchangeScenario is the token exchange the agent makes for every call it serves
// on the user's behalf: client_secret_basic, the user's token, the bench audience.
func (fx *exchangeFixture) scenario(base, audience string) scenario {
	basic := "Basic " + basicAuth(url.QueryEscape(fx.agentID), url.QueryEscape(fx.agentSecret))
	body := []byte(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {fx.subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "resource": {audience}}.Encode())
	u := base + "/oauth2/token"
	return scenario{"exchange", func() *http.Request {
		req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic)
		return req
	}}
}

func wantsExchange(scenarios string) bool {
	for _, s := range strings.Split(scenarios, ",") {
		if strings.TrimSpace(s) == "exchange" {
			return true
		}
	}
	return false
}
