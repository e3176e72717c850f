package scim

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The filters Entra ID and Okta send, and the RFC's examples, parse to the
// expected tree (shown in the canonical String form, fully parenthesised).
func TestParseFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{`userName eq "bjensen"`, `userName eq "bjensen"`},
		{`userName Eq "john@example.com"`, `userName eq "john@example.com"`},
		{`externalId eq "5f6c7a31-0d8e-4b1a-9f0e-2c9f1a7b0c1d"`, `externalId eq "5f6c7a31-0d8e-4b1a-9f0e-2c9f1a7b0c1d"`},
		{`displayName eq "Sales Team"`, `displayName eq "Sales Team"`},
		{`name.familyName co "O'Malley"`, `name.familyName co "O'Malley"`},
		{`userName sw "J"`, `userName sw "J"`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`},
		{`title pr`, `title pr`},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, `meta.lastModified gt "2011-05-13T04:42:34Z"`},
		{`title pr and userType eq "Employee"`, `(title pr and userType eq "Employee")`},
		{`title pr or userType eq "Intern"`, `(title pr or userType eq "Intern")`},
		{`userName eq "a" or userName eq "b" and active eq true`, `(userName eq "a" or (userName eq "b" and active eq true))`},
		{`(userName eq "a" or userName eq "b") and active eq true`, `((userName eq "a" or userName eq "b") and active eq true)`},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, `(userType eq "Employee" and (emails co "example.com" or emails.value co "example.org"))`},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, `(userType ne "Employee" and not ((emails co "example.com" or emails.value co "example.org")))`},
		{`emails[type eq "work" and value co "@example.com"]`, `emails[(type eq "work" and value co "@example.com")]`},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`, `(emails[(type eq "work" and value co "@example.com")] or ims[(type eq "xmpp" and value co "@foo.com")])`},
		{`members[value eq "usr_1"]`, `members[value eq "usr_1"]`},
		{`emails[type eq "work"].value eq "a@b.c"`, `emails[(type eq "work" and value eq "a@b.c")]`},
		{`active eq false`, `active eq false`},
		{`x eq null`, `x eq null`},
		{`level gt 3.5`, `level gt 3.5`},
		{`userName eq "with \"quotes\" and \\ and \u00e9"`, `userName eq "with \"quotes\" and \\ and é"`},
		{"  userName\teq\n\"x\"  ", `userName eq "x"`},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("%s:\n got  %s\n want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseFilterRefusals(t *testing.T) {
	tests := []struct {
		in  string
		pos int
	}{
		{``, 0},
		{`userName`, 8},
		{`userName eq`, 11},
		{`userName eq bjensen`, 12},
		{`userName is "x"`, 9},
		{`userName eq "x`, 12},
		{`userName eq "x" and`, 19},
		{`(userName eq "x"`, 16},
		{`userName eq "x")`, 15},
		{`emails[type eq "work"`, 21},
		{`emails[type[x eq "y"] eq "z"]`, 11},
		{`emails.value[type eq "work"]`, 12},
		{`1abc eq "x"`, 0},
		{`userName eq "x" ; drop`, 16},
		{`user@name eq "x"`, 4},
		{`not userName eq "x"`, 4},
		{strings.Repeat("(", 40) + `a eq "b"` + strings.Repeat(")", 40), 33},
	}
	for _, tt := range tests {
		_, err := ParseFilter(tt.in)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("%q: err %v, want a *FilterError", tt.in, err)
			continue
		}
		if fe.Pos != tt.pos {
			t.Errorf("%q: position %d (%v), want %d", tt.in, fe.Pos, fe, tt.pos)
		}
	}
	if _, err := ParseFilter(`userName eq "` + strings.Repeat("a", MaxFilterBytes) + `"`); err == nil {
		t.Error("a filter over the size limit was accepted")
	}
	if _, err := ParseFilter("userName eq \"\xff\""); err == nil {
		t.Error("invalid UTF-8 was accepted")
	}
}

func resource(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatch(t *testing.T) {
	u := resource(t, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"id": "usr_ABC", "externalId": "Ext-1", "userName": "Alice@Example.com", "active": true,
		"name": {"givenName": "Alice", "familyName": "O'Malley"},
		"title": "", "level": 4,
		"emails": [{"value": "alice@example.com", "type": "work", "primary": true}, {"value": "a@home.example", "type": "home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "HR"},
		"meta": {"lastModified": "2026-01-02T03:04:05Z"}}`)
	tests := []struct {
		filter string
		want   bool
	}{
		{`userName eq "alice@example.com"`, true}, // case-insensitive
		{`USERNAME eq "alice@example.com"`, true}, // attribute names too
		{`id eq "usr_abc"`, false},                // ids are case-exact
		{`id eq "usr_ABC"`, true},
		{`externalId eq "ext-1"`, false},
		{`externalId eq "Ext-1"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`active eq "true"`, false},
		{`name.familyName co "malley"`, true},
		{`name pr`, true},
		{`title pr`, false}, // empty string is not present
		{`nickName pr`, false},
		{`emails eq "a@home.example"`, true},
		{`emails.type eq "home"`, true},
		{`emails[type eq "work" and value ew "@example.com"]`, true},
		{`emails[type eq "home" and value ew "@example.com"]`, false},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "hr"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ALICE"`, true},
		{`level gt 3`, true},
		{`level le 3`, false},
		{`meta.lastModified gt "2025-12-31T00:00:00Z"`, true},
		{`userName ne "bob"`, true},
		{`userName ne "alice@example.com"`, false},
		{`nickName eq null`, true},
		{`not (active eq true)`, false},
		{`userName eq "x" or emails[primary eq true]`, true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		if got := Match(f, u); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.filter, got, tt.want)
		}
	}
}

// Whatever the input, parsing never panics; a parsed filter prints to a form that
// parses back to the same tree.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `emails[type eq "work" and value co "@example.com"]`,
		`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		`level gt 3.5`, `x eq null`, `title pr`, `a eq "\u00e9\"\\"`, `((a eq 1))`, `a[b eq 1`, `"`, `not (`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFilter(s)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) || fe.Pos < 0 || fe.Pos > len(s) {
				t.Fatalf("error %v for %q", err, s)
			}
			return
		}
		again, err := ParseFilter(fl.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, fl.String(), err)
		}
		if !reflect.DeepEqual(fl, again) {
			t.Fatalf("%q: %#v printed and parsed back as %#v", s, fl, again)
		}
		Match(fl, map[string]any{"a": []any{map[string]any{"b": 1.0}}, "userName": "x"})
	})
}

func TestParsePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{`active`, `active`},
		{`name.givenName`, `name.givenName`},
		{`members`, `members`},
		{`members[value eq "usr_1"]`, `members[value eq "usr_1"]`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if p.String() != tt.want {
			t.Errorf("%s: %s", tt.in, p.String())
		}
	}
	for _, bad := range []string{``, `emails[type eq "work"`, `emails[type eq "work"]value`, `emails.value[type eq "x"]`, `1x`, `a b`, `emails[]`, `emails[type eq "w"].`, strings.Repeat("a", MaxPathBytes+1)} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{`active`, `members[value eq "x"]`, `emails[type eq "work"].value`, `urn:a:b:c.d`, `x[`, `]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		if _, err := ParsePath(p.String()); err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, p.String(), err)
		}
	})
}

// BenchmarkParseFilter: the filter Entra ID sends before every provisioning write.
func BenchmarkParseFilter(b *testing.B) {
	for b.Loop() {
		if _, err := ParseFilter(`userName eq "Test_User_ab6490ee@contoso.com" and (emails[type eq "work"].value co "@contoso.com" or active eq true)`); err != nil {
			b.Fatal(err)
		}
	}
}
