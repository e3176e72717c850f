package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/sdk"
	"github.com/agentguard/agentguard/sdk/verify"
)

// The demo agent: an OpenAI-compatible POST /openai/v1/chat/completions for signed-in
// users. It accepts only the user's agentguard token for this agent (audience = the
// agent, scope agent.access), then with the SDK gets the LLM's key and the weather
// MCP server's key from agentguard by their identifiers, and a token for the
// enterprise service: as itself (machine mode) or on the user's behalf through token
// exchange (human mode, the default).

const (
	llmKeyID     = "demo-llm"
	weatherKeyID = "weather-mcp"
)

type demoAgent struct {
	ag            *sdk.Client
	human         bool
	llmURL        string // the model's base URL (…/v1)
	weatherURL    string // the weather MCP endpoint
	enterpriseURL string // the enterprise service's base URL
	http          *http.Client
	hops          *Hops
}

func (a *demoAgent) handler(v *verify.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /openai/v1/chat/completions", v.Require("agent.access")(http.HandlerFunc(a.chat)))
	return mux
}

var tools = func() []Tool {
	var weather, enterprise Tool
	weather.Type, enterprise.Type = "function", "function"
	weather.Function.Name = "get_weather"
	weather.Function.Description = "Current weather in a city"
	weather.Function.Parameters = map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}}
	enterprise.Function.Name = "call_enterprise_service"
	enterprise.Function.Description = "Call the user's enterprise service (purchase orders, approvals)"
	enterprise.Function.Parameters = map[string]any{"type": "object", "properties": map[string]any{}}
	return []Tool{weather, enterprise}
}()

// step is one thing the agent did for a request, reported to the web page.
type steps struct{ list []string }

func (s *steps) add(format string, args ...any) {
	s.list = append(s.list, fmt.Sprintf(format, args...))
}

func (a *demoAgent) chat(w http.ResponseWriter, r *http.Request) {
	caller, _ := verify.CallerFrom(r.Context())
	var req ChatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10)).Decode(&req); err != nil || len(req.Messages) == 0 || len(req.Messages) > 50 {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "send {\"messages\": [...]} (at most 50)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	st := &steps{}
	mode := "machine"
	if a.human {
		mode = "human"
	}
	st.add("verified the user's token: sub=%s, client=%s, scope=%s", caller.Subject, caller.ClientID, strings.Join(caller.Scopes, " "))
	a.hops.Note("agent", "user %s accepted (token for this agent, scope agent.access, client %s)", caller.Subject, caller.ClientID)

	llmKey, err := a.apiKey(ctx, caller, llmKeyID, st)
	if err != nil {
		a.fail(w, err)
		return
	}
	msgs := append([]ChatMessage{{Role: "system", Content: "You are the agentguard demo assistant."}}, userTurns(req.Messages)...)
	for round := 0; round < 4; round++ {
		resp, err := a.callLLM(ctx, llmKey, msgs)
		if err != nil {
			a.fail(w, err)
			return
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			st.add("answered")
			resp.Agentguard = &HopReport{Mode: mode, Hops: st.list}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(resp)
			return
		}
		msgs = append(msgs, msg)
		for _, tc := range msg.ToolCalls {
			st.add("the model asked for %s(%s)", tc.Function.Name, tc.Function.Arguments)
			out, err := a.runTool(ctx, caller, tc, st)
			if err != nil {
				a.fail(w, err)
				return
			}
			msgs = append(msgs, ChatMessage{Role: "tool", ToolCallID: tc.ID, Content: out})
		}
	}
	openAIError(w, http.StatusBadGateway, "too_many_rounds", "the model kept asking for tools")
}

// userTurns keeps the user's and assistant's text turns (not a client's system
// prompt or tool messages: the agent decides those).
func userTurns(in []ChatMessage) []ChatMessage {
	var out []ChatMessage
	for _, m := range in {
		if (m.Role == "user" || m.Role == "assistant") && m.Content != "" {
			out = append(out, ChatMessage{Role: m.Role, Content: m.Content})
		}
	}
	return out
}

// apiKey gets a key by identifier: in human mode on the user's behalf (the audit
// event names both), in machine mode as the agent.
func (a *demoAgent) apiKey(ctx context.Context, caller *verify.Caller, id string, st *steps) (sdk.APIKey, error) {
	var k sdk.APIKey
	var err error
	if a.human {
		k, err = a.ag.APIKeyFor(ctx, caller.Token, id)
	} else {
		k, err = a.ag.APIKey(ctx, id)
	}
	if err != nil {
		return k, err
	}
	st.add("fetched the API key %q (version %d) from agentguard", id, k.Version)
	a.hops.Note("agent", "got API key %q version %d from agentguard (value not shown)", id, k.Version)
	return k, nil
}

func (a *demoAgent) callLLM(ctx context.Context, key sdk.APIKey, msgs []ChatMessage) (ChatResponse, error) {
	body, _ := json.Marshal(ChatRequest{Model: "demo-llm-1", Messages: msgs, Tools: tools})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.llmURL+"/chat/completions", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+key.Value)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return ChatResponse{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return ChatResponse{}, fmt.Errorf("the LLM answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var out ChatResponse
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) == 0 {
		return out, errors.New("the LLM's answer is not a chat completion")
	}
	return out, nil
}

func (a *demoAgent) runTool(ctx context.Context, caller *verify.Caller, tc ToolCall, st *steps) (string, error) {
	switch tc.Function.Name {
	case "get_weather":
		key, err := a.apiKey(ctx, caller, weatherKeyID, st)
		if err != nil {
			return "", err
		}
		var in WeatherIn
		json.Unmarshal([]byte(tc.Function.Arguments), &in)
		return a.weather(ctx, key, in)
	case "call_enterprise_service":
		var tok sdk.Token
		var err error
		if a.human {
			tok, err = a.ag.ExchangeToken(ctx, caller.Token, enterpriseAudience, enterpriseScope)
		} else {
			tok, err = a.ag.AccessToken(ctx, enterpriseAudience, enterpriseScope)
		}
		if err != nil {
			return "", err
		}
		how := "as itself (client_credentials)"
		if a.human {
			how = "on behalf of " + caller.Subject + " (token exchange)"
		}
		st.add("got a token for %s, scope %s, %s", enterpriseAudience, tok.Scope, how)
		a.hops.Note("agent", "token for the enterprise service %s", how)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.enterpriseURL+"/api/report", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := a.http.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("the enterprise service answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		st.add("the enterprise service accepted the token")
		return string(b), nil
	}
	return "", fmt.Errorf("unknown tool %q", tc.Function.Name)
}

// weather calls the weather MCP server's get_weather with its API key.
func (a *demoAgent) weather(ctx context.Context, key sdk.APIKey, in WeatherIn) (string, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: keyTransport{key: key.Value, base: a.http.Transport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: a.weatherURL, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return "", fmt.Errorf("connect to the weather MCP server: %w", err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "get_weather", Arguments: in})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", errors.New("get_weather failed")
	}
	b, _ := json.Marshal(res.StructuredContent)
	return string(b), nil
}

// keyTransport adds an API key as a bearer token.
type keyTransport struct {
	key  string
	base http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.key)
	return t.base.RoundTrip(r)
}

// fail answers an OpenAI-style error; the SDK's typed errors say what agentguard
// refused.
func (a *demoAgent) fail(w http.ResponseWriter, err error) {
	status, code := http.StatusBadGateway, "upstream_error"
	switch {
	case errors.Is(err, sdk.ErrNotAuthorized):
		status, code = http.StatusForbidden, "not_authorized"
	case errors.Is(err, sdk.ErrInvalidGrant):
		status, code = http.StatusUnauthorized, "invalid_grant"
	}
	a.hops.Note("agent", "refused: %v", err)
	openAIError(w, status, code, err.Error())
}
