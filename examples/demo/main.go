// Command demo runs the agentguard walkthrough on this machine, with nothing to sign
// up for: agentguard, a fake OpenAI-compatible LLM that demands its API key, a
// weather MCP server that demands its API key, an enterprise service that accepts
// only agentguard tokens (sdk/verify), a demo agent (the SDK) behind an
// OpenAI-compatible endpoint, and a web app where a user signs in and chats. It
// provisions agentguard through the management API, has the user ask "What is the
// weather in Hangzhou?" and "Call my enterprise service", prints every hop, and
// keeps running so you can chat in the browser.
//
//	make demo                       # or: go run ./examples/demo
//	go run ./examples/demo -mode machine -once
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	mode := flag.String("mode", "human", "human: the agent acts on the signed-in user's behalf (token exchange); machine: as itself")
	once := flag.Bool("once", false, "exit after the scripted walkthrough instead of waiting for the browser")
	webAddr := flag.String("web-addr", "127.0.0.1:0", "where the web app listens")
	dataDir := flag.String("data-dir", "", "keep agentguard's data here (default: a temporary directory, removed at exit)")
	flag.Parse()
	if *mode != "human" && *mode != "machine" {
		fmt.Fprintln(os.Stderr, "error: -mode must be human or machine")
		os.Exit(2)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d, err := Start(ctx, Options{Human: *mode == "human", DataDir: *dataDir, WebAddr: *webAddr, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer d.Close()
	if _, err := d.Script(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if *once {
		return
	}
	d.summary(os.Stdout, *mode == "human")
	fmt.Println("\nOpen the web app in a browser and chat; Ctrl-C stops everything.")
	<-ctx.Done()
}
