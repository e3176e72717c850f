package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/agentguard/agentguard/internal/registration"
)

// background runs the periodic jobs: signing key rotation, reloading keys rotated by
// another replica, and deleting expired revocations, replay entries, dropped keys,
// cached upstream tokens and API key versions past their grace period.
func (s *Server) background(ctx context.Context) {
	gc := time.NewTicker(max(s.Config.GCInterval, time.Second))
	defer gc.Stop()
	keys := time.NewTicker(time.Minute)
	defer keys.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.C:
			if n, err := s.Store.GarbageCollect(ctx, s.now()); err != nil {
				slog.Warn("garbage collection failed", "err", err)
			} else if n > 0 {
				slog.Debug("garbage collected", "rows", n)
			}
			if n, err := s.Store.DeleteExpiredCredentialData(ctx, s.now()); err != nil {
				slog.Warn("deleting expired upstream tokens and API key versions failed", "err", err)
			} else if n > 0 {
				slog.Debug("deleted expired upstream tokens and API key versions", "rows", n)
			}
			if _, err := s.Store.GarbageCollectUserTokens(ctx, s.now()); err != nil {
				slog.Warn("garbage collection of sign-in state failed", "err", err)
			}
			if _, err := s.Store.DeleteDroppedSigningKeys(ctx, s.now()); err != nil {
				slog.Warn("deleting dropped signing keys failed", "err", err)
			}
			// Registrations nobody decided on, and rejected ones, go after a while.
			for _, status := range []string{registration.StatusPending, registration.StatusRejected} {
				if _, err := s.Store.DeleteRegistrationsBefore(ctx, status, s.now().Add(-registration.PendingLifetime)); err != nil {
					slog.Warn("deleting old client registrations failed", "status", status, "err", err)
				}
			}
		case <-keys.C:
			s.rotateKeysIfDue(ctx)
		}
	}
}

// rotateKeysIfDue rotates the signing key when the current one is older than the
// configured interval. It rereads the keys first, so replicas that share a store see
// each other's rotation and do not all rotate.
func (s *Server) rotateKeysIfDue(ctx context.Context) {
	if err := s.Keyring.Reload(ctx); err != nil {
		slog.Warn("reloading signing keys failed", "err", err)
		return
	}
	if s.Config.KeyRotation <= 0 {
		return
	}
	keys, err := s.Store.ListSigningKeys(ctx)
	if err != nil || len(keys) == 0 {
		return
	}
	if s.now().Sub(keys[0].CreatedAt) < s.Config.KeyRotation {
		return
	}
	kid, err := s.Keyring.Rotate(ctx)
	if err != nil {
		slog.Error("scheduled signing key rotation failed", "err", err)
		return
	}
	slog.Info("rotated the signing key on schedule", "kid", kid)
}
