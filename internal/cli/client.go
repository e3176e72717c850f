package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// Defaults of the client flags.
const (
	defaultServer  = "http://127.0.0.1:8080"
	defaultDataDir = "./agentguard-data"
	adminTokenFile = "admin-token" // as written by `serve` (internal/admin.TokenFile)
	// maxResponseBytes bounds what the CLI reads from the server.
	maxResponseBytes = 16 << 20
)

// globals are the root's persistent flags, shared by every client command.
type globals struct {
	server  string
	token   string
	output  string
	dataDir string
	// getenv is os.Getenv; tests may replace it.
	getenv func(string) string
}

func addGlobalFlags(root *cobra.Command) *globals {
	g := &globals{getenv: os.Getenv}
	fs := root.PersistentFlags()
	fs.StringVar(&g.server, "server", "", "agentguard base URL (env AGENTGUARD_SERVER; default "+defaultServer+")")
	fs.StringVar(&g.token, "token", "", "admin bearer token (env AGENTGUARD_ADMIN_TOKEN; default: the file <data-dir>/admin-token)")
	fs.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	fs.StringVar(&g.dataDir, "data-dir", "", "where to find the admin-token file when neither --token nor AGENTGUARD_ADMIN_TOKEN is set (env AGENTGUARD_DATA_DIR; default "+defaultDataDir+")")
	return g
}

// serverURL is --server, else AGENTGUARD_SERVER, else the default, without a
// trailing slash.
func (g *globals) serverURL() (string, error) {
	s := g.server
	if s == "" {
		s = g.getenv("AGENTGUARD_SERVER")
	}
	if s == "" {
		s = defaultServer
	}
	s = strings.TrimSuffix(s, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", fmt.Errorf("--server %q must be an http(s) base URL, e.g. %s", s, defaultServer)
	}
	return s, nil
}

// adminToken is --token, else AGENTGUARD_ADMIN_TOKEN, else the bootstrap token file
// that `agentguard serve` wrote into its data dir.
func (g *globals) adminToken() (string, error) {
	if g.token != "" {
		return g.token, nil
	}
	if t := g.getenv("AGENTGUARD_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	dir := g.dataDir
	if dir == "" {
		dir = g.getenv("AGENTGUARD_DATA_DIR")
	}
	if dir == "" {
		dir = defaultDataDir
	}
	path := filepath.Join(dir, adminTokenFile)
	b, err := readFileLimited(path, 4<<10)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no admin token: pass --token, set AGENTGUARD_ADMIN_TOKEN, or point --data-dir at the server's data dir (%s does not exist)", path)
	}
	if err != nil {
		return "", fmt.Errorf("read the admin token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("the admin token file %s is empty", path)
	}
	return t, nil
}

func (g *globals) checkOutput() error {
	switch g.output {
	case "table", "json":
		return nil
	}
	return fmt.Errorf("--output %q must be table or json", g.output)
}

// client is a management API client for the command's flags.
func (g *globals) client(cmd *cobra.Command) (*Client, error) {
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	base, err := g.serverURL()
	if err != nil {
		return nil, err
	}
	tok, err := g.adminToken()
	if err != nil {
		return nil, err
	}
	warnPlainHTTP(cmd.ErrOrStderr(), base)
	return &Client{BaseURL: base, Token: tok, HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// warnPlainHTTP warns when a credential would cross the network unencrypted.
func warnPlainHTTP(w io.Writer, base string) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return
	}
	fmt.Fprintf(w, "warning: %s is plain http; credentials are sent unencrypted (use https)\n", base)
}

// Client calls the management API with an admin bearer token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Do sends body (if non-nil) as JSON and returns the response body of a 2xx answer.
// Any other answer becomes an error showing the problem's title, detail and fields.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	u := c.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.redact(fmt.Errorf("%s %s: %w", method, c.BaseURL+path, unwrapURLError(err)))
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, maxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.redact(responseError(resp.StatusCode, b))
	}
	return b, nil
}

// unwrapURLError drops *url.Error's own copy of the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact keeps the admin token out of an error, whatever the server echoed.
func (c *Client) redact(err error) error {
	return redactErr(err, c.Token)
}

func redactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg, changed = strings.ReplaceAll(msg, s, "[redacted]"), true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}

// responseError renders an RFC 9457 problem, an RFC 6749 error, or a bare status.
func responseError(status int, body []byte) error {
	prefix := fmt.Sprintf("%d %s", status, http.StatusText(status))
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Field  string `json:"field"`
			Detail string `json:"detail"`
		} `json:"errors"`
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &p) == nil {
		switch {
		case len(p.Errors) > 0:
			parts := make([]string, 0, len(p.Errors))
			for _, fe := range p.Errors {
				parts = append(parts, fe.Field+": "+fe.Detail)
			}
			return fmt.Errorf("%s: %s", prefix, strings.Join(parts, "; "))
		case p.Detail != "":
			return fmt.Errorf("%s: %s", prefix, p.Detail)
		case p.Code != "" && p.Description != "":
			return fmt.Errorf("%s: %s: %s", prefix, p.Code, p.Description)
		case p.Code != "":
			return fmt.Errorf("%s: %s", prefix, p.Code)
		case p.Title != "":
			return fmt.Errorf("%s: %s", prefix, p.Title)
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" || !isPrintable(text) {
		return errors.New(prefix)
	}
	return fmt.Errorf("%s: %s", prefix, text)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

func readLimited(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("over the %d-byte limit", n)
	}
	return b, nil
}

func readFileLimited(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readLimited(f, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Output.

// list is the management API's list envelope.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// view says how to show one kind of resource as a table.
type view[T any] struct {
	header []string
	row    func(T) []string
}

// printOne shows a single resource: the server's JSON, or a one-row table.
func printOne[T any](cmd *cobra.Command, g *globals, raw []byte, v view[T]) error {
	if g.output == "json" {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	var item T
	if err := json.Unmarshal(raw, &item); err != nil {
		return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
	}
	return printTable(cmd.OutOrStdout(), v.header, [][]string{v.row(item)})
}

// printList shows a list; in table mode the next cursor goes to stderr so stdout
// stays one row per item.
func printList[T any](cmd *cobra.Command, g *globals, raw []byte, v view[T]) error {
	if g.output == "json" {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	var l list[T]
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
	}
	rows := make([][]string, 0, len(l.Items))
	for _, it := range l.Items {
		rows = append(rows, v.row(it))
	}
	if err := printTable(cmd.OutOrStdout(), v.header, rows); err != nil {
		return err
	}
	if l.NextCursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more results: add --cursor %s\n", l.NextCursor)
	}
	return nil
}

func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i, c := range r {
			if c == "" {
				r[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printDone confirms a change that has no body (204) in table mode; json mode prints
// nothing, as the server sent nothing.
func printDone(cmd *cobra.Command, g *globals, format string, args ...any) {
	if g.output != "json" {
		fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	}
}

func timeCell(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// seconds converts a duration flag to the API's whole seconds.
func seconds(flag string, d time.Duration) (int64, error) {
	if d <= 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("--%s %s must be a positive whole number of seconds, e.g. 15m or 720h", flag, d)
	}
	return int64(d / time.Second), nil
}

// listQuery is a list request's query: the filters that are set, and limit when
// it is not 0.
func listQuery(filters map[string]string, limit int) url.Values {
	query := url.Values{}
	for k, v := range filters {
		if v != "" {
			query.Set(k, v)
		}
	}
	if limit != 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	return query
}

// path joins escaped segments under /api/v1.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
