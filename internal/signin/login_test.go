package signin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/config"
	"github.com/agentguard/agentguard/internal/server/servertest"
	"github.com/agentguard/agentguard/internal/signin/signintest"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// The login page is a plain, accessible HTML form that works without JavaScript,
// with headers that keep it out of frames and caches.
func TestLoginPageIsAccessibleAndLockedDown(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	q := baseParams(clientID)
	q.Set("login_hint", "alice@example.com")
	b := signintest.NewBrowser(t, f.URL)
	p := b.Get(t, f.authorizeURL(q))
	if p.Status != http.StatusOK {
		t.Fatalf("HTTP %d", p.Status)
	}
	h := p.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' https://app.example.com", "base-uri 'none'", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q allows inline code or scripts", csp)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	body := p.Body
	for _, want := range []string{`<html lang="en">`, `autocomplete="username"`, `autocomplete="current-password"`, `type="password"`, `value="alice@example.com"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(body), "<script") || regexp.MustCompile(`\sstyle=`).MatchString(body) {
		t.Error("login page has a script or an inline style attribute (the CSP would block it)")
	}
	forms := p.Forms(t)
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	fm := forms[0]
	if fm.Action != "/login" || fm.Method != "POST" {
		t.Errorf("form %s %s", fm.Method, fm.Action)
	}
	if fm.Labels["username"] != "Username" || fm.Labels["password"] != "Password" {
		t.Errorf("labels %v: every field needs a <label for>", fm.Labels)
	}
	for _, hidden := range []string{"login_id", "csrf_token"} {
		if fm.Fields.Get(hidden) == "" {
			t.Errorf("hidden field %s is empty", hidden)
		}
	}
}

// A wrong password and an unknown username get the same answer, and the error is
// tied to the fields for screen readers.
func TestLoginDoesNotEnumerateUsers(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	attempt := func(username, password string) signintest.Page {
		b := signintest.NewBrowser(t, f.URL)
		return b.Submit(t, b.Get(t, f.authorizeURL(baseParams(clientID))), map[string]string{"username": username, "password": password})
	}
	wrong, unknown := attempt("alice", "not-her-password"), attempt("mallory", "whatever")
	errText := regexp.MustCompile(`<p id="login-error"[^>]*>([^<]*)</p>`)
	for name, p := range map[string]signintest.Page{"wrong password": wrong, "unknown user": unknown} {
		m := errText.FindStringSubmatch(p.Body)
		if p.Status != http.StatusBadRequest || m == nil || m[1] != "The username or password is not correct." {
			t.Fatalf("%s: HTTP %d, error %v", name, p.Status, m)
		}
		if !strings.Contains(p.Body, `aria-describedby="login-error"`) || !strings.Contains(p.Body, `aria-invalid="true"`) || !strings.Contains(p.Body, `role="alert"`) {
			t.Errorf("%s: the error is not associated with the fields", name)
		}
		if p.Location != nil {
			t.Errorf("%s: redirected", name)
		}
	}
	// Apart from the per-request values, the two pages are the same.
	norm := regexp.MustCompile(`value="[^"]*"`)
	if norm.ReplaceAllString(wrong.Body, "") != norm.ReplaceAllString(unknown.Body, "") {
		t.Error("the pages for a wrong password and an unknown user differ")
	}
}

// The login form is bound to the login request and to the browser that opened it:
// without its CSRF token, with another one, or from another browser, nothing
// happens.
func TestLoginCSRF(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	good := map[string]string{"username": "alice", "password": "alice-pass-phrase"}

	b := signintest.NewBrowser(t, f.URL)
	page := b.Get(t, f.authorizeURL(baseParams(clientID)))
	other := signintest.NewBrowser(t, f.URL)
	otherPage := other.Get(t, f.authorizeURL(baseParams(clientID)))

	tests := []struct {
		name   string
		b      *signintest.Browser
		p      signintest.Page
		fields map[string]string
	}{
		{"missing token", b, page, map[string]string{"csrf_token": ""}},
		{"wrong token", b, page, map[string]string{"csrf_token": "agcf_" + strings.Repeat("A", 43)}},
		{"another request's token", b, page, map[string]string{"csrf_token": otherPage.Forms(t)[0].Fields.Get("csrf_token")}},
		{"another browser's login request", b, page, map[string]string{"login_id": otherPage.Forms(t)[0].Fields.Get("login_id"), "csrf_token": otherPage.Forms(t)[0].Fields.Get("csrf_token")}},
		{"a forged cross-site post (no cookie)", signintest.NewBrowser(t, f.URL), page, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]string{}
			for k, v := range good {
				fields[k] = v
			}
			for k, v := range tt.fields {
				fields[k] = v
			}
			res := tt.b.Submit(t, tt.p, fields)
			if res.Status != http.StatusForbidden || res.Location != nil {
				t.Fatalf("HTTP %d location %v, want 403", res.Status, res.Location)
			}
			if tt.b.Cookie(f.URL, "agentguard_session") != "" {
				t.Fatal("a session was started")
			}
		})
	}
	// The genuine form still works afterwards.
	res := b.Submit(t, page, good)
	if res.Location == nil || res.Location.Query().Get("code") == "" {
		t.Fatalf("genuine login: HTTP %d %v", res.Status, res.Location)
	}
	// And only once: the login request is used up.
	again := b.Submit(t, page, good)
	if again.Status != http.StatusBadRequest || !strings.Contains(again.Body, "expired") {
		t.Fatalf("replayed login form: HTTP %d", again.Status)
	}
}

// Attempts are limited per source IP and failures per username (the same for known
// and unknown usernames), with 429 and Retry-After on the page; the limit lifts
// with time.
func TestLoginRateLimits(t *testing.T) {
	clock := servertest.NewClock(time.Now())
	f := startWith(t, servertest.Options{Clock: clock,
		Configure: func(c *config.Config) { c.LoginFailuresPerUser = 3; c.LoginAttemptsPerIP = 10 }})
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	page := b.Get(t, f.authorizeURL(baseParams(clientID)))
	try := func(username, password string) signintest.Page {
		return b.Submit(t, page, map[string]string{"username": username, "password": password})
	}
	for _, who := range []string{"alice", "nobody"} {
		for i := 0; i < 3; i++ {
			if p := try(who, "wrong"); p.Status != http.StatusBadRequest {
				t.Fatalf("%s failure %d: HTTP %d", who, i+1, p.Status)
			}
		}
		p := try(who, "alice-pass-phrase")
		if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || !strings.Contains(p.Body, "Too many failed sign-in attempts") {
			t.Fatalf("%s after 3 failures: HTTP %d Retry-After %q", who, p.Status, p.Header.Get("Retry-After"))
		}
		if s, _ := strconv.Atoi(p.Header.Get("Retry-After")); s < 1 || s > 15*60 {
			t.Fatalf("Retry-After %q", p.Header.Get("Retry-After"))
		}
	}
	// The per-IP limit: 10 attempts a minute, 8 used so far.
	try("carol", "x")
	try("carol", "x")
	if p := try("dave", "x"); p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "from your network") {
		t.Fatalf("11th attempt from one IP: HTTP %d", p.Status)
	}
	clock.Advance(16 * time.Minute)
	page = b.Get(t, f.authorizeURL(baseParams(clientID))) // the old page expired (10 minutes)
	if p := try("alice", "alice-pass-phrase"); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Fatalf("after the window: HTTP %d %s", p.Status, p.Body)
	}
	// Every refusal was audited.
	if n := len(f.events(t, "category=inbound&decision=deny")); n < 9 {
		t.Fatalf("%d deny events, want one per refused attempt", n)
	}
}

// A sign-in always starts a new session id: a session id planted before sign-in
// (session fixation) is never promoted, and a re-authentication (prompt=login)
// replaces the old session, which stops working.
func TestSessionFixation(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	u, _ := url.Parse(f.URL)
	planted := "agss_" + strings.Repeat("x", 43)
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "agentguard_session", Value: planted, Path: "/"}})

	signIn(t, b, f.authorizeURL(baseParams(clientID)), "alice", "alice-pass-phrase")
	first := b.Cookie(f.URL, "agentguard_session")
	if first == "" || first == planted {
		t.Fatalf("session cookie %q after sign-in: the planted id was kept", first)
	}
	// Signed in: a new request gets a code without the login page.
	if p := b.Get(t, f.authorizeURL(baseParams(clientID))); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Fatalf("second authorization: HTTP %d, want a code at once", p.Status)
	}
	q := baseParams(clientID)
	q.Set("prompt", "login")
	signIn(t, b, f.authorizeURL(q), "alice", "alice-pass-phrase")
	second := b.Cookie(f.URL, "agentguard_session")
	if second == first {
		t.Fatal("re-authentication kept the session id")
	}
	// The old session id is dead.
	old := signintest.NewBrowser(t, f.URL)
	old.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "agentguard_session", Value: first, Path: "/"}})
	if p := old.Get(t, f.authorizeURL(baseParams(clientID))); p.Status != http.StatusOK || len(p.Forms(t)) != 1 {
		t.Fatalf("with the replaced session id: HTTP %d, want the login page", p.Status)
	}
}

// Session cookies are HttpOnly, SameSite=Lax, host-only with Path=/, and Secure
// (with the __Host- prefix) when the issuer is https.
func TestSessionCookieAttributes(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run("https="+strconv.FormatBool(https), func(t *testing.T) {
			opts := servertest.Options{}
			if https {
				opts.Configure = func(c *config.Config) { c.Issuer = "https://agentguard.example.com" }
			}
			f := startWith(t, opts)
			f.addUser(t, "alice", "alice-pass-phrase")
			clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
			b := signintest.NewBrowser(t, f.URL)
			page := b.Get(t, f.authorizeURL(baseParams(clientID)))
			// Post by hand: the test talks http, so a cookie jar would drop Secure cookies.
			form := page.Forms(t)[0].Fields
			form.Set("username", "alice")
			form.Set("password", "alice-pass-phrase")
			req, _ := http.NewRequest("POST", f.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, c := range b.Client.Jar.Cookies(page.URL) {
				req.AddCookie(c)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var sessionCookie *http.Cookie
			for _, c := range resp.Cookies() {
				if strings.HasSuffix(c.Name, "agentguard_session") {
					sessionCookie = c
				}
			}
			if resp.StatusCode != http.StatusSeeOther || sessionCookie == nil {
				t.Fatalf("HTTP %d cookies %v", resp.StatusCode, resp.Cookies())
			}
			c := sessionCookie
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie %+v", c)
			}
			if c.Secure != https || strings.HasPrefix(c.Name, "__Host-") != https {
				t.Errorf("https=%v: cookie %s Secure=%v", https, c.Name, c.Secure)
			}
		})
	}
}

// max_age and prompt against the session's age, and the session's idle and absolute
// timeouts: activity keeps a session alive until its absolute end, not longer.
func TestSessionAgeAndTimeouts(t *testing.T) {
	clock := servertest.NewClock(time.Now())
	f := startWith(t, servertest.Options{Clock: clock})
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	signIn(t, b, f.authorizeURL(baseParams(clientID)), "alice", "alice-pass-phrase")
	with := func(k, v string) string {
		q := baseParams(clientID)
		q.Set(k, v)
		return f.authorizeURL(q)
	}
	gotCode := func(p signintest.Page) bool { return p.Location != nil && p.Location.Query().Get("code") != "" }
	isLoginPage := func(p signintest.Page) bool { return p.Status == http.StatusOK && len(p.Forms(t)) == 1 }

	clock.Advance(10 * time.Minute)
	if p := b.Get(t, with("max_age", "3600")); !gotCode(p) {
		t.Fatalf("max_age=3600 ten minutes after sign-in: HTTP %d, want a code", p.Status)
	}
	if p := b.Get(t, with("max_age", "300")); !isLoginPage(p) {
		t.Fatalf("max_age=300 ten minutes after sign-in: HTTP %d, want the login page", p.Status)
	}
	q := baseParams(clientID)
	q.Set("prompt", "none")
	q.Set("max_age", "300")
	if p := b.Get(t, f.authorizeURL(q)); p.Location == nil || p.Location.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none with max_age passed: %v", p.Location)
	}
	// Activity every 50 minutes keeps the session (idle timeout 1h) until 12h.
	for elapsed := 10 * time.Minute; elapsed < 11*time.Hour+50*time.Minute; elapsed += 50 * time.Minute {
		clock.Advance(50 * time.Minute)
		if p := b.Get(t, with("prompt", "none")); !gotCode(p) {
			t.Fatalf("after %s with activity: HTTP %d location %v, want a code", elapsed+50*time.Minute, p.Status, p.Location)
		}
	}
	clock.Advance(20 * time.Minute) // past 12h since sign-in
	if p := b.Get(t, with("prompt", "none")); p.Location == nil || p.Location.Query().Get("error") != "login_required" {
		t.Fatalf("past the absolute lifetime: %v", p.Location)
	}
	// And idle: a fresh sign-in, then 61 minutes of nothing.
	signIn(t, b, f.authorizeURL(baseParams(clientID)), "alice", "alice-pass-phrase")
	clock.Advance(61 * time.Minute)
	if p := b.Get(t, with("prompt", "none")); p.Location == nil || p.Location.Query().Get("error") != "login_required" {
		t.Fatalf("past the idle timeout: %v", p.Location)
	}
}

// The login metric counts results (platform teams alert on bad_credentials).
func TestLoginMetrics(t *testing.T) {
	f := start(t, sqlstore.SQLite)
	f.addUser(t, "alice", "alice-pass-phrase")
	clientID, _ := signintest.Client(t, f.Server, "spa", []string{appCallback}, nil)
	b := signintest.NewBrowser(t, f.URL)
	page := b.Get(t, f.authorizeURL(baseParams(clientID)))
	b.Submit(t, page, map[string]string{"username": "alice", "password": "wrong-password-1"})
	b.Submit(t, page, map[string]string{"username": "alice", "password": "alice-pass-phrase"})
	m := b.Get(t, f.URL+"/metrics").Body
	for _, want := range []string{
		`agentguard_signin_logins_total{method="password",result="bad_credentials"} 1`,
		`agentguard_signin_logins_total{method="password",result="success"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
