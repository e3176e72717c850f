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

// envAPIKeyValue holds an API key value when no --value-file is given.
const envAPIKeyValue = "AGENTGUARD_API_KEY_VALUE"

type keyVersionJSON struct {
	Version   int64      `json:"version"`
	Current   bool       `json:"current"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type apiKeyJSON struct {
	ID          string           `json:"id"`
	Identifier  string           `json:"identifier"`
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Version     int64            `json:"version"`
	Versions    []keyVersionJSON `json:"versions"`
	UsedBy      []string         `json:"used_by"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

var apiKeyView = view[apiKeyJSON]{
	header: []string{"IDENTIFIER", "NAME", "VERSION", "ID", "UPDATED"},
	row: func(k apiKeyJSON) []string {
		return []string{k.Identifier, k.Name, strconv.FormatInt(k.Version, 10), k.ID, timeCell(&k.UpdatedAt)}
	},
}

func newAPIKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apikey",
		Aliases: []string{"api-key"},
		Short:   "Manage API keys (values are sealed and never shown)",
	}
	cmd.AddCommand(newAPIKeyCreateCmd(g), newAPIKeyGetCmd(g), newAPIKeyListCmd(g), newAPIKeyUpdateCmd(g),
		newAPIKeyRotateCmd(g), newAPIKeyRollbackCmd(g), newAPIKeyDeleteCmd(g))
	return cmd
}

func newAPIKeyCreateCmd(g *globals) *cobra.Command {
	var name, description, valueFile string
	cmd := &cobra.Command{
		Use:   "create IDENTIFIER (--value-file FILE | --value-file - | $" + envAPIKeyValue + ")",
		Short: "Store an API key under an identifier agents name it by",
		Long: `Store an API key. The identifier is what agent code and outbound nodes name it by
(letters, digits, '.', '_', '-'). The value is read from --value-file (- for standard
input) or ` + envAPIKeyValue + `, never from an argument; it is sealed at once and never shown again.`,
		Example: `  agentguard credential apikey create openai --name "OpenAI production" --value-file openai.key
  pass show openai | agentguard credential apikey create openai --value-file -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := readSecret(cmd, g, valueFile, "value-file", envAPIKeyValue)
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]string{"identifier": args[0], "name": name, "description": description, "value": value}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("credentials", "api-keys"), nil, body)
			if err != nil {
				return redactErr(err, value)
			}
			return printOne(cmd, g, raw, apiKeyView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name (default: the identifier)")
	f.StringVar(&description, "description", "", "what the key is for")
	f.StringVar(&valueFile, "value-file", "", "file holding the value (- reads standard input); else $"+envAPIKeyValue)
	return cmd
}

func newAPIKeyGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get IDENTIFIER",
		Short: "Show an API key's metadata, kept versions and the agents using it (never the value)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("credentials", "api-keys", args[0]), nil, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var k apiKeyJSON
			if err := json.Unmarshal(raw, &k); err != nil {
				return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
			}
			out := cmd.OutOrStdout()
			if err := printTable(out, apiKeyView.header, [][]string{apiKeyView.row(k)}); err != nil {
				return err
			}
			fmt.Fprintln(out)
			rows := make([][]string, 0, len(k.Versions))
			for _, v := range k.Versions {
				state := "current"
				if !v.Current {
					state = "kept until " + timeCell(v.ExpiresAt)
				}
				rows = append(rows, []string{strconv.FormatInt(v.Version, 10), state, timeCell(&v.CreatedAt)})
			}
			if err := printTable(out, []string{"VERSION", "STATE", "CREATED"}, rows); err != nil {
				return err
			}
			used := "no agent"
			if len(k.UsedBy) > 0 {
				used = strings.Join(k.UsedBy, ", ")
			}
			fmt.Fprintf(out, "\nused by: %s\n", used)
			return nil
		},
	}
}

func newAPIKeyListCmd(g *globals) *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("credentials", "api-keys"), pageQuery(limit, cursor), nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, apiKeyView)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func pageQuery(limit int, cursor string) url.Values {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

func newAPIKeyUpdateCmd(g *globals) *cobra.Command {
	var name, description string
	cmd := &cobra.Command{
		Use:   "update IDENTIFIER [--name NAME] [--description TEXT]",
		Short: "Change an API key's name or description (the value changes with rotate)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]string{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			if cmd.Flags().Changed("description") {
				body["description"] = description
			}
			if len(body) == 0 {
				return errNoChange
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("credentials", "api-keys", args[0]), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, apiKeyView)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "new display name")
	cmd.Flags().StringVar(&description, "description", "", "new description")
	return cmd
}

func newAPIKeyRotateCmd(g *globals) *cobra.Command {
	var valueFile string
	var keep time.Duration
	cmd := &cobra.Command{
		Use:   "rotate IDENTIFIER (--value-file FILE | --value-file - | $" + envAPIKeyValue + ") [--keep-previous 24h]",
		Short: "Store a new value as the next version; agents get it on their next call",
		Long: `Rotate an API key: the new value becomes version n+1 and every agent's next retrieval
returns it. With --keep-previous the old value is kept that long so 'rollback' can
restore it; without, it is deleted at once.`,
		Example: `  agentguard credential apikey rotate openai --value-file new.key --keep-previous 24h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := readSecret(cmd, g, valueFile, "value-file", envAPIKeyValue)
			if err != nil {
				return err
			}
			body := map[string]any{"value": value}
			if cmd.Flags().Changed("keep-previous") && keep != 0 {
				s, err := seconds("keep-previous", keep)
				if err != nil {
					return err
				}
				body["keep_previous_for"] = s
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "PUT", apiPath("credentials", "api-keys", args[0], "value"), nil, body)
			if err != nil {
				return redactErr(err, value)
			}
			return printOne(cmd, g, raw, apiKeyView)
		},
	}
	cmd.Flags().StringVar(&valueFile, "value-file", "", "file holding the new value (- reads standard input); else $"+envAPIKeyValue)
	cmd.Flags().DurationVar(&keep, "keep-previous", 0, "keep the previous value this long for rollback, e.g. 24h (at most 2160h; default: delete it)")
	return cmd
}

func newAPIKeyRollbackCmd(g *globals) *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "rollback IDENTIFIER [--version N]",
		Short: "Make a kept previous version current again (the version it replaces is deleted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			if version != 0 {
				body = map[string]int64{"version": version}
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("credentials", "api-keys", args[0], "rollback"), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, apiKeyView)
		},
	}
	cmd.Flags().Int64Var(&version, "version", 0, "the kept version to restore (default: the newest)")
	return cmd
}

func newAPIKeyDeleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete IDENTIFIER [--force]",
		Short: "Delete an API key; refused while outbound nodes use it, unless --force (which removes them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteCredential(cmd, g, "api-keys", args[0], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "also remove the outbound nodes that use it")
	return cmd
}

func deleteCredential(cmd *cobra.Command, g *globals, kind, identifier string, force bool) error {
	c, err := g.client(cmd)
	if err != nil {
		return err
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	if _, err := c.Do(cmd.Context(), "DELETE", apiPath("credentials", kind, identifier), q, nil); err != nil {
		return err
	}
	printDone(cmd, g, "Deleted %s.", identifier)
	return nil
}
