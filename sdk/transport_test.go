package sdk

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// resourceServer records the Authorization header of each request and answers 401
// invalid_token while reject says so.
type resourceServer struct {
	*httptest.Server
	mu     sync.Mutex
	auths  []string
	bodies []string
	reject func(auth string) bool
}

func newResourceServer(t *testing.T) *resourceServer {
	rs := &resourceServer{reject: func(string) bool { return false }}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		rs.auths = append(rs.auths, r.URL.Path+" "+r.Header.Get("Authorization"))
		rs.bodies = append(rs.bodies, string(b))
		reject := rs.reject(r.Header.Get("Authorization"))
		rs.mu.Unlock()
		if reject {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="revoked"`)
			w.WriteHeader(401)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *resourceServer) seen() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.auths...)
}

// The Transport attaches the target's token under its prefix only; the longest
// prefix wins; other URLs get no token; an existing Authorization is kept.
func TestTransportAttachesPerTarget(t *testing.T) {
	s := newAuthServer(t)
	rs := newResourceServer(t)
	other := newResourceServer(t)
	c := secretClient(t, s)
	rt, err := c.Transport(nil,
		Target{Prefix: rs.URL, Audience: "https://files.example.com", Scopes: []string{"read:file"}},
		Target{Prefix: rs.URL + "/admin", Audience: "https://files.example.com", Scopes: []string{"admin"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: rt}
	for _, u := range []string{rs.URL + "/files/1", rs.URL + "/admin/users", rs.URL + "/administrator", other.URL + "/x"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", rs.URL+"/own", nil)
	req.Header.Set("Authorization", "Bearer mine")
	resp, _ := hc.Do(req)
	resp.Body.Close()

	got := rs.seen()
	want := []string{"/files/1 Bearer tok-1", "/admin/users Bearer tok-2", "/administrator Bearer tok-1", "/own Bearer mine"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("seen %q, want %q", got, want)
	}
	if o := other.seen(); len(o) != 1 || o[0] != "/x " {
		t.Fatalf("a token went to another host: %q", o)
	}
	if f := s.form(1); f.Get("scope") != "admin" {
		t.Fatalf("form %v", f)
	}
}

// On 401 invalid_token the Transport fetches a new token and retries once, body
// included; a second refusal is returned as is.
func TestTransportRetriesOnceOnInvalidToken(t *testing.T) {
	s := newAuthServer(t)
	rs := newResourceServer(t)
	rs.reject = func(auth string) bool { return auth == "Bearer tok-1" }
	c := secretClient(t, s)
	rt, _ := c.Transport(nil, Target{Prefix: rs.URL})
	hc := &http.Client{Transport: rt}
	resp, err := hc.Post(rs.URL+"/upload", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := rs.seen(); len(got) != 2 || got[1] != "/upload Bearer tok-2" || rs.bodies[1] != "payload" {
		t.Fatalf("seen %q bodies %q", got, rs.bodies)
	}
	// Always refused: one retry only.
	rs.reject = func(string) bool { return true }
	resp, _ = hc.Get(rs.URL + "/x")
	resp.Body.Close()
	if resp.StatusCode != 401 || len(rs.seen()) != 4 {
		t.Fatalf("status %d after %d requests", resp.StatusCode, len(rs.seen()))
	}
}

// A token failure is the RoundTrip error (typed), and no request goes out.
func TestTransportTokenFailure(t *testing.T) {
	s := newAuthServer(t)
	s.answer = func(int64, url.Values, *http.Request) (int, any) {
		return 400, map[string]any{"error": "invalid_target", "error_description": "no grant"}
	}
	rs := newResourceServer(t)
	c := secretClient(t, s)
	rt, _ := c.Transport(nil, Target{Prefix: rs.URL})
	_, err := (&http.Client{Transport: rt}).Get(rs.URL)
	if err == nil || !strings.Contains(err.Error(), "invalid_target") {
		t.Fatalf("err = %v", err)
	}
	if len(rs.seen()) != 0 {
		t.Fatal("a request went out without a token")
	}
}

// Exchanged tokens: with UserToken the Transport acts for the request's user.
func TestTransportOnBehalfOfUser(t *testing.T) {
	s := newAuthServer(t)
	rs := newResourceServer(t)
	c := secretClient(t, s)
	type userKey struct{}
	rt, _ := c.Transport(nil, Target{Prefix: rs.URL, Audience: "https://svc", UserToken: func(r *http.Request) string {
		v, _ := r.Context().Value(userKey{}).(string)
		return v
	}})
	ctx := context.WithValue(context.Background(), userKey{}, "user-token-1")
	req, _ := http.NewRequestWithContext(ctx, "GET", rs.URL, nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f := s.form(0)
	if f.Get("grant_type") != grantTokenExchange || f.Get("subject_token") != "user-token-1" || f.Get("resource") != "https://svc" {
		t.Fatalf("form %v", f)
	}
}

// Invalid targets are refused up front.
func TestTransportRefusesBadTargets(t *testing.T) {
	s := newAuthServer(t)
	c := secretClient(t, s)
	for _, p := range []string{"", "files.example.com", "ftp://x", "http://remote.example.com", "https://x.example.com?q=1"} {
		if _, err := c.Transport(nil, Target{Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := c.Transport(nil); err == nil {
		t.Error("no targets accepted")
	}
}
