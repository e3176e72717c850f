package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentguard/agentguard/internal/api"
	"github.com/agentguard/agentguard/internal/audit"
	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store/sqlstore"
)

// middleware adds, outermost first: panic recovery, request id and audit metadata,
// the access log and request metrics. Logs carry the path, never the query or
// body, so no token or secret can reach them.
func (s *Server) middleware(next http.Handler) http.Handler {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "agentguard_http_request_duration_seconds",
		Help:    "HTTP request latency by route and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})
	s.Registry.MustRegister(duration)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if !validRequestID(reqID) {
			reqID = secret.NewID("req")
		}
		w.Header().Set("X-Request-Id", reqID)
		info := &audit.Request{SourceIP: sourceIP(r), RequestID: reqID, TraceID: traceID(r.Header.Get("traceparent"))}
		r = r.WithContext(sqlstore.WithRequest(audit.WithRequest(r.Context(), info)))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				// The panic value may hold request data: log its type only, and the stack.
				slog.Error("panic serving request", "request_id", reqID, "path", r.URL.Path, "panic_type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
				if sw.status == 0 {
					api.WriteError(sw, r, api.Problem(http.StatusInternalServerError, "internal error; the server log has the details (request %s)", reqID))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			duration.WithLabelValues(route, strconv.Itoa(sw.code())).Observe(time.Since(start).Seconds())
			slog.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.code(), "duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", reqID)
		}()
		next.ServeHTTP(sw, r)
	})
}

// validRequestID accepts a caller's X-Request-Id only if it is 1-128 characters
// of [A-Za-z0-9._:-]: the id is echoed in responses and lands in logs and audit
// events, where spaces, quotes or non-ASCII text could forge or garble entries.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// traceID takes the trace id of a W3C traceparent header (00-<trace>-<span>-<flags>).
func traceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// apiFallback answers what no /api/ route matched: a path that exists for other
// methods is 405 with Allow (RFC 9110 §15.5.6), anything else 404, both as problems.
func apiFallback(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if _, pattern := mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); m != r.Method && pattern != "" && pattern != apiFallbackPattern {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			api.WriteError(w, r, api.NotFound("no API endpoint %s %s; see docs/api.md", r.Method, r.URL.Path))
			return
		}
		e := api.Problem(http.StatusMethodNotAllowed, "%s %s is not an endpoint; %s takes %s", r.Method, r.URL.Path, r.URL.Path, strings.Join(allow, ", "))
		e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
		api.WriteError(w, r, e)
	}
}

const apiFallbackPattern = "/api/"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
