// Command load drives an agentguard server over loopback and reports throughput,
// latency percentiles, errors and the server's memory, for the token endpoint
// (client_credentials with client_secret_basic), token exchange (an agent acting for a
// signed-in user, RFC 8693), introspection, the JWKS, the Credential API (an API key,
// a cached OAuth provider token) and the egress gateway (proxy) beside the same call
// made directly to the third party (direct).
//
// By default it builds nothing and starts the real binary (`agentguard serve`, path
// from --binary) in a temporary data dir, as a child process, so what is measured is
// the real thing, then registers a resource server, an agent with a secret and a
// grant through the management API. With --database-url postgres://… the child
// stores in PostgreSQL, in a fresh schema that is dropped at the end. With --url it
// targets a running server instead (then --admin-token is required and RSS is not
// reported).
//
//	go build -o bin/agentguard ./cmd/agentguard
//	go run ./bench/load -binary bin/agentguard -duration 10s
//	go run ./bench/load -binary bin/agentguard -database-url 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// It only ever talks to loopback addresses, and every scenario is bounded by
// --duration and the number of connections.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for the fresh-schema setup
)

type options struct {
	binary           string
	url              string
	adminToken       string
	databaseURL      string
	duration         time.Duration
	warmup           time.Duration
	conns            int
	scenarios        string
	signingAlg       string
	format           string
	label            string
	keepLogs         bool
	inProcess        bool
	cpuProfile       string
	noAudit          bool
	auditCommitDelay time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/agentguard", "agentguard binary to start as the server (ignored with -url)")
	flag.StringVar(&o.url, "url", "", "target a running server at this loopback base URL instead of starting one")
	flag.StringVar(&o.adminToken, "admin-token", os.Getenv("AGENTGUARD_ADMIN_TOKEN"), "admin bearer token for -url (default $AGENTGUARD_ADMIN_TOKEN)")
	flag.StringVar(&o.databaseURL, "database-url", "", "postgres://… to run the started server on PostgreSQL (in a fresh schema) instead of SQLite")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time per scenario before measuring")
	flag.IntVar(&o.conns, "c", 64, "concurrent connections (keep-alive)")
	flag.StringVar(&o.scenarios, "scenarios", "tokens,exchange,introspect,jwks,apikey,oauthtoken,direct,proxy", "comma-separated: tokens, exchange, introspect, jwks, apikey, oauthtoken, direct, proxy")
	flag.StringVar(&o.signingAlg, "signing-alg", "ES256", "signing algorithm of the started server")
	flag.StringVar(&o.format, "format", "text", "output: text or markdown (a table row per scenario)")
	flag.StringVar(&o.label, "label", "", "name of this run in the output (default sqlite or postgres)")
	flag.BoolVar(&o.keepLogs, "server-logs", false, "pass the started server's log through to stderr")
	flag.BoolVar(&o.inProcess, "in-process", false, "run the server inside this process (for profiling; RSS then includes the load generator)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "with -in-process: write a CPU profile of the measured phases (server and load generator) to this file")
	flag.DurationVar(&o.auditCommitDelay, "audit-commit-delay", 0, "with -in-process: the server's --audit-commit-delay (for a started binary set AGENTGUARD_AUDIT_COMMIT_DELAY)")
	flag.BoolVar(&o.noAudit, "no-audit", false, "with -in-process: record no audit events (measures what the audit log costs)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.conns < 1 || o.conns > 1024 {
		return fmt.Errorf("-c must be 1..1024 (got %d)", o.conns)
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		return fmt.Errorf("-duration must be above 0 and at most 10m (got %s)", o.duration)
	}
	if o.label == "" {
		o.label = "sqlite"
		if o.databaseURL != "" {
			o.label = "postgres"
		}
		if o.noAudit {
			o.label += ", no audit"
		}
	}
	if o.cpuProfile != "" && !o.inProcess {
		return errors.New("-cpuprofile needs -in-process (the child server has no profiling endpoint)")
	}
	if o.noAudit && !o.inProcess {
		return errors.New("-no-audit needs -in-process (the child server always audits)")
	}
	var srv *child
	if o.url == "" {
		var err error
		start := startServer
		if o.inProcess {
			start = startInProcess
		}
		if srv, err = start(o); err != nil {
			return err
		}
		defer srv.stop()
		o.url, o.adminToken = srv.url, srv.adminToken
	} else {
		if err := loopbackOnly(o.url); err != nil {
			return err
		}
		if o.adminToken == "" {
			return errors.New("-url needs -admin-token (or AGENTGUARD_ADMIN_TOKEN)")
		}
	}

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        o.conns,
			MaxIdleConnsPerHost: o.conns,
			MaxConnsPerHost:     o.conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	fx, err := setup(client, o.url, o.adminToken)
	if err != nil {
		return fmt.Errorf("register the bench agent: %w", err)
	}
	for _, name := range strings.Split(o.scenarios, ",") {
		if isCredentialScenario(strings.TrimSpace(name)) {
			if err := setupCredentials(client, o.url, o.adminToken, fx); err != nil {
				return fmt.Errorf("register the bench credentials: %w", err)
			}
			defer fx.upstreams.close()
			break
		}
	}
	if wantsExchange(o.scenarios) {
		if fx.exchange, err = setupExchange(client, o.url, o.adminToken, fx.audience); err != nil {
			return fmt.Errorf("register and sign in the token exchange fixture: %w", err)
		}
	}

	var results []result
	for _, name := range strings.Split(o.scenarios, ",") {
		sc, err := fx.scenario(strings.TrimSpace(name), o.url)
		if err != nil {
			return err
		}
		drive(client, sc, o.conns, o.warmup) // warm-up: connections, pools, caches
		stopProfile, err := profile(o.cpuProfile, sc.name)
		if err != nil {
			return err
		}
		cpu0 := cpuTimes(srv)
		r := drive(client, sc, o.conns, o.duration)
		r.cpu = cpuTimes(srv).sub(cpu0)
		stopProfile()
		r.name = sc.name
		if srv != nil {
			r.rssKB, r.hwmKB = srv.memory()
		}
		results = append(results, r)
		if o.format != "markdown" {
			r.print(os.Stdout, o.label)
		}
	}
	if o.format == "markdown" {
		fmt.Printf("\n%s, %d connections, %s per scenario:\n\n", o.label, o.conns, o.duration)
		fmt.Println("| scenario | req/s | p50 | p90 | p99 | max | errors | server RSS (peak) | server CPU/req | load CPU/req |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range results {
			fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %d | %s | %s | %s |\n", r.name, r.rate(), ms(r.p(50)), ms(r.p(90)), ms(r.p(99)), ms(r.p(100)), r.errors, rss(r),
				us(r.cpu.server, r.ok), us(r.cpu.load, r.ok))
		}
	}
	if fx.upstreams != nil {
		fmt.Printf("\nthe OAuth provider's token endpoint was called %d time(s) in all (the oauthtoken and proxy scenarios hand out cached tokens)\n", fx.upstreams.tokenCalls.Load())
	}
	for _, r := range results {
		if r.ok == 0 {
			return fmt.Errorf("%s: no request succeeded (first error: %s)", r.name, r.firstErr)
		}
	}
	return nil
}

// loopbackOnly refuses targets that are not this machine: a load test is not
// something to point at someone else's server.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-url %q is not an http(s) URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url must be a loopback address (127.0.0.1, ::1 or localhost), got %q", host)
	}
	return nil
}

// child is an agentguard server started by this program.
type child struct {
	cmd        *exec.Cmd // nil when in-process
	pid        int
	shutdown   func()
	url        string
	adminToken string
	dataDir    string
	dropSchema func()
	done       chan struct{}
}

func startServer(o options) (*child, error) {
	bin, err := filepath.Abs(o.binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("server binary %s: %w (build it: go build -o bin/agentguard ./cmd/agentguard)", o.binary, err)
	}
	dir, err := os.MkdirTemp("", "agentguard-bench-")
	if err != nil {
		return nil, err
	}
	c := &child{dataDir: dir, adminToken: "bench-" + randHex(16), done: make(chan struct{})}
	dbURL := o.databaseURL
	if dbURL != "" {
		if dbURL, c.dropSchema, err = freshSchema(dbURL); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		c.cleanup()
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.url = "http://" + addr
	args := []string{"serve", "--addr", addr, "--data-dir", dir, "--log-level", "warn", "--signing-alg", o.signingAlg}
	if dbURL != "" {
		args = append(args, "--database-url", dbURL)
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), "AGENTGUARD_ADMIN_TOKEN="+c.adminToken)
	if o.keepLogs {
		c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := c.cmd.Start(); err != nil {
		c.cleanup()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() { c.cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case <-c.done:
			c.cleanup()
			return nil, fmt.Errorf("the server exited during start (run with -server-logs to see why)")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("the server did not become ready within 30s")
		}
	}
}

func (c *child) stop() {
	if c.cmd == nil {
		c.shutdown()
		<-c.done
		c.cleanup()
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	c.cleanup()
}

func (c *child) cleanup() {
	if c.dropSchema != nil {
		c.dropSchema()
	}
	os.RemoveAll(c.dataDir)
}

// memory reads the child's resident set size and its peak, in KiB.
func (c *child) memory() (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// freshSchema creates an empty schema in the PostgreSQL database and returns a URL
// whose connections use it, and a function that drops it.
func freshSchema(raw string) (string, func(), error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("-database-url must be a postgres:// URL")
	}
	if err := loopbackOnly("http://" + u.Host); err != nil {
		return "", nil, fmt.Errorf("-database-url: %w", err)
	}
	db, err := sql.Open("pgx", raw)
	if err != nil {
		return "", nil, err
	}
	schema := "bench_" + randHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	}
	return u.String(), drop, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is what setup registered.
type fixture struct {
	audience, clientID, clientSecret, token string
	credToken                               string // the agent's Credential API token
	upstreams                               *upstreams
	exchange                                *exchangeFixture
}

const benchAudience = "https://bench.agentguard.test/api"

func setup(c *http.Client, base, adminToken string) (*fixture, error) {
	admin := func(method, path string, body, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	suffix := randHex(4)
	fx := &fixture{audience: benchAudience + "/" + suffix}
	if err := admin("POST", "/api/v1/resource-servers", map[string]any{
		"name": "bench-" + suffix, "audience": fx.audience,
		"scopes":         []map[string]string{{"name": "read", "description": "read"}, {"name": "write", "description": "write"}},
		"token_lifetime": 900,
	}, nil); err != nil {
		return nil, err
	}
	var a struct {
		ID string `json:"id"`
	}
	if err := admin("POST", "/api/v1/agents", map[string]any{"name": "bench-" + suffix, "owner": "bench", "type": "autonomous"}, &a); err != nil {
		return nil, err
	}
	fx.clientID = a.ID
	var sec struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := admin("POST", "/api/v1/agents/"+a.ID+"/secrets", nil, &sec); err != nil {
		return nil, err
	}
	fx.clientSecret = sec.ClientSecret
	if err := admin("POST", "/api/v1/agents/"+a.ID+"/grants", map[string]any{"audience": fx.audience, "scopes": []string{"read", "write"}}, nil); err != nil {
		return nil, err
	}
	// One token to introspect, fetched the way the token scenario does.
	sc, _ := fx.scenario("tokens", base)
	req := sc.newRequest()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return nil, fmt.Errorf("first token request: HTTP %d %s %v", resp.StatusCode, tr.Error, err)
	}
	fx.token = tr.AccessToken
	return fx, nil
}

// scenario is one kind of request, made again and again.
type scenario struct {
	name       string
	newRequest func() *http.Request
}

func (fx *fixture) scenario(name, base string) (scenario, error) {
	basic := "Basic " + basicAuth(url.QueryEscape(fx.clientID), url.QueryEscape(fx.clientSecret))
	post := func(path string, form url.Values) func() *http.Request {
		body := []byte(form.Encode())
		u := base + path
		return func() *http.Request {
			req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", basic)
			return req
		}
	}
	switch name {
	case "tokens":
		return scenario{name, post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "resource": {fx.audience}})}, nil
	case "introspect":
		return scenario{name, post("/oauth2/introspect", url.Values{"token": {fx.token}})}, nil
	case "exchange":
		if fx.exchange == nil {
			return scenario{}, fmt.Errorf("the exchange scenario was not set up")
		}
		return fx.exchange.scenario(base, fx.audience), nil
	case "jwks":
		u := base + "/oauth2/jwks"
		return scenario{name, func() *http.Request { req, _ := http.NewRequest("GET", u, nil); return req }}, nil
	}
	if sc, ok := fx.credentialScenario(name, base); ok {
		return sc, nil
	}
	return scenario{}, fmt.Errorf("unknown scenario %q (use tokens, exchange, introspect, jwks, apikey, oauthtoken, direct or proxy)", name)
}

func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}

// result is one scenario's measurements.
type result struct {
	name      string
	elapsed   time.Duration
	ok        int64
	errors    int64
	firstErr  string
	latencies []time.Duration // sorted, successful requests only
	rssKB     int64
	hwmKB     int64
	cpu       cpuUse
}

// drive runs conns workers making sc's request until d has passed.
func drive(c *http.Client, sc scenario, conns int, d time.Duration) result {
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		firstErr atomic.Value
		all      = make([][]time.Duration, conns)
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				req := sc.newRequest()
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			all[i] = lat
		}()
	}
	wg.Wait()
	r := result{elapsed: time.Since(start), errors: errs.Load()}
	if v, ok := firstErr.Load().(string); ok {
		r.firstErr = v
	}
	for _, l := range all {
		r.latencies = append(r.latencies, l...)
	}
	slices.Sort(r.latencies)
	r.ok = int64(len(r.latencies))
	return r
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// p is the q-th percentile of the successful requests' latencies (nearest rank).
func (r result) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*q/100+0.5) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

func (r result) print(w io.Writer, label string) {
	fmt.Fprintf(w, "%-8s %-10s %9.0f req/s  p50 %s  p90 %s  p99 %s  max %s  ok %d  errors %d",
		label, r.name, r.rate(), ms(r.p(50)), ms(r.p(90)), ms(r.p(99)), ms(r.p(100)), r.ok, r.errors)
	if r.rssKB > 0 {
		fmt.Fprintf(w, "  server RSS %s", rss(r))
	}
	if r.ok > 0 {
		fmt.Fprintf(w, "  CPU/req server %s load %s (%s)", us(r.cpu.server, r.ok), us(r.cpu.load, r.ok), r.cpu.note)
	}
	if r.firstErr != "" {
		fmt.Fprintf(w, "  (first error: %s)", r.firstErr)
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func rss(r result) string {
	if r.rssKB == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB (%.0f MiB)", float64(r.rssKB)/1024, float64(r.hwmKB)/1024)
}

// cpuUse is CPU time spent by the server and by this load generator. When the
// server runs in this process the two cannot be told apart: all of it is "server".
type cpuUse struct {
	server, load time.Duration
	note         string
}

func (a cpuUse) sub(b cpuUse) cpuUse {
	return cpuUse{server: a.server - b.server, load: a.load - b.load, note: a.note}
}

// cpuTimes reads user+system CPU of the child server (/proc/<pid>/stat, in clock
// ticks of 10 ms) and of this process (getrusage).
func cpuTimes(c *child) cpuUse {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if c == nil {
		return cpuUse{load: self, note: "external server: load generator only"}
	}
	if c.cmd == nil {
		return cpuUse{server: self, note: "in-process: server and load generator together"}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid))
	if err != nil {
		return cpuUse{load: self}
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return cpuUse{load: self}
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return cpuUse{server: time.Duration(ut+st) * 10 * time.Millisecond, load: self, note: "server and load generator"}
}

func us(d time.Duration, n int64) string {
	if n == 0 || d <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(n))
}
