package egress

import (
	"errors"
	"net/url"
	"strings"
)

// errPath is a gateway path that could leave the upstream's base path.
var errPath = errors.New(`the path must not hold "." or ".." segments or encoded slashes or backslashes (%2F, %5C): the gateway forwards only below the node's upstream URL`)

// Target is the upstream URL for a gateway request: the node's base URL, then the
// rest of the request path (escapedRest, as sent, starting with "/" or empty),
// then the request's query. A "." or ".." segment, or one that decodes to hold a
// slash or backslash, is refused, so the result always stays below base's path
// whatever the upstream server does with them.
func Target(base *url.URL, escapedRest, rawQuery string) (*url.URL, error) {
	if escapedRest != "" && !strings.HasPrefix(escapedRest, "/") {
		escapedRest = "/" + escapedRest
	}
	var segs []string
	if escapedRest != "" {
		segs = strings.Split(escapedRest[1:], "/")
	}
	var plain strings.Builder
	for _, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return nil, errPath
		}
		if dec == "." || dec == ".." || strings.ContainsAny(dec, `/\`) || strings.ContainsRune(dec, 0) {
			return nil, errPath
		}
		plain.WriteByte('/')
		plain.WriteString(dec)
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + plain.String()
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + escapedRest
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	if u.EscapedPath() != u.RawPath {
		// RawPath was not a valid encoding of Path: let url encode Path itself.
		u.RawPath = ""
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = rawQuery, false, "", ""
	return &u, nil
}
