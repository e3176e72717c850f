package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server"
	"github.com/agentguard/agentguard/sdk"
	"github.com/agentguard/agentguard/sdk/verify"
)

// Options configure the demo.
type Options struct {
	// Human: the agent acts on the user's behalf (token exchange); otherwise as
	// itself (client_credentials).
	Human bool
	// DataDir keeps agentguard's data; empty: a temporary directory removed on Close.
	DataDir string
	// WebAddr is where the web app listens (default a free loopback port).
	WebAddr string
	Out     io.Writer
}

// Demo is the running walkthrough: agentguard and the five other parts.
type Demo struct {
	Issuer, WebURL, AgentURL, LLMURL, WeatherURL, EnterpriseURL string
	AdminToken                                                  string
	Provisioned                                                 Provisioned
	Hops                                                        *Hops
	Server                                                      *server.Server
	// AdminTokenFile holds the admin token (mode 0600), for exploring the API.
	AdminTokenFile string

	closers []func()
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

func secretValue(prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Start runs everything on loopback ports and provisions agentguard.
func Start(ctx context.Context, opts Options) (_ *Demo, err error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	d := &Demo{Hops: NewHops(opts.Out)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	dataDir := opts.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "agentguard-demo-"); err != nil {
			return nil, err
		}
		d.closers = append(d.closers, func() { os.RemoveAll(dataDir) })
	}

	lns := map[string]net.Listener{}
	for _, name := range []string{"agentguard", "llm", "weather-mcp", "enterprise", "agent", "web"} {
		addr := ""
		if name == "web" {
			addr = opts.WebAddr
		}
		ln, err := listen(addr)
		if err != nil {
			return nil, fmt.Errorf("listen for %s: %w", name, err)
		}
		lns[name] = ln
		d.Hops.Name(ln.Addr().String(), name)
		d.closers = append(d.closers, func() { ln.Close() })
	}
	base := func(name string) string { return "http://" + lns[name].Addr().String() }
	d.Issuer, d.WebURL = base("agentguard"), base("web")
	d.AgentURL = base("agent") + "/openai/v1/chat/completions"
	d.LLMURL, d.WeatherURL, d.EnterpriseURL = base("llm")+"/v1", base("weather-mcp")+"/mcp", base("enterprise")

	// agentguard itself, in this process, on SQLite in the data dir.
	d.AdminToken = secretValue("demo-admin-")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.Flags(fs)
	if err := fs.Parse([]string{"--addr", lns["agentguard"].Addr().String(), "--data-dir", dataDir, "--log-level", "warn"}); err != nil {
		return nil, err
	}
	d.AdminTokenFile = filepath.Join(dataDir, "demo-admin-token")
	if err := os.WriteFile(d.AdminTokenFile, []byte(d.AdminToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(fs, []string{"AGENTGUARD_ADMIN_TOKEN=" + d.AdminToken})
	if err != nil {
		return nil, err
	}
	if d.Server, err = server.New(ctx, cfg, server.Options{}); err != nil {
		return nil, fmt.Errorf("start agentguard: %w", err)
	}
	d.closers = append(d.closers, func() { d.Server.Close() })
	srvCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { d.Server.Serve(srvCtx, lns["agentguard"]); close(done) }()
	d.closers = append(d.closers, func() { stop(); <-done })
	if err := waitReady(ctx, d.Issuer); err != nil {
		return nil, err
	}

	llmKey, weatherKey := secretValue("sk-demo-"), secretValue("wk-demo-")
	d.serve(lns["llm"], &fakeLLM{key: llmKey})
	d.serve(lns["weather-mcp"], newWeatherServer(weatherKey))
	users := map[string]string{}
	enterprise, err := newEnterpriseService(d.Issuer, users)
	if err != nil {
		return nil, err
	}
	d.serve(lns["enterprise"], enterprise)

	adm := &admin{base: d.Issuer, token: d.AdminToken, http: &http.Client{Timeout: 30 * time.Second}, out: opts.Out}
	if d.Provisioned, err = provision(ctx, adm, opts.Human, d.WebURL, llmKey, weatherKey); err != nil {
		return nil, err
	}
	users[d.Provisioned.UserID] = demoUser

	// The agent: the SDK configured in code (docs/sdk.md shows the same as a
	// client-config.json), its calls printed as hops.
	ag, err := sdk.New(sdk.Config{Issuer: d.Issuer, ClientID: d.Provisioned.AgentID, ClientSecret: d.Provisioned.AgentSecret, AuthMethod: sdk.ClientSecretBasic},
		sdk.WithHTTPClient(d.Hops.Client("agent")))
	if err != nil {
		return nil, err
	}
	v, err := verify.New(verify.Config{Issuer: d.Issuer, Audience: d.Provisioned.AgentAudience, HTTPClient: d.Hops.Client("agent")})
	if err != nil {
		return nil, err
	}
	agent := &demoAgent{ag: ag, human: opts.Human, llmURL: d.LLMURL, weatherURL: d.WeatherURL, enterpriseURL: d.EnterpriseURL,
		http: d.Hops.Client("agent"), hops: d.Hops}
	d.serve(lns["agent"], agent.handler(v))
	web := newWebApp(d.WebURL, d.Issuer, d.Provisioned.ClientID, d.Provisioned.ClientSecret, d.AgentURL, d.Provisioned.AgentAudience, d.Hops.Client("web"), d.Hops)
	d.serve(lns["web"], web.handler())
	return d, nil
}

func (d *Demo) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	d.closers = append(d.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
}

// Close stops everything (in reverse order of start).
func (d *Demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("agentguard did not become ready in 30 s")
}

// Questions are the walkthrough's two questions.
var Questions = []string{"What is the weather in Hangzhou?", "Call my enterprise service"}

// Script signs alice in through the web app, as a browser would, and asks the two
// questions. It returns the answers.
func (d *Demo) Script(ctx context.Context, out io.Writer) ([]string, error) {
	b := newBrowser(d.Hops)
	fmt.Fprintf(out, "\nAlice signs in through the web app (%s):\n", d.WebURL)
	if err := b.signIn(ctx, d.WebURL, demoUser, demoPassword); err != nil {
		return nil, err
	}
	var answers []string
	for _, q := range Questions {
		fmt.Fprintf(out, "\nAlice asks: %q\n", q)
		res, err := b.chat(ctx, d.WebURL, q)
		if err != nil {
			return answers, err
		}
		a, _ := res["answer"].(string)
		fmt.Fprintf(out, "The agent answers: %s\n", a)
		answers = append(answers, a)
	}
	return answers, d.printAudit(ctx, out)
}

// AuditEvent is one event of agentguard's audit log, as the API lists it.
type AuditEvent struct {
	Category     string `json:"category"`
	Action       string `json:"action"`
	Decision     string `json:"decision"`
	Reason       string `json:"reason"`
	AgentID      string `json:"agent_id"`
	User         string `json:"user"`
	ClientID     string `json:"client_id"`
	ResourceType string `json:"resource_type"`
	Resource     string `json:"resource"`
}

// Audit returns the audit events of the walkthrough (not the provisioning's admin
// events), oldest first.
func (d *Demo) Audit(ctx context.Context) ([]AuditEvent, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.Issuer+"/api/v1/audit/events?limit=500", nil)
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page struct{ Items []AuditEvent }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("audit search: HTTP %d", resp.StatusCode)
	}
	var out []AuditEvent
	for i := len(page.Items) - 1; i >= 0; i-- {
		if page.Items[i].Category != "admin" {
			out = append(out, page.Items[i])
		}
	}
	return out, nil
}

// printAudit shows what agentguard recorded for each hop.
func (d *Demo) printAudit(ctx context.Context, out io.Writer) error {
	events, err := d.Audit(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nagentguard's audit log for the walkthrough (GET /api/v1/audit/events, oldest first):\n")
	for _, e := range events {
		fmt.Fprintf(out, "  %-10s %-16s %-5s on %s %s\n      user=%s agent=%s client=%s: %s\n",
			e.Category, e.Action, e.Decision, e.ResourceType, e.Resource, orDefault(e.User, "-"), orDefault(e.AgentID, "-"), orDefault(e.ClientID, "-"), e.Reason)
	}
	return nil
}

// summary prints where everything is.
func (d *Demo) summary(out io.Writer, human bool) {
	mode := "machine (the agent calls the enterprise service as itself)"
	if human {
		mode = "human (the agent acts on the user's behalf: token exchange)"
	}
	fmt.Fprintf(out, "\nRunning (%s):\n", mode)
	for _, l := range []struct{ name, url string }{
		{"web app (sign in and chat)", d.WebURL}, {"agentguard", d.Issuer}, {"agent", d.AgentURL},
		{"fake LLM", d.LLMURL}, {"weather MCP server", d.WeatherURL}, {"enterprise service", d.EnterpriseURL},
	} {
		fmt.Fprintf(out, "  %-28s %s\n", l.name, l.url)
	}
	fmt.Fprintf(out, "  %-28s user %s, password %s\n", "sign in as", demoUser, demoPassword)
	fmt.Fprintf(out, "  %-28s curl -s -H \"Authorization: Bearer $(cat %s)\" %s/api/v1/audit/events\n", "audit log", d.AdminTokenFile, d.Issuer)
}
