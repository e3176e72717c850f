// Package sdktest runs the Go SDK (module github.com/agentguard/agentguard/sdk) and
// its service middleware (sdk/verify) end to end against a whole agentguard server
// (servertest) on a real socket: every SDK call, the errors the server really
// answers, and the tokens the middleware accepts and refuses.
package sdktest
