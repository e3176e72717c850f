package signin_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
	"github.com/agentguard/agentguard/internal/store/storetest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// No password, client secret, code, refresh token, access or ID token, CSRF token or
// session cookie reaches the log, the audit log or the database: the raw bytes of
// each are searched after a whole sign-in, refresh, exchange and logout, with
// failures on the way.
func TestNoSecretsInLogsAuditOrDatabase(t *testing.T) {
	logs := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	f := start(t, sqlstore.SQLite)
	d := newDelegation(t, f) // a user, an agent, a resource server, a public client
	web, webSecret := signintest.Client(t, f.Server, "web", []string{appCallback}, []string{appBye})
	f.allowGroup(t, d.agentID, web, "hr")
	secrets := []string{"hanna-pass-phrase", webSecret, d.sec, d.subject}

	b := signintest.NewBrowser(t, f.URL)
	fl := newFlow(web, url.Values{"resource": {d.agentAud}})
	page := b.Get(t, f.authorizeURL(fl.params))
	form := page.Forms(t)[0].Fields
	secrets = append(secrets, form.Get("csrf_token"), b.Cookie(f.URL, "agentguard_login"))
	b.Submit(t, page, map[string]string{"username": "hanna", "password": "Wr0ng-pa55word"}) // a failure, audited
	secrets = append(secrets, "Wr0ng-pa55word")
	loc := b.Submit(t, page, map[string]string{"username": "hanna", "password": "hanna-pass-phrase"}).Location
	code := loc.Query().Get("code")
	secrets = append(secrets, code, b.Cookie(f.URL, "agentguard_session"))
	status, tok := f.redeem(t, web, webSecret, code, nil, fl.verifier)
	if status != 200 {
		t.Fatalf("redeem: HTTP %d %v (redirected to %s)", status, tok, loc)
	}
	secrets = append(secrets, tok["access_token"].(string), tok["refresh_token"].(string), tok["id_token"].(string))
	_, r2 := f.refresh(t, web, webSecret, tok["refresh_token"].(string))
	f.refresh(t, web, "wrong-"+webSecret, r2["refresh_token"].(string)) // a bad secret, audited
	secrets = append(secrets, r2["access_token"].(string), r2["refresh_token"].(string), r2["id_token"].(string))
	_, ex := d.exchange(t, d.agentID, d.sec, r2["access_token"].(string), url.Values{"resource": {filesAudience}})
	secrets = append(secrets, ex["access_token"].(string))
	f.redeem(t, web, webSecret, code, nil, fl.verifier) // a replay, audited
	b.Get(t, logoutURL(f, url.Values{"id_token_hint": {r2["id_token"].(string)}, "post_logout_redirect_uri": {appBye}}))

	var events json.RawMessage
	f.Do(t, "GET", "/api/v1/audit/events?limit=500", nil, &events)
	if len(events) < 200 {
		t.Fatalf("audit search returned only %d bytes", len(events))
	}
	db := storetest.SQLiteBytes(t, f.Config.DataDir)
	for where, haystack := range map[string][]byte{"log": logs.Bytes(), "audit events": events, "database": db} {
		for _, s := range secrets {
			if s == "" {
				t.Fatal("a secret of the flow is empty: the flow did not run as intended")
			}
			if bytes.Contains(haystack, []byte(s)) {
				t.Errorf("the %s holds a secret (%s…)", where, s[:min(8, len(s))])
			}
			// The part after the prefix alone must not appear either.
			if _, tail, ok := strings.Cut(s, "_"); ok && len(tail) > 20 && bytes.Contains(haystack, []byte(tail)) {
				t.Errorf("the %s holds the body of a secret (%s…)", where, s[:min(8, len(s))])
			}
		}
	}
}
