package cli

import (
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the agentguard server",
		Long: `Run the agentguard server. With no flags it stores everything under ./agentguard-data:
an SQLite database, a local KMS keyring, and (on first start) the bootstrap admin token.

Every flag is also an environment variable AGENTGUARD_<FLAG> (dashes as underscores)
and a key in the optional --config file. Precedence: flag > env > file > default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), config.Environ())
			if err != nil {
				return err
			}
			setupLogging(cfg)
			TuneGC()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg, server.Options{})
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Run(ctx)
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}

func setupLogging(cfg config.Config) {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
}

// defaultGCPercent is the collector's target when GOGC is not set. The server's
// live heap is small (tens of MiB) and every request allocates, so at Go's
// default of 100 the collector ran many times a second under load (allocation
// and marking were about a sixth of a token exchange's CPU); at 400 the heap may
// grow to five times the live data between collections (docs/configuration.md,
// "Memory").
const defaultGCPercent = 400

// TuneGC sets the collector's target unless the operator chose one with GOGC;
// serve calls it, and so does the load tool's in-process server.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}
