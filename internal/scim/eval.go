package scim

import (
	"strings"
)

// Schema URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// caseExact lists the attributes compared case-sensitively (RFC 7643: id,
// externalId, and references); every other string compares ignoring case.
func caseExact(p AttrPath) bool {
	switch strings.ToLower(p.Name) {
	case "id", "externalid":
		return true
	case "members", "groups", "manager":
		return strings.EqualFold(p.Sub, "value") || p.Sub == ""
	}
	return false
}

// getCI reads a map key ignoring case (SCIM attribute names are case-insensitive).
func getCI(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// container finds the object an attribute path's URN points into: the resource
// itself for its core schema (or no URN), or the extension object.
func container(res map[string]any, urn string) map[string]any {
	if urn == "" || strings.EqualFold(urn, SchemaUser) || strings.EqualFold(urn, SchemaGroup) {
		return res
	}
	v, _ := getCI(res, urn)
	m, _ := v.(map[string]any)
	return m
}

// values lists the leaf values a path names in res (several for a multi-valued
// attribute).
func values(res map[string]any, p AttrPath) []any {
	c := container(res, p.URN)
	if c == nil {
		return nil
	}
	v, ok := getCI(c, p.Name)
	if !ok || v == nil {
		return nil
	}
	leaf := func(x any) any {
		m, ok := x.(map[string]any)
		if !ok {
			return x
		}
		sub := p.Sub
		if sub == "" {
			sub = "value"
		}
		y, _ := getCI(m, sub)
		return y
	}
	if list, ok := v.([]any); ok {
		out := make([]any, 0, len(list))
		for _, x := range list {
			if y := leaf(x); y != nil {
				out = append(out, y)
			}
		}
		return out
	}
	if m, ok := v.(map[string]any); ok && p.Sub == "" {
		// A complex single-valued attribute (name): present if it has anything.
		if len(m) == 0 {
			return nil
		}
		if y, ok := getCI(m, "value"); ok {
			return []any{y}
		}
		return []any{m}
	}
	if y := leaf(v); y != nil {
		return []any{y}
	}
	return nil
}

// Match evaluates f against a resource in its SCIM JSON form.
func Match(f Filter, res map[string]any) bool {
	switch x := f.(type) {
	case Logical:
		if x.Op == "and" {
			return Match(x.Left, res) && Match(x.Right, res)
		}
		return Match(x.Left, res) || Match(x.Right, res)
	case Not:
		return !Match(x.X, res)
	case ValuePath:
		c := container(res, x.Path.URN)
		if c == nil {
			return false
		}
		v, _ := getCI(c, x.Path.Name)
		switch v := v.(type) {
		case []any:
			for _, el := range v {
				if m, ok := el.(map[string]any); ok && Match(x.Filter, m) {
					return true
				}
			}
		case map[string]any:
			return Match(x.Filter, v)
		}
		return false
	case Compare:
		vals := values(res, x.Path)
		switch x.Op {
		case "pr":
			for _, v := range vals {
				if s, ok := v.(string); !ok || s != "" {
					return true
				}
			}
			return false
		case "ne":
			return !Match(Compare{Path: x.Path, Op: "eq", Value: x.Value}, res)
		}
		if x.Value == nil {
			return x.Op == "eq" && len(vals) == 0
		}
		exact := caseExact(x.Path)
		for _, v := range vals {
			if compare(x.Op, v, x.Value, exact) {
				return true
			}
		}
	}
	return false
}

// compare applies op to an attribute value a and the filter's value b.
func compare(op string, a, b any, exact bool) bool {
	switch bv := b.(type) {
	case bool:
		av, ok := a.(bool)
		if !ok {
			if s, isStr := a.(string); isStr {
				av, ok = strings.EqualFold(s, "true"), strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
			}
		}
		return ok && op == "eq" && av == bv
	case float64:
		av, ok := a.(float64)
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return av == bv
		case "gt":
			return av > bv
		case "lt":
			return av < bv
		case "ge":
			return av >= bv
		case "le":
			return av <= bv
		}
		return false
	case string:
		as, ok := a.(string)
		if !ok {
			return false
		}
		if !exact {
			as, bv = strings.ToLower(as), strings.ToLower(bv)
		}
		switch op {
		case "eq":
			return as == bv
		case "co":
			return strings.Contains(as, bv)
		case "sw":
			return strings.HasPrefix(as, bv)
		case "ew":
			return strings.HasSuffix(as, bv)
		case "gt":
			return as > bv
		case "lt":
			return as < bv
		case "ge":
			return as >= bv
		case "le":
			return as <= bv
		}
	}
	return false
}
