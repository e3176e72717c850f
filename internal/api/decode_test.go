package api_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/api"
)

type sample struct {
	Name   string            `json:"name"`
	Count  *int              `json:"count"`
	Tags   []string          `json:"tags"`
	Nested struct{ A bool }  `json:"nested"`
	Labels map[string]string `json:"labels"`
}

func decode(contentType, body string) (sample, error) {
	r := httptest.NewRequest("POST", "/api/v1/x", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var v sample
	err := api.Decode(httptest.NewRecorder(), r, &v)
	return v, err
}

// Decode's contract: JSON only (415), at most MaxBody (413), one object with known
// fields (400 naming the field).
func TestDecode(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int // 0: success
		field                   string
	}{
		{"ok", "application/json", `{"name":"a","count":1}`, 0, ""},
		{"charset parameter", "application/json; charset=utf-8", `{"name":"a"}`, 0, ""},
		{"+json suffix", "application/merge-patch+json", `{"name":"a"}`, 0, ""},
		{"trailing whitespace", "application/json", "{\"name\":\"a\"}\n\t ", 0, ""},
		{"exactly MaxBody", "application/json", `{"name":"` + strings.Repeat("a", api.MaxBody-11) + `"}`, 0, ""},
		{"no content type", "", `{}`, 415, ""},
		{"text/plain", "text/plain", `{}`, 415, ""},
		{"bad media type", "application/", `{}`, 415, ""},
		{"one byte over MaxBody", "application/json", `{"name":"` + strings.Repeat("a", api.MaxBody-10) + `"}`, 413, ""},
		{"empty", "application/json", ``, 400, ""},
		{"syntax", "application/json", `{"name":}`, 400, ""},
		{"truncated", "application/json", `{"name":"a"`, 400, ""},
		{"unknown field", "application/json", `{"name":"a","colour":"red"}`, 400, "colour"},
		{"wrong type", "application/json", `{"count":"three"}`, 400, "count"},
		{"wrong nested type", "application/json", `{"nested":{"A":"yes"}}`, 400, "nested.A"},
		{"second object", "application/json", `{"name":"a"}{"name":"b"}`, 400, ""},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 400, ""},
		{"trailing comma", "application/json", `{"name":"a"},`, 400, ""},
		{"array", "application/json", `[1]`, 400, ""},
		{"null", "application/json", `null`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.contentType, tc.body)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("err %v, want success", err)
				}
				return
			}
			var e *api.Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("err %v, want an *api.Error with status %d", err, tc.status)
			}
			if tc.field != "" && (len(e.Errors) != 1 || e.Errors[0].Field != tc.field) {
				t.Fatalf("errors %+v, want field %q", e.Errors, tc.field)
			}
		})
	}
}

// PageParams bounds limit and cursor and names the field it refuses.
func TestPageParams(t *testing.T) {
	tests := []struct {
		query string
		limit int
		field string
	}{
		{"", 50, ""},
		{"limit=1", 1, ""},
		{"limit=500", 500, ""},
		{"limit=0", 0, "limit"},
		{"limit=501", 0, "limit"},
		{"limit=abc", 0, "limit"},
		{"limit=-5", 0, "limit"},
		{"limit=99999999999999999999", 0, "limit"},
		{"cursor=" + strings.Repeat("c", 257), 0, "cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			limit, _, err := api.PageParams(httptest.NewRequest("GET", "/x?"+tc.query, nil))
			if tc.field == "" {
				if err != nil || limit != tc.limit {
					t.Fatalf("limit %d err %v, want %d", limit, err, tc.limit)
				}
				return
			}
			var e *api.Error
			if !errors.As(err, &e) || e.Status != 400 || len(e.Errors) != 1 || e.Errors[0].Field != tc.field {
				t.Fatalf("err %v, want a 400 naming %s", err, tc.field)
			}
		})
	}
}

// WriteError renders problem+json, with the challenge header on a 401.
func TestWriteErrorUnauthorized(t *testing.T) {
	w := httptest.NewRecorder()
	api.WriteError(w, httptest.NewRequest("GET", "/api/v1/x", nil), api.Unauthorized("no token"))
	if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" ||
		!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Fatalf("HTTP %d headers %v", w.Code, w.Header())
	}
}

// A quote in the detail must not break out of the WWW-Authenticate quoted string.
func TestUnauthorizedChallengeIsWellFormed(t *testing.T) {
	e := api.Unauthorized(`the access token is not valid: "go-jose" said \ no`)
	h := e.Header.Get("WWW-Authenticate")
	rest := strings.TrimPrefix(h, `Bearer error="invalid_token", error_description="`)
	if !strings.HasSuffix(rest, `"`) {
		t.Fatalf("challenge %q does not end with a quote", h)
	}
	inner := strings.TrimSuffix(rest, `"`)
	if strings.ContainsAny(inner, "\"\\") {
		t.Fatalf("error_description %q holds a quote or backslash (RFC 6750 §3 allows neither)", inner)
	}
}

// Random bodies and content types never panic, and every failure is an
// *api.Error with 400, 413 or 415.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"name":"a"}`, `{"count":1,"tags":["x"]}`, `{"nested":{"A":true}}`, `{"a":1}`, `[]`, `null`, `{"name":"a"}{}`, "", `{"labels":{"k":"v"}}`, "\xff"} {
		f.Add("application/json", seed)
	}
	f.Add("text/plain", `{}`)
	f.Add("application/json; charset=\"", `{}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		_, err := decode(contentType, body)
		if err == nil {
			return
		}
		var e *api.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not an *api.Error", err, err)
		}
		switch e.Status {
		case 400, 413, 415:
		default:
			t.Fatalf("status %d for %q", e.Status, body)
		}
		if e.Status == 400 && len(e.Errors) == 0 && e.Detail == "" {
			t.Fatal("a 400 with no detail")
		}
	})
}

// Only this machine is loopback: a host name that starts with "127." is not.
func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"127.attacker.example": false, "127.0.0.1.nip.io": false, "10.0.0.1": false, "example.com": false, "": false,
	} {
		if got := api.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
