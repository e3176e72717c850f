package cli

import (
	"log/slog"
	"os"
	"os/signal"
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
