package scim

import (
	"fmt"
	"net/http"
	"strings"
)

// The discovery endpoints (RFC 7644 §4) describe what this service provider does.

func (h *Handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request, _ Token) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/agentguard/agentguard/blob/main/docs/directory.md#scim-20",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "SCIM bearer token", "primary": true,
			"description": "A token made with POST /api/v1/scim/tokens (agentguard scim token create), sent as Authorization: Bearer <token>.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.BaseURL + "/ServiceProviderConfig"},
	})
}

func (h *Handler) resourceTypeList() []any {
	return []any{
		map[string]any{
			"schemas": []string{SchemaResType}, "id": "User", "name": "User", "endpoint": "/Users",
			"description":      "A person who signs in through clients and on whose behalf agents act",
			"schema":           SchemaUser,
			"schemaExtensions": []any{map[string]any{"schema": SchemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": h.BaseURL + "/ResourceTypes/User"},
		},
		map[string]any{
			"schemas": []string{SchemaResType}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "A named set of users, usable in agents' inbound rules", "schema": SchemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": h.BaseURL + "/ResourceTypes/Group"},
		},
	}
}

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request, _ Token) {
	l := h.resourceTypeList()
	writeJSON(w, http.StatusOK, listResponse(l, len(l), 1))
}

func (h *Handler) resourceType(w http.ResponseWriter, r *http.Request, _ Token) {
	for _, t := range h.resourceTypeList() {
		if strings.EqualFold(t.(map[string]any)["id"].(string), r.PathValue("name")) {
			writeJSON(w, http.StatusOK, t)
			return
		}
	}
	writeError(w, &Error{Status: 404, Detail: fmt.Sprintf("no resource type %q; there are User and Group", r.PathValue("name"))})
}

func attr(name, typ string, required bool, extra ...any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": false, "required": required, "caseExact": false,
		"mutability": "readWrite", "returned": "default", "uniqueness": "none"}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i].(string)] = extra[i+1]
	}
	return a
}

func (h *Handler) schemaList() []any {
	sch := func(id, name, desc string, attrs []any) map[string]any {
		return map[string]any{"schemas": []string{SchemaSchema}, "id": id, "name": name, "description": desc, "attributes": attrs,
			"meta": map[string]any{"resourceType": "Schema", "location": h.BaseURL + "/Schemas/" + id}}
	}
	str := func(name string) map[string]any { return attr(name, "string", false) }
	return []any{
		sch(SchemaUser, "User", "User account", []any{
			attr("userName", "string", true, "uniqueness", "server"),
			attr("name", "complex", false, "subAttributes", []any{str("formatted"), str("givenName"), str("familyName")}),
			str("displayName"),
			str("title"),
			attr("active", "boolean", false),
			attr("emails", "complex", false, "multiValued", true, "subAttributes", []any{str("value"), str("type"), attr("primary", "boolean", false)}),
			attr("groups", "complex", false, "multiValued", true, "mutability", "readOnly",
				"subAttributes", []any{str("value"), str("display"), attr("$ref", "reference", false)}),
		}),
		sch(SchemaEnterprise, "EnterpriseUser", "Enterprise user", []any{
			str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
			attr("manager", "complex", false, "subAttributes", []any{str("value")}),
		}),
		sch(SchemaGroup, "Group", "Group", []any{
			attr("displayName", "string", true, "uniqueness", "server"),
			attr("members", "complex", false, "multiValued", true,
				"subAttributes", []any{str("value"), str("display"), attr("$ref", "reference", false)}),
		}),
	}
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request, _ Token) {
	l := h.schemaList()
	writeJSON(w, http.StatusOK, listResponse(l, len(l), 1))
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request, _ Token) {
	for _, s := range h.schemaList() {
		if strings.EqualFold(s.(map[string]any)["id"].(string), r.PathValue("id")) {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, &Error{Status: 404, Detail: fmt.Sprintf("no schema %q", r.PathValue("id"))})
}
