package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/cli"
	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server"
)

// startInProcess runs the server in this process, so one CPU profile shows both the
// server and the load generator. The figures of record come from the child process.
func startInProcess(o options) (*child, error) {
	dir, err := os.MkdirTemp("", "agentguard-bench-")
	if err != nil {
		return nil, err
	}
	c := &child{dataDir: dir, adminToken: "bench-" + randHex(16), done: make(chan struct{}), pid: os.Getpid()}
	dbURL := o.databaseURL
	if dbURL != "" {
		if dbURL, c.dropSchema, err = freshSchema(dbURL); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.cleanup()
		return nil, err
	}
	addr := ln.Addr().String()
	c.url = "http://" + addr
	level := slog.LevelWarn
	if o.keepLogs {
		level = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	cli.TuneGC() // as serve does (one process: the generator gets it too)
	cfg := config.Config{
		Addr: addr, Issuer: c.url, DataDir: dir, DatabaseURL: dbURL, KMS: "local",
		LogFormat: "text", LogLevel: "warn", SigningAlg: o.signingAlg,
		KeyRotation: 30 * 24 * time.Hour, ShutdownTimeout: 5 * time.Second, GCInterval: time.Minute,
		AdminToken: c.adminToken, AuditCommitDelay: o.auditCommitDelay,
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{DiscardAudit: o.noAudit})
	if err != nil {
		cancel()
		ln.Close()
		c.cleanup()
		return nil, fmt.Errorf("start the server in process: %w", err)
	}
	c.shutdown = cancel
	go func() {
		srv.Serve(ctx, ln)
		srv.Close()
		close(c.done)
	}()
	return c, nil
}

// profile starts a CPU profile written to path with the scenario's name inserted
// before the extension (cpu.out -> cpu.tokens.out); it returns the stop function.
func profile(path, scenario string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	if i := strings.LastIndex(path, "."); i > 0 {
		path = path[:i] + "." + scenario + path[i:]
	} else {
		path += "." + scenario
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
