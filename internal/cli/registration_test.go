package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/server/servertest"
)

// The registration commands list the pending registrations of MCP clients and
// approve or reject them; deciding twice names what is wrong.
func TestRegistrations(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	ids := make([]string, 2)
	for i := range ids {
		body, _ := json.Marshal(map[string]any{"client_name": "Claude", "redirect_uris": []string{"http://127.0.0.1:33418/callback"},
			"token_endpoint_auth_method": "none", "application_type": "native"})
		resp, err := http.Post(s.URL+"/oauth2/register", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			ClientID string `json:"client_id"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		ids[i] = out.ClientID
	}
	r := ok(t, s, "registration", "list", "--status", "pending")
	if !strings.Contains(r.stdout, ids[0]) || !strings.Contains(r.stdout, ids[1]) || !strings.Contains(r.stdout, "pending") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	var approved struct{ Status string }
	okJSON(t, s, &approved, "registration", "approve", ids[0])
	if approved.Status != "approved" {
		t.Fatalf("approve: %+v", approved)
	}
	ok(t, s, "client", "get", ids[0])
	r = ok(t, s, "registration", "reject", ids[1], "--reason", "not ours")
	if !strings.Contains(r.stdout, "rejected") {
		t.Fatalf("reject:\n%s", r.stdout)
	}
	fails(t, s, "not pending", "registration", "approve", ids[1])
	fails(t, s, "no client registration", "registration", "get", "cli_unknown")
}
