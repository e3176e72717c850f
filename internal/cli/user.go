package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// userJSON is the fields of a user the table shows.
type userJSON struct {
	ID          string            `json:"id"`
	Username    string            `json:"username"`
	Email       string            `json:"email"`
	DisplayName string            `json:"display_name"`
	Groups      []string          `json:"groups"`
	Attributes  map[string]string `json:"attributes"`
	Active      bool              `json:"active"`
	Source      string            `json:"source"`
	HasPassword bool              `json:"has_password"`
	CreatedAt   time.Time         `json:"created_at"`
}

var userView = view[userJSON]{
	header: []string{"ID", "USERNAME", "EMAIL", "DISPLAY_NAME", "GROUPS", "ACTIVE", "SOURCE", "PASSWORD", "CREATED"},
	row: func(u userJSON) []string {
		return []string{u.ID, u.Username, u.Email, u.DisplayName, strings.Join(u.Groups, ","), strconv.FormatBool(u.Active),
			u.Source, map[bool]string{true: "set", false: ""}[u.HasPassword], timeCell(&u.CreatedAt)}
	},
}

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the directory's users: who signs in through clients, and for whom agents act",
		Long: `Manage users. A user's id (usr_…) is the subject of their tokens; commands take the id or
the username. Passwords are never read from a command-line argument: give them with
--password-file FILE ("-" reads standard input), in AGENTGUARD_USER_PASSWORD, or type
them at the prompt.`,
	}
	cmd.AddCommand(newUserCreateCmd(g), newUserListCmd(g), newUserGetCmd(g), newUserUpdateCmd(g),
		newUserSetPasswordCmd(g), newUserDeleteCmd(g))
	return cmd
}

// readPassword reads a new password from --password-file, the environment, or a
// prompt on the terminal (typed twice, not echoed).
func readPassword(cmd *cobra.Command, g *globals, file string, required bool) (string, error) {
	if file != "" || g.getenv("AGENTGUARD_USER_PASSWORD") != "" {
		return readSecret(cmd, g, file, "password-file", "AGENTGUARD_USER_PASSWORD")
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		if !required {
			return "", nil
		}
		return "", errors.New("no password given: pass --password-file FILE (- for standard input), set AGENTGUARD_USER_PASSWORD, or run on a terminal to be asked")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if pw == "" && !required {
		return "", nil
	}
	again, err := ask("Password again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}

func newUserCreateCmd(g *globals) *cobra.Command {
	var req struct {
		Username    string            `json:"username"`
		Password    string            `json:"password,omitempty"`
		Email       string            `json:"email,omitempty"`
		DisplayName string            `json:"display_name,omitempty"`
		Groups      []string          `json:"groups,omitempty"`
		Attributes  map[string]string `json:"attributes,omitempty"`
		Active      *bool             `json:"active,omitempty"`
	}
	var attrs []string
	var passwordFile string
	var noPassword, inactive bool
	cmd := &cobra.Command{
		Use:   "create --username NAME",
		Short: "Create a local user",
		Example: `  agentguard user create --username alice --email alice@example.com --group hr --attr department=HR
  printf '%s' "$PW" | agentguard user create --username bob --password-file -
  agentguard user create --username carol --no-password     # signs in only after user set-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if req.Attributes, err = keyValues("attr", attrs); err != nil {
				return err
			}
			if !noPassword {
				if req.Password, err = readPassword(cmd, g, passwordFile, false); err != nil {
					return err
				}
			}
			if inactive {
				f := false
				req.Active = &f
			}
			raw, err := c.Do(cmd.Context(), "POST", apiPath("users"), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, userView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Username, "username", "", "what the user types on the login page (required)")
	f.StringVar(&req.Email, "email", "", "email address")
	f.StringVar(&req.DisplayName, "display-name", "", "name shown to people")
	f.StringArrayVar(&req.Groups, "group", nil, "a group the user is in (repeatable; the group must exist)")
	f.StringArrayVar(&attrs, "attr", nil, "an attribute as name=value, e.g. department=HR (repeatable)")
	f.StringVar(&passwordFile, "password-file", "", "read the password from this file (- for standard input); else AGENTGUARD_USER_PASSWORD, else a prompt")
	f.BoolVar(&noPassword, "no-password", false, "create the user without a password")
	f.BoolVar(&inactive, "inactive", false, "create the user deactivated")
	return cmd
}

func newUserListCmd(g *globals) *cobra.Command {
	var q, group, source, active, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			query := listQuery(map[string]string{"q": q, "group": group, "source": source, "active": active, "cursor": cursor}, limit)
			raw, err := c.Do(cmd.Context(), "GET", apiPath("users"), query, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, userView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&q, "q", "", "only users whose username, email or display name contains this text")
	f.StringVar(&group, "group", "", "only members of this group")
	f.StringVar(&source, "source", "", "only users from this source: local, scim, oidc:<idp id>, ldap:<idp id>")
	f.StringVar(&active, "active", "", "only active (true) or deactivated (false) users")
	f.IntVar(&limit, "limit", 0, "at most this many (1-500; server default 50)")
	f.StringVar(&cursor, "cursor", "", "continue after the previous page (its next cursor)")
	return cmd
}

func newUserGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get USER",
		Short: "Show one user (by id or username)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("users", args[0]), nil, nil)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, userView)
		},
	}
}

func newUserUpdateCmd(g *globals) *cobra.Command {
	var username, email, displayName string
	var groups, attrs []string
	var activate, deactivate, noGroups bool
	cmd := &cobra.Command{
		Use:   "update USER",
		Short: "Change a user; only the flags given change (--group and --attr replace the whole list)",
		Example: `  agentguard user update alice --attr department=Sales --attr title=Lead
  agentguard user update alice --deactivate     # stops sign-ins and orphans alice's agents`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if activate && deactivate {
				return errors.New("--activate and --deactivate cannot both be given")
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{}
			fl := cmd.Flags()
			for flag, field := range map[string]struct {
				key string
				val string
			}{"username": {"username", username}, "email": {"email", email}, "display-name": {"display_name", displayName}} {
				if fl.Changed(flag) {
					req[field.key] = field.val
				}
			}
			if fl.Changed("group") || noGroups {
				if groups == nil {
					groups = []string{}
				}
				req["groups"] = groups
			}
			if fl.Changed("attr") {
				m, err := keyValues("attr", attrs)
				if err != nil {
					return err
				}
				req["attributes"] = m
			}
			if activate || deactivate {
				req["active"] = activate
			}
			if len(req) == 0 {
				return errors.New("nothing to change: give at least one flag (see --help)")
			}
			raw, err := c.Do(cmd.Context(), "PATCH", apiPath("users", args[0]), nil, req)
			if err != nil {
				return err
			}
			return printOne(cmd, g, raw, userView)
		},
	}
	f := cmd.Flags()
	f.StringVar(&username, "username", "", "new username")
	f.StringVar(&email, "email", "", "new email (\"\" clears it)")
	f.StringVar(&displayName, "display-name", "", "new display name")
	f.StringArrayVar(&groups, "group", nil, "the user's groups (repeatable; replaces the list)")
	f.BoolVar(&noGroups, "no-groups", false, "take the user out of every group")
	f.StringArrayVar(&attrs, "attr", nil, "the user's attributes as name=value (repeatable; replaces them all)")
	f.BoolVar(&activate, "activate", false, "reactivate the user")
	f.BoolVar(&deactivate, "deactivate", false, "deactivate the user")
	return cmd
}

func newUserSetPasswordCmd(g *globals) *cobra.Command {
	var passwordFile string
	cmd := &cobra.Command{
		Use:   "set-password USER",
		Short: "Set a local user's password",
		Example: `  agentguard user set-password alice                    # asks twice, without echo
  agentguard user set-password alice --password-file pw.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, g, passwordFile, true)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "PUT", apiPath("users", args[0], "password"), nil, map[string]string{"password": pw}); err != nil {
				return err
			}
			printDone(cmd, g, "Set the password of %s.", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from this file (- for standard input); else AGENTGUARD_USER_PASSWORD, else a prompt")
	return cmd
}

func newUserDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete USER",
		Short: "Delete a user; the agents they own become orphaned",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", apiPath("users", args[0]), nil, nil); err != nil {
				return err
			}
			printDone(cmd, g, "Deleted user %s.", args[0])
			return nil
		},
	}
}
