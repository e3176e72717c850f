package scim

import (
	"fmt"
	"strings"
)

// MaxPathBytes bounds a PATCH path.
const MaxPathBytes = 1024

// Path is a PATCH operation's target (RFC 7644 §3.5.2): an attribute, optionally
// narrowed by a value filter and followed by a sub-attribute, as in
// emails[type eq "work"].value.
type Path struct {
	Attr    AttrPath // with Sub only when there is no Filter
	Filter  Filter   // nil: the whole attribute
	SubAttr string   // after the filter
}

func (p Path) String() string {
	if p.Filter == nil {
		return p.Attr.String()
	}
	s := p.Attr.String() + "[" + p.Filter.String() + "]"
	if p.SubAttr != "" {
		s += "." + p.SubAttr
	}
	return s
}

// ParsePath parses a PATCH path.
func ParsePath(s string) (Path, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxPathBytes {
		return Path{}, &FilterError{Msg: fmt.Sprintf("the path is over the %d-byte limit", MaxPathBytes)}
	}
	if s == "" {
		return Path{}, &FilterError{Msg: "the path is empty"}
	}
	// A whole extension object (urn:…:enterprise:2.0:User).
	if strings.EqualFold(s, SchemaEnterprise) {
		return Path{Attr: AttrPath{Name: SchemaEnterprise}}, nil
	}
	i := strings.IndexByte(s, '[')
	if i < 0 {
		a, err := parseAttrPath(s)
		if err != nil {
			return Path{}, &FilterError{Msg: err.Error()}
		}
		return Path{Attr: a}, nil
	}
	a, err := parseAttrPath(s[:i])
	if err != nil {
		return Path{}, &FilterError{Msg: err.Error()}
	}
	if a.Sub != "" {
		return Path{}, &FilterError{Pos: i, Msg: "a value filter follows the attribute, not its sub-attribute"}
	}
	j := strings.LastIndexByte(s, ']')
	if j < i {
		return Path{}, &FilterError{Pos: i, Msg: "the value filter is not closed with ]"}
	}
	p := &parser{src: s[i+1 : j]}
	if err := p.tokenize(); err != nil {
		fe := err.(*FilterError)
		fe.Pos += i + 1
		return Path{}, fe
	}
	f, err := p.or(1, true)
	if err == nil && p.peek().kind != tokEOF {
		err = p.errAt(p.peek(), "unexpected %q in the value filter", p.peek().text)
	}
	if err != nil {
		if fe, ok := err.(*FilterError); ok {
			fe.Pos += i + 1
		}
		return Path{}, err
	}
	out := Path{Attr: a, Filter: f}
	if rest := s[j+1:]; rest != "" {
		sub, ok := strings.CutPrefix(rest, ".")
		if !ok || !validAttrName(sub) {
			return Path{}, &FilterError{Pos: j + 1, Msg: fmt.Sprintf("%q after the value filter is not .subAttribute", rest)}
		}
		out.SubAttr = sub
	}
	return out, nil
}
