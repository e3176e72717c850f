package scim

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// MaxOperations bounds one PATCH request.
const MaxOperations = 1000

// Operation is one PATCH operation (RFC 7644 §3.5.2).
type Operation struct {
	Op    string // add, replace, remove (any case: Entra ID sends "Replace")
	Path  string
	Value any
}

// decodePatch reads a PatchOp message.
func decodePatch(body map[string]any) ([]Operation, error) {
	raw, ok := getCI(body, "Operations")
	list, isList := raw.([]any)
	if !ok || !isList {
		return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: `the body must be a PatchOp message: {"schemas": ["` + SchemaPatchOp + `"], "Operations": [{"op": "replace", "path": "active", "value": false}]}`}
	}
	if len(list) > MaxOperations {
		return nil, &Error{Status: 400, ScimType: "tooMany", Detail: fmt.Sprintf("at most %d operations per request", MaxOperations)}
	}
	ops := make([]Operation, 0, len(list))
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: fmt.Sprintf("Operations[%d] is not an object", i)}
		}
		opv, _ := getCI(m, "op")
		op, _ := opv.(string)
		op = strings.ToLower(op)
		if op != "add" && op != "replace" && op != "remove" {
			return nil, &Error{Status: 400, ScimType: "invalidSyntax", Detail: fmt.Sprintf("Operations[%d].op must be add, replace or remove (got %v)", i, opv)}
		}
		var path string
		if pv, ok := getCI(m, "path"); ok && pv != nil {
			if path, ok = pv.(string); !ok {
				return nil, &Error{Status: 400, ScimType: "invalidPath", Detail: fmt.Sprintf("Operations[%d].path must be a string", i)}
			}
		}
		v, _ := getCI(m, "value")
		ops = append(ops, Operation{Op: op, Path: path, Value: v})
	}
	return ops, nil
}

// applyPatch applies ops to a resource in its SCIM form, in order. Attributes in
// readOnly cannot be changed (mutability); "schemas" changes are ignored.
func applyPatch(res map[string]any, ops []Operation, readOnly []string) error {
	for _, o := range ops {
		if err := applyOp(res, o.Op, o.Path, o.Value, readOnly, 0); err != nil {
			return err
		}
	}
	return nil
}

func applyOp(res map[string]any, op, path string, value any, readOnly []string, depth int) error {
	if path == "" {
		if op == "remove" {
			return &Error{Status: 400, ScimType: "noTarget", Detail: "a remove operation needs a path"}
		}
		m, ok := value.(map[string]any)
		if !ok || depth > 1 {
			return &Error{Status: 400, ScimType: "invalidSyntax", Detail: "an operation without a path needs an object value of attributes"}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := m[k]
			if strings.EqualFold(k, "schemas") || strings.EqualFold(k, "id") || strings.EqualFold(k, "meta") {
				continue // Okta repeats the id in path-less replace operations
			}
			// An extension object: its attributes, each with the URN prefix.
			if sub, ok := v.(map[string]any); ok && strings.HasPrefix(strings.ToLower(k), "urn:") {
				for sk, sv := range sub {
					if err := applyOp(res, op, k+":"+sk, sv, readOnly, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			if err := applyOp(res, op, k, v, readOnly, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := ParsePath(path)
	if err != nil {
		return &Error{Status: 400, ScimType: "invalidPath", Detail: err.Error()}
	}
	if strings.EqualFold(p.Attr.Name, "schemas") && p.Attr.URN == "" {
		return nil
	}
	for _, ro := range readOnly {
		if strings.EqualFold(p.Attr.Name, ro) && p.Attr.URN == "" {
			return &Error{Status: 400, ScimType: "mutability", Detail: fmt.Sprintf("%s cannot be changed", p.Attr.Name)}
		}
	}
	c := container(res, p.Attr.URN)
	if c == nil {
		if op == "remove" {
			return nil
		}
		c = map[string]any{}
		res[p.Attr.URN] = c
	}
	key := keyCI(c, p.Attr.Name)
	if p.Filter == nil {
		if p.Attr.Sub != "" {
			parent, _ := c[key].(map[string]any)
			if parent == nil {
				if op == "remove" {
					return nil
				}
				parent = map[string]any{}
				c[key] = parent
			}
			sub := keyCI(parent, p.Attr.Sub)
			if op == "remove" {
				delete(parent, sub)
			} else {
				parent[sub] = value
			}
			return nil
		}
		switch op {
		case "remove":
			if list, ok := c[key].([]any); ok && value != nil {
				// Entra ID removes members with a value list instead of a filter.
				drop, _ := value.([]any)
				c[key] = slices.DeleteFunc(list, func(el any) bool {
					return slices.ContainsFunc(drop, func(d any) bool { return sameElement(el, d) })
				})
				return nil
			}
			delete(c, key)
		case "add":
			if list, ok := c[key].([]any); ok {
				add, isList := value.([]any)
				if !isList {
					add = []any{value}
				}
				for _, v := range add {
					if !slices.ContainsFunc(list, func(el any) bool { return sameElement(el, v) }) {
						list = append(list, v)
					}
				}
				c[key] = list
				return nil
			}
			fallthrough
		case "replace":
			cur, curIsMap := c[key].(map[string]any)
			val, valIsMap := value.(map[string]any)
			if curIsMap && valIsMap {
				for k, v := range val {
					cur[keyCI(cur, k)] = v
				}
				return nil
			}
			c[key] = value
		}
		return nil
	}
	// A value filter: the elements of a multi-valued attribute it matches.
	list, _ := c[key].([]any)
	var hits []int
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && Match(p.Filter, m) {
			hits = append(hits, i)
		}
	}
	switch op {
	case "remove":
		if p.SubAttr != "" {
			for _, i := range hits {
				m := list[i].(map[string]any)
				delete(m, keyCI(m, p.SubAttr))
			}
			return nil
		}
		for j := len(hits) - 1; j >= 0; j-- {
			list = slices.Delete(list, hits[j], hits[j]+1)
		}
		c[key] = list
		return nil
	default:
		if len(hits) == 0 {
			// Nothing matches: add an element made from the filter's equalities
			// (emails[type eq "work"].value → {"type": "work", "value": …}), as
			// Entra ID expects for add and replace alike.
			el := equalities(p.Filter)
			if el == nil {
				return &Error{Status: 400, ScimType: "noTarget", Detail: fmt.Sprintf("no value of %s matches the filter", p.Attr.Name)}
			}
			if err := setElement(el, p.SubAttr, value); err != nil {
				return err
			}
			c[key] = append(list, el)
			return nil
		}
		for _, i := range hits {
			if err := setElement(list[i].(map[string]any), p.SubAttr, value); err != nil {
				return err
			}
		}
		return nil
	}
}

func setElement(el map[string]any, sub string, value any) error {
	if sub != "" {
		el[keyCI(el, sub)] = value
		return nil
	}
	val, ok := value.(map[string]any)
	if !ok {
		return &Error{Status: 400, ScimType: "invalidValue", Detail: "the value for a filtered path without a sub-attribute must be an object"}
	}
	for k, v := range val {
		el[keyCI(el, k)] = v
	}
	return nil
}

// equalities turns `a eq "x" and b eq "y"` into {"a": "x", "b": "y"}; nil if the
// filter is anything else.
func equalities(f Filter) map[string]any {
	switch x := f.(type) {
	case Compare:
		if x.Op == "eq" && x.Path.Sub == "" && x.Path.URN == "" {
			return map[string]any{x.Path.Name: x.Value}
		}
	case Logical:
		if x.Op == "and" {
			l, r := equalities(x.Left), equalities(x.Right)
			if l == nil || r == nil {
				return nil
			}
			for k, v := range r {
				l[k] = v
			}
			return l
		}
	}
	return nil
}

// sameElement compares multi-valued elements by their "value" (members, emails),
// or whole.
func sameElement(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, _ := getCI(am, "value")
		bv, _ := getCI(bm, "value")
		if av != nil || bv != nil {
			return reflect.DeepEqual(av, bv)
		}
	}
	return reflect.DeepEqual(a, b)
}

// keyCI is the key m already uses for name (any case), or name.
func keyCI(m map[string]any, name string) string {
	if _, ok := m[name]; ok {
		return name
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}
