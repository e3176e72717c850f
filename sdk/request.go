package sdk

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// maxResponse bounds what the SDK reads of any answer.
const maxResponse = 1 << 20

// userAgent names the SDK in agentguard's logs.
const userAgent = "agentguard-go-sdk/1"

type retryPolicy struct {
	attempts int
	base     time.Duration
	max      time.Duration
}

// backoff is the wait before attempt n+1 (n ≥ 1): base·2^(n-1), capped, with "equal
// jitter" (a random half of it on top of the other half), so many agents
// restarting together do not retry in lockstep.
func (p retryPolicy) backoff(n int) time.Duration {
	d := p.base << (n - 1)
	if d > p.max || d <= 0 {
		d = p.max
	}
	return d/2 + rand.N(d/2+1)
}

// call is one request to agentguard, rebuilt for every attempt (a client assertion
// must be fresh, a body must be re-readable).
type call struct {
	op      string
	build   func(ctx context.Context) (*http.Request, error)
	secrets []string
}

// do sends the call, retrying network errors and 5xx answers with backoff until it
// succeeds, the attempts run out or ctx ends. A 2xx answer's body is returned; any
// other answer is an *Error.
func (c *Client) do(ctx context.Context, k call) ([]byte, *http.Response, error) {
	var last *Error
	for n := 1; ; n++ {
		req, err := k.build(ctx)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("User-Agent", userAgent)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctxError(k.op, ctx, last, n)
			}
			// URLs the SDK calls carry no secrets (those are in headers and
			// bodies), so the transport error may name the URL.
			last = &Error{Op: k.op, Err: err, Attempts: n, kind: ErrUnavailable}
		} else {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
			resp.Body.Close()
			switch {
			case rerr != nil:
				last = &Error{Op: k.op, StatusCode: resp.StatusCode, Err: rerr, Attempts: n, kind: ErrUnavailable}
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				return body, resp, nil
			default:
				e := responseError(k.op, resp, body, k.secrets)
				e.Attempts = n
				if resp.StatusCode < 500 || e.ProviderError != "" {
					// 4xx, or a third-party provider's OAuth refusal relayed as a
					// 502: the same request would fail the same way.
					return nil, resp, e
				}
				last = e
			}
		}
		if n >= c.retry.attempts {
			return nil, nil, last
		}
		wait := c.retry.backoff(n)
		if last.RetryAfter > 0 && last.RetryAfter <= c.retry.max {
			wait = last.RetryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctxError(k.op, ctx, last, n)
		case <-t.C:
		}
	}
}

// ctxError reports that the caller's context ended, keeping the last failure seen.
func ctxError(op string, ctx context.Context, last *Error, n int) error {
	if last == nil {
		return &Error{Op: op, Err: ctx.Err(), Attempts: n, kind: ctx.Err()}
	}
	e := *last
	e.Err = errors.Join(ctx.Err(), last.Err)
	e.Attempts = n
	return &e
}

func formRequest(ctx context.Context, endpoint string, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
