package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Hops prints every hop of the demo on one line: who calls whom, with what, and
// the answer. It never prints a secret: no header, no body, only the method, the
// path and, for the token endpoint, the grant type and the target.
type Hops struct {
	mu    sync.Mutex
	w     io.Writer
	names map[string]string // host:port → name
	start time.Time
	lines []string
}

// NewHops prints to w.
func NewHops(w io.Writer) *Hops {
	return &Hops{w: w, names: map[string]string{}, start: time.Now()}
}

// Name names the service listening at hostport.
func (h *Hops) Name(hostport, name string) {
	h.mu.Lock()
	h.names[hostport] = name
	h.mu.Unlock()
}

func (h *Hops) name(hostport string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n, ok := h.names[hostport]; ok {
		return n
	}
	return hostport
}

// Printf prints one hop line from → to.
func (h *Hops) Printf(from, to, format string, args ...any) {
	line := fmt.Sprintf("%-10s → %-12s %s", from, to, fmt.Sprintf(format, args...))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, line)
	fmt.Fprintf(h.w, "%6.3fs  %s\n", time.Since(h.start).Seconds(), line)
}

// Note prints a line that is not a network hop (a decision, a step).
func (h *Hops) Note(who, format string, args ...any) {
	h.Printf(who, "", format, args...)
}

// Lines returns what was printed so far (tests).
func (h *Hops) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

// Transport returns a RoundTripper that prints each request from `from`.
func (h *Hops) Transport(from string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &hopTransport{h: h, from: from, base: base}
}

// Client is an http.Client whose requests are printed as hops from `from`.
func (h *Hops) Client(from string) *http.Client {
	return &http.Client{Transport: h.Transport(from, nil), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type hopTransport struct {
	h    *Hops
	from string
	base http.RoundTripper
}

func (t *hopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	what := req.Method + " " + req.URL.Path
	if strings.HasSuffix(req.URL.Path, "/oauth2/token") && req.Body != nil && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(body, 64<<10))
			body.Close()
			if f, err := url.ParseQuery(string(bytes.TrimSpace(b))); err == nil {
				what += " grant_type=" + shortGrant(f.Get("grant_type"))
				if r := f.Get("resource"); r != "" {
					what += " resource=" + r
				}
				if s := f.Get("scope"); s != "" {
					what += " scope=" + strings.ReplaceAll(s, " ", "+")
				}
			}
		}
	}
	resp, err := t.base.RoundTrip(req)
	to := t.h.name(req.URL.Host)
	if err != nil {
		t.h.Printf(t.from, to, "%s → error: %v", what, err)
		return nil, err
	}
	t.h.Printf(t.from, to, "%s → %d", what, resp.StatusCode)
	return resp, nil
}

func shortGrant(g string) string {
	return strings.TrimPrefix(g, "urn:ietf:params:oauth:grant-type:")
}
