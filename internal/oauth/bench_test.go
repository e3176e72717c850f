package oauth

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkClientSecretVerify is client_secret_basic/post authentication: the agent
// and its secrets read from SQLite and the presented secret hashed and compared.
func BenchmarkClientSecretVerify(b *testing.B) {
	ts := newTestServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, e := ts.authenticateSecret(ctx, ts.agentID, ts.secret, AuthSecretBasic); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkAssertionVerify is private_key_jwt authentication: parse, look up the
// agent's keys, verify the ES256 signature and record the jti in the replay table.
// Assertions are signed before the timer starts (each jti is usable once).
func BenchmarkAssertionVerify(b *testing.B) {
	ts := newTestServer(b)
	ctx := context.Background()
	const batch = 1024
	pool := make([]string, 0, batch)
	next := 0
	refill := func() {
		b.StopTimer()
		pool = pool[:0]
		for range batch {
			pool = append(pool, ts.assertion(b, "jti-"+strconv.Itoa(next)))
			next++
		}
		b.StartTimer()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%batch == 0 {
			refill()
		}
		if _, e := ts.authenticateAssertion(ctx, ts.agentID, pool[i%batch]); e != nil {
			b.Fatal(e)
		}
		i++
	}
}
