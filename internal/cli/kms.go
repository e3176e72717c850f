package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/kms"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// kmsTarget is where the server keeps its keyring and data: the same two settings
// as `serve`, from the same flags and environment variables.
type kmsTarget struct {
	dataDir, databaseURL string
}

func kmsFlags(fs *pflag.FlagSet) {
	fs.String("data-dir", "./agentguard-data", "the server's data directory (holds the KMS keyring, and the SQLite database unless --database-url is set); env AGENTGUARD_DATA_DIR")
	fs.String("database-url", "", "postgres://… when the server stores data in PostgreSQL; env AGENTGUARD_DATABASE_URL")
}

// loadKMSTarget reads the flags with serve's precedence: flag > env > default.
func loadKMSTarget(fs *pflag.FlagSet, environ []string) (kmsTarget, error) {
	get := func(flag, env string) string {
		if f := fs.Lookup(flag); f != nil && f.Changed {
			return f.Value.String()
		}
		if v := lookupEnv(environ, env); v != "" {
			return v
		}
		return fs.Lookup(flag).DefValue
	}
	t := kmsTarget{dataDir: get("data-dir", "AGENTGUARD_DATA_DIR"), databaseURL: get("database-url", "AGENTGUARD_DATABASE_URL")}
	if t.dataDir == "" {
		return t, errors.New("--data-dir must not be empty")
	}
	return t, nil
}

func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func newKMSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kms",
		Short: "Manage the key that seals secrets at rest",
		Long: `Manage the local KMS keyring (<data-dir>/` + kms.LocalKeyFile + `). Every sealed value has its
own data key; the keyring's current key wraps the data keys. Rotation adds a key and
re-wraps the data keys under it; the sealed secrets themselves are never decrypted.

Run it on a host that sees the server's data directory (and its database). Running
servers keep working: they load the new key when they first meet it.`,
	}
	cmd.AddCommand(newKMSRotateCmd(), newKMSRewrapCmd(), newKMSStatusCmd())
	return cmd
}

func newKMSRotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new KMS key, make it current, and re-wrap every sealed value under it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadKMSTarget(cmd.Flags(), config.Environ())
			if err != nil {
				return err
			}
			return kmsRotate(cmd.Context(), t, true, cmd.OutOrStdout())
		},
	}
	kmsFlags(cmd.Flags())
	return cmd
}

func newKMSRewrapCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap sealed values still under an older KMS key (no new key)",
		Long: `Re-wrap every sealed value that is not yet under the current KMS key, without adding
a key. Use it to finish a rotation that was interrupted, or to catch values a server
sealed under the old key while the rotation ran (` + "`agentguard kms status`" + ` shows them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadKMSTarget(cmd.Flags(), config.Environ())
			if err != nil {
				return err
			}
			return kmsRotate(cmd.Context(), t, false, cmd.OutOrStdout())
		},
	}
	kmsFlags(cmd.Flags())
	return cmd
}

func newKMSStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the current KMS key and how many sealed values each key wraps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadKMSTarget(cmd.Flags(), config.Environ())
			if err != nil {
				return err
			}
			return kmsStatus(cmd.Context(), t, cmd.OutOrStdout())
		},
	}
	kmsFlags(cmd.Flags())
	return cmd
}

// openKMSTarget opens the existing keyring and store of a server. It refuses to
// create either: a mistyped --data-dir must not produce a fresh keyring that
// wraps nothing, or an empty database.
func openKMSTarget(ctx context.Context, t kmsTarget) (*kms.Local, *sqlstore.Store, error) {
	path := filepath.Join(t.dataDir, kms.LocalKeyFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no KMS keyring at %s: set --data-dir (or AGENTGUARD_DATA_DIR) to the server's data directory", path)
	} else if err != nil {
		return nil, nil, fmt.Errorf("KMS keyring %s: %w", path, err)
	}
	if t.databaseURL == "" {
		db := filepath.Join(t.dataDir, "agentguard.db")
		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("no SQLite database at %s: set --data-dir to the server's data directory, or --database-url (AGENTGUARD_DATABASE_URL) if it uses PostgreSQL", db)
		}
	}
	local, err := kms.OpenLocal(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlstore.Open(ctx, t.databaseURL, t.dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("open storage: %w", err)
	}
	return local, st, nil
}

// kmsRotate optionally rotates the keyring, then re-wraps every sealed value
// under the current key. It prints ids and counts, never key material.
func kmsRotate(ctx context.Context, t kmsTarget, rotate bool, out io.Writer) error {
	// Open the store before touching the keyring: a wrong database URL fails
	// without leaving a new key behind.
	local, st, err := openKMSTarget(ctx, t)
	if err != nil {
		return err
	}
	defer st.Close()
	if rotate {
		old := local.CurrentKeyID()
		id, err := local.Rotate()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "new KMS key %s is current (was %s)\n", id, old)
	}
	n, err := st.RewrapSealed(ctx, kms.NewEnvelope(local))
	fmt.Fprintf(out, "re-wrapped %d sealed values under %s\n", n, local.CurrentKeyID())
	if err != nil {
		return fmt.Errorf("%w\nthe current key stays in use; fix the cause and run `agentguard kms rewrap` to finish", err)
	}
	return nil
}

func kmsStatus(ctx context.Context, t kmsTarget, out io.Writer) error {
	local, st, err := openKMSTarget(ctx, t)
	if err != nil {
		return err
	}
	defer st.Close()
	counts, err := st.SealedKeyIDs(ctx)
	if err != nil {
		return err
	}
	current := local.CurrentKeyID()
	fmt.Fprintf(out, "current KMS key: %s\n\n", current)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	row("KEY", "CURRENT", "SEALED_VALUES")
	seen := map[string]bool{}
	for _, id := range local.KeyIDs() {
		seen[id] = true
		row(id, fmt.Sprint(id == current), fmt.Sprint(counts[id]))
	}
	var stale int
	for id, n := range counts {
		if id != current {
			stale += n
		}
		if seen[id] {
			continue
		}
		name := id
		if id == "" {
			name = "(unreadable header)"
		} else {
			name += " (not in keyring)"
		}
		row(name, "false", fmt.Sprint(n))
	}
	tw.Flush()
	if stale > 0 {
		fmt.Fprintf(out, "\n%d sealed values are not under the current key; `agentguard kms rewrap` re-wraps them\n", stale)
	}
	return nil
}
