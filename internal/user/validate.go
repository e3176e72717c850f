package user

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/api"
)

// Limits on directory fields.
const (
	MaxUsernameBytes    = 256
	MaxEmailBytes       = 320
	MaxDisplayNameBytes = 256
	MaxGroupNameBytes   = 200
	MaxAttributes       = 64
	MaxAttributeValue   = 1024
	MaxGroupsPerUser    = 1000
	MaxExternalIDBytes  = 512
)

// Key is the case-folded form usernames, emails and group names are unique and
// matched by.
func Key(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// IDPrefix starts every user id (the token subject).
const IDPrefix = "usr_"

var attrKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ReservedAttributes are names the policy engine gives every user; an attribute
// cannot shadow them.
var ReservedAttributes = []string{"id", "username", "email", "display_name", "groups", "active", "source", "external_id"}

// CheckUsername says what is wrong with a username, or "".
func CheckUsername(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is required"
	case len(s) > MaxUsernameBytes:
		return fmt.Sprintf("must be at most %d bytes", MaxUsernameBytes)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case s != strings.TrimSpace(s):
		return "must not start or end with spaces"
	case strings.HasPrefix(Key(s), IDPrefix):
		return "must not start with " + IDPrefix + " (user ids do; rules accept both, so usernames may not look like ids)"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "must contain only printable characters"
		}
	}
	return ""
}

// CheckGroupName says what is wrong with a group name, or "".
func CheckGroupName(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is required"
	case len(s) > MaxGroupNameBytes:
		return fmt.Sprintf("must be at most %d bytes", MaxGroupNameBytes)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case s != strings.TrimSpace(s):
		return "must not start or end with spaces"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "must contain only printable characters"
		}
	}
	return ""
}

// Validate checks the fields of u every writer (API, SCIM, upstream sign-in) must
// respect, adding errors to v under prefix (e.g. "" or "user.").
func Validate(v *api.Validator, u User) {
	if msg := CheckUsername(u.Username); msg != "" {
		v.Add("username", "%s", msg)
	}
	if u.Email != "" {
		if len(u.Email) > MaxEmailBytes {
			v.Add("email", "must be at most %d bytes", MaxEmailBytes)
		} else if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			v.Add("email", "%q is not an email address such as alice@example.com", u.Email)
		}
	}
	v.MaxLen("display_name", u.DisplayName, MaxDisplayNameBytes)
	v.MaxLen("external_id", u.ExternalID, MaxExternalIDBytes)
	if len(u.Groups) > MaxGroupsPerUser {
		v.Add("groups", "at most %d groups", MaxGroupsPerUser)
	}
	for _, g := range u.Groups {
		if msg := CheckGroupName(g); msg != "" {
			v.Add("groups", "%q %s", g, msg)
		}
	}
	CheckAttributes(v, u.Attributes)
}

// CheckAttributes checks attribute names (lowercase identifiers a Cedar policy can
// name as principal.<name>) and values.
func CheckAttributes(v *api.Validator, attrs map[string]string) {
	if len(attrs) > MaxAttributes {
		v.Add("attributes", "at most %d attributes (got %d)", MaxAttributes, len(attrs))
		return
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !attrKeyRe.MatchString(k):
			v.Add("attributes", "%q is not a valid attribute name: 1-64 lowercase letters, digits and _, starting with a letter (e.g. department)", k)
		case slices.Contains(ReservedAttributes, k):
			v.Add("attributes", "%q is reserved (every user has it already); use another name", k)
		default:
			val := attrs[k]
			if len(val) > MaxAttributeValue || !utf8.ValidString(val) {
				v.Add("attributes."+k, "must be valid UTF-8 of at most %d bytes", MaxAttributeValue)
			}
		}
	}
}

// Normalize fills nil slices and maps so JSON shows [] and {}, and sorts groups.
func Normalize(u *User) {
	if u.Groups == nil {
		u.Groups = []string{}
	}
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
	slices.SortFunc(u.Groups, func(a, b string) int { return strings.Compare(Key(a), Key(b)) })
	u.Groups = slices.CompactFunc(u.Groups, func(a, b string) bool { return Key(a) == Key(b) })
}

// InGroupFold reports whether the user is in the group name, ignoring case (group
// names are unique regardless of case).
func (u User) InGroupFold(name string) bool {
	k := Key(name)
	for _, g := range u.Groups {
		if Key(g) == k {
			return true
		}
	}
	return false
}
