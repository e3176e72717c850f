package main

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// The fake LLM: an OpenAI-compatible POST /v1/chat/completions that demands its API
// key, like a hosted model would, and answers with tool calls. It does no language
// modelling: a few rules turn the two questions of the walkthrough into tool calls,
// and tool results into an answer.

// ChatMessage is an OpenAI chat message.
type ChatMessage struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// ToolCall is an assistant's request to call a function.
type ToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Tool is a function offered to the model.
type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string         `json:"name"`
		Description string         `json:"description"`
		Parameters  map[string]any `json:"parameters"`
	} `json:"function"`
}

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	Model    string        `json:"model"`
	Messages []ChatMessage `json:"messages"`
	Tools    []Tool        `json:"tools,omitempty"`
}

// ChatResponse is a chat.completion.
type ChatResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int         `json:"index"`
		Message      ChatMessage `json:"message"`
		FinishReason string      `json:"finish_reason"`
	} `json:"choices"`
	// Agentguard is the demo agent's account of the hops it made (not OpenAI's).
	Agentguard *HopReport `json:"agentguard,omitempty"`
}

// HopReport lists, for the web page, what the agent did to answer.
type HopReport struct {
	Mode string   `json:"mode"`
	Hops []string `json:"hops"`
}

func newChatResponse(model string, msg ChatMessage, finish string) ChatResponse {
	r := ChatResponse{ID: fmt.Sprintf("chatcmpl-%d", time.Now().UnixNano()), Object: "chat.completion", Created: time.Now().Unix(), Model: model}
	r.Choices = append(r.Choices, struct {
		Index        int         `json:"index"`
		Message      ChatMessage `json:"message"`
		FinishReason string      `json:"finish_reason"`
	}{0, msg, finish})
	return r
}

// fakeLLM serves the model; key is its API key.
type fakeLLM struct {
	key   string
	calls atomic.Int64
}

var weatherQuestion = regexp.MustCompile(`(?i)weather\s+(?:in|at|for)\s+([\p{L} .'-]+?)[?.!]*$`)

func (l *fakeLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		openAIError(w, http.StatusNotFound, "not_found", "unknown endpoint "+r.URL.Path)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(l.key)) != 1 {
		openAIError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
		return
	}
	l.calls.Add(1)
	var req ChatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || len(req.Messages) == 0 {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "the body must be a chat completion request with messages")
		return
	}
	offered := map[string]bool{}
	for _, t := range req.Tools {
		offered[t.Function.Name] = true
	}
	last := req.Messages[len(req.Messages)-1]
	var reply ChatMessage
	finish := "stop"
	switch {
	case last.Role == "tool":
		reply = ChatMessage{Role: "assistant", Content: answerFrom(req.Messages, last)}
	case last.Role == "user" && offered["get_weather"] && weatherQuestion.MatchString(strings.TrimSpace(last.Content)):
		city := strings.TrimSpace(weatherQuestion.FindStringSubmatch(strings.TrimSpace(last.Content))[1])
		reply, finish = toolCall("get_weather", map[string]any{"city": city}), "tool_calls"
	case last.Role == "user" && offered["call_enterprise_service"] && strings.Contains(strings.ToLower(last.Content), "enterprise"):
		reply, finish = toolCall("call_enterprise_service", map[string]any{}), "tool_calls"
	default:
		reply = ChatMessage{Role: "assistant", Content: "I can look up the weather (ask: What is the weather in Hangzhou?) or call your enterprise service (ask: Call my enterprise service)."}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(newChatResponse(orDefault(req.Model, "demo-llm-1"), reply, finish))
}

func toolCall(name string, args map[string]any) ChatMessage {
	b, _ := json.Marshal(args)
	var tc ToolCall
	tc.ID = fmt.Sprintf("call_%d", time.Now().UnixNano())
	tc.Type = "function"
	tc.Function.Name = name
	tc.Function.Arguments = string(b)
	return ChatMessage{Role: "assistant", ToolCalls: []ToolCall{tc}}
}

// answerFrom words the tool's result as the final answer.
func answerFrom(msgs []ChatMessage, result ChatMessage) string {
	tool := ""
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			if tc.ID == result.ToolCallID {
				tool = tc.Function.Name
			}
		}
	}
	switch tool {
	case "get_weather":
		var wr WeatherReport
		if json.Unmarshal([]byte(result.Content), &wr) == nil && wr.City != "" {
			return fmt.Sprintf("In %s it is %s, %d °C, humidity %d%%.", wr.City, strings.ToLower(wr.Condition), wr.TemperatureC, wr.HumidityPct)
		}
	case "call_enterprise_service":
		var er EnterpriseReply
		if json.Unmarshal([]byte(result.Content), &er) == nil && er.Message != "" {
			return "Your enterprise service answered: " + er.Message
		}
	}
	return "The tool answered: " + result.Content
}

func openAIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
