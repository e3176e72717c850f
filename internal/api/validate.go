package api

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validator collects field errors so one response names every wrong field.
type Validator struct{ errs []FieldError }

// Add records a field error.
func (v *Validator) Add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Required checks a non-empty string of at most max bytes of valid UTF-8.
func (v *Validator) Required(field, val string, max int) {
	if strings.TrimSpace(val) == "" {
		v.Add(field, "is required")
		return
	}
	v.MaxLen(field, val, max)
}

// MaxLen checks an optional string's length and encoding.
func (v *Validator) MaxLen(field, val string, max int) {
	if len(val) > max {
		v.Add(field, "must be at most %d bytes (got %d)", max, len(val))
	} else if !utf8.ValidString(val) {
		v.Add(field, "must be valid UTF-8")
	}
}

// OneOf checks val is one of allowed.
func (v *Validator) OneOf(field, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.Add(field, "must be one of %s (got %q)", strings.Join(allowed, ", "), val)
	}
}

var scopeRe = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`) // RFC 6749 §3.3 scope-token

// Scope checks an RFC 6749 scope token (no spaces, quotes or backslashes). The "|"
// is reserved for the audience|scope request form.
func (v *Validator) Scope(field, s string) {
	if len(s) > 128 || !scopeRe.MatchString(s) || strings.Contains(s, "|") {
		v.Add(field, "%q is not a valid scope: 1-128 printable ASCII characters without spaces, quotes, backslashes or |", s)
	}
}

// Audience checks an absolute URI (https://…, urn:…) of at most 512 bytes.
func (v *Validator) Audience(field, s string) {
	if !ValidAudience(s) {
		v.Add(field, "%q is not an absolute URI such as https://api.example.com or urn:example:api (at most 512 bytes, no spaces or |)", s)
	}
}

// ValidAudience reports whether s is an absolute URI usable as an audience.
func ValidAudience(s string) bool {
	if s == "" || len(s) > 512 || strings.ContainsAny(s, " \t\r\n|#") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

// HTTPSURL checks an https URL (http only for loopback hosts).
func (v *Validator) HTTPSURL(field, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || len(s) > 2048 || (u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname()))) {
		v.Add(field, "%q must be an https URL (http is allowed only for localhost)", s)
	}
}

// IsLoopback reports whether host names this machine: "localhost" or a loopback
// IP address. A name that merely starts with "127." (127.attacker.example) is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Err returns the collected errors as a 400, or nil.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return Invalid(v.errs...)
}
