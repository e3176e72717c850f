package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type scopeJSON struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Groups      []string `json:"groups,omitempty"`
}

type serviceJSON struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Audience      string      `json:"audience"`
	Scopes        []scopeJSON `json:"scopes"`
	TokenLifetime int64       `json:"token_lifetime"`
	BuiltIn       bool        `json:"built_in"`
	CreatedAt     time.Time   `json:"created_at"`
}

var serviceView = view[serviceJSON]{
	header: []string{"ID", "NAME", "AUDIENCE", "SCOPES", "TOKEN_LIFETIME", "CREATED"},
	row: func(s serviceJSON) []string {
		names := make([]string, 0, len(s.Scopes))
		for _, sc := range s.Scopes {
			names = append(names, sc.Name)
		}
		return []string{s.ID, s.Name, s.Audience, strings.Join(names, ","),
			(time.Duration(s.TokenLifetime) * time.Second).String(), timeCell(&s.CreatedAt)}
	},
}

func newServiceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"resource-server"},
		Short:   "Manage resource servers: the APIs and MCP servers that accept agentguard tokens",
		Long: `Manage resource servers. Each has an audience (the aud of tokens for it) and the
scopes it defines; agents are granted scopes on it with 'agentguard grant add'.`,
	}
	cmd.AddCommand(newServiceCreateCmd(g), newServiceListCmd(g), newServiceGetCmd(g), newServiceDeleteCmd(g))
	return cmd
}

func newServiceCreateCmd(g *globals) *cobra.Command {
	var name, audience string
	var scopes []string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "create --name NAME --audience URI --scope NAME[:DESCRIPTION]...",
		Short: "Register a resource server and its scopes",
		Example: `  agentguard service create --name files --audience https://files.example.com \
    --scope read:file:"read files" --scope write:file --token-lifetime 10m
  agentguard service create --name payroll --audience https://payroll.example.com \
    --scope 'read:Read payslips' --scope 'approve:Approve payroll groups=finance,hr-leads'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"name": name, "audience": audience}
			if len(scopes) > 0 {
				list := make([]scopeJSON, 0, len(scopes))
				for _, s := range scopes {
					list = append(list, parseScopeFlag(s))
				}
				body["scopes"] = list
			}
			if cmd.Flags().Changed("token-lifetime") {
				s, err := seconds("token-lifetime", lifetime)
				if err != nil {
					return err
				}
				body["token_lifetime"] = s
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("resource-servers"), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, serviceView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name of the resource server (required)")
	f.StringVar(&audience, "audience", "", "absolute URI its tokens carry in aud, e.g. https://api.example.com (required)")
	f.StringArrayVar(&scopes, "scope", nil, "a scope it defines, as NAME or NAME:DESCRIPTION; the description needs a space (read:file:\"Read files\"); "+
		"end with ' groups=G1,G2' to give the scope, in tokens agents get on behalf of users, only to users in those groups (repeatable)")
	f.DurationVar(&lifetime, "token-lifetime", 0, "lifetime of tokens for it, 1m to 24h (server default 15m)")
	return cmd
}

// parseScopeFlag splits NAME[:DESCRIPTION][ groups=G1,G2]. Scope names often hold
// colons (read:file) but never spaces, so the description starts after the last
// colon before the first space: "read:file:Read files" is read:file, "Read files". A
// value without a space is all name. A trailing " groups=…" (after a space) lists the
// groups the scope is restricted to for users.
func parseScopeFlag(s string) scopeJSON {
	var groups []string
	if i := strings.LastIndex(s, " groups="); i >= 0 {
		for _, g := range strings.Split(s[i+len(" groups="):], ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		s = strings.TrimSpace(s[:i])
	}
	sc := parseScopeNameDescription(s)
	sc.Groups = groups
	return sc
}

func parseScopeNameDescription(s string) scopeJSON {
	parts := strings.Split(s, ":")
	for i := 1; i < len(parts); i++ {
		if strings.ContainsAny(parts[i], " \t") {
			return scopeJSON{Name: strings.Join(parts[:i], ":"), Description: strings.TrimSpace(strings.Join(parts[i:], ":"))}
		}
	}
	return scopeJSON{Name: s}
}

func newServiceListCmd(g *globals) *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List resource servers (including the built-in one, agentguard itself)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("resource-servers"), q, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, serviceView)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newServiceGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one resource server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("resource-servers", args[0]), nil, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := printOne(cmd, g, raw, serviceView); err != nil {
				return err
			}
			return printScopes(cmd, raw)
		},
	}
}

// printScopes adds the scopes with their descriptions under a `service get` table.
func printScopes(cmd *cobra.Command, raw []byte) error {
	var s serviceJSON
	if err := json.Unmarshal(raw, &s); err != nil || len(s.Scopes) == 0 {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout())
	rows := make([][]string, 0, len(s.Scopes))
	for _, sc := range s.Scopes {
		groups := strings.Join(sc.Groups, ",")
		if groups == "" {
			groups = "(everyone)"
		}
		rows = append(rows, []string{sc.Name, sc.Description, groups})
	}
	return printTable(cmd.OutOrStdout(), []string{"SCOPE", "DESCRIPTION", "USER_GROUPS"}, rows)
}

func newServiceDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a resource server and every grant on it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("resource-servers", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted resource server %s.", args[0])
			return nil
		},
	}
}
