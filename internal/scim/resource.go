package scim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/user"
)

// mappedAttr is one user attribute that SCIM manages: agentguard's attribute name
// and where it lives in the SCIM user (schema URN, attribute, sub-attribute).
type mappedAttr struct {
	attr      string
	urn       string
	name, sub string
}

// mappedAttrs are the SCIM user attributes kept as agentguard attributes, so inbound
// policies can use them (principal.department). Other SCIM attributes (phone
// numbers, addresses, locale, …) are accepted and not stored.
var mappedAttrs = []mappedAttr{
	{"given_name", "", "name", "givenName"},
	{"family_name", "", "name", "familyName"},
	{"title", "", "title", ""},
	{"department", SchemaEnterprise, "department", ""},
	{"employee_number", SchemaEnterprise, "employeeNumber", ""},
	{"cost_center", SchemaEnterprise, "costCenter", ""},
	{"organization", SchemaEnterprise, "organization", ""},
	{"division", SchemaEnterprise, "division", ""},
	{"manager_id", SchemaEnterprise, "manager", "value"},
}

// groupRef is a group as a user resource shows it.
type groupRef struct{ ID, Name string }

func meta(resourceType, location string, created, updated time.Time) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      created.UTC().Format(time.RFC3339Nano),
		"lastModified": updated.UTC().Format(time.RFC3339Nano),
		"location":     location,
		"version":      `W/"` + strconv.FormatInt(updated.UnixMicro(), 10) + `"`,
	}
}

// userResource is u in SCIM form (RFC 7643 §4.1, with the enterprise extension).
func userResource(u user.User, base string, groups []groupRef) map[string]any {
	loc := base + "/Users/" + u.ID
	r := map[string]any{
		"schemas":  []any{SchemaUser},
		"id":       u.ID,
		"userName": u.Username,
		"active":   u.Active,
		"meta":     meta("User", loc, u.CreatedAt, u.UpdatedAt),
	}
	if u.ExternalID != "" {
		r["externalId"] = u.ExternalID
	}
	if u.DisplayName != "" {
		r["displayName"] = u.DisplayName
	}
	if u.Email != "" {
		r["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	for _, m := range mappedAttrs {
		v, ok := u.Attributes[m.attr]
		if !ok {
			continue
		}
		c := r
		if m.urn != "" {
			ext, _ := r[m.urn].(map[string]any)
			if ext == nil {
				ext = map[string]any{}
				r[m.urn] = ext
				r["schemas"] = append(r["schemas"].([]any), m.urn)
			}
			c = ext
		}
		if m.sub == "" {
			c[m.name] = v
			continue
		}
		sub, _ := c[m.name].(map[string]any)
		if sub == nil {
			sub = map[string]any{}
			c[m.name] = sub
		}
		sub[m.sub] = v
	}
	if name, ok := r["name"].(map[string]any); ok {
		var parts []string
		for _, k := range []string{"givenName", "familyName"} {
			if s, ok := name[k].(string); ok && s != "" {
				parts = append(parts, s)
			}
		}
		name["formatted"] = strings.Join(parts, " ")
	}
	if len(groups) > 0 {
		gs := make([]any, 0, len(groups))
		for _, g := range groups {
			gs = append(gs, map[string]any{"value": g.ID, "display": g.Name, "$ref": base + "/Groups/" + g.ID, "type": "direct"})
		}
		r["groups"] = gs
	}
	return r
}

// invalid is a 400 invalidValue naming the attribute.
func invalid(attr, format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidValue", Detail: attr + ": " + fmt.Sprintf(format, args...)}
}

// str reads a string attribute; numbers and booleans are taken as their text (some
// IdPs send employeeNumber as a number).
func str(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// boolean reads a boolean, also as the strings "True"/"False" Entra ID sends.
func boolean(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(x))); err == nil {
			return b, true
		}
	}
	return false, false
}

// fromUserResource applies the SCIM user r over cur: the fields SCIM manages are
// replaced (absent ones cleared), everything else of cur stays. active keeps cur's
// value when r does not say.
func fromUserResource(r map[string]any, cur user.User) (user.User, error) {
	u := cur
	u.Attributes = make(map[string]string, len(cur.Attributes))
	for k, v := range cur.Attributes {
		u.Attributes[k] = v
	}
	v, _ := getCI(r, "userName")
	name, ok := str(v)
	if !ok || strings.TrimSpace(name) == "" {
		return u, &Error{Status: 400, ScimType: "invalidValue", Detail: "userName is required (a string)"}
	}
	u.Username = name
	u.ExternalID = ""
	if v, ok := getCI(r, "externalId"); ok && v != nil {
		if u.ExternalID, ok = str(v); !ok {
			return u, invalid("externalId", "must be a string")
		}
	}
	if v, ok := getCI(r, "active"); ok && v != nil {
		b, ok := boolean(v)
		if !ok {
			return u, invalid("active", "must be true or false")
		}
		u.Active = b
	}
	u.Email = ""
	if v, ok := getCI(r, "emails"); ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return u, invalid("emails", "must be a list of {\"value\", \"type\", \"primary\"}")
		}
		best, rank := "", 0
		for _, el := range list {
			m, ok := el.(map[string]any)
			if !ok {
				return u, invalid("emails", "must be a list of {\"value\", \"type\", \"primary\"}")
			}
			val, _ := getCI(m, "value")
			s, ok := str(val)
			if !ok || s == "" {
				continue
			}
			r := 1
			if t, _ := getCI(m, "type"); t == "work" {
				r = 2
			}
			if p, _ := getCI(m, "primary"); p != nil {
				if b, _ := boolean(p); b {
					r = 3
				}
			}
			if r > rank {
				best, rank = s, r
			}
		}
		u.Email = best
	}
	for _, m := range mappedAttrs {
		delete(u.Attributes, m.attr)
		c := container(r, m.urn)
		if c == nil {
			continue
		}
		v, ok := getCI(c, m.name)
		if !ok || v == nil {
			continue
		}
		if m.sub != "" {
			// manager: {"value": "<id>"}; Entra ID sends the id as a bare string.
			if sub, ok := v.(map[string]any); ok {
				if v, ok = getCI(sub, m.sub); !ok || v == nil {
					continue
				}
			} else if _, isStr := v.(string); !isStr {
				return u, invalid(m.name, "must be an object")
			}
		}
		s, ok := str(v)
		if !ok {
			return u, invalid(m.name, "must be a string")
		}
		if s != "" {
			u.Attributes[m.attr] = s
		}
	}
	u.DisplayName = ""
	if v, ok := getCI(r, "displayName"); ok && v != nil {
		if u.DisplayName, ok = str(v); !ok {
			return u, invalid("displayName", "must be a string")
		}
	}
	if u.DisplayName == "" {
		if n, ok := getCI(r, "name"); ok {
			if nm, ok := n.(map[string]any); ok {
				if f, _ := getCI(nm, "formatted"); f != nil {
					u.DisplayName, _ = str(f)
				}
			}
		}
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.Attributes["given_name"] + " " + u.Attributes["family_name"])
	}
	return u, nil
}
