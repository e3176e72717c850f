package credential_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/agentguard/agentguard/internal/credential"
	"github.com/agentguard/agentguard/internal/server/servertest"
)

// benchServer is a real server (SQLite, audit on) with an agent whose rule holds an
// API key and an OAuth provider whose token is already cached.
func benchServer(b *testing.B) (s *servertest.Server, tok string) {
	s = servertest.Start(b, servertest.Options{})
	agentID, tok := agentWithToken(b, s, "bench")
	createAPIKey(b, s, "k", "sk-bench-value")
	addNode(b, s, agentID, "llm", "api_key", "k", nil)
	e := newTokenEndpoint(b, "cid", "csecret")
	createProvider(b, s, "p", e, nil)
	addNode(b, s, agentID, "external_service", "oauth_provider", "p", nil)
	if r, _ := getToken(b, s, tok, "p", nil); r.code != 200 {
		b.Fatalf("warm the token cache: HTTP %d", r.code)
	}
	return s, tok
}

func benchCalls(b *testing.B, newReq func() *http.Request) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(newReq())
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkAPIKeyRetrieval is GET /api/v1/agent/api-keys/{id} over loopback:
// token check, rule and value in one query, unseal, audit event committed.
func BenchmarkAPIKeyRetrieval(b *testing.B) {
	s, tok := benchServer(b)
	u := s.URL + "/api/v1/agent/api-keys/k"
	benchCalls(b, func() *http.Request {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return req
	})
}

// BenchmarkOAuthTokenCached is POST /api/v1/agent/oauth-tokens/{id} served from
// the in-memory cache.
func BenchmarkOAuthTokenCached(b *testing.B) {
	s, tok := benchServer(b)
	u := s.URL + "/api/v1/agent/oauth-tokens/p"
	benchCalls(b, func() *http.Request {
		req, _ := http.NewRequest("POST", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return req
	})
}

// BenchmarkTokensGetCached is the token cache's hit path alone.
func BenchmarkTokensGetCached(b *testing.B) {
	s, _ := benchServer(b)
	acc, err := s.Store.OutboundAccess(context.Background(), mustAgent(b, s), "p")
	if err != nil {
		b.Fatal(err)
	}
	scopes, _ := credential.ResolveScopes(acc.Provider, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Tokens.Get(ctx, acc.Provider, scopes); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAgent(b *testing.B, s *servertest.Server) string {
	var l struct{ Items []struct{ ID string } }
	admin(b, s, 200, "GET", "/api/v1/agents?q=bench", nil, &l)
	if len(l.Items) != 1 {
		b.Fatalf("agents %+v", l.Items)
	}
	return l.Items[0].ID
}

// BenchmarkHeaderTemplate is what the gateway does per request with a node's template.
func BenchmarkHeaderTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		t, err := credential.ParseHeaderTemplate("Authorization: Bearer {{key}}", credential.TypeAPIKey)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Render("sk-0123456789abcdef0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}
