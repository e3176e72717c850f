package client

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/api"
)

// MaxRedirectURIs bounds each of a client's redirect URI lists.
const MaxRedirectURIs = 20

// maxURIBytes bounds one redirect URI.
const maxURIBytes = 2048

// CheckRedirectURI says what is wrong with uri as a redirect URI of a client of type
// typ, or "" if it may be registered:
//   - absolute, at most 2048 bytes, no fragment (RFC 6749 §3.1.2), no user info, no
//     wildcard, no spaces or control characters;
//   - https; or http on a loopback host (development, and native apps' RFC 8252 §7.3
//     loopback redirect);
//   - for native apps also a private-use scheme in reverse-domain form, such as
//     com.example.app:/callback (RFC 8252 §7.1). Schemes without a dot (javascript:,
//     data:, file:) are never accepted.
func CheckRedirectURI(typ, uri string) string {
	switch {
	case uri == "":
		return "must not be empty"
	case len(uri) > maxURIBytes:
		return fmt.Sprintf("is over %d bytes", maxURIBytes)
	case !utf8.ValidString(uri) || strings.ContainsFunc(uri, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "must not hold spaces or control characters"
	case strings.Contains(uri, "#"):
		return "must not have a fragment (#…)"
	case strings.Contains(uri, "*"):
		return "must not hold a wildcard: redirect URIs are matched exactly"
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "must be an absolute URI such as https://app.example.com/callback"
	}
	if u.User != nil {
		return "must not hold user info (user@host)"
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return "must name a host"
		}
		return ""
	case "http":
		if u.Host == "" || !api.IsLoopback(u.Hostname()) {
			return "http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https"
		}
		return ""
	}
	if typ != TypeNative {
		return fmt.Sprintf("scheme %q is allowed only for native clients; a %s client needs https (or http on localhost)", u.Scheme, typ)
	}
	if !strings.Contains(u.Scheme, ".") {
		return fmt.Sprintf("a private-use scheme must be in reverse-domain form, such as com.example.app:/callback (RFC 8252 §7.1); %q is not", u.Scheme)
	}
	return ""
}

// checkURIs validates a list of redirect URIs into v under field.
func checkURIs(v *api.Validator, field, typ string, uris []string, required bool) {
	if required && len(uris) == 0 {
		v.Add(field, "needs at least one redirect URI, e.g. https://app.example.com/callback")
		return
	}
	if len(uris) > MaxRedirectURIs {
		v.Add(field, "at most %d URIs (got %d)", MaxRedirectURIs, len(uris))
		return
	}
	seen := map[string]bool{}
	for i, u := range uris {
		f := fmt.Sprintf("%s[%d]", field, i)
		if msg := CheckRedirectURI(typ, u); msg != "" {
			v.Add(f, "%s", msg)
		}
		if seen[u] {
			v.Add(f, "%q is listed twice", u)
		}
		seen[u] = true
	}
}
