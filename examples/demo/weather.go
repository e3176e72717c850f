package main

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The weather MCP server: an MCP server (official Go MCP SDK) with one tool,
// get_weather, that demands its API key as a bearer token, like a third-party MCP
// service would. The agent gets that key from agentguard by its identifier.

// WeatherIn is get_weather's input.
type WeatherIn struct {
	City string `json:"city" jsonschema:"the city, e.g. Hangzhou"`
}

// WeatherReport is get_weather's answer (made up, the same every time).
type WeatherReport struct {
	City         string `json:"city"`
	Condition    string `json:"condition"`
	TemperatureC int    `json:"temperature_c"`
	HumidityPct  int    `json:"humidity_pct"`
}

func getWeather(ctx context.Context, req *mcp.CallToolRequest, in WeatherIn) (*mcp.CallToolResult, WeatherReport, error) {
	city := strings.TrimSpace(in.City)
	if city == "" {
		city = "Hangzhou"
	}
	return nil, WeatherReport{City: city, Condition: "Light rain", TemperatureC: 18, HumidityPct: 82}, nil
}

// newWeatherServer returns the MCP endpoint, refusing requests without the key.
func newWeatherServer(key string) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "get_weather", Description: "Current weather in a city"}, getWeather)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(key)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weather", error="invalid_token"`)
			http.Error(w, "a valid weather API key is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
