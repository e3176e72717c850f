package cli

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// registrationJSON is the fields of a dynamic client registration the table shows.
type registrationJSON struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	ClientName   string    `json:"client_name"`
	ClientType   string    `json:"client_type"`
	RedirectURIs []string  `json:"redirect_uris"`
	SoftwareID   string    `json:"software_id"`
	SourceIP     string    `json:"source_ip"`
	CreatedAt    time.Time `json:"created_at"`
	DecidedBy    string    `json:"decided_by"`
}

var registrationView = view[registrationJSON]{
	header: []string{"ID", "STATUS", "NAME", "TYPE", "REDIRECT_URIS", "SOFTWARE", "FROM", "CREATED", "DECIDED_BY"},
	row: func(r registrationJSON) []string {
		return []string{r.ID, r.Status, r.ClientName, r.ClientType, strings.Join(r.RedirectURIs, ","), r.SoftwareID, r.SourceIP,
			timeCell(&r.CreatedAt), r.DecidedBy}
	},
}

func newRegistrationCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registration",
		Short: "Review dynamic client registrations (RFC 7591), e.g. from MCP clients",
		Long: `Review the clients that registered themselves at /oauth2/register (MCP clients do so
when an MCP server protected by agentguard sends them here). With the server's
--client-registration approval (the default) a registration waits until it is approved
here; only then does its client id work. Approving gives the client no access by itself:
an agent's inbound rules must name the client before users reach the agent through it.`,
	}
	cmd.AddCommand(newRegistrationListCmd(g), newRegistrationGetCmd(g), newRegistrationDecideCmd(g, "approve"), newRegistrationDecideCmd(g, "reject"))
	return cmd
}

func newRegistrationListCmd(g *globals) *cobra.Command {
	var status, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List registrations (--status pending|approved|rejected)",
		Example: `  agentguard registration list --status pending`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", status)
			}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("client-registrations"), q, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, registrationView)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only pending, approved or rejected registrations")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newRegistrationGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get REGISTRATION_ID",
		Short: "Show one registration with everything the client said about itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("client-registrations", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, registrationView)
		},
	}
}

func newRegistrationDecideCmd(g *globals, verb string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " REGISTRATION_ID",
		Short: map[string]string{"approve": "Approve a pending registration: its client is created", "reject": "Reject a pending registration: its client id is never issued"}[verb],
		Example: map[string]string{
			"approve": "  agentguard registration approve cli_06h0…",
			"reject":  "  agentguard registration reject cli_06h0… --reason 'unknown vendor'",
		}[verb],
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			var body any
			if verb == "reject" && reason != "" {
				body = map[string]string{"reason": reason}
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("client-registrations", args[0], verb), nil, body)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, registrationView)
		},
	}
	if verb == "reject" {
		cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the registration)")
	}
	return cmd
}
