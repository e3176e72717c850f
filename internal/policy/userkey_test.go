package policy

import (
	"reflect"
	"testing"

	"github.com/agentguard/agentguard/internal/user"
)

// The decision cache is keyed by userKey: a field the Cedar evaluation reads
// but the key leaves out would hand one user's decision to another. For every
// field of user.User, a change that the evaluation sees (principal's entity,
// or the user's ID) must change the key.
func TestUserKeyCoversWhatTheEvaluationReads(t *testing.T) {
	base := user.User{ID: "usr_1", Username: "alice", Email: "a@example.com", DisplayName: "Alice", Active: true,
		Groups: []string{"hr", "staff"}, Attributes: map[string]string{"department": "HR"}}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		changed := base
		changed.Groups = append([]string(nil), base.Groups...)
		changed.Attributes = map[string]string{"department": "HR"}
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"hr", "sales"}))
		case reflect.Map:
			v.Set(reflect.ValueOf(map[string]string{"department": "Sales"}))
		default:
			continue // times: not part of the evaluation
		}
		_, before := principal(base)
		_, after := principal(changed)
		seen := !reflect.DeepEqual(before, after) || f.Name == "ID" || f.Name == "Active"
		if seen && userKey(base) == userKey(changed) {
			t.Errorf("changing %s changes what Cedar sees but not the decision cache's key", f.Name)
		}
	}
}

// Field boundaries and order are part of the key: no two different users encode
// alike, and the order of groups or attributes does not matter.
func TestUserKeyIsUnambiguous(t *testing.T) {
	a := user.User{ID: "usr_1", Username: "ab", Email: "c"}
	b := user.User{ID: "usr_1", Username: "a", Email: "bc"}
	if userKey(a) == userKey(b) {
		t.Error(`username "ab" + email "c" encodes like username "a" + email "bc"`)
	}
	g1 := user.User{ID: "usr_1", Groups: []string{"a,b"}}
	g2 := user.User{ID: "usr_1", Groups: []string{"a", "b"}}
	if userKey(g1) == userKey(g2) {
		t.Error(`group "a,b" encodes like groups "a" and "b"`)
	}
	x := user.User{ID: "usr_1", Groups: []string{"b", "a"}, Attributes: map[string]string{"k": "v", "l": "w"}}
	y := user.User{ID: "usr_1", Groups: []string{"a", "b"}, Attributes: map[string]string{"l": "w", "k": "v"}}
	if userKey(x) != userKey(y) {
		t.Error("the same groups and attributes in another order give another key")
	}
}
