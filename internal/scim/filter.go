package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on filters: a filter comes from the network on every list request.
const (
	MaxFilterBytes = 4096
	maxFilterDepth = 32
)

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2).
type Filter interface {
	String() string
}

// AttrPath names an attribute: an optional schema URN, the attribute, and an
// optional sub-attribute (emails.value).
type AttrPath struct {
	URN  string
	Name string
	Sub  string
}

func (p AttrPath) String() string {
	s := p.Name
	if p.URN != "" {
		s = p.URN + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Compare is `path op value` or `path pr`.
type Compare struct {
	Path  AttrPath
	Op    string // eq ne co sw ew gt lt ge le pr (lowercase)
	Value any    // string, float64, bool or nil; unused for pr
}

func (c Compare) String() string {
	if c.Op == "pr" {
		return c.Path.String() + " pr"
	}
	v, _ := json.Marshal(c.Value)
	return c.Path.String() + " " + c.Op + " " + string(v)
}

// Logical is `left and right` or `left or right`.
type Logical struct {
	Op          string // and, or
	Left, Right Filter
}

func (l Logical) String() string {
	return "(" + l.Left.String() + " " + l.Op + " " + l.Right.String() + ")"
}

// Not is `not (x)`.
type Not struct{ X Filter }

func (n Not) String() string { return "not (" + n.X.String() + ")" }

// ValuePath is `attr[filter]`: some element of the multi-valued attr matches.
type ValuePath struct {
	Path   AttrPath // Sub empty
	Filter Filter
}

func (v ValuePath) String() string { return v.Path.String() + "[" + v.Filter.String() + "]" }

// FilterError is a filter that does not parse (SCIM scimType invalidFilter).
type FilterError struct {
	Pos int // byte offset
	Msg string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("the filter does not parse at byte %d: %s", e.Pos, e.Msg)
}

// ParseFilter parses a SCIM filter expression.
func ParseFilter(s string) (Filter, error) {
	if len(s) > MaxFilterBytes {
		return nil, &FilterError{Msg: fmt.Sprintf("the filter is over the %d-byte limit", MaxFilterBytes)}
	}
	if !utf8.ValidString(s) {
		return nil, &FilterError{Msg: "the filter is not valid UTF-8"}
	}
	p := &parser{src: s}
	if err := p.tokenize(); err != nil {
		return nil, err
	}
	f, err := p.or(0, false)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(t, "unexpected %q after the end of the expression", t.text)
	}
	return f, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokNumber
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
)

type token struct {
	kind tokKind
	text string // word, number text, or decoded string
	pos  int
}

type parser struct {
	src    string
	toks   []token
	i      int
	inPath bool // inside [ ]: no nested value paths
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &FilterError{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == ':' || c == '$' ||
		(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (p *parser) tokenize() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tokRParen, ")", i})
			i++
		case c == '[':
			p.toks = append(p.toks, token{tokLBracket, "[", i})
			i++
		case c == ']':
			p.toks = append(p.toks, token{tokRBracket, "]", i})
			i++
		case c == '"':
			// A JSON string: find its end, honouring escapes, then decode it.
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return &FilterError{Pos: i, Msg: "a string is not closed with \""}
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return &FilterError{Pos: i, Msg: "a string is not a valid JSON string"}
			}
			p.toks = append(p.toks, token{tokString, v, i})
			i = j + 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' || s[j] == '-' || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			p.toks = append(p.toks, token{tokNumber, s[i:j], i})
			i = j
		case isWordByte(c):
			j := i + 1
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{tokWord, s[i:j], i})
			i = j
		default:
			return &FilterError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s)})
	return nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isWord(t token, w string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, w)
}

// or := and ("or" and)*
func (p *parser) or(depth int, inBracket bool) (Filter, error) {
	left, err := p.and(depth, inBracket)
	if err != nil {
		return nil, err
	}
	for p.isWord(p.peek(), "or") {
		p.next()
		right, err := p.and(depth, inBracket)
		if err != nil {
			return nil, err
		}
		left = Logical{Op: "or", Left: left, Right: right}
	}
	return left, nil
}

// and := unary ("and" unary)*
func (p *parser) and(depth int, inBracket bool) (Filter, error) {
	left, err := p.unary(depth, inBracket)
	if err != nil {
		return nil, err
	}
	for p.isWord(p.peek(), "and") {
		p.next()
		right, err := p.unary(depth, inBracket)
		if err != nil {
			return nil, err
		}
		left = Logical{Op: "and", Left: left, Right: right}
	}
	return left, nil
}

// unary := "not" "(" or ")" | "(" or ")" | attrExp | valuePath
func (p *parser) unary(depth int, inBracket bool) (Filter, error) {
	if depth > maxFilterDepth {
		return nil, p.errAt(p.peek(), "the filter nests more than %d levels", maxFilterDepth)
	}
	t := p.peek()
	if p.isWord(t, "not") && p.toks[p.i+1].kind == tokLParen {
		p.next()
		p.next()
		x, err := p.or(depth+1, inBracket)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errAt(c, "expected ) to close not (")
		}
		return Not{X: x}, nil
	}
	if t.kind == tokLParen {
		p.next()
		x, err := p.or(depth+1, inBracket)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errAt(c, "expected ) to close (")
		}
		return x, nil
	}
	if t.kind != tokWord {
		return nil, p.errAt(t, "expected an attribute name, found %q", t.text)
	}
	p.next()
	path, err := parseAttrPath(t.text)
	if err != nil {
		return nil, p.errAt(t, "%v", err)
	}
	if p.peek().kind == tokLBracket {
		if inBracket {
			return nil, p.errAt(p.peek(), "a value filter [ ] cannot nest inside another")
		}
		if path.Sub != "" {
			return nil, p.errAt(p.peek(), "a value filter follows the attribute, not its sub-attribute (write emails[type eq \"work\"])")
		}
		p.next()
		inner, err := p.or(depth+1, true)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRBracket {
			return nil, p.errAt(c, "expected ] to close the value filter")
		}
		// emails[type eq "work"].value eq "x" is read as
		// emails[type eq "work" and value eq "x"].
		if nt := p.peek(); nt.kind == tokWord && strings.HasPrefix(nt.text, ".") {
			p.next()
			sub := nt.text[1:]
			if !validAttrName(sub) {
				return nil, p.errAt(nt, "%q is not a sub-attribute", nt.text)
			}
			c, err := p.comparison(AttrPath{Name: sub}, nt)
			if err != nil {
				return nil, err
			}
			inner = Logical{Op: "and", Left: inner, Right: c}
		}
		return ValuePath{Path: path, Filter: inner}, nil
	}
	return p.comparison(path, t)
}

// comparison reads `op value` (or `pr`) after the attribute path of token t.
func (p *parser) comparison(path AttrPath, t token) (Filter, error) {
	opTok := p.next()
	if opTok.kind != tokWord {
		return nil, p.errAt(opTok, "expected an operator (eq, ne, co, sw, ew, gt, lt, ge, le, pr) after %s", t.text)
	}
	op := strings.ToLower(opTok.text)
	switch op {
	case "pr":
		return Compare{Path: path, Op: op}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le":
	default:
		return nil, p.errAt(opTok, "%q is not an operator (eq, ne, co, sw, ew, gt, lt, ge, le, pr)", opTok.text)
	}
	vt := p.next()
	var v any
	switch {
	case vt.kind == tokString:
		v = vt.text
	case vt.kind == tokNumber:
		f, err := strconv.ParseFloat(vt.text, 64)
		if err != nil {
			return nil, p.errAt(vt, "%q is not a number", vt.text)
		}
		v = f
	case p.isWord(vt, "true"):
		v = true
	case p.isWord(vt, "false"):
		v = false
	case p.isWord(vt, "null"):
		v = nil
	default:
		return nil, p.errAt(vt, "expected a value (a \"string\", number, true, false or null), found %q", vt.text)
	}
	return Compare{Path: path, Op: op, Value: v}, nil
}

// parseAttrPath splits [URN ":"] name ["." sub].
func parseAttrPath(s string) (AttrPath, error) {
	var p AttrPath
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		i := strings.LastIndexByte(s, ':')
		p.URN, s = s[:i], s[i+1:]
	}
	name, sub, hasSub := strings.Cut(s, ".")
	if !validAttrName(name) || (hasSub && !validAttrName(sub)) {
		return p, fmt.Errorf("%q is not an attribute name", s)
	}
	p.Name, p.Sub = name, sub
	return p, nil
}

// validAttrName: ALPHA *(nameChar) per RFC 7643 §2.1, plus $ref.
func validAttrName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || len(s) > 128 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}
