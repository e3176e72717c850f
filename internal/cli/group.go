package cli

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

type groupJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Source      string    `json:"source"`
	MemberCount int       `json:"member_count"`
	CreatedAt   time.Time `json:"created_at"`
}

var groupView = view[groupJSON]{
	header: []string{"ID", "NAME", "DISPLAY_NAME", "SOURCE", "MEMBERS", "CREATED"},
	row: func(g groupJSON) []string {
		return []string{g.ID, g.Name, g.DisplayName, g.Source, strconv.Itoa(g.MemberCount), timeCell(&g.CreatedAt)}
	},
}

type memberJSON struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	Source   string    `json:"source"`
	AddedAt  time.Time `json:"added_at"`
}

var memberView = view[memberJSON]{
	header: []string{"USER_ID", "USERNAME", "ADDED_BY", "ADDED"},
	row:    func(m memberJSON) []string { return []string{m.UserID, m.Username, m.Source, timeCell(&m.AddedAt)} },
}

func newGroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Manage groups of users (inbound rules can admit a group)",
		Long: `Manage groups. Commands take the group id (grp_…) or its name. Membership can also be
changed from the user's side ('agentguard user update USER --group …').`,
	}
	cmd.AddCommand(newGroupCreateCmd(g), newGroupListCmd(g), newGroupGetCmd(g), newGroupRenameCmd(g), newGroupDeleteCmd(g),
		newGroupMembersCmd(g), newGroupAddCmd(g), newGroupRemoveCmd(g))
	return cmd
}

func newGroupCreateCmd(g *globals) *cobra.Command {
	var req struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"display_name,omitempty"`
		Members     []string `json:"members,omitempty"`
	}
	cmd := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Create a group",
		Example: `  agentguard group create --name hr --display-name "Human Resources" --member alice --member bob`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("groups"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, groupView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the group's name, unique ignoring case (required)")
	f.StringVar(&req.DisplayName, "display-name", "", "name shown to people")
	f.StringArrayVar(&req.Members, "member", nil, "a member's user id or username (repeatable)")
	return cmd
}

func newGroupListCmd(g *globals) *cobra.Command {
	var q, source, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			query := listQuery(map[string]string{"q": q, "source": source, "cursor": cursor}, limit)
			raw, err := c.Do(cmd.Context(), "GET", apiPath("groups"), query, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, groupView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q, "q", "", "only groups whose name contains this text")
	f.StringVar(&source, "source", "", "only groups from this source: local, scim, oidc:<idp id>, ldap:<idp id>")
	f.IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	f.StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newGroupGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get GROUP",
		Short: "Show one group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("groups", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, groupView)
		},
	}
}

func newGroupRenameCmd(g *globals) *cobra.Command {
	var displayName string
	cmd := &cobra.Command{
		Use:   "rename GROUP NEW_NAME",
		Short: "Rename a group (inbound rules that name the old name stop matching it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{"name": args[1]}
			if cmd.Flags().Changed("display-name") {
				req["display_name"] = displayName
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("groups", args[0]), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, groupView)
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "also set the display name")
	return cmd
}

func newGroupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group and its memberships",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("groups", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted group %s.", args[0])
			return nil
		},
	}
}

func newGroupMembersCmd(g *globals) *cobra.Command {
	var cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "members GROUP",
		Short: "List a group's members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			query := listQuery(map[string]string{"cursor": cursor}, limit)
			raw, err := c.Do(cmd.Context(), "GET", apiPath("groups", args[0], "members"), query, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, memberView)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newGroupAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "add GROUP USER...",
		Short:   "Add users (ids or usernames) to a group",
		Example: `  agentguard group add hr alice bob`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("groups", args[0], "members"), nil, map[string]any{"users": args[1:]})
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, groupView)
		},
	}
}

func newGroupRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove GROUP USER",
		Short: "Remove a user from a group",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("groups", args[0], "members", args[1]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Removed %s from %s.", args[1], args[0])
			return nil
		},
	}
}
