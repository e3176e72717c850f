module github.com/agentguard/agentguard/sdk

go 1.26.8

require (
	github.com/go-jose/go-jose/v4 v4.1.8
	golang.org/x/sync v0.24.0
)
