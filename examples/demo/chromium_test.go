package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/audits"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The demo's web app and agentguard's login page, driven in a real headless
// Chromium. browser.go's Go client follows the same links, but only a browser runs
// the page's script under its CSP, fills the form as a person does, and reports
// what DevTools' console and issues panel would show.

// badCredentials is agentguard's one message for any failed sign-in
// (internal/signin): it never says whether the username or the password was wrong.
const badCredentials = "The username or password is not correct."

// chromiumPath finds a Chromium (or Chrome) binary: AGENTGUARD_CHROMIUM if set,
// else Debian's /usr/bin/chromium, else the usual names on PATH. Without one the
// test skips (.ci/run installs Debian's chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AGENTGUARD_CHROMIUM"); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("AGENTGUARD_CHROMIUM=%s: %v", p, err)
		}
		return found
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if found, err := exec.LookPath(name); err == nil {
			return found
		}
	}
	t.Skip("no Chromium binary: none of /usr/bin/chromium, chromium, chromium-browser, google-chrome " +
		"(install Debian's chromium package, as .ci/run does, or set AGENTGUARD_CHROMIUM)")
	return ""
}

// pageReport collects, in arrival order, what the pages said to the console
// (console calls, uncaught exceptions, browser log entries such as CSP violations
// and failed loads) and what DevTools' issues panel would list.
type pageReport struct {
	mu      sync.Mutex
	entries []consoleEntry
	issues  []string
	changed chan struct{} // closed and replaced on each new entry or issue
}

type consoleEntry struct {
	level string // error, warning, info, ...; "exception" for uncaught ones
	text  string // "source at URL: message"
}

func newPageReport() *pageReport { return &pageReport{changed: make(chan struct{})} }

// listen runs on chromedp's reader goroutine: it only records.
func (r *pageReport) listen(ev any) {
	var e *consoleEntry
	var issue string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		e = &consoleEntry{level: string(ev.Type), text: "console: " + strings.Join(args, " ")}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := ""
		if d.Exception != nil {
			desc = d.Exception.Description
		}
		e = &consoleEntry{level: "exception", text: fmt.Sprintf("script at %s:%d: %s %s", d.URL, d.LineNumber, d.Text, desc)}
	case *log.EventEntryAdded:
		e = &consoleEntry{level: string(ev.Entry.Level), text: fmt.Sprintf("%s at %s: %s", ev.Entry.Source, ev.Entry.URL, ev.Entry.Text)}
	case *audits.EventIssueAdded:
		if d := ev.Issue.Details; d != nil && d.GenericIssueDetails != nil && strings.HasPrefix(string(d.GenericIssueDetails.ErrorType), "Form") {
			return // accessible asks for the form issues itself
		}
		issue = describeIssue(ev.Issue)
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e != nil {
		r.entries = append(r.entries, *e)
	} else {
		r.issues = append(r.issues, issue)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func describeIssue(i *audits.InspectorIssue) string {
	switch d := i.Details; {
	case d != nil && d.ContentSecurityPolicyIssueDetails != nil:
		c := d.ContentSecurityPolicyIssueDetails
		return fmt.Sprintf("%s: %s (%s) blocked %q", i.Code, c.ViolatedDirective, c.ContentSecurityPolicyViolationType, c.BlockedURL)
	case d != nil && d.GenericIssueDetails != nil:
		g := d.GenericIssueDetails
		return fmt.Sprintf("%s: %s (node %d %s)", i.Code, g.ErrorType, g.ViolatingNodeID, g.ViolatingNodeAttribute)
	}
	return string(i.Code)
}

// take returns what was reported since the last take.
func (r *pageReport) take() ([]consoleEntry, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, i := r.entries, r.issues
	r.entries, r.issues = nil, nil
	return e, i
}

// waitFor waits until what was reported since the last take satisfies ok.
func (r *pageReport) waitFor(ctx context.Context, ok func([]consoleEntry, []string) bool) error {
	for {
		r.mu.Lock()
		done, changed := ok(r.entries, r.issues), r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// tab is one headless Chromium tab with its report.
type tab struct {
	t      *testing.T
	ctx    context.Context
	report *pageReport
	hops   fmt.Stringer // the demo's printed hops, shown when a step fails
}

// startChromium starts headless Chromium for the test; the whole browser session
// shares one 60 s deadline (chromedp steps wait for the page, not for a time).
func startChromium(t *testing.T, bin string, hops fmt.Stringer) *tab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		// As root in a container: no sandbox, no GPU, and /dev/shm is often tiny.
		chromedp.NoSandbox,
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	report := newPageReport()
	// WithListener, not Listen: it sees the events from the tab's first moment.
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(report.listen))
	t.Cleanup(cancelTab)
	tb := &tab{t: t, ctx: bctx, report: report, hops: hops}
	tb.do("start Chromium and enable DevTools' issues", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, audits.Enable, cdp.Empty{})
		return err
	}))
	return tb
}

// do runs the steps, failing the test with the console and the demo's hops.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		entries, issues := b.report.take()
		b.t.Fatalf("%s: %v\nconsole: %v\nissues: %v\nhops:\n%s", what, err, entries, issues, b.hops)
	}
}

func get[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// typeInto selects what a field holds and types over it, as a person would.
func typeInto(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Focus(chromedp.ID(id)),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent(text),
	)
}

// clickAndLoad clicks and waits for the page that leads to: the page being left may
// hold the element the next step waits for (a second failed sign-in's error).
func clickAndLoad(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))(ctx, tg)
		return err
	})
}

// quiet fails the test if, since the last check, a page logged a warning, an
// error or an exception, or DevTools listed an issue (a CSP violation, a form
// problem), except the entries expected, given as substrings.
func (b *tab) quiet(what string, expected ...string) {
	b.t.Helper()
	entries, issues := b.report.take()
	for _, e := range entries {
		if e.level != string(log.EntryLevelError) && e.level != string(log.EntryLevelWarning) && e.level != "exception" && e.level != "assert" {
			continue
		}
		ok := false
		for _, x := range expected {
			ok = ok || strings.Contains(e.text, x)
		}
		if !ok {
			b.t.Errorf("%s: the console shows %s: %s", what, e.level, e.text)
		}
	}
	for _, i := range issues {
		b.t.Errorf("%s: DevTools lists the issue %s", what, i)
	}
}

// contrastJS lists visible text whose colour contrast with its background is below
// WCAG AA (4.5:1, 3:1 for large text), backgrounds taken from the nearest opaque
// ancestor (white by default).
const contrastJS = `(() => {
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length === 3 || c[3] > 0) return c; } return [255, 255, 255]; };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());) {
    const el = n.parentElement, text = n.textContent.trim();
    if (!text || !el.checkVisibility()) continue;
    const st = getComputedStyle(el), size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
    const a = lum(rgb(st.color)), b = lum(bg(el)), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const min = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < min) bad.push(JSON.stringify(text.slice(0, 40)) + ' ' + st.color + ' on ' + bg(el) + ': ' + ratio.toFixed(2) + ':1');
  }
  if (!document.documentElement.lang) bad.push('<html> has no lang');
  if (!document.title) bad.push('no <title>');
  return bad;
})()`

// accessible checks the page as a screen reader and DevTools' form audit see it:
// every control has an accessible name (a label, its text), form fields pass
// Chromium's form checks, and the text is readable (contrast, lang, title).
func (b *tab) accessible(what string) {
	b.t.Helper()
	tree := get(b, what+": accessibility tree", func(ctx context.Context, tg *chromedp.Target) (*accessibility.GetFullAXTreeResult, error) {
		r, err := cdp.Call(ctx, tg, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		return &r, err
	})
	controls := 0
	for _, n := range tree.Nodes {
		role, name := axString(n.Role), axString(n.Name)
		switch role {
		case "textbox", "searchbox", "button", "link", "checkbox", "radio", "combobox":
			if !n.Ignored {
				controls++
				if strings.TrimSpace(name) == "" {
					b.t.Errorf("%s: a %s has no accessible name (no label or text)", what, role)
				}
			}
		}
	}
	if controls == 0 {
		b.t.Errorf("%s: no controls in the accessibility tree", what)
	}
	forms := get(b, what+": form checks", func(ctx context.Context, tg *chromedp.Target) (audits.CheckFormsIssuesResult, error) {
		return cdp.Call(ctx, tg, audits.CheckFormsIssues, cdp.Empty{})
	})
	for _, i := range forms.FormIssues {
		b.t.Errorf("%s: form issue %s (%s)", what, i.ErrorType, i.ViolatingNodeAttribute)
	}
	for _, problem := range get(b, what+": contrast", chromedp.Evaluate[[]string](contrastJS)) {
		b.t.Errorf("%s: %s", what, problem)
	}
}

func axString(v *accessibility.Value) string {
	var s string
	if v != nil {
		json.Unmarshal(v.Value, &s)
	}
	return s
}

// The demo's page in a real browser: sign in through agentguard's login page (a
// wrong password first), ask both questions, see a network failure reported in the
// page, sign out; no console errors, no CSP violations, every control labelled.
func TestDemoPageInChromium(t *testing.T) {
	bin := chromiumPath(t) // before the demo starts: a skip should be quick
	d, out, _ := startDemo(t, true)
	b := startChromium(t, bin, out)
	start := time.Now()

	b.do("open the web app", chromedp.Navigate(d.WebURL), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
	b.accessible("signed-out page")
	b.quiet("signed-out page")

	b.do("follow the sign-in link", chromedp.Click(chromedp.CSS(`a[href="/login"]`)), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := get(b, "location", chromedp.Location()); !strings.HasPrefix(loc, d.Issuer+"/") {
		t.Fatalf("the sign-in link led to %s, not to agentguard (%s)", loc, d.Issuer)
	}
	b.accessible("agentguard's login page")
	b.quiet("agentguard's login page")

	// A failed sign-in shows the same generic message whichever part was wrong,
	// keeps the username, and marks the fields invalid for assistive technology.
	for _, c := range []struct{ name, username, password string }{
		{"wrong password", demoUser, "not-alice-password"},
		{"unknown user", "mallory", "whatever-password"},
	} {
		b.do(c.name,
			typeInto("username", c.username),
			typeInto("password", c.password),
			clickAndLoad(`button[type=submit]`),
			chromedp.WaitVisible(chromedp.ID("login-error")),
		)
		if msg := get(b, c.name+": message", chromedp.Text(chromedp.ID("login-error"))); msg != badCredentials {
			t.Errorf("%s: the login page says %q, want %q", c.name, msg, badCredentials)
		}
		state := get(b, c.name+": form state", chromedp.Evaluate[map[string]string](`({
			role: document.getElementById('login-error').getAttribute('role'),
			username: document.getElementById('username').value,
			password: document.getElementById('password').value,
			invalid: document.getElementById('password').getAttribute('aria-invalid'),
			location: location.origin})`))
		want := map[string]string{"role": "alert", "username": c.username, "password": "", "invalid": "true", "location": d.Issuer}
		for k, v := range want {
			if state[k] != v {
				t.Errorf("%s: %s is %q, want %q", c.name, k, state[k], v)
			}
		}
		// agentguard answers a failed sign-in with HTTP 400 and the form again;
		// Chromium logs that status as a failed load.
		b.quiet(c.name, "network at "+d.Issuer+"/login: Failed to load resource: the server responded with a status of 400")
	}
	b.accessible("login page after a failed sign-in")
	b.quiet("login page after a failed sign-in")

	b.do("sign in",
		typeInto("username", demoUser),
		typeInto("password", demoPassword),
		clickAndLoad(`button[type=submit]`),
		chromedp.WaitVisible(chromedp.ID("m")),
	)
	if loc := get(b, "location", chromedp.Location()); loc != d.WebURL+"/" {
		t.Errorf("signed in at %s, want the web app's %s/", loc, d.WebURL)
	}
	if who := get(b, "who", chromedp.Text(chromedp.CSS(`.who p`))); who != "Signed in as "+demoUser+"." {
		t.Errorf("the page says %q", who)
	}
	if v := get(b, "prefilled question", chromedp.Value(chromedp.ID("m"))); v != Questions[0] {
		t.Errorf("the message field holds %q, want the first question", v)
	}
	b.accessible("chat page")
	b.quiet("chat page")

	answers := func() []string {
		return get(b, "answers", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#log p.bot')].map(p => p.textContent)`))
	}
	for i, c := range []struct {
		question string
		want     []string
	}{
		{Questions[0], []string{"Agent: ", "Hangzhou", "light rain", "18 °C"}},
		{Questions[1], []string{"Agent: ", "Hello alice", d.Provisioned.AgentID + " acting on your behalf"}},
	} {
		b.do("ask "+c.question,
			typeInto("m", c.question),
			chromedp.Click(chromedp.CSS(`#f button`)),
			chromedp.WaitVisible(chromedp.CSSAll(`#log p.bot`), chromedp.AtLeast(i+1)),
		)
		got := answers()
		if len(got) != i+1 {
			t.Fatalf("after %q the page shows the answers %q", c.question, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%q: the page shows %q, want it to contain %q", c.question, got[i], w)
			}
		}
		b.quiet("ask " + c.question)
	}
	if n := len(get(b, "hops", chromedp.Nodes(chromedp.CSSAll(`#log p.hop`)))); n < 4 {
		t.Errorf("the page shows %d hops of the agent, want the hops of both answers", n)
	}
	b.accessible("chat page with answers") // the questions, answers and hops have their own colours

	// The web app out of reach: the page says so instead of an unhandled rejection.
	b.do("block /chat", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{
			URLPatterns: []*network.BlockPattern{{URLPattern: d.WebURL + "/chat", Block: true}}})
		return err
	}))
	b.do("ask while the web app is out of reach",
		typeInto("m", "Are you there?"),
		chromedp.Click(chromedp.CSS(`#f button`)),
		chromedp.WaitVisible(chromedp.CSSAll(`#log p.bot`), chromedp.AtLeast(3)),
		chromedp.WaitEnabled(chromedp.CSS(`#f button`)),
	)
	if got := answers(); !strings.HasPrefix(got[2], "Error: the web app cannot be reached") {
		t.Errorf("with /chat blocked the page shows %q", got[2])
	}
	b.quiet("web app out of reach", "network at "+d.WebURL+"/chat: Failed to load resource: net::ERR_BLOCKED_BY_CLIENT")
	b.do("unblock /chat", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{})
		return err
	}))

	b.do("sign out", chromedp.Click(chromedp.CSS(`.who button`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
	b.quiet("sign out")
	t.Logf("the browser walkthrough took %v", time.Since(start).Round(time.Millisecond))

	// The check above would pass as well if nothing were reported at all: make sure
	// a CSP violation on this page does reach the report.
	if ran := get(b, "inject an inline script", chromedp.Evaluate[bool](`(() => { const s = document.createElement('script'); s.textContent = 'window.ran = true'; document.body.append(s); return !!window.ran; })()`)); ran {
		t.Error("an inline script without the nonce ran")
	}
	err := b.report.waitFor(b.ctx, func(entries []consoleEntry, issues []string) bool {
		for _, i := range issues {
			if strings.Contains(i, "ContentSecurityPolicyIssue: script-src-elem") {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Errorf("an inline script without the nonce was not reported as a CSP violation: %v", err)
	}
}
