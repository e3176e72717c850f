// Command agentguard is the agentguard server and its admin CLI.
package main

import "github.com/agentguard/agentguard/internal/cli"

func main() { cli.Main() }
