package client

import (
	"net/url"
	"strings"
	"testing"
)

// Which redirect URIs may be registered, per client type.
func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		typ, uri string
		ok       bool
	}{
		{TypeWeb, "https://app.example.com/callback", true},
		{TypeWeb, "https://app.example.com:8443/cb?tenant=a", true},
		{TypeSPA, "http://localhost:5173/cb", true},
		{TypeSPA, "http://127.0.0.1:5173/cb", true},
		{TypeNative, "http://127.0.0.1/cb", true},
		{TypeNative, "http://[::1]/cb", true},
		{TypeNative, "com.example.app:/oauth2redirect", true},
		{TypeNative, "https://app.example.com/native", true},
		{TypeWeb, "http://app.example.com/cb", false},                      // plain http off loopback
		{TypeWeb, "https://app.example.com/cb#frag", false},                // fragment
		{TypeWeb, "https://app.example.com/cb#", false},                    // empty fragment
		{TypeWeb, "https://user@app.example.com/cb", false},                // user info
		{TypeWeb, "https://user:pw@app.example.com/cb", false},             // user info
		{TypeWeb, "https://*.example.com/cb", false},                       // wildcard
		{TypeWeb, "/callback", false},                                      // relative
		{TypeWeb, "https:///cb", false},                                    // no host
		{TypeWeb, "https://app.example.com/c b", false},                    // space
		{TypeWeb, "https://app.example.com/cb\n", false},                   // control
		{TypeWeb, "com.example.app:/cb", false},                            // custom scheme for a web app
		{TypeNative, "javascript:alert(1)", false},                         // no dot in the scheme
		{TypeNative, "data:text/html,x", false},                            // no dot in the scheme
		{TypeNative, "file:///etc/passwd", false},                          // no dot in the scheme
		{TypeSPA, "", false},                                               // empty
		{TypeWeb, "https://a.example/" + strings.Repeat("a", 2048), false}, // too long
	}
	for _, tt := range tests {
		if msg := CheckRedirectURI(tt.typ, tt.uri); (msg == "") != tt.ok {
			t.Errorf("CheckRedirectURI(%s, %q) = %q, want ok=%v", tt.typ, tt.uri, msg, tt.ok)
		}
	}
}

// Redirect URIs match exactly: every variation an open-redirect attack would try is
// refused. Native apps' loopback URIs may differ in the port only (RFC 8252 §7.3).
func TestRedirectURIAllowedIsExact(t *testing.T) {
	web := Client{Type: TypeWeb, RedirectURIs: []string{"https://app.example.com/cb", "https://app.example.com/q?x=1"}}
	native := Client{Type: TypeNative, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]/cb", "com.example.app:/cb"}}
	tests := []struct {
		c   Client
		uri string
		ok  bool
	}{
		{web, "https://app.example.com/cb", true},
		{web, "https://app.example.com/q?x=1", true},
		{web, "https://app.example.com/cb/", false},
		{web, "https://APP.example.com/cb", false},
		{web, "https://app.example.com/CB", false},
		{web, "HTTPS://app.example.com/cb", false},
		{web, "https://app.example.com/cb?x=1", false},
		{web, "https://app.example.com/q?x=1&y=2", false},
		{web, "https://app.example.com/q?x=2", false},
		{web, "https://app.example.com/cb#x", false},
		{web, "https://evil@app.example.com/cb", false},
		{web, "https://app.example.com@evil.example/cb", false},
		{web, "https://app.example.com.evil.example/cb", false},
		{web, "https://app.example.com:443/cb", false},
		{web, "https://app.example.com/cb/../cb", false},
		{web, "https://app.example.com/%63b", false},
		{web, "http://app.example.com/cb", false},
		{web, "https://app.example.com/cb ", false},
		{web, "https://app.example.com:8443/cb", false}, // ports vary only for native loopback
		{native, "http://127.0.0.1/cb", true},
		{native, "http://127.0.0.1:51234/cb", true},
		{native, "http://[::1]:51234/cb", true},
		{native, "http://127.0.0.1:51234/cb/", false},
		{native, "http://127.0.0.1:51234/cb?x=1", false},
		{native, "http://127.0.0.1:51234/other", false},
		{native, "http://localhost:51234/cb", false},
		{native, "http://127.0.0.2:51234/cb", false},
		{native, "http://u@127.0.0.1:51234/cb", false},
		{native, "https://127.0.0.1:51234/cb", false},
		{native, "http://127.0.0.1:51234/cb#f", false},
		{native, "com.example.app:/cb", true},
		{native, "com.example.app:/cb2", false},
		{Client{Type: TypeWeb, RedirectURIs: []string{"http://127.0.0.1/cb"}}, "http://127.0.0.1:8080/cb", false},
	}
	for _, tt := range tests {
		if got := tt.c.RedirectURIAllowed(tt.uri); got != tt.ok {
			t.Errorf("%s client: RedirectURIAllowed(%q) = %v, want %v", tt.c.Type, tt.uri, got, tt.ok)
		}
	}
}

// Any string: no panic; an accepted URI matches itself and nothing a byte longer;
// every accepted URI is absolute, without fragment or user info.
func FuzzRedirectURI(f *testing.F) {
	for _, s := range []string{"https://app.example.com/cb", "http://127.0.0.1:5000/cb", "com.example.app:/cb", "https://u@h/", "http://[::1]:1/x?y#z", "javascript:x", "%", "http://127.0.0.1:/cb"} {
		f.Add(TypeNative, s)
		f.Add(TypeWeb, s)
	}
	f.Fuzz(func(t *testing.T, typ, uri string) {
		c := Client{Type: typ, RedirectURIs: []string{uri}}
		c.RedirectURIAllowed(uri + "/")
		if CheckRedirectURI(typ, uri) != "" {
			return
		}
		if !c.RedirectURIAllowed(uri) {
			t.Fatalf("registered %q does not match itself", uri)
		}
		if c.RedirectURIAllowed(uri+"x") || c.RedirectURIAllowed(uri+"#") {
			t.Fatalf("registered %q matches a longer URI", uri)
		}
		u, err := url.Parse(uri)
		if err != nil || u.Scheme == "" || u.User != nil || strings.Contains(uri, "#") {
			t.Fatalf("accepted %q: %v", uri, err)
		}
	})
}

// A page may read the token endpoint's answer only from the origin of one of the
// client's redirect URIs; a native app's loopback URI allows any port.
func TestOriginAllowed(t *testing.T) {
	spa := Client{Type: TypeSPA, RedirectURIs: []string{"https://app.example.com/callback", "http://localhost:5173/cb"}}
	native := Client{Type: TypeNative, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	tests := []struct {
		c      Client
		origin string
		want   bool
	}{
		{spa, "https://app.example.com", true},
		{spa, "https://APP.example.com", true}, // hosts compare without case
		{spa, "http://localhost:5173", true},
		{spa, "http://localhost:5174", false},  // other port
		{spa, "http://app.example.com", false}, // other scheme
		{spa, "https://app.example.com.evil.example", false},
		{spa, "https://evil.example", false},
		{spa, "https://app.example.com/callback", false}, // an origin has no path
		{spa, "null", false},
		{spa, "", false},
		{native, "http://127.0.0.1:53211", true},
		{native, "http://127.0.0.2:53211", false},
		{Client{Type: TypeSPA, RedirectURIs: []string{"http://127.0.0.1/cb"}}, "http://127.0.0.1:8080", false}, // any port only for native apps
	}
	for _, tt := range tests {
		if got := tt.c.OriginAllowed(tt.origin); got != tt.want {
			t.Errorf("%s client %v: OriginAllowed(%q) = %v, want %v", tt.c.Type, tt.c.RedirectURIs, tt.origin, got, tt.want)
		}
	}
}
