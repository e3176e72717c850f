package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The web app: the client users sign in through (a confidential "web" client with
// authorization code + PKCE, so the tokens stay on its server, in a session keyed by
// an HttpOnly cookie), and a chat page that talks to the agent with the user's
// token.

type webApp struct {
	base         string // this app's URL
	issuer       string
	clientID     string
	clientSecret string
	agentURL     string // the agent's chat endpoint
	audience     string // the agent's audience
	http         *http.Client
	hops         *Hops

	mu       sync.Mutex
	pending  map[string]pendingLogin // by state
	sessions map[string]*session     // by cookie
}

type pendingLogin struct {
	verifier string
	created  time.Time
}

type session struct {
	accessToken string
	user        string
	expires     time.Time
}

const cookieName = "demo_session"

func newWebApp(base, issuer, clientID, clientSecret, agentURL, audience string, hc *http.Client, hops *Hops) *webApp {
	return &webApp{base: base, issuer: issuer, clientID: clientID, clientSecret: clientSecret, agentURL: agentURL,
		audience: audience, http: hc, hops: hops, pending: map[string]pendingLogin{}, sessions: map[string]*session{}}
}

func (a *webApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /chat", a.chat)
	mux.HandleFunc("POST /logout", a.logout)
	// Browsers ask for a favicon; a 404 would be an error in every visitor's console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login starts the authorization code flow with PKCE (S256) and a state.
func (a *webApp) login(w http.ResponseWriter, r *http.Request) {
	state, verifier := random(), random()
	sum := sha256.Sum256([]byte(verifier))
	a.mu.Lock()
	for s, p := range a.pending {
		if time.Since(p.created) > 10*time.Minute {
			delete(a.pending, s)
		}
	}
	a.pending[state] = pendingLogin{verifier: verifier, created: time.Now()}
	a.mu.Unlock()
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.base + "/callback"},
		"scope": {"openid profile"}, "resource": {a.audience}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	a.hops.Printf("web", "browser", "redirect to agentguard's sign-in (authorization code + PKCE, resource=%s)", a.audience)
	http.Redirect(w, r, a.issuer+"/oauth2/authorize?"+q.Encode(), http.StatusFound)
}

// callback exchanges the code for the user's token for the agent.
func (a *webApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "sign-in failed: "+e+": "+q.Get("error_description"), http.StatusForbidden)
		return
	}
	a.mu.Lock()
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	if !ok || q.Get("code") == "" {
		http.Error(w, "unknown or expired sign-in (state); start again at /login", http.StatusBadRequest)
		return
	}
	// The code already names its target (resource was in the authorization
	// request), so the token request does not repeat it.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {a.base + "/callback"},
		"code_verifier": {p.verifier}}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, a.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.clientID), url.QueryEscape(a.clientSecret))
	resp, err := a.http.Do(req)
	if err != nil {
		http.Error(w, "token request failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		IDToken     string `json:"id_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		http.Error(w, "token request refused: "+tr.Error+": "+tr.Description, http.StatusForbidden)
		return
	}
	user := subjectOf(tr.IDToken)
	sid := random()
	a.mu.Lock()
	a.sessions[sid] = &session{accessToken: tr.AccessToken, user: user, expires: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	a.hops.Note("web", "user %s signed in; the token for the agent stays on the web app's server", user)
	http.Redirect(w, r, "/", http.StatusFound)
}

// subjectOf reads the name from an ID token the web app just received over TLS
// from the token endpoint (OIDC Core §3.1.3.7 allows skipping the signature check
// then); only for display.
func subjectOf(idToken string) string {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
		Name              string `json:"name"`
	}
	json.Unmarshal(b, &c)
	return orDefault(c.PreferredUsername, orDefault(c.Name, c.Sub))
}

func (a *webApp) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s != nil && time.Now().After(s.expires) {
		delete(a.sessions, c.Value)
		return nil
	}
	return s
}

// chat forwards one message to the agent with the user's token. JSON only, with a
// custom header, so another site cannot post it from a form (CSRF).
func (a *webApp) chat(w http.ResponseWriter, r *http.Request) {
	s := a.session(r)
	if s == nil {
		jsonError(w, http.StatusUnauthorized, "sign in first")
		return
	}
	if r.Header.Get("X-Demo-Chat") != "1" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		jsonError(w, http.StatusBadRequest, "send JSON with X-Demo-Chat: 1")
		return
	}
	var in struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&in); err != nil || strings.TrimSpace(in.Message) == "" {
		jsonError(w, http.StatusBadRequest, `send {"message": "..."}`)
		return
	}
	a.hops.Printf("browser", "web", "%q", in.Message)
	body, _ := json.Marshal(ChatRequest{Model: "demo-agent", Messages: []ChatMessage{{Role: "user", Content: in.Message}}})
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, a.agentURL, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+s.accessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "the agent cannot be reached")
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var cr ChatResponse
	out := map[string]any{"status": resp.StatusCode}
	if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &cr) == nil && len(cr.Choices) > 0 {
		out["answer"] = cr.Choices[0].Message.Content
		if cr.Agentguard != nil {
			out["hops"] = cr.Agentguard.Hops
			out["mode"] = cr.Agentguard.Mode
		}
		a.hops.Printf("web", "browser", "answer: %q", cr.Choices[0].Message.Content)
	} else {
		out["error"] = strings.TrimSpace(string(b))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// jsonError answers the chat page's script in JSON, as application/json.
func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (a *webApp) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusFound)
}

func (a *webApp) page(w http.ResponseWriter, r *http.Request) {
	nonce := random()
	// default-src 'self' also covers connect-src, for fetch('/chat'); frame-ancestors
	// and base-uri do not fall back to it, so they are set too.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := map[string]any{"Nonce": nonce, "User": ""}
	if s := a.session(r); s != nil {
		data["User"] = orDefault(s.user, "signed in")
	}
	pageTemplate.Execute(w, data)
}

// The page is checked in headless Chromium (chromium_test.go): no console errors or
// CSP violations, every control named, text contrast of at least 4.5:1.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentguard demo</title>
<style nonce="{{.Nonce}}">
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
.who{display:flex;gap:1rem;align-items:center;flex-wrap:wrap} .who p{margin:0}
#log p{margin:.4rem 0} .you{color:#136c3a} .bot{color:#05b} .hop{color:#666;font-size:.85rem;margin-left:1rem}
input[type=text]{width:70%;padding:.4rem} button{padding:.4rem .8rem}
</style></head><body>
<h1>agentguard demo</h1>
{{if .User}}
<div class="who"><p>Signed in as <strong>{{.User}}</strong>.</p><form method="post" action="/logout"><button>Sign out</button></form></div>
<p>Try: <em>What is the weather in Hangzhou?</em> or <em>Call my enterprise service</em>.</p>
<div id="log" role="log" aria-live="polite"></div>
<form id="f"><label for="m">Message</label> <input id="m" type="text" autocomplete="off" value="What is the weather in Hangzhou?"> <button>Send</button></form>
<script nonce="{{.Nonce}}">
const log = document.getElementById('log');
function line(cls, text){ const p=document.createElement('p'); p.className=cls; p.textContent=text; log.appendChild(p); }
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const m = document.getElementById('m'), send = e.target.querySelector('button');
  const msg = m.value.trim(); if (!msg || send.disabled) return;
  line('you', 'You: ' + msg); m.value = '';
  // One question at a time, so the answers come in the order asked.
  send.disabled = true; log.setAttribute('aria-busy', 'true');
  try {
    const r = await fetch('/chat', {method:'POST', headers:{'Content-Type':'application/json','X-Demo-Chat':'1'}, body: JSON.stringify({message: msg})});
    let out = {};
    try { out = await r.json(); } catch { out = {error: 'the web app answered HTTP ' + r.status}; }
    if (out.answer) { line('bot', 'Agent: ' + out.answer); (out.hops||[]).forEach(h => line('hop', '· ' + h)); }
    else line('bot', 'Error: ' + (out.error || 'HTTP ' + r.status));
  } catch {
    // fetch rejects when the web app cannot be reached: say so in the page
    // instead of an unhandled rejection in the console.
    line('bot', 'Error: the web app cannot be reached; is the demo still running?');
  } finally {
    send.disabled = false; log.removeAttribute('aria-busy'); m.focus();
  }
});
</script>
{{else}}
<p>A user asks an AI agent two things; agentguard gives the agent the keys and tokens it needs, and nothing else.</p>
<p><a href="/login">Sign in</a> (user <code>alice</code>, password <code>alice-demo-password</code>).</p>
{{end}}
</body></html>`))
