package egress

import (
	"net/url"
	"strings"
	"testing"
)

// Target appends the request path below the base path, keeps the escaping the
// agent sent, and refuses anything that could climb above the base.
func TestTarget(t *testing.T) {
	tests := []struct {
		base, rest, query string
		want              string // "" means refused
	}{
		{"https://api.example.com/v1", "/chat/completions", "model=x", "https://api.example.com/v1/chat/completions?model=x"},
		{"https://api.example.com/v1/", "/chat", "", "https://api.example.com/v1/chat"},
		{"https://api.example.com", "/a/b", "", "https://api.example.com/a/b"},
		{"https://api.example.com", "", "", "https://api.example.com/"},
		{"https://api.example.com/v1", "", "", "https://api.example.com/v1"},
		{"https://api.example.com/v1", "/", "", "https://api.example.com/v1/"},
		{"https://api.example.com/v1", "/files/a%20b.txt", "", "https://api.example.com/v1/files/a%20b.txt"},
		{"https://api.example.com/v1", "/x%3Ay", "", "https://api.example.com/v1/x%3Ay"},
		{"https://api.example.com/base%20dir", "/f", "", "https://api.example.com/base%20dir/f"},
		{"https://api.example.com:8443/v1", "/q", "a=1&b=2", "https://api.example.com:8443/v1/q?a=1&b=2"},
		{"https://api.example.com/v1", "/..", "", ""},
		{"https://api.example.com/v1", "/../admin", "", ""},
		{"https://api.example.com/v1", "/a/./b", "", ""},
		{"https://api.example.com/v1", "/%2e%2e/admin", "", ""},
		{"https://api.example.com/v1", "/%2E%2e", "", ""},
		{"https://api.example.com/v1", "/a%2Fb", "", ""},
		{"https://api.example.com/v1", "/..%2Fadmin", "", ""},
		{"https://api.example.com/v1", "/a%5Cb", "", ""},
		{"https://api.example.com/v1", "/a%00b", "", ""},
		{"https://api.example.com/v1", "/a%zz", "", ""},
	}
	for _, tc := range tests {
		base, err := url.Parse(tc.base)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Target(base, tc.rest, tc.query)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Target(%s, %q) = %s, want refused", tc.base, tc.rest, got)
		case tc.want != "" && err != nil:
			t.Errorf("Target(%s, %q): %v", tc.base, tc.rest, err)
		case tc.want != "" && got.String() != tc.want:
			t.Errorf("Target(%s, %q) = %s, want %s", tc.base, tc.rest, got, tc.want)
		}
	}
}

// Whatever the agent sends, an accepted target stays on the upstream's host and
// below its base path, with no dot segment for the upstream to resolve.
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"/chat", "", "/", "/../x", "/%2e%2e/x", "/a%2Fb", "/a/b/c?d", "//x", "/%", "/a%20b", "/\x00"} {
		f.Add("https://api.example.com/v1", s)
	}
	f.Add("https://api.example.com", "/x")
	f.Fuzz(func(t *testing.T, rawBase, rest string) {
		base, err := url.Parse(rawBase)
		if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
			return
		}
		got, err := Target(base, rest, "q=1")
		if err != nil {
			return
		}
		if got.Host != base.Host || got.Scheme != base.Scheme || got.User != base.User || got.Fragment != "" {
			t.Fatalf("Target(%s, %q) = %s: left the upstream", base, rest, got)
		}
		basePath := strings.TrimSuffix(base.Path, "/")
		if !strings.HasPrefix(got.Path, basePath) {
			t.Fatalf("Target(%s, %q) path %q is not below %q", base, rest, got.Path, basePath)
		}
		for _, seg := range strings.Split(strings.TrimPrefix(got.Path, basePath), "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("Target(%s, %q) path %q holds a dot segment", base, rest, got.Path)
			}
		}
		// What goes on the wire decodes to the same path.
		if dec, err := url.PathUnescape(got.EscapedPath()); err != nil || dec != got.Path {
			t.Fatalf("Target(%s, %q): escaped path %q decodes to %q, not %q", base, rest, got.EscapedPath(), dec, got.Path)
		}
	})
}
