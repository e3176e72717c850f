package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ResourceMetadata is OAuth 2.0 Protected Resource Metadata (RFC 9728): what a
// client (an MCP client, say) needs to know to get a token for this service. Serve
// it with Handler at MetadataURL(Resource) and put that URL in
// Config.ResourceMetadataURL, so 401 challenges point to it.
type ResourceMetadata struct {
	// Resource is this service's resource identifier: the audience tokens must
	// carry (an https URL).
	Resource string `json:"resource"`
	// AuthorizationServers lists agentguard's issuer URL.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scopes this service understands.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is ["header"]: tokens only in the Authorization header.
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// MetadataPath is the well-known path of protected resource metadata.
const MetadataPath = "/.well-known/oauth-protected-resource"

// MetadataURL is where RFC 9728 §3.1 says the metadata of resource lives: the
// well-known path inserted between the host and the resource's path
// (https://api.example.com/mcp → https://api.example.com/.well-known/oauth-protected-resource/mcp).
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
		return "", fmt.Errorf("verify: resource %q is not an absolute URL without query or fragment", truncate(resource, 200))
	}
	return u.Scheme + "://" + u.Host + MetadataPath + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// Handler serves the metadata as JSON (GET and HEAD, cacheable, readable from any
// origin: it is public by design).
func (m ResourceMetadata) Handler() (http.Handler, error) {
	if m.Resource == "" {
		return nil, errors.New("verify: ResourceMetadata.Resource is required")
	}
	if _, err := MetadataURL(m.Resource); err != nil {
		return nil, err
	}
	if len(m.BearerMethodsSupported) == 0 {
		m.BearerMethodsSupported = []string{"header"}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(body)
	}), nil
}

// Register serves the metadata on mux at the path MetadataURL gives, and returns
// that URL, for Config.ResourceMetadataURL. (Not also at the bare well-known path
// for a resource with a path: a client fetching that expects the metadata of the
// host's root resource, RFC 9728 §3.3.)
func (m ResourceMetadata) Register(mux *http.ServeMux) (string, error) {
	h, err := m.Handler()
	if err != nil {
		return "", err
	}
	mu, _ := MetadataURL(m.Resource)
	u, _ := url.Parse(mu)
	mux.Handle(u.EscapedPath(), h)
	return mu, nil
}
