package scim

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/agentguard/agentguard/internal/user"
)

func baseUser() user.User {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return user.User{ID: "usr_1", Username: "alice@example.com", Email: "alice@example.com", DisplayName: "Alice Adams",
		Active: true, Source: user.SourceSCIM, ExternalID: "ext-1", Groups: []string{},
		Attributes: map[string]string{"given_name": "Alice", "family_name": "Adams", "department": "HR", "clearance": "kept"},
		CreatedAt:  t, UpdatedAt: t}
}

// patch runs a PatchOp body against baseUser the way PATCH /Users/{id} does.
func patch(t *testing.T, body string) (user.User, error) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	ops, err := decodePatch(m)
	if err != nil {
		return user.User{}, err
	}
	res := userResource(baseUser(), "https://ag.example/scim/v2", nil)
	if err := applyPatch(res, ops, userReadOnly); err != nil {
		return user.User{}, err
	}
	return fromUserResource(res, baseUser())
}

// The PATCH forms Entra ID and Okta send change what they should and nothing else.
func TestPatchUser(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		change func(u *user.User)
	}{
		{"Entra: Replace active \"False\"",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			func(u *user.User) { u.Active = false }},
		{"Okta: replace without a path",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"usr_1","active":false}}]}`,
			func(u *user.User) { u.Active = false }},
		{"RFC: boolean value",
			`{"Operations":[{"op":"replace","path":"active","value":false}]}`,
			func(u *user.User) { u.Active = false }},
		{"Entra: add a work email through a filter",
			`{"Operations":[{"op":"Add","path":"emails[type eq \"work\"].value","value":"alice.adams@example.com"}]}`,
			func(u *user.User) { u.Email = "alice.adams@example.com" }},
		{"replace the email list",
			`{"Operations":[{"op":"replace","path":"emails","value":[{"value":"new@example.com","type":"work","primary":true}]}]}`,
			func(u *user.User) { u.Email = "new@example.com" }},
		{"Entra: department in the enterprise extension",
			`{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}]}`,
			func(u *user.User) { u.Attributes["department"] = "Sales" }},
		{"Entra: add a manager",
			`{"Operations":[{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"usr_boss"}]}`,
			func(u *user.User) { u.Attributes["manager_id"] = "usr_boss" }}, // a bare string, as Entra sends it
		{"manager value",
			`{"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"usr_boss"}]}`,
			func(u *user.User) { u.Attributes["manager_id"] = "usr_boss" }},
		{"no path with an extension object and dotted names",
			`{"Operations":[{"op":"replace","value":{"name.givenName":"Ali","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"IT"},"displayName":"Ali A."}}]}`,
			func(u *user.User) {
				u.Attributes["given_name"], u.Attributes["department"], u.DisplayName = "Ali", "IT", "Ali A."
			}},
		{"sub-attribute",
			`{"Operations":[{"op":"replace","path":"name.familyName","value":"Smith"}]}`,
			func(u *user.User) { u.Attributes["family_name"] = "Smith" }},
		{"remove the title that is not there",
			`{"Operations":[{"op":"remove","path":"title"}]}`,
			func(u *user.User) {}},
		{"remove the department",
			`{"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]}`,
			func(u *user.User) { delete(u.Attributes, "department") }},
		{"remove emails through a filter",
			`{"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"}]}`,
			func(u *user.User) { u.Email = "" }},
		{"rename and change the external id",
			`{"Operations":[{"op":"replace","path":"userName","value":"alice.adams@example.com"},{"op":"replace","path":"externalId","value":"ext-2"}]}`,
			func(u *user.User) { u.Username, u.ExternalID = "alice.adams@example.com", "ext-2" }},
		{"schemas changes are ignored",
			`{"Operations":[{"op":"add","path":"schemas","value":["urn:x"]}]}`,
			func(u *user.User) {}},
		{"attributes agentguard does not keep are accepted",
			`{"Operations":[{"op":"add","path":"phoneNumbers","value":[{"value":"+1 555","type":"work"}]},{"op":"replace","path":"preferredLanguage","value":"en"}]}`,
			func(u *user.User) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := patch(t, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			want := baseUser()
			tt.change(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

func TestPatchUserRefusals(t *testing.T) {
	tests := []struct {
		name, body, scimType string
	}{
		{"not a PatchOp", `{"op":"replace"}`, "invalidSyntax"},
		{"unknown op", `{"Operations":[{"op":"merge","path":"active","value":true}]}`, "invalidSyntax"},
		{"remove without a path", `{"Operations":[{"op":"remove"}]}`, "noTarget"},
		{"no path and no object", `{"Operations":[{"op":"replace","value":false}]}`, "invalidSyntax"},
		{"bad path", `{"Operations":[{"op":"replace","path":"emails[type eq","value":"x"}]}`, "invalidPath"},
		{"path not a string", `{"Operations":[{"op":"replace","path":5,"value":"x"}]}`, "invalidPath"},
		{"id is read-only", `{"Operations":[{"op":"replace","path":"id","value":"usr_2"}]}`, "mutability"},
		{"groups are read-only", `{"Operations":[{"op":"add","path":"groups","value":[{"value":"grp_1"}]}]}`, "mutability"},
		{"active not a boolean", `{"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`, "invalidValue"},
		{"userName removed", `{"Operations":[{"op":"remove","path":"userName"}]}`, "invalidValue"},
		{"filter matches nothing and says nothing to add", `{"Operations":[{"op":"replace","path":"emails[value co \"zzz\"].value","value":"y"}]}`, "noTarget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := patch(t, tt.body)
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.ScimType != tt.scimType {
				t.Fatalf("err %v, want a 400 %s", err, tt.scimType)
			}
		})
	}
}

// A user round-trips through its SCIM form unchanged.
func TestUserResourceRoundTrip(t *testing.T) {
	u := baseUser()
	u.Attributes["manager_id"], u.Attributes["employee_number"], u.Attributes["title"] = "usr_boss", "42", "Lead"
	res := userResource(u, "https://ag.example/scim/v2", []groupRef{{ID: "grp_1", Name: "hr"}})
	b, _ := json.Marshal(res)
	var back map[string]any
	json.Unmarshal(b, &back)
	got, err := fromUserResource(back, u)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("\n got  %+v\n want %+v", got, u)
	}
	if back["schemas"].([]any)[1] != SchemaEnterprise {
		t.Fatalf("schemas %v lack the enterprise extension", back["schemas"])
	}
}

// Any PatchOp body is applied or refused with a SCIM error; nothing panics.
func FuzzPatchUser(f *testing.F) {
	for _, s := range []string{
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"a@b.c"}]}`,
		`{"Operations":[{"op":"replace","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"IT"}}}]}`,
		`{"Operations":[{"op":"remove","path":"emails[type eq \"work\"]"}]}`,
		`{"Operations":[{"op":"remove","path":"members","value":[{"value":"x"}]}]}`,
		`{"Operations":[{"op":"add","path":"name","value":{"givenName":"x"}}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil || m == nil {
			return
		}
		ops, err := decodePatch(m)
		if err != nil {
			return
		}
		res := userResource(baseUser(), "https://ag.example/scim/v2", nil)
		if err := applyPatch(res, ops, userReadOnly); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a SCIM error", err, err)
			}
			return
		}
		if _, err := fromUserResource(res, baseUser()); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not a SCIM error", err, err)
			}
		}
	})
}
