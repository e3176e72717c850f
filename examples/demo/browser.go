package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// browser plays the user's browser for the scripted walkthrough (and the tests):
// it follows redirects, keeps cookies, and fills in agentguard's login form.
type browser struct {
	http *http.Client
}

func newBrowser(hops *Hops) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{http: &http.Client{Jar: jar, Transport: hops.Transport("browser", nil)}}
}

// signIn opens the web app's /login, which leads to agentguard's login page, submits
// the username and password, and follows the redirects back to the web app.
func (b *browser) signIn(ctx context.Context, webBase, username, password string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, webBase+"/login", nil)
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the sign-in page answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	action, fields, err := loginForm(string(body))
	if err != nil {
		return err
	}
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		return err
	}
	fields.Set("username", username)
	fields.Set("password", password)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = b.http.Do(req)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), webBase) || !strings.Contains(string(page), "Signed in as") {
		return fmt.Errorf("sign-in did not come back to the web app signed in (HTTP %d at %s)", resp.StatusCode, resp.Request.URL.Redacted())
	}
	return nil
}

// chat sends one message through the web app and returns its JSON answer.
func (b *browser) chat(ctx context.Context, webBase, message string) (map[string]any, error) {
	body, _ := json.Marshal(map[string]string{"message": message})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, webBase+"/chat", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Demo-Chat", "1")
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("the web app answered %d with no JSON", resp.StatusCode)
	}
	if _, ok := out["answer"]; !ok {
		return out, fmt.Errorf("no answer: %v", out["error"])
	}
	return out, nil
}

// loginForm finds the first POST form with a password field and returns its action
// and its fields as the page set them (hidden ones included).
func loginForm(page string) (string, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return "", nil, err
	}
	var action string
	var fields url.Values
	var found bool
	var walk func(n *html.Node, inForm bool, f url.Values)
	walk = func(n *html.Node, inForm bool, f url.Values) {
		if found {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(attr(n, "method"), "post") {
			f = url.Values{}
			inForm = true
			defer func(act string) {
				if !found && f.Has("password") {
					action, fields, found = act, f, true
				}
			}(attr(n, "action"))
		}
		if inForm && n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			f.Set(attr(n, "name"), attr(n, "value"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm, f)
		}
	}
	walk(doc, false, nil)
	if !found {
		return "", nil, fmt.Errorf("no login form on agentguard's sign-in page")
	}
	return action, fields, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
