package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentguard/agentguard/sdk/verify"
)

// The enterprise service: accepts only agentguard access tokens for its audience
// with the scope enterprise:read, through the SDK's middleware, and says whom it
// served and through which agent.

const (
	enterpriseAudience = "https://enterprise.example.com"
	enterpriseScope    = "enterprise:read"
)

// EnterpriseReply is the service's answer.
type EnterpriseReply struct {
	Message string   `json:"message"`
	Subject string   `json:"subject"`
	Actors  []string `json:"actors,omitempty"`
}

func newEnterpriseService(issuer string, users map[string]string) (http.Handler, error) {
	v, err := verify.New(verify.Config{Issuer: issuer, Audience: enterpriseAudience})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/report", v.Require(enterpriseScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.CallerFrom(r.Context())
		var msg string
		if c.Delegated() {
			who := c.Subject
			if name := users[c.Subject]; name != "" {
				who = name
			}
			msg = fmt.Sprintf("Hello %s: you have 3 open purchase orders and 1 pending approval (served to agent %s acting on your behalf).", who, strings.Join(c.Actors, " > "))
		} else {
			msg = fmt.Sprintf("Hello agent %s: the department has 3 open purchase orders (served to the agent itself, no user).", c.Subject)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(EnterpriseReply{Message: msg, Subject: c.Subject, Actors: c.Actors})
	})))
	return mux, nil
}
