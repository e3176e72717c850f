// Package signintest drives agentguard's sign-in pages in tests the way a browser
// does: a cookie jar, real HTML forms parsed and submitted with their hidden fields,
// and redirects followed (or stopped at the client's redirect URI).
package signintest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// Browser is an HTTP client with a cookie jar. It follows redirects on the server's
// own host; a redirect elsewhere (the client app) is returned, not followed, unless
// Follow is set.
type Browser struct {
	Client *http.Client
	// Follow makes the browser follow redirects to other hosts too.
	Follow bool
	host   string
}

// NewBrowser makes a browser for the server at base.
func NewBrowser(t testing.TB, base string) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	b := &Browser{host: u.Host}
	b.Client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return fmt.Errorf("more than 10 redirects")
		}
		if !b.Follow && req.URL.Host != b.host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// Page is a response as the browser saw it.
type Page struct {
	Status int
	URL    *url.URL // the URL that answered
	Header http.Header
	Body   string
	// Location is the redirect target when the browser stopped at a redirect.
	Location *url.URL
}

func (b *Browser) do(t testing.TB, req *http.Request) Page {
	t.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc
	}
	return p
}

// Get loads a URL.
func (b *Browser) Get(t testing.TB, u string) Page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// Post submits a form to a URL.
func (b *Browser) Post(t testing.TB, u string, form url.Values) Page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// Form is an HTML form on a page.
type Form struct {
	Action string
	Method string
	Fields url.Values // every input with a name, as the page set them
	Labels map[string]string
}

// Forms parses the page's forms: action, method, inputs and the labels that point at
// them (label for=id).
func (p Page) Forms(t testing.TB) []Form {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		t.Fatalf("page is not HTML: %v", err)
	}
	labels := map[string]string{} // id -> label text
	var forms []Form
	var walk func(n *html.Node, f *Form)
	walk = func(n *html.Node, f *Form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms = append(forms, Form{Action: attr(n, "action"), Method: strings.ToUpper(attr(n, "method")), Fields: url.Values{}, Labels: map[string]string{}})
				f = &forms[len(forms)-1]
			case "input":
				if f != nil && attr(n, "name") != "" {
					f.Fields.Set(attr(n, "name"), attr(n, "value"))
					if id := attr(n, "id"); id != "" {
						f.Labels[attr(n, "name")] = id
					}
				}
			case "label":
				labels[attr(n, "for")] = text(n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	for i := range forms {
		for name, id := range forms[i].Labels {
			forms[i].Labels[name] = labels[id]
		}
	}
	return forms
}

// Submit fills in fields (overriding the page's values) and submits the first form
// of the page, resolving its action against the page URL.
func (b *Browser) Submit(t testing.TB, p Page, fields map[string]string) Page {
	t.Helper()
	forms := p.Forms(t)
	if len(forms) == 0 {
		t.Fatalf("no form on the page (HTTP %d):\n%s", p.Status, p.Body)
	}
	f := forms[0]
	for k, v := range fields {
		f.Fields.Set(k, v)
	}
	action, err := p.URL.Parse(f.Action)
	if err != nil {
		t.Fatal(err)
	}
	if f.Method != http.MethodPost {
		t.Fatalf("form method %q, want POST", f.Method)
	}
	return b.Post(t, action.String(), f.Fields)
}

// Cookie returns the value of the browser's cookie name for the server at base.
func (b *Browser) Cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// PKCE returns a fresh code_verifier and its S256 code_challenge.
func PKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// Client registers a client through the management API and returns its id and
// secret (empty for public clients).
func Client(t testing.TB, s *servertest.Server, typ string, redirectURIs, postLogout []string) (id, secret string) {
	t.Helper()
	var out struct {
		ID           string `json:"id"`
		ClientSecret string `json:"client_secret"`
	}
	body := map[string]any{"name": "test " + typ + " app", "type": typ, "redirect_uris": redirectURIs}
	if postLogout != nil {
		body["post_logout_redirect_uris"] = postLogout
	}
	if code := s.Do(t, "POST", "/api/v1/clients", body, &out); code != http.StatusCreated {
		t.Fatalf("create %s client: HTTP %d", typ, code)
	}
	return out.ID, out.ClientSecret
}
