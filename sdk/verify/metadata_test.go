package verify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// RFC 9728 §3.1: the well-known segment goes between host and path.
func TestMetadataURL(t *testing.T) {
	cases := map[string]string{
		"https://api.example.com":          "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/":         "https://api.example.com/.well-known/oauth-protected-resource",
		"https://api.example.com/mcp":      "https://api.example.com/.well-known/oauth-protected-resource/mcp",
		"http://127.0.0.1:9000/tools/mcp/": "http://127.0.0.1:9000/.well-known/oauth-protected-resource/tools/mcp",
	}
	for in, want := range cases {
		got, err := MetadataURL(in)
		if err != nil || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "api.example.com", "https://a.example.com/x?y=1", "https://a.example.com/#f"} {
		if _, err := MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) accepted", bad)
		}
	}
}

// The metadata is served as JSON at its well-known path, with header bearer method
// by default, readable from any origin, and only for GET/HEAD/OPTIONS.
func TestResourceMetadataServed(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	m := ResourceMetadata{Resource: srv.URL + "/mcp", AuthorizationServers: []string{"https://ag.example.com"}, ScopesSupported: []string{"weather:read"}}
	u, err := m.Register(mux)
	if err != nil || u != srv.URL+"/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("Register = %q, %v", u, err)
	}
	if resp, _ := http.Get(srv.URL + MetadataPath); resp.StatusCode != 404 {
		t.Fatalf("the metadata of %s is served for the root resource too", m.Resource)
	}
	for _, path := range []string{u} {
		resp, err := http.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil || resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if got["resource"] != m.Resource || got["authorization_servers"].([]any)[0] != "https://ag.example.com" ||
			got["bearer_methods_supported"].([]any)[0] != "header" || got["scopes_supported"].([]any)[0] != "weather:read" {
			t.Fatalf("metadata %v", got)
		}
	}
	resp, _ := http.Post(u, "application/json", nil)
	if resp.StatusCode != 405 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if _, err := (ResourceMetadata{}).Handler(); err == nil {
		t.Fatal("metadata without resource accepted")
	}
}
