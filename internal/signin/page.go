package signin

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The pages are plain HTML forms: they work without JavaScript (there is none), use
// no external resources, and carry a strict Content-Security-Policy whose only
// allowance is the one inline stylesheet, by hash.

const css = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}
main{width:100%;max-width:24rem;padding:2rem;margin:1rem;border:1px solid GrayText;border-radius:.5rem}
h1{font-size:1.4rem;margin:0 0 .5rem}
p{line-height:1.4}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid GrayText;border-radius:.25rem}
input[aria-invalid=true]{border:2px solid #c00}
button,.button{display:block;box-sizing:border-box;width:100%;margin-top:1.25rem;padding:.7rem;font-size:1rem;border-radius:.25rem;border:1px solid GrayText;cursor:pointer;text-align:center;text-decoration:none;color:inherit;background:ButtonFace}
button.primary{background:#0b57d0;color:#fff;border-color:#0b57d0}
button:focus-visible,.button:focus-visible,input:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.error{color:#b00020;border-left:4px solid #b00020;padding:.25rem .75rem;margin:1rem 0}
.hint{color:GrayText;font-size:.9rem}
.or{text-align:center;color:GrayText;margin:1.5rem 0 0}
.upstreams{list-style:none;padding:0;margin:0}
@media (prefers-color-scheme:dark){.error{color:#ff8a80;border-color:#ff8a80}}
`

var cssHash = func() string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · agentguard</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
{{end}}
{{define "foot"}}</main>
</body>
</html>
{{end}}

{{define "login"}}{{template "head" .}}
<h1>Sign in</h1>
<p>to continue to <strong>{{.ClientName}}</strong></p>
{{if .Error}}<p id="login-error" class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login" novalidate>
<input type="hidden" name="login_id" value="{{.LoginID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256"{{if .Error}} aria-invalid="true" aria-describedby="login-error"{{else}} autofocus{{end}}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024"{{if .Error}} aria-invalid="true" aria-describedby="login-error"{{end}}>
<button type="submit" class="primary">Sign in</button>
</form>
{{if .Upstreams}}<p class="or">or</p>
<ul class="upstreams">
{{range .Upstreams}}<li><a class="button" href="{{.Href}}">Sign in with {{.Name}}</a></li>
{{end}}</ul>{{end}}
{{template "foot" .}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p{{if .Alert}} role="alert"{{end}}>{{.Message}}</p>
{{if .Hint}}<p class="hint">{{.Hint}}</p>{{end}}
{{template "foot" .}}{{end}}

{{define "logout"}}{{template "head" .}}
<h1>Sign out</h1>
<p>Sign out of agentguard{{if .ClientName}} and return to <strong>{{.ClientName}}</strong>{{end}}?</p>
<form method="post" action="/oauth2/logout">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button type="submit" class="primary">Sign out</button>
</form>
{{template "foot" .}}{{end}}
`))

// upstreamLink is an upstream identity provider's button.
type upstreamLink struct {
	Name string
	Href string
}

type pageData struct {
	Title      string
	CSS        template.CSS
	ClientName string
	Error      string
	LoginID    string
	CSRF       string
	Username   string
	Upstreams  []upstreamLink
	Message    string
	Hint       string
	Alert      bool
	Params     map[string]string
}

// render writes a page with the security headers every page carries. formTarget is
// where the page's form (or the redirect after it) may lead, for form-action: Chrome
// applies form-action to the redirects that follow a form post.
func render(w http.ResponseWriter, status int, name string, d pageData, formTarget string) {
	d.CSS = template.CSS(css)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		slog.Error("render sign-in page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	formAction := "'self'"
	if src := cspSource(formTarget); src != "" {
		formAction += " " + src
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+cssHash+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// cspSource is the CSP source expression for the origin of a registered redirect
// URI (https://app.example.com:8443, or com.example.app: for a private-use scheme).
// Anything with characters that could end the directive gives "".
func cspSource(uri string) string {
	if uri == "" {
		return ""
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return ""
	}
	src := u.Scheme + ":"
	if u.Host != "" {
		src = u.Scheme + "://" + u.Host
	}
	for _, c := range src {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-+:/[]", c)) {
			return ""
		}
	}
	return src
}

// messagePage renders a page with a title and message (errors, signed out).
func messagePage(w http.ResponseWriter, status int, title, message, hint string) {
	render(w, status, "message", pageData{Title: title, Message: message, Hint: hint, Alert: status >= 400}, "")
}

// retryAfter sets Retry-After in whole seconds, at least 1.
func retryAfter(w http.ResponseWriter, d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(s))
	return s
}
