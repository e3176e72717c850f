package idp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Limits on claim paths and the values read through them.
const (
	maxClaimPath     = 256
	maxClaimSegments = 8
	maxGroups        = 1000
)

// ClaimPath is a claim name or a dotted path into nested claims. A top-level claim
// whose own name contains dots (https://example.com/roles) is found first.
type ClaimPath struct {
	raw      string
	segments []string
}

// ParseClaimPath checks a claim path: 1-256 printable characters without spaces,
// at most 8 dot-separated non-empty parts.
func ParseClaimPath(s string) (ClaimPath, error) {
	if s == "" || len(s) > maxClaimPath {
		return ClaimPath{}, fmt.Errorf("must be 1 to %d bytes", maxClaimPath)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return ClaimPath{}, errors.New("must be printable, without spaces")
		}
	}
	segs := strings.Split(s, ".")
	if len(segs) > maxClaimSegments {
		return ClaimPath{}, fmt.Errorf("has more than %d dot-separated parts", maxClaimSegments)
	}
	for _, seg := range segs {
		if seg == "" {
			// Allowed only if the whole name is a literal claim (https://a.b/c.): the
			// top-level lookup handles it; the path form cannot.
			segs = nil
			break
		}
	}
	return ClaimPath{raw: s, segments: segs}, nil
}

func (p ClaimPath) String() string { return p.raw }

// Lookup finds the value the path names in claims.
func (p ClaimPath) Lookup(claims map[string]any) (any, bool) {
	if v, ok := claims[p.raw]; ok {
		return v, true
	}
	if len(p.segments) < 2 {
		return nil, false
	}
	var cur any = claims
	for _, seg := range p.segments {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringClaim reads a string claim (numbers and booleans as their text).
func stringClaim(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// listClaim reads a list of strings (groups, roles); a single string is one item.
func listClaim(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, true
		}
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, el := range x {
			s, ok := stringClaim(el)
			if !ok {
				return nil, false
			}
			if s != "" && len(out) < maxGroups {
				out = append(out, s)
			}
		}
		return out, true
	case []string:
		if len(x) > maxGroups {
			x = x[:maxGroups]
		}
		return x, true
	}
	return nil, false
}
