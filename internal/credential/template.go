package credential

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Placeholders of a header template: the API key value, or the OAuth access token.
const (
	PlaceholderKey   = "{{key}}"
	PlaceholderToken = "{{token}}"
)

// maxTemplate bounds a header template.
const maxTemplate = 1024

// HeaderTemplate is how the egress gateway injects a credential into a forwarded
// request: one header whose value is Prefix + secret + Suffix, e.g.
// "Authorization: Bearer {{token}}" or "X-API-Key: {{key}}".
type HeaderTemplate struct {
	Name   string // canonical header name
	Prefix string
	Suffix string
}

// DefaultTemplate is the template a node gets when none is given.
func DefaultTemplate(credentialType string) string {
	return "Authorization: Bearer " + placeholder(credentialType)
}

func placeholder(credentialType string) string {
	if credentialType == TypeOAuthProvider {
		return PlaceholderToken
	}
	return PlaceholderKey
}

// forbiddenHeaders are headers the gateway owns (framing, routing, hop-by-hop):
// a template may not set them.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Te": true, "Trailer": true, "Upgrade": true, "Expect": true,
	"Forwarded": true, "Content-Encoding": true,
}

// ParseHeaderTemplate parses "Name: value" for a credential of credentialType. The
// name must be an HTTP token and not one the gateway owns; the value must be
// printable ASCII (no CR, LF or other control bytes, so nothing can be smuggled
// into another header) and hold the type's placeholder exactly once, {{key}} for
// an API key and {{token}} for an OAuth provider, and no other {{…}}.
func ParseHeaderTemplate(s, credentialType string) (HeaderTemplate, error) {
	var t HeaderTemplate
	if len(s) > maxTemplate {
		return t, fmt.Errorf("must be at most %d bytes", maxTemplate)
	}
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return t, fmt.Errorf(`must be "Header-Name: value with %s", e.g. "Authorization: Bearer %s"`, placeholder(credentialType), placeholder(credentialType))
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return t, fmt.Errorf("%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~, no spaces)", name)
	}
	t.Name = http.CanonicalHeaderKey(name)
	if forbiddenHeaders[t.Name] || strings.HasPrefix(t.Name, "Proxy-") || strings.HasPrefix(t.Name, "X-Forwarded-") {
		return t, fmt.Errorf("the header %s is set by the gateway itself; inject the credential into another header", t.Name)
	}
	value = strings.TrimLeft(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
			return t, errors.New("the value must be printable ASCII: no line breaks, control characters or non-ASCII text")
		}
	}
	want, other := placeholder(credentialType), PlaceholderToken
	if want == PlaceholderToken {
		other = PlaceholderKey
	}
	if strings.Contains(value, other) {
		return t, fmt.Errorf("%s is for the other credential type; a %s credential is injected with %s", other, credentialType, want)
	}
	before, after, ok := strings.Cut(value, want)
	if !ok {
		return t, fmt.Errorf("the value must contain %s where the credential goes", want)
	}
	if strings.Contains(before, "{{") || strings.Contains(before, "}}") || strings.Contains(after, "{{") || strings.Contains(after, "}}") {
		return t, fmt.Errorf("the value may hold %s once and no other {{…}} placeholder", want)
	}
	t.Prefix, t.Suffix = before, strings.TrimRight(after, " \t")
	return t, nil
}

// ErrBadHeaderValue: a credential cannot be sent in a header (it holds a line
// break, control byte or non-ASCII text).
var ErrBadHeaderValue = errors.New("the credential value cannot be sent in an HTTP header (it holds a line break, control character or non-ASCII text)")

// Render returns the header value with secret in place. The secret is checked
// the same way as the template, so it cannot end the header early either.
func (t HeaderTemplate) Render(secret string) (string, error) {
	if secret == "" {
		return "", ErrBadHeaderValue
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c < 0x20 || c > 0x7e {
			return "", ErrBadHeaderValue
		}
	}
	return t.Prefix + secret + t.Suffix, nil
}

// String is the template in its "Name: value" form.
func (t HeaderTemplate) String(credentialType string) string {
	return t.Name + ": " + t.Prefix + placeholder(credentialType) + t.Suffix
}
