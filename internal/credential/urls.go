package credential

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/agentguard/agentguard/internal/api"
)

// maxURL bounds token endpoints and upstream URLs.
const maxURL = 2048

// CheckSecretURL reports why raw may not receive a credential, or "" if it may: it
// must be an absolute https URL without user info or fragment; plain http only for
// a loopback host, or for any host when allowInsecure (the server flags
// --allow-insecure-token-endpoints and --allow-insecure-upstreams). With
// allowQuery false, it must also have no query (the gateway appends the agent's).
// It is checked when the URL is stored and again every time it is used, so
// turning a flag off takes effect for URLs stored before.
func CheckSecretURL(raw string, allowInsecure, allowQuery bool) string {
	if raw == "" {
		return "is required"
	}
	if len(raw) > maxURL {
		return fmt.Sprintf("must be at most %d bytes", maxURL)
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") {
		return "must not contain spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Sprintf("%q is not an absolute URL such as https://api.example.com/v1", raw)
	}
	if u.User != nil {
		return "must not carry user info (user:password@); agentguard sends the credential itself"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not have a #fragment"
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		return "must not have a ?query; the gateway appends the query of each request"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if allowInsecure || api.IsLoopback(u.Hostname()) {
			return ""
		}
		return fmt.Sprintf("%q must use https: a credential is never sent in clear text to another host (http is allowed for localhost, or for every host when the server runs with the --allow-insecure flag for it)", raw)
	}
	return fmt.Sprintf("%q must be an https URL", raw)
}
