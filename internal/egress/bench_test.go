package egress_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/agentguard/agentguard/internal/egress"
)

// BenchmarkGateway is one request through /gateway/{node}/{path} to a local
// upstream: authorization, unseal, audit, forwarding with the injected key.
func BenchmarkGateway(b *testing.B) {
	fx := setup(b, nil)
	u := fx.s.URL + "/gateway/openai/chat/completions"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Authorization", "Bearer "+fx.tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkTarget joins an upstream base URL and a request path.
func BenchmarkTarget(b *testing.B) {
	base, _ := url.Parse("https://api.example.com/v1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := egress.Target(base, "/chat/completions", "model=x"); err != nil {
			b.Fatal(err)
		}
	}
}
